/* pdwebhook serve: a ready Pipedrive endpoint on libmicrohttpd.
 *
 * Request threads run the library's pipeline (auth, parse, dedup) and, through the accept
 * hook, store each accepted delivery (in --spool DIR when given: written and fsync'ed
 * before the 200) and queue it. One worker thread hands queued events to --output and
 * --exec, so a slow or failing handler never delays an answer to Pipedrive. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define QUEUE_MAX 100000
#define MAX_CREDENTIALS 64

/* ---- configuration ----------------------------------------------------------------- */

typedef struct config {
    const char *listen;
    const char *path;
    const char *output;
    const char *exec;
    const char *spool;
    const char *tls_cert, *tls_key;
    const char *token;
    size_t max_body;
    int insecure;
    pdw_credential creds[MAX_CREDENTIALS];
    size_t ncreds;
    char *cred_storage[MAX_CREDENTIALS]; /* lines read from --credentials, or generated */
} config;

/* ---- the queue between request threads and the worker ------------------------------ */

typedef struct job {
    struct job *next;
    char *body;
    size_t len;
    char *spool_file; /* NULL without --spool */
} job;

/* Counters for /healthz; reasons indexed by -code. */
#define NREASONS 64
typedef struct stats {
    atomic_ullong received, accepted, duplicates, rejected, handled, handler_failures;
    atomic_ullong spool_failures, in_flight;
    atomic_ullong by_reason[NREASONS];
} stats;

typedef struct server {
    config cfg;
    pdw_receiver *rcv;
    struct MHD_Daemon *daemon;
    FILE *out;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail;
    size_t queued;
    int stopping;
    unsigned long long spool_seq;
    stats stats;
} server;


static void logf_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void logf_(const char *fmt, ...)
{
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fprintf(stderr, "%s.%03ldZ ", ts, now.tv_nsec / 1000000);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* ---- spool (a plain directory until the durable journal lands) -------------------- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write body to DIR/<seq>.json durably: temp file, fsync, rename, fsync the directory. */
static char *spool_write(server *s, const char *body, size_t len)
{
    char tmp[4096], final[4096];
    pthread_mutex_lock(&s->lock);
    unsigned long long seq = ++s->spool_seq;
    pthread_mutex_unlock(&s->lock);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%020llu", s->cfg.spool, seq);
    snprintf(final, sizeof final, "%s/%020llu.json", s->cfg.spool, seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, body + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    int ok = off == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, final) != 0 || fsync_dir(s->cfg.spool) != 0) {
        unlink(tmp);
        return NULL;
    }
    return strdup(final);
}

/* ---- the worker: --output and --exec ---------------------------------------------- */

static int run_exec(const char *cmd, const char *line, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* handler output goes to the log */
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = { "sh", "-c", (char *)(uintptr_t)cmd, NULL };
    extern char **environ;
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    if (rc != 0) {
        close(fds[1]);
        return -1;
    }
    /* The handler may not read its stdin; a closed pipe must not kill us. */
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fds[1], line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fds[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The one handler the program registers: every event goes to --output and --exec. */
static int sink_event(const pdw_event *ev, void *user)
{
    server *s = user;
    json_t *o = pdw_cli_event_json(ev, 1);
    if (!o)
        return -1;
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return -1;
    size_t len = strlen(line);
    int rc = 0;
    if (s->out) {
        if (fprintf(s->out, "%s\n", line) < 0 || fflush(s->out) != 0)
            rc = -1;
    }
    if (s->cfg.exec) {
        line[len] = '\n';
        int st = run_exec(s->cfg.exec, line, len + 1);
        line[len] = '\0';
        if (st != 0) {
            logf_("exec failed (exit %d) for %s %s", st, pdw_event_name(ev),
                  pdw_event_delivery_key(ev));
            rc = st ? st : -1;
        }
    }
    free(line);
    return rc;
}

static void *worker_main(void *arg)
{
    server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        job *j = s->head;
        if (!j) { /* stopping and drained */
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        pthread_mutex_unlock(&s->lock);

        pdw_dispatch_result res;
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw_receiver_dispatch_body(s->rcv, j->body, j->len, &res, &err);
        if (rc == 0) {
            atomic_fetch_add(&s->stats.handled, 1);
            if (j->spool_file)
                unlink(j->spool_file);
        } else {
            atomic_fetch_add(&s->stats.handler_failures, 1);
            if (j->spool_file) {
                /* keep it for a later look (and the dead-letter tooling to come) */
                char failed[4200];
                snprintf(failed, sizeof failed, "%s.failed", j->spool_file);
                rename(j->spool_file, failed);
            }
        }
        free(j->body);
        free(j->spool_file);
        free(j);
    }
}

static int enqueue(server *s, const char *body, size_t len, char *spool_file)
{
    job *j = calloc(1, sizeof *j);
    char *copy = malloc(len ? len : 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        return -1;
    }
    memcpy(copy, body, len);
    j->body = copy;
    j->len = len;
    j->spool_file = spool_file;
    pthread_mutex_lock(&s->lock);
    if (s->queued >= QUEUE_MAX) {
        pthread_mutex_unlock(&s->lock);
        free(copy);
        free(j);
        return -1;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* The library's accept hook: store (when spooling), queue, and only then answer 200. */
static int accept_event(const pdw_event *ev, void *user)
{
    server *s = user;
    size_t len;
    const char *body = pdw_event_body(ev, &len);
    char *file = NULL;
    if (s->cfg.spool && !(file = spool_write(s, body, len))) {
        logf_("spool write failed in %s: %s", s->cfg.spool, strerror(errno));
        atomic_fetch_add(&s->stats.spool_failures, 1);
        return PDW_ESTORE;
    }
    if (enqueue(s, body, len, file) != 0) {
        if (file)
            unlink(file);
        free(file);
        return PDW_ESTORE;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deliveries spooled before a stop or a crash are queued again, oldest first. A torn
 * .tmp- file was never answered 200 and is removed. Returns how many were queued. */
static size_t spool_recover(server *s)
{
    DIR *d = opendir(s->cfg.spool);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        char path[4200];
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            snprintf(path, sizeof path, "%s/%s", s->cfg.spool, e->d_name);
            unlink(path);
            continue;
        }
        if (l != 25 || strcmp(e->d_name + 20, ".json") != 0)
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        if (!names[i])
            continue;
        unsigned long long seq = strtoull(names[i], NULL, 10);
        if (seq > s->spool_seq)
            s->spool_seq = seq;
        snprintf(path, sizeof path, "%s/%s", s->cfg.spool, names[i]);
        free(names[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = NULL;
        size_t len = 0;
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)))
            len = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        if (buf && enqueue(s, buf, len, strdup(path)) == 0)
            queued++;
        free(buf);
    }
    free(names);
    return queued;
}

/* ---- HTTP ------------------------------------------------------------------------- */

/* Per request: the raw URI (for the query string), the headers, the body so far. */
typedef struct request_ctx {
    char *uri;
    pdw_header *headers;
    size_t nheaders, cap;
    char *body;
    size_t len, body_cap;
    int refused; /* a verdict was queued on the first call */
    double started;
} request_ctx;

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    server *s = cls;
    request_ctx *r = calloc(1, sizeof *r);
    if (r) {
        r->uri = strdup(uri);
        r->started = now_ms();
    }
    atomic_fetch_add(&s->stats.in_flight, 1);
    return r;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    request_ctx *r = cls;
    if (r->nheaders == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        pdw_header *h = realloc(r->headers, cap * sizeof *h);
        if (!h)
            return MHD_NO;
        r->headers = h;
        r->cap = cap;
    }
    r->headers[r->nheaders++] = (pdw_header){ key, strlen(key), value ? value : "",
                                              value ? strlen(value) : 0 };
    return MHD_YES;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    server *s = cls;
    request_ctx *r = *con_cls;
    if (r) {
        free(r->uri);
        free(r->headers);
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
    atomic_fetch_sub(&s->stats.in_flight, 1);
}

static enum MHD_Result send_buffer(struct MHD_Connection *c, unsigned status, const char *body,
                                   size_t len, const char *ctype, const pdw_verdict *v)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (v)
        for (size_t i = 0; i < v->num_headers; i++)
            MHD_add_response_header(resp, v->headers[i].name, v->headers[i].value);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_health(server *s, struct MHD_Connection *c)
{
    json_t *o = json_object(), *reasons = json_object();
    stats *st = &s->stats;
    pthread_mutex_lock(&s->lock);
    size_t queued = s->queued;
    pthread_mutex_unlock(&s->lock);
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "version", json_string(pdw_version()));
    json_object_set_new(o, "received", json_integer((json_int_t)atomic_load(&st->received)));
    json_object_set_new(o, "accepted", json_integer((json_int_t)atomic_load(&st->accepted)));
    json_object_set_new(o, "duplicates", json_integer((json_int_t)atomic_load(&st->duplicates)));
    json_object_set_new(o, "rejected", json_integer((json_int_t)atomic_load(&st->rejected)));
    for (int i = 1; i < NREASONS; i++) {
        unsigned long long n = atomic_load(&st->by_reason[i]);
        if (n)
            json_object_set_new(reasons, pdw_err_name(-i), json_integer((json_int_t)n));
    }
    json_object_set_new(o, "rejected_by_reason", reasons);
    json_object_set_new(o, "handled", json_integer((json_int_t)atomic_load(&st->handled)));
    json_object_set_new(o, "handler_failures",
                        json_integer((json_int_t)atomic_load(&st->handler_failures)));
    json_object_set_new(o, "spool_failures",
                        json_integer((json_int_t)atomic_load(&st->spool_failures)));
    /* this health request itself is not counted as in flight */
    json_object_set_new(o, "in_flight", json_integer((json_int_t)atomic_load(&st->in_flight) - 1));
    json_object_set_new(o, "queued", json_integer((json_int_t)queued));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    enum MHD_Result rc =
        text ? send_buffer(c, 200, text, strlen(text), "application/json", NULL) : MHD_NO;
    free(text);
    return rc;
}

static void count_and_log(server *s, const request_ctx *r, const char *method,
                          const pdw_verdict *v)
{
    stats *st = &s->stats;
    atomic_fetch_add(&st->received, 1);
    if (v->reason == PDW_OK || v->reason == PDW_EHANDLER)
        atomic_fetch_add(&st->accepted, 1);
    else if (v->reason == PDW_EDUPLICATE)
        atomic_fetch_add(&st->duplicates, 1);
    else {
        atomic_fetch_add(&st->rejected, 1);
        if (v->reason < 0 && -v->reason < NREASONS)
            atomic_fetch_add(&st->by_reason[-v->reason], 1);
    }
    /* never the query (it may hold the token) nor any header */
    const char *q = r && r->uri ? strchr(r->uri, '?') : NULL;
    int pathlen = r && r->uri ? (int)(q ? (size_t)(q - r->uri) : strlen(r->uri)) : 0;
    logf_("%s %.*s %d %s event=%s key=%s %.1fms", method, pathlen, r && r->uri ? r->uri : "",
          v->status, pdw_err_name(v->reason), v->event[0] ? v->event : "-",
          v->delivery_key[0] ? v->delivery_key : "-", r ? now_ms() - r->started : 0.0);
}

static enum MHD_Result answer(server *s, struct MHD_Connection *c, request_ctx *r,
                              const char *method, const pdw_verdict *v)
{
    count_and_log(s, r, method, v);
    return send_buffer(c, (unsigned)v->status, v->body, v->body_len, v->content_type, v);
}

static void fill_request(request_ctx *r, const char *method, pdw_request *req)
{
    pdw_request init = PDW_REQUEST_INIT;
    *req = init;
    req->method = method;
    req->method_len = strlen(method);
    req->headers = r->headers;
    req->num_headers = r->nheaders;
    const char *q = r->uri ? strchr(r->uri, '?') : NULL;
    if (q) {
        req->query = q + 1;
        req->query_len = strlen(q + 1);
    }
    req->body = r->body;
    req->body_len = r->len;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request_ctx *r = *con_cls;
    if (!r)
        return MHD_NO;
    int first = r->headers == NULL && r->len == 0 && !r->refused && r->body == NULL;

    if (first && strcmp(url, "/healthz") == 0 && strcmp(method, "GET") == 0)
        return send_health(s, c);
    if (first && s->cfg.path && strcmp(url, s->cfg.path) != 0) {
        static const char nf[] = "{\"ok\":false,\"error\":\"not found\"}";
        pdw_verdict v = PDW_VERDICT_INIT;
        v.status = 404;
        v.reason = PDW_ENOTFOUND;
        count_and_log(s, r, method, &v);
        return send_buffer(c, 404, nf, sizeof nf - 1, "application/json", NULL);
    }
    if (first) {
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r);
        if (!r->headers)
            r->headers = calloc(1, sizeof *r->headers); /* marks "first call done" */
        pdw_request req;
        fill_request(r, method, &req);
        pdw_verdict v = PDW_VERDICT_INIT;
        if (pdw_receiver_check_head(s->rcv, &req, &v) != 0) {
            r->refused = 1; /* before reading the body */
            return answer(s, c, r, method, &v);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (r->len + n > s->cfg.max_body) {
            /* more than the limit without a Content-Length that said so: stop reading */
            pdw_verdict v = PDW_VERDICT_INIT;
            pdw_request req;
            fill_request(r, method, &req);
            req.body_len = s->cfg.max_body + 1;
            req.body = NULL;
            v.status = 413;
            v.reason = PDW_ETOOLARGE;
            v.body = "{\"ok\":false,\"error\":\"PDW_ETOOLARGE\"}";
            v.body_len = strlen(v.body);
            v.content_type = "application/json";
            *upload_size = 0;
            r->refused = 1;
            return answer(s, c, r, method, &v);
        }
        if (r->len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 16384;
            while (cap < r->len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->refused)
        return MHD_YES;
    pdw_request req;
    fill_request(r, method, &req);
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_receiver_handle(s->rcv, &req, &v, NULL);
    return answer(s, c, r, method, &v);
}

/* ---- options ----------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pdwebhook serve [options]\n"
        "  --listen HOST:PORT     where to listen (default 127.0.0.1:8080; port 0 = any free)\n"
        "  --path PATH            accept deliveries only on PATH (default: any path)\n"
        "  --user U --password P  Basic credentials (also PDWEBHOOK_USER / PDWEBHOOK_PASSWORD)\n"
        "  --credentials FILE     several user:password lines (rotation); # comments\n"
        "  --token T              require ?token=T in the URL\n"
        "  --insecure-no-auth     accept deliveries without any credentials\n"
        "  --max-body BYTES       body limit (default 1048576), refused early on Content-Length\n"
        "  --output FILE          one JSON line per accepted event (- = stdout)\n"
        "  --exec CMD             run CMD (sh -c) per event, the event JSON line on stdin\n"
        "  --spool DIR            store each accepted delivery (fsync'ed) before answering 200\n"
        "  --tls-cert FILE --tls-key FILE   serve HTTPS\n"
        "GET /healthz answers counters as JSON. SIGTERM/SIGINT: finish, flush, exit 0.\n"
        "Without credentials a random pair is generated and printed once at start.\n");
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int add_credential(config *c, char *user, char *password)
{
    if (c->ncreds == MAX_CREDENTIALS) {
        fprintf(stderr, "pdwebhook serve: at most %d credential pairs\n", MAX_CREDENTIALS);
        return -1;
    }
    c->creds[c->ncreds].user = user;
    c->creds[c->ncreds].password = password;
    c->ncreds++;
    return 0;
}

static int load_credentials(config *c, const char *path)
{
    char *text = read_all(path);
    if (!text) {
        fprintf(stderr, "pdwebhook serve: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    c->cred_storage[c->ncreds] = text; /* owned by the first pair from this file */
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line || !colon[1]) {
            fprintf(stderr, "pdwebhook serve: %s line %d: expected user:password\n", path,
                    lineno);
            return -1;
        }
        *colon = '\0';
        if (add_credential(c, line, colon + 1) < 0)
            return -1;
    }
    if (!c->ncreds) {
        fprintf(stderr, "pdwebhook serve: %s holds no user:password line\n", path);
        return -1;
    }
    return 0;
}

static int random_text(char *out, size_t n)
{
    static const char al[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char raw[64];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || n > sizeof raw || read(fd, raw, n) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    for (size_t i = 0; i < n; i++)
        out[i] = al[raw[i] % (sizeof al - 1)];
    out[n] = '\0';
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > (1ull << 32))
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(config *c, int argc, char **argv)
{
    const char *user = getenv("PDWEBHOOK_USER"), *password = getenv("PDWEBHOOK_PASSWORD");
    const char *cred_file = NULL;
    c->listen = "127.0.0.1:8080";
    c->max_body = 1024 * 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                     \
    if (strcmp(a, name) == 0) {                                                              \
        if (!v) {                                                                            \
            fprintf(stderr, "pdwebhook serve: %s needs a value\n", name);                    \
            return -1;                                                                       \
        }                                                                                    \
        field = v;                                                                           \
        i++;                                                                                 \
        continue;                                                                            \
    }
        OPT("--listen", c->listen)
        OPT("--path", c->path)
        OPT("--user", user)
        OPT("--password", password)
        OPT("--credentials", cred_file)
        OPT("--token", c->token)
        OPT("--output", c->output)
        OPT("--exec", c->exec)
        OPT("--spool", c->spool)
        OPT("--tls-cert", c->tls_cert)
        OPT("--tls-key", c->tls_key)
#undef OPT
        if (strcmp(a, "--max-body") == 0 && v) {
            if (parse_size(v, &c->max_body) < 0) {
                fprintf(stderr, "pdwebhook serve: --max-body takes a positive byte count\n");
                return -1;
            }
            i++;
        } else if (strcmp(a, "--insecure-no-auth") == 0) {
            c->insecure = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "pdwebhook serve: unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!!c->tls_cert != !!c->tls_key) {
        fprintf(stderr, "pdwebhook serve: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if ((user && !password) || (!user && password)) {
        fprintf(stderr, "pdwebhook serve: --user and --password go together\n");
        return -1;
    }
    if (user && add_credential(c, (char *)(uintptr_t)user, (char *)(uintptr_t)password) < 0)
        return -1;
    if (cred_file && load_credentials(c, cred_file) < 0)
        return -1;
    if (!c->ncreds && !c->token && !c->insecure) {
        char *u = strdup("pipedrive"), *p = malloc(25);
        if (!u || !p || random_text(p, 24) < 0) {
            free(u);
            free(p);
            fprintf(stderr, "pdwebhook serve: cannot generate credentials\n");
            return -1;
        }
        c->cred_storage[0] = u;
        c->cred_storage[1] = p;
        add_credential(c, u, p);
        /* printed once, on purpose: to be pasted into Pipedrive's webhook form */
        fprintf(stderr,
                "pdwebhook serve: no credentials given; generated a pair for this run:\n"
                "  HTTP auth username: %s\n  HTTP auth password: %s\n"
                "Enter them in Pipedrive (Settings > Tools and apps > Webhooks), or start\n"
                "with --user/--password (or PDWEBHOOK_USER/PDWEBHOOK_PASSWORD) to keep them.\n",
                u, p);
    }
    return 0;
}

/* Bind HOST:PORT ourselves (so that port 0 works and the real port can be printed). */
static int open_listener(const char *listen_on, char *shown, size_t shown_cap)
{
    char host[256];
    const char *colon = strrchr(listen_on, ':');
    if (!colon || (size_t)(colon - listen_on) >= sizeof host) {
        fprintf(stderr, "pdwebhook serve: --listen wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, listen_on, (size_t)(colon - listen_on));
    host[colon - listen_on] = '\0';
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8080 */
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "pdwebhook serve: --listen %s: %s\n", listen_on, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "pdwebhook serve: cannot listen on %s: %s\n", listen_on,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char hbuf[1025], pbuf[32];
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof hbuf, pbuf, sizeof pbuf,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(shown, shown_cap, strchr(hbuf, ':') ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
    return fd;
}

int pdw_cmd_serve(int argc, char **argv)
{
    static server srv;
    server *s = &srv;
    int rc = parse_args(&s->cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    config *c = &s->cfg;

    if (c->output) {
        s->out = strcmp(c->output, "-") == 0 ? stdout : fopen(c->output, "a");
        if (!s->out) {
            fprintf(stderr, "pdwebhook serve: cannot open %s: %s\n", c->output, strerror(errno));
            return 2;
        }
    }
    if (c->spool && mkdir(c->spool, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pdwebhook serve: cannot create %s: %s\n", c->spool, strerror(errno));
        return 2;
    }
    char *cert = NULL, *key = NULL;
    if (c->tls_cert && (!(cert = read_all(c->tls_cert)) || !(key = read_all(c->tls_key)))) {
        fprintf(stderr, "pdwebhook serve: cannot read the TLS certificate or key\n");
        return 2;
    }

    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.credentials = c->creds;
    o.num_credentials = c->ncreds;
    o.query_token = c->token;
    o.insecure_no_auth = c->insecure;
    o.max_body = c->max_body;
    o.accept = accept_event;
    o.accept_user = s;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_receiver_new(&s->rcv, &o, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: %s\n", err.message);
        return 2;
    }
    pdw_router_on(pdw_receiver_router(s->rcv), "*.*", sink_event, s, NULL);
    pdw_router_freeze(pdw_receiver_router(s->rcv));

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (c->spool) {
        size_t n = spool_recover(s);
        if (n)
            logf_("recovered %zu spooled deliveries from %s", n, c->spool);
    }

    /* Signals are taken by sigwait in this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_t worker;
    if (pthread_create(&worker, NULL, worker_main, s) != 0) {
        fprintf(stderr, "pdwebhook serve: cannot start the worker\n");
        return 2;
    }

    char shown[300];
    int fd = open_listener(c->listen, shown, sizeof shown);
    if (fd < 0)
        return 2;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (cert)
        flags |= MHD_USE_TLS;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, s, MHD_OPTION_NOTIFY_COMPLETED, request_done,
        s, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cores > 0 ? cores : 2),
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
        cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "pdwebhook serve: cannot start the HTTP server%s\n",
                cert ? " (is libmicrohttpd built with TLS?)" : "");
        return 2;
    }
    printf("listening on %s://%s%s\n", cert ? "https" : "http", shown, c->path ? c->path : "/");
    fflush(stdout);
    logf_("pdwebhook %s serving on %s (%zu credential pair(s)%s%s%s%s)", pdw_version(), shown,
          c->ncreds, c->token ? ", query token" : "", c->spool ? ", spool " : "",
          c->spool ? c->spool : "", c->insecure ? ", NO AUTH" : "");

    int sig;
    sigwait(&sigs, &sig);
    logf_("signal %d: finishing in-flight requests and queued events", sig);
    MHD_stop_daemon(s->daemon); /* waits for the request threads */
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(worker, NULL);
    if (s->out && s->out != stdout)
        fclose(s->out);
    else if (s->out)
        fflush(stdout);
    pdw_receiver_free(s->rcv);
    for (size_t i = 0; i < MAX_CREDENTIALS; i++)
        free(c->cred_storage[i]);
    free(cert);
    free(key);
    logf_("stopped");
    return 0;
}
