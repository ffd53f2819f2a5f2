/* pdwebhook send URL FILE...: deliver bodies to an endpoint the way Pipedrive does, to test
 * it. POST, Content-Type: application/json, User-Agent: Pipedrive Webhooks, optional Basic
 * auth, no redirects, a timeout (10 s), retries after 3, 30 and 150 s with the body's retry
 * marker rewritten (v1 `retry`, v2 `meta.attempt`), and Pipedrive's ban counter per webhook.
 * One JSON line per attempt on stdout, then a report line. Exit status 0 when every file was
 * delivered, 1 when any was not, 2 on usage or I/O errors. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "options.h"

#define SEND_MAX_ATTEMPTS PDW_PIPEDRIVE_MAX_ATTEMPTS /* the first attempt and 3 retries */
#define SEND_BAN_LIMIT ((unsigned)PDW_PIPEDRIVE_BAN_THRESHOLD) /* failed first attempts */
#define SEND_BAN_SECONDS (PDW_PIPEDRIVE_BAN_MS / 1000.0)       /* 30 minutes */
#define SEND_DEFAULT_TIMEOUT (PDW_PIPEDRIVE_TIMEOUT_MS / 1000.0) /* Pipedrive's success window */
#define SEND_MAX_TIMEOUT 86400.0

static const double retry_delay_s[SEND_MAX_ATTEMPTS - 1] = {
    PDW_PIPEDRIVE_RETRY1_DELAY_MS / 1000.0, PDW_PIPEDRIVE_RETRY2_DELAY_MS / 1000.0,
    PDW_PIPEDRIVE_RETRY3_DELAY_MS / 1000.0};

typedef struct {
    const char *url;
    const char *user;     /* NULL: no Authorization header */
    const char *password; /* never printed */
    double timeout_s;
    long timeout_ms;
    double scale;
    int retry;
    int quiet;
} send_opts;

typedef struct {
    const char *path;
    char *body; /* the bytes as read; sent unchanged when doc is NULL */
    size_t len;
    json_t *doc;    /* the parsed body when it is a recognisable v1 or v2 event */
    int version;    /* 1, 2, or 0 (sent unchanged) */
    char *webhook;  /* meta.webhook_id as a string, or "unknown" */
    int has_reals;  /* the DOM holds reals: dump with the shortest faithful precision */
} send_file;

typedef struct {
    char *id;
    unsigned counter;   /* failed first attempts since the last ban */
    double ban_until;   /* monotonic seconds; deliveries before it are lost */
} ban_entry;

typedef struct {
    ban_entry *v;
    size_t n, cap;
} ban_table;

typedef struct {
    long status; /* 0: no HTTP answer (transport error or timeout) */
    int ok;
    double ms;
    char error[CURL_ERROR_SIZE + 64]; /* empty: no error */
} attempt_result;

enum { D_USER = 1, D_PASSWORD, D_PASSWORD_FILE, D_TIMEOUT, D_TIME_SCALE, D_NO_RETRY, D_QUIET };

static const pdw_opt send_opts_table[] = {
    { D_USER, "user", 0, "U", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "Basic auth user (default: $PDWEBHOOK_USER; none: no auth)", 0 },
    { D_PASSWORD, "password", 0, "P", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET,
      "Basic auth password (default: $PDWEBHOOK_PASSWORD; prefer the\nvariable: arguments "
      "are visible to other users)", 0 },
    { D_PASSWORD_FILE, "password-file", 0, "FILE", PDW_OPT_FILE_OF, 0, 0, 0, 0, 0,
      "the password, read from FILE (mode 0600 or stricter)", D_PASSWORD },
    { D_TIMEOUT, "timeout", 0, "S", PDW_OPT_REAL, 0, 0, 0.001, SEND_MAX_TIMEOUT, 0,
      "seconds to wait for an answer (default 10, as Pipedrive)", 0 },
    { D_TIME_SCALE, "time-scale", 0, "F", PDW_OPT_REAL, 0, 0, 0.0, 1e6, 0,
      "multiply the retry delays and the 30-minute ban window by F\n(default 1; e.g. 0.001 "
      "in tests; 0 = no waiting)", 0 },
    { D_NO_RETRY, "no-retry", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "send each body once", 0 },
    { D_QUIET, "quiet", 'q', NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "print only the report line", 0 },
};

static const pdw_opt_cmd send_cmd = {
    "pdwebhook send",
    "usage: pdwebhook send [options] URL FILE...   (FILE - reads stdin)\n"
    "\n"
    "Deliver each FILE's body to URL the way Pipedrive delivers webhooks, to test an\n"
    "endpoint: POST, Content-Type: application/json, User-Agent: Pipedrive Webhooks,\n"
    "optional HTTP Basic auth, redirects not followed (a 3xx is a failure). Success is\n"
    "a 2xx answered within the timeout; anything else, a transport error or a timeout\n"
    "is a failure.\n"
    "\n"
    "options:\n",
    send_opts_table, sizeof send_opts_table / sizeof send_opts_table[0],
    "  -h, --help             this text\n"
    "\n"
    "Retries: a failed first attempt is retried after 3, 30 and 150 s (the delay runs\n"
    "from the end of the previous attempt), at most 3 retries. Before attempt k (1..4)\n"
    "the body is rewritten with jansson (compact): v1 bodies (v or meta.v 1) get\n"
    "top-level retry = k-1, v2 bodies (meta.version \"2.x\") get meta.attempt = k. A\n"
    "body that is not valid JSON or not a recognisable v1/v2 event is sent unchanged.\n"
    "Files are sent one after the other, each with its retries, in order. Pipedrive\n"
    "retries each event independently, so with real timing retries of different events\n"
    "interleave; here they do not.\n"
    "\n"
    "Ban counter, per webhook (meta.webhook_id, or \"unknown\"), as Pipedrive keeps it:\n"
    "each failed first attempt adds 1 (failed retries add nothing). At 10 the webhook\n"
    "would be banned for 30 minutes (scaled) and its counter is reset to 0; deliveries\n"
    "to it during the ban (first attempts and retries) are not sent and are counted as\n"
    "lost_during_ban, as Pipedrive drops them for good.\n"
    "\n"
    "Output, one JSON line each:\n"
    "  per attempt: {\"file\",\"attempt\",\"status\" (null: no HTTP answer),\"ok\",\"ms\","
    "\"error\"}\n"
    "  on a ban:    {\"ban\":true,\"webhook_id\",\"file\",\"ban_seconds\"}\n"
    "  when lost:   {\"lost_during_ban\":true,\"file\",\"webhook_id\",\"next_attempt\"}\n"
    "  at the end:  {\"report\":true,\"files\",\"delivered\",\"retried\" (files with a retry\n"
    "               sent),\"failed_first_attempts\",\"failed\" (never delivered),\n"
    "               \"lost_during_ban\",\"would_be_banned\",\"ban_counters\":{id:n}}\n"
    "\n"
    "Exit status: 0 every file delivered, 1 some file not delivered, 2 usage or I/O\n"
    "error (nothing is sent then).\n",
};

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (!(s > 0.0))
        return;
    struct timespec req, rem;
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    if (req.tv_nsec >= 1000000000L)
        req.tv_nsec = 999999999L;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* A JSON string for a path that may not be UTF-8: invalid bytes become '?'. */
static json_t *path_json(const char *path)
{
    json_t *s = json_string(path);
    if (s)
        return s;
    char *copy = dup_str(path);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

static void print_line(json_t *line)
{
    if (!line) {
        fprintf(stderr, "pdwebhook send: out of memory\n");
        return;
    }
    json_dumpf(line, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(line);
}

/* ---- bodies ---- */

static int has_reals(const json_t *j)
{
    if (json_is_real(j))
        return 1;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            if (has_reals(v))
                return 1;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (has_reals(v))
                return 1;
        }
    }
    return 0;
}

/* Decide how to send a body: v1 or v2 events are kept as a DOM to rewrite per attempt;
 * anything else is sent unchanged. The webhook id is read whenever there is a meta. */
static int classify(send_file *f)
{
    json_error_t jerr;
    json_t *doc = json_loadb(f->body, f->len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *meta = json_is_object(doc) ? json_object_get(doc, "meta") : NULL;
    if (!json_is_object(meta))
        meta = NULL;

    char idbuf[32];
    const char *wid = "unknown";
    json_t *w = meta ? json_object_get(meta, "webhook_id") : NULL;
    if (json_is_string(w) && json_string_length(w) > 0) {
        wid = json_string_value(w);
    } else if (json_is_integer(w)) {
        snprintf(idbuf, sizeof idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(w));
        wid = idbuf;
    }
    f->webhook = dup_str(wid);
    if (!f->webhook) {
        json_decref(doc);
        return -1;
    }

    f->version = 0;
    json_t *ver = meta ? json_object_get(meta, "version") : NULL;
    if (json_is_string(ver)) {
        const char *s = json_string_value(ver);
        if (s[0] == '2' && (s[1] == '\0' || s[1] == '.'))
            f->version = 2;
    } else if (json_is_object(doc) && !ver) {
        json_t *v = json_object_get(doc, "v");
        json_t *mv = meta ? json_object_get(meta, "v") : NULL;
        if ((json_is_integer(v) && json_integer_value(v) == 1) ||
            (json_is_integer(mv) && json_integer_value(mv) == 1))
            f->version = 1;
    }
    if (f->version == 0) {
        json_decref(doc);
        return 0;
    }
    f->doc = doc;
    f->has_reals = has_reals(doc);
    return 0;
}

/* Dump compact. jansson prints reals with 17 significant digits by default, which turns
 * -33.5135078 into -33.513507800000002; use the smallest precision that still reads back
 * as the same document. */
static char *dump_faithful(const json_t *doc)
{
    if (!has_reals(doc))
        return json_dumps(doc, JSON_COMPACT);
    for (size_t p = 15; p < 17; p++) {
        char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(p));
        if (!s)
            return NULL;
        json_t *back = json_loads(s, 0, NULL);
        int same = back && json_equal(back, doc);
        json_decref(back);
        if (same)
            return s;
        free(s);
    }
    return json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
}

/* The body of attempt k (1-based): a new string, or NULL for "send f->body unchanged".
 * *oom is set when the rewrite ran out of memory. */
static char *body_for_attempt(send_file *f, int k, int *oom)
{
    *oom = 0;
    if (!f->doc)
        return NULL;
    int rc;
    if (f->version == 1)
        rc = json_object_set_new(f->doc, "retry", json_integer(k - 1));
    else
        rc = json_object_set_new(json_object_get(f->doc, "meta"), "attempt", json_integer(k));
    char *s = rc == 0 ? (f->has_reals ? dump_faithful(f->doc)
                                      : json_dumps(f->doc, JSON_COMPACT))
                      : NULL;
    if (!s)
        *oom = 1;
    return s;
}

/* ---- ban counters ---- */

static ban_entry *ban_find(ban_table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].id, id) == 0)
            return &t->v[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        ban_entry *nv = realloc(t->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        t->v = nv;
        t->cap = cap;
    }
    ban_entry *e = &t->v[t->n];
    e->id = dup_str(id);
    if (!e->id)
        return NULL;
    e->counter = 0;
    e->ban_until = -1.0;
    t->n++;
    return e;
}

/* ---- HTTP ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *user)
{
    (void)ptr;
    (void)user;
    return size * nmemb;
}

static void deliver(const send_opts *o, const char *body, size_t len, attempt_result *r)
{
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    r->status = 0;
    r->ok = 0;
    r->ms = 0.0;
    r->error[0] = '\0';

    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *tmp;
    if (!h) {
        snprintf(r->error, sizeof r->error, "curl_easy_init failed");
        return;
    }
    /* "Expect:" removes curl's Expect: 100-continue, which Pipedrive does not send. */
    static const char *const headers[] = {"Content-Type: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        tmp = curl_slist_append(hdrs, headers[i]);
        if (!tmp) {
            snprintf(r->error, sizeof r->error, "out of memory");
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(h);
            return;
        }
        hdrs = tmp;
    }

    curl_easy_setopt(h, CURLOPT_URL, o->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "Pipedrive Webhooks");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (o->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, o->password ? o->password : "");
    }

    double t0 = now_s();
    CURLcode rc = curl_easy_perform(h);
    r->ms = (now_s() - t0) * 1000.0;

    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        r->status = code;
        if (code >= 200 && code <= 299) {
            if (r->ms <= (double)o->timeout_ms)
                r->ok = 1;
            else
                snprintf(r->error, sizeof r->error, "answered after the %g s timeout",
                         o->timeout_s);
        }
    } else {
        snprintf(r->error, sizeof r->error, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

/* ---- output lines ---- */

static void print_attempt(const send_opts *o, const send_file *f, int k,
                          const attempt_result *r)
{
    if (o->quiet)
        return;
    json_t *line = json_object();
    if (!line) {
        print_line(NULL);
        return;
    }
    json_object_set_new(line, "file", path_json(f->path));
    json_object_set_new(line, "attempt", json_integer(k));
    json_object_set_new(line, "status", r->status ? json_integer(r->status) : json_null());
    json_object_set_new(line, "ok", json_boolean(r->ok));
    json_object_set_new(line, "ms", json_integer((json_int_t)(r->ms + 0.5)));
    json_object_set_new(line, "error", r->error[0] ? json_string(r->error) : json_null());
    print_line(line);
}

static void print_ban(const send_opts *o, const send_file *f, double seconds)
{
    if (o->quiet)
        return;
    json_t *line = json_object();
    if (!line) {
        print_line(NULL);
        return;
    }
    json_object_set_new(line, "ban", json_true());
    json_object_set_new(line, "webhook_id", json_string(f->webhook));
    json_object_set_new(line, "file", path_json(f->path));
    json_object_set_new(line, "ban_seconds", json_real(seconds));
    print_line(line);
}

static void print_lost(const send_opts *o, const send_file *f, int k)
{
    if (o->quiet)
        return;
    json_t *line = json_object();
    if (!line) {
        print_line(NULL);
        return;
    }
    json_object_set_new(line, "lost_during_ban", json_true());
    json_object_set_new(line, "file", path_json(f->path));
    json_object_set_new(line, "webhook_id", json_string(f->webhook));
    json_object_set_new(line, "next_attempt", json_integer(k));
    print_line(line);
}

/* ---- options ---- */

typedef struct send_parse {
    send_opts *o;
    const char *user, *password;
} send_parse;

static int apply(const pdw_opt *opt, const pdw_opt_value *v, void *user)
{
    send_parse *p = user;
    switch (opt->id) {
    case D_USER: p->user = v->text; break;
    case D_PASSWORD: p->password = v->text; break;
    case D_TIMEOUT: p->o->timeout_s = v->real; break;
    case D_TIME_SCALE: p->o->scale = v->real; break;
    case D_NO_RETRY: p->o->retry = 0; break;
    case D_QUIET: p->o->quiet = 1; break;
    default: return pdw_opt_error(&send_cmd, opt, v, "not handled");
    }
    return 0;
}

/* pos: room for argc positional arguments (URL FILE...), filled; *npos their number. */
static int parse_options(int argc, char **argv, send_opts *o, char **pos, int *npos)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = SEND_DEFAULT_TIMEOUT;
    o->scale = 1.0;
    o->retry = 1;
    send_parse p = { o, NULL, NULL };
    int rc = pdw_opt_parse(&send_cmd, argc, argv, 1, apply, &p, pos, npos);
    if (rc != 0)
        return rc;
    const char *user = p.user, *password = p.password;
    if (*npos < 2) {
        fprintf(stderr, "usage: pdwebhook send [options] URL FILE...   (see --help)\n");
        return -1;
    }
    o->url = pos[0];
    if (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0) {
        fprintf(stderr, "pdwebhook send: URL '%s': must start with http:// or https://\n",
                o->url);
        return -1;
    }

    if (!user) {
        const char *e = getenv("PDWEBHOOK_USER");
        if (e && *e)
            user = e;
    }
    if (!password) {
        const char *e = getenv("PDWEBHOOK_PASSWORD");
        if (e && *e)
            password = e;
    }
    if (password && !user) {
        fprintf(stderr, "pdwebhook send: a password without a user (--user or "
                        "PDWEBHOOK_USER)\n");
        return -1;
    }
    if (user && strchr(user, ':')) {
        fprintf(stderr, "pdwebhook send: --user: a Basic auth user cannot contain ':'\n");
        return -1;
    }
    o->user = user;
    o->password = password;
    o->timeout_ms = (long)(o->timeout_s * 1000.0 + 0.5);
    if (o->timeout_ms < 1)
        o->timeout_ms = 1;
    return 0;
}

/* ---- the command ---- */

static void free_files(send_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].body);
        json_decref(files[i].doc);
        free(files[i].webhook);
    }
    free(files);
}

static void free_bans(ban_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].id);
    free(t->v);
}

int pdw_cmd_send(int argc, char **argv)
{
    send_opts o;
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = argc;
    if (!pos) {
        fprintf(stderr, "pdwebhook send: out of memory\n");
        return 2;
    }
    int prc = parse_options(argc, argv, &o, pos, &npos);
    if (prc != 0) {
        free(pos);
        return prc > 0 ? 0 : 2;
    }

    /* Read and classify every file first: an unreadable file stops before anything is sent. */
    size_t nfiles = (size_t)(npos - 1);
    send_file *files = calloc(nfiles, sizeof *files);
    if (!files) {
        fprintf(stderr, "pdwebhook send: out of memory\n");
        free(pos);
        return 2;
    }
    for (size_t i = 0; i < nfiles; i++)
        files[i].path = pos[1 + i]; /* argv's */
    free(pos);
    int stdin_used = 0;
    for (size_t i = 0; i < nfiles; i++) {
        send_file *f = &files[i];
        if (strcmp(f->path, "-") == 0 && stdin_used++) {
            fprintf(stderr, "pdwebhook send: '-' (stdin) can be given once\n");
            free_files(files, nfiles);
            return 2;
        }
        f->body = pdw_cli_read_file(f->path, &f->len);
        if (!f->body) {
            fprintf(stderr, "pdwebhook send: cannot read %s: %s\n", f->path, strerror(errno));
            free_files(files, nfiles);
            return 2;
        }
        if (classify(f) != 0) {
            fprintf(stderr, "pdwebhook send: out of memory\n");
            free_files(files, nfiles);
            return 2;
        }
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "pdwebhook send: curl_global_init failed\n");
        free_files(files, nfiles);
        return 2;
    }

    ban_table bans = {NULL, 0, 0};
    long delivered = 0, retried = 0, failed_first = 0, failed = 0, lost = 0;
    int would_be_banned = 0, oom = 0;
    int max_attempts = o.retry ? SEND_MAX_ATTEMPTS : 1;
    double ban_window = SEND_BAN_SECONDS * o.scale;

    for (size_t i = 0; i < nfiles && !oom; i++) {
        send_file *f = &files[i];
        ban_entry *ban = ban_find(&bans, f->webhook);
        if (!ban) {
            oom = 1;
            break;
        }
        int ok = 0, sent = 0, was_lost = 0;
        for (int k = 1; k <= max_attempts; k++) {
            if (k > 1)
                sleep_s(retry_delay_s[k - 2] * o.scale);
            if (now_s() < ban->ban_until) {
                /* Pipedrive drops what falls in a ban: this event is gone. */
                print_lost(&o, f, k);
                was_lost = 1;
                break;
            }
            char *rewritten = body_for_attempt(f, k, &oom);
            if (oom)
                break;
            attempt_result r;
            deliver(&o, rewritten ? rewritten : f->body,
                    rewritten ? strlen(rewritten) : f->len, &r);
            free(rewritten);
            sent++;
            print_attempt(&o, f, k, &r);
            if (r.ok) {
                ok = 1;
                break;
            }
            if (k == 1) {
                failed_first++;
                if (++ban->counter >= SEND_BAN_LIMIT) {
                    would_be_banned = 1;
                    ban->counter = 0;
                    ban->ban_until = now_s() + ban_window;
                    print_ban(&o, f, ban_window);
                }
            }
        }
        if (ok)
            delivered++;
        else
            failed++;
        if (sent > 1)
            retried++;
        if (was_lost)
            lost++;
    }

    int status = 0;
    if (oom) {
        fprintf(stderr, "pdwebhook send: out of memory\n");
        status = 2;
    } else {
        json_t *counters = json_object();
        json_t *report = json_object();
        if (counters && report) {
            for (size_t i = 0; i < bans.n; i++)
                json_object_set_new(counters, bans.v[i].id, json_integer(bans.v[i].counter));
            json_object_set_new(report, "report", json_true());
            json_object_set_new(report, "files", json_integer((json_int_t)nfiles));
            json_object_set_new(report, "delivered", json_integer(delivered));
            json_object_set_new(report, "retried", json_integer(retried));
            json_object_set_new(report, "failed_first_attempts", json_integer(failed_first));
            json_object_set_new(report, "failed", json_integer(failed));
            json_object_set_new(report, "lost_during_ban", json_integer(lost));
            json_object_set_new(report, "would_be_banned", json_boolean(would_be_banned));
            json_object_set_new(report, "ban_counters", counters);
            counters = NULL;
            print_line(report);
            report = NULL;
        } else {
            fprintf(stderr, "pdwebhook send: out of memory\n");
        }
        json_decref(counters);
        json_decref(report);
        status = failed == 0 ? 0 : 1;
    }
    free_bans(&bans);
    free_files(files, nfiles);
    curl_global_cleanup();
    return status;
}
