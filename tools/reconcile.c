/* pdwebhook reconcile: what changed in Pipedrive in a window, read from its API and handed
 * on as reconciled events (into a stopped serve's spool, or as JSON lines). Which endpoint
 * serves which object, and why, is in docs/GAP-FREE.md. */
#include <errno.h>
#include <pdwebhook/durable.h>
#include <pdwebhook/reconcile.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "reconcile.h"

#define PAGE_LIMIT 500

static const char *prog = "pdwebhook reconcile";

/* ---- objects and their endpoints ---------------------------------------------------- */

typedef enum source { SRC_V2, SRC_RECENTS, SRC_LEADS } source;

typedef struct endpoint {
    const char *object;
    source src;
    const char *path; /* v2: the collection */
} endpoint;

static const endpoint endpoints[] = {
    { "deal", SRC_V2, "deals" },
    { "person", SRC_V2, "persons" },
    { "organization", SRC_V2, "organizations" },
    { "activity", SRC_V2, "activities" },
    { "product", SRC_V2, "products" },
    { "lead", SRC_LEADS, "leads" },
    { "note", SRC_RECENTS, NULL },
    { "pipeline", SRC_RECENTS, NULL },
    { "stage", SRC_RECENTS, NULL },
    { "user", SRC_RECENTS, NULL },
    { "activityType", SRC_RECENTS, NULL },
};

static const endpoint *find_endpoint(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
        if (strlen(endpoints[i].object) == n && strncmp(endpoints[i].object, name, n) == 0)
            return &endpoints[i];
    return NULL;
}

int reconcile_check_objects(const char *p, const char *objects)
{
    const char *s = objects;
    if (!s || !*s) {
        fprintf(stderr, "%s: --objects is empty\n", p);
        return -1;
    }
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n && !find_endpoint(s, n)) {
            fprintf(stderr, "%s: '%.*s' cannot be reconciled (known: %s)\n", p, (int)n, s,
                    RECONCILE_ALL_OBJECTS ",activityType");
            return -1;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

/* ---- times -------------------------------------------------------------------------- */

int64_t reconcile_parse_time(const char *s)
{
    /* the library's parser, through a record: one parser for every time we read */
    json_t *rec = json_pack("{s:i,s:s}", "id", 1, "update_time", s ? s : "");
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return -1;
    int64_t t = pdw_reconcile_record_time("deal", text, strlen(text));
    free(text);
    return t < 0 ? -1 : t;
}

void reconcile_format_time(int64_t ms, char sep, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02d%c%02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, sep, tm.tm_hour, tm.tm_min, tm.tm_sec, sep == 'T' ? "Z" : "");
}

/* ---- one record --------------------------------------------------------------------- */

typedef struct run {
    pdapi *c;
    int64_t from_ms, to_ms;
    reconcile_emit_cb emit;
    void *user;
    reconcile_counts *n;
    char *err;
    size_t errcap;
} run;

/* 0 go on, 1 the record is older than the window (for the newest-first lead listing),
 * -1 failed. */
static int one_record(run *r, const char *object, json_t *rec, const char *src)
{
    if (json_is_array(rec)) /* users in some v1 answers */
        rec = json_array_get(rec, 0);
    if (!json_is_object(rec))
        return 0;
    r->n->read++;
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text) {
        snprintf(r->err, r->errcap, "out of memory");
        return -1;
    }
    char *body = NULL;
    size_t len = 0;
    int rc = pdw_reconcile_body(&body, &len, object, text, strlen(text), r->from_ms, r->to_ms,
                                src, NULL);
    int older = 0;
    if (rc == PDW_RECONCILE_OUTSIDE) {
        r->n->outside++;
        older = pdw_reconcile_record_time(object, text, strlen(text)) < r->from_ms;
    }
    free(text);
    if (rc == PDW_RECONCILE_OUTSIDE)
        return older;
    if (rc < 0) {
        r->n->skipped++;
        return 0;
    }
    int e = r->emit(body, len, r->user);
    pdw_free(body);
    if (e < 0) {
        snprintf(r->err, r->errcap, "handing a reconciled %s on failed (%s)", object,
                 pdw_strerror(e));
        return -1;
    }
    if (e > 0)
        r->n->handed++;
    else
        r->n->duplicates++;
    return 0;
}

static void progress_line(int on, const char *what, unsigned long page, const reconcile_counts *n)
{
    if (on)
        fprintf(stderr, "%s: %s: page %lu read (%lu records so far, %lu handed on)\n", prog,
                what, page, n->read, n->handed);
}

/* ---- the three kinds of endpoint ---------------------------------------------------- */

/* GET /api/v2/<collection>?updated_since=&updated_until=&limit=&cursor= (cursor paging) */
static int read_v2(run *r, const endpoint *e, int progress)
{
    char since[40], until[40], cursor[512] = "", src[64];
    reconcile_format_time(r->from_ms, 'T', since, sizeof since);
    /* updated_until is whole seconds: round the end up, the library cuts it exactly */
    reconcile_format_time(r->to_ms + 999, 'T', until, sizeof until);
    snprintf(src, sizeof src, "/api/v2/%s", e->path);
    for (unsigned long page = 1;; page++) {
        char url[4096];
        snprintf(url, sizeof url, "%s/%s?limit=%d&updated_since=", r->c->base_v2, e->path,
                 PAGE_LIMIT);
        int bad = pdapi_url_add(url, sizeof url, since);
        bad = bad || pdapi_url_raw(url, sizeof url, "&updated_until=");
        bad = bad || pdapi_url_add(url, sizeof url, until);
        if (cursor[0]) {
            bad = bad || pdapi_url_raw(url, sizeof url, "&cursor=");
            bad = bad || pdapi_url_add(url, sizeof url, cursor);
        }
        if (bad) {
            snprintf(r->err, r->errcap, "URL too long");
            return -1;
        }
        json_t *doc = pdapi_get(r->c, url, r->err, r->errcap);
        if (!doc)
            return -1;
        json_t *data = json_object_get(doc, "data"), *rec;
        size_t i;
        int rc = 0;
        json_array_foreach(data, i, rec) {
            if ((rc = one_record(r, e->object, rec, src)) < 0)
                break;
        }
        const char *next = json_string_value(
            json_object_get(json_object_get(doc, "additional_data"), "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(doc);
        if (rc < 0)
            return -1;
        progress_line(progress && (cursor[0] || page > 1), e->object, page, r->n);
        if (!cursor[0])
            return 0;
    }
}

/* GET /v1/recents?since_timestamp=&items=&start=&limit= (offset paging), for every object
 * the v2 endpoints do not serve, in one stream. */
static int read_recents(run *r, const char *items, int progress)
{
    char since[40];
    reconcile_format_time(r->from_ms, ' ', since, sizeof since);
    long start = 0;
    for (unsigned long page = 1;; page++) {
        char url[4096];
        snprintf(url, sizeof url, "%s/recents?limit=%d&start=%ld&items=", r->c->base,
                 PAGE_LIMIT, start);
        int bad = pdapi_url_add(url, sizeof url, items);
        bad = bad || pdapi_url_raw(url, sizeof url, "&since_timestamp=");
        if (bad || pdapi_url_add(url, sizeof url, since) < 0) {
            snprintf(r->err, r->errcap, "URL too long");
            return -1;
        }
        json_t *doc = pdapi_get(r->c, url, r->err, r->errcap);
        if (!doc)
            return -1;
        json_t *data = json_object_get(doc, "data"), *it;
        size_t i;
        int rc = 0;
        json_array_foreach(data, i, it) {
            const char *item = json_string_value(json_object_get(it, "item"));
            size_t il = item ? strlen(item) : 0;
            const endpoint *e = item ? find_endpoint(item, il) : NULL;
            if (!e || e->src != SRC_RECENTS)
                continue; /* not asked for, or read elsewhere */
            if ((rc = one_record(r, e->object, json_object_get(it, "data"), "/v1/recents")) < 0)
                break;
        }
        json_t *pg = json_object_get(json_object_get(doc, "additional_data"), "pagination");
        int more = json_is_true(json_object_get(pg, "more_items_in_collection"));
        json_t *ns = json_object_get(pg, "next_start");
        long next = json_is_integer(ns) ? (long)json_integer_value(ns)
                                        : start + (long)json_array_size(data);
        json_decref(doc);
        if (rc < 0)
            return -1;
        progress_line(progress && (more || page > 1), "recents", page, r->n);
        if (!more || next <= start)
            return 0;
        start = next;
    }
}

/* GET /v1/leads?sort=update_time DESC&start=&limit=: leads are in neither recents nor a
 * v2 list with updated_since; newest first, until one is older than the window. */
static int read_leads(run *r, int progress)
{
    long start = 0;
    for (unsigned long page = 1;; page++) {
        char url[4096];
        snprintf(url, sizeof url, "%s/leads?sort=update_time%%20DESC&limit=%d&start=%ld",
                 r->c->base, PAGE_LIMIT, start);
        json_t *doc = pdapi_get(r->c, url, r->err, r->errcap);
        if (!doc)
            return -1;
        json_t *data = json_object_get(doc, "data"), *rec;
        size_t i;
        int rc = 0;
        json_array_foreach(data, i, rec) {
            if ((rc = one_record(r, "lead", rec, "/v1/leads")) != 0)
                break;
        }
        json_t *pg = json_object_get(json_object_get(doc, "additional_data"), "pagination");
        int more = json_is_true(json_object_get(pg, "more_items_in_collection"));
        json_t *ns = json_object_get(pg, "next_start");
        long next = json_is_integer(ns) ? (long)json_integer_value(ns)
                                        : start + (long)json_array_size(data);
        json_decref(doc);
        if (rc < 0)
            return -1;
        progress_line(progress && (more || page > 1), "lead", page, r->n);
        if (rc == 1 || !more || next <= start)
            return 0;
        start = next;
    }
}

int reconcile_window(pdapi *c, const char *objects, int64_t from_ms, int64_t to_ms,
                     reconcile_emit_cb emit, void *user, reconcile_counts *n, int progress,
                     char *err, size_t errcap)
{
    run r = { c, from_ms, to_ms, emit, user, n, err, errcap };
    char items[512] = "";
    int want_leads = 0;
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint *e = &endpoints[i];
        size_t ol = strlen(e->object);
        int wanted = 0;
        for (const char *s = objects; *s;) {
            size_t k = strcspn(s, ",");
            wanted = wanted || (k == ol && strncmp(s, e->object, k) == 0);
            s += k;
            if (*s == ',')
                s++;
        }
        if (!wanted)
            continue;
        if (e->src == SRC_V2 && read_v2(&r, e, progress) < 0)
            return -1;
        if (e->src == SRC_LEADS)
            want_leads = 1;
        if (e->src == SRC_RECENTS && strlen(items) + ol + 2 < sizeof items)
            snprintf(items + strlen(items), sizeof items - strlen(items), "%s%s",
                     items[0] ? "," : "", e->object);
    }
    if (want_leads && read_leads(&r, progress) < 0)
        return -1;
    if (items[0] && read_recents(&r, items, progress) < 0)
        return -1;
    return 0;
}

/* ---- the command -------------------------------------------------------------------- */

typedef struct out_file {
    FILE *f;
    json_t *seen; /* update keys of the reconciled lines the file holds */
} out_file;

/* The update key of an --output line's body ("body"), or 0. */
static int line_key(json_t *line, char *key, size_t cap)
{
    json_t *b = json_object_get(line, "body");
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    if (!text)
        return 0;
    pdw_event *ev = NULL;
    int n = pdw_event_parse(&ev, text, strlen(text), NULL, NULL) == 0
                ? pdw_event_update_key(ev, key, cap) : -1;
    pdw_event_free(ev);
    free(text);
    return n > 0;
}

static int emit_output(const char *body, size_t len, void *user)
{
    out_file *o = user;
    pdw_event *ev = NULL;
    int rc = pdw_event_parse(&ev, body, len, NULL, NULL);
    if (rc < 0)
        return rc;
    char key[PDW_DELIVERY_KEY_MAX];
    if (pdw_event_update_key(ev, key, sizeof key) > 0 && o->seen) {
        if (json_object_get(o->seen, key)) {
            pdw_event_free(ev);
            return 0;
        }
        json_object_set_new(o->seen, key, json_true());
    }
    json_t *line = pdw_cli_event_json(ev, 1);
    pdw_event_free(ev);
    if (!line)
        return PDW_ENOMEM;
    /* one write per line, flushed: a kill leaves whole lines (a cut one is cut back at
     * the next start, load_seen()) */
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!text)
        return PDW_ENOMEM;
    size_t tl = strlen(text);
    text[tl] = '\n'; /* replaces the NUL: written with its length */
    rc = fwrite(text, 1, tl + 1, o->f) == tl + 1 && fflush(o->f) == 0 ? 1 : PDW_EIO;
    free(text);
    return rc;
}

static int emit_spool(const char *body, size_t len, void *user)
{
    return pdw_intake_reconcile(user, body, len, NULL);
}

static volatile int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

enum { R_FROM = 1, R_TO, R_OBJECTS, R_SPOOL, R_OUTPUT, R_API_TOKEN, R_OAUTH_TOKEN, R_BASE_URL,
       R_MAX_WAIT, R_QUIET };

static const pdw_opt rec_opts[] = {
    { R_FROM, "from", 0, "TIME", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "window start, RFC 3339 (2026-01-01T10:00:00Z), inclusive", 0 },
    { R_TO, "to", 0, "TIME", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "window end, exclusive (default: now)", 0 },
    { R_OBJECTS, "objects", 0, "LIST", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "comma-separated (default " RECONCILE_ALL_OBJECTS ")", 0 },
    { R_SPOOL, "spool", 0, "DIR", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "the journal of a stopped serve", 0 },
    { R_OUTPUT, "output", 0, "FILE", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "append JSON lines (as serve --output); - for stdout", 0 },
    { R_API_TOKEN, "api-token", 0, "T", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET,
      "API token (default $PIPEDRIVE_API_TOKEN)", 0 },
    { R_OAUTH_TOKEN, "oauth-token", 0, "T", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET,
      "OAuth access token (default $PIPEDRIVE_OAUTH_TOKEN)", 0 },
    { R_BASE_URL, "base-url", 0, "URL", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "API base (default $PIPEDRIVE_BASE_URL, else " PDAPI_DEFAULT_BASE_URL ";\n"
      "the v2 endpoints are beside it, at /api/v2)", 0 },
    { R_MAX_WAIT, "max-wait", 0, "S", PDW_OPT_SECONDS, 1, 3600, 0, 0, 0,
      "longest Retry-After waited for on a 429 (default 120)", 0 },
    { R_QUIET, "quiet", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "no progress on stderr", 0 },
};

static const pdw_opt_cmd rec_cmd = {
    "pdwebhook reconcile",
    "usage: pdwebhook reconcile --from TIME [--to TIME] [--objects LIST]\n"
    "                           (--spool DIR | --output FILE) [options]\n"
    "\n"
    "Read what changed in Pipedrive between --from and --to from its API and hand each\n"
    "changed record on as a reconciled event (\"reconciled\":true): into the spool of a\n"
    "stopped `pdwebhook serve --spool DIR` (its worker hands them to --output, --exec or\n"
    "the router at its next start), or as JSON lines into FILE. Records already\n"
    "delivered or reconciled are not handed on again (docs/GAP-FREE.md).\n",
    rec_opts, sizeof rec_opts / sizeof rec_opts[0], NULL,
};

typedef struct rec_args {
    const char *from, *to, *objects, *spool, *output, *base_url, *api_token, *oauth_token;
    long max_wait;
    int quiet;
} rec_args;

static int apply(const pdw_opt *o, const pdw_opt_value *v, void *user)
{
    rec_args *a = user;
    switch (o->id) {
    case R_FROM: a->from = v->text; break;
    case R_TO: a->to = v->text; break;
    case R_OBJECTS: a->objects = v->text; break;
    case R_SPOOL: a->spool = v->text; break;
    case R_OUTPUT: a->output = v->text; break;
    case R_API_TOKEN: a->api_token = v->text; break;
    case R_OAUTH_TOKEN: a->oauth_token = v->text; break;
    case R_BASE_URL: a->base_url = v->text; break;
    case R_MAX_WAIT: a->max_wait = (long)v->num; break;
    case R_QUIET: a->quiet = 1; break;
    default: return pdw_opt_error(&rec_cmd, o, v, "not handled");
    }
    return 0;
}

static int bad_usage(const char *a, const char *b)
{
    fprintf(stderr, "%s: %s%s%s\n(pdwebhook reconcile --help lists the options)\n", prog, a,
            *b ? " " : "", b);
    return 2;
}

/* Read FILE's lines (if it exists) into the set of update keys. */
static int load_seen(const char *path, json_t *seen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *linebuf = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t whole = 0, size = 0; /* the bytes of complete lines; all of them */
    while ((n = getline(&linebuf, &cap, f)) > 0) {
        size += n;
        if (linebuf[n - 1] != '\n')
            break; /* a line cut by a kill: cut back below */
        whole = size;
        json_t *line = json_loadb(linebuf, (size_t)n, 0, NULL);
        char key[PDW_DELIVERY_KEY_MAX];
        if (line && line_key(line, key, sizeof key))
            json_object_set_new(seen, key, json_true());
        json_decref(line);
    }
    free(linebuf);
    fclose(f);
    return size > whole ? truncate(path, whole) : 0;
}

int pdw_cmd_reconcile(int argc, char **argv)
{
    rec_args ra = { NULL, NULL, RECONCILE_ALL_OBJECTS, NULL, NULL, getenv("PIPEDRIVE_BASE_URL"),
                    getenv("PIPEDRIVE_API_TOKEN"), getenv("PIPEDRIVE_OAUTH_TOKEN"), 120, 0 };
    int prc = pdw_opt_parse(&rec_cmd, argc, argv, 1, apply, &ra, NULL, NULL);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    const char *from = ra.from, *to = ra.to, *objects = ra.objects, *spool = ra.spool;
    const char *output = ra.output, *base_url = ra.base_url, *api_token = ra.api_token;
    const char *oauth_token = ra.oauth_token;
    long max_wait = ra.max_wait;
    int quiet = ra.quiet;
    if (!from)
        return bad_usage("--from is required", "");
    if (!spool == !output)
        return bad_usage("give one of --spool DIR and --output FILE", "");
    int64_t from_ms = reconcile_parse_time(from);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t to_ms = to ? reconcile_parse_time(to)
                       : (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (from_ms < 0 || to_ms < 0)
        return bad_usage("--from and --to take RFC 3339 times, e.g. 2026-01-01T10:00:00Z", "");
    if (to_ms <= from_ms)
        return bad_usage("--to must be after --from", "");
    if (reconcile_check_objects(prog, objects) < 0)
        return 2;
    pdapi c;
    if (pdapi_init(&c, prog, base_url, api_token, oauth_token) < 0)
        return 2;
    c.max_wait_s = (unsigned)max_wait;
    c.stop = &g_stop;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int status = 1;
    out_file of = { NULL, NULL };
    pdw_intake *in = NULL;
    reconcile_emit_cb emit;
    void *user;
    if (output) {
        of.f = strcmp(output, "-") == 0 ? stdout : NULL;
        if (!of.f) {
            of.seen = json_object();
            if (!of.seen || load_seen(output, of.seen) < 0) {
                fprintf(stderr, "%s: cannot read %s: %s\n", prog, output, strerror(errno));
                goto done;
            }
            of.f = fopen(output, "a");
            if (!of.f) {
                fprintf(stderr, "%s: cannot open %s: %s\n", prog, output, strerror(errno));
                goto done;
            }
        }
        emit = emit_output;
        user = &of;
    } else {
        /* the receiver only holds the dedup store here: it takes no request */
        pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
        ro.insecure_no_auth = 1;
        ro.dedup_ttl_ms = 400ull * 24 * 3600 * 1000; /* as long as the journal keeps them */
        pdw_intake_options io = PDW_INTAKE_OPTIONS_INIT;
        io.receiver = &ro;
        io.spool_dir = spool;
        pdw_error e;
        if (pdw_intake_new(&in, &io, &e) < 0) {
            fprintf(stderr, "%s: %s: %s%s\n", prog, spool, e.message,
                    e.code == PDW_ELOCKED ? " (stop pdwebhook serve first, or use its "
                                            "--reconcile)" : "");
            goto done;
        }
        emit = emit_spool;
        user = in;
    }
    char a[40], b[40], err[1024] = "";
    reconcile_format_time(from_ms, 'T', a, sizeof a);
    reconcile_format_time(to_ms, 'T', b, sizeof b);
    if (!quiet)
        fprintf(stderr, "%s: reading what changed from %s to %s: %s\n", prog, a, b, objects);
    reconcile_counts n = { 0, 0, 0, 0, 0 };
    int rc = reconcile_window(&c, objects, from_ms, to_ms, emit, user, &n, !quiet, err,
                              sizeof err);
    if (of.f && (fflush(of.f) != 0 || (of.f != stdout && fsync(fileno(of.f)) != 0))) {
        fprintf(stderr, "%s: writing %s: %s\n", prog, output, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", prog, err);
    fprintf(stderr, "%s: %s: %lu records read, %lu handed on, %lu already delivered or "
                    "reconciled, %lu changed outside the window, %lu unusable; %lu API "
                    "requests, %lu rate-limited\n", prog, rc < 0 ? "stopped" : "done",
            n.read, n.handed, n.duplicates, n.outside, n.skipped, c.requests, c.throttled);
    status = rc < 0 ? 1 : 0;
done:
    pdapi_fini(&c);
    if (of.f && of.f != stdout)
        fclose(of.f);
    json_decref(of.seen);
    pdw_intake_free(in);
    return status;
}
