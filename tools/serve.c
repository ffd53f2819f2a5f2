/* pdwebhook serve: a ready Pipedrive endpoint on libmicrohttpd, an HTTP adapter over the
 * durable intake (pdwebhook/intake.h).
 *
 * The intake runs the library's pipeline (auth, parse, dedup). With --spool DIR an
 * accepted delivery is appended to the durable journal (group commit: concurrent requests
 * share one fdatasync) and answered 200 only once it is on disk; the worker then hands it
 * to --output and --exec, retrying with backoff and dead-lettering what keeps failing, so a
 * slow or failing handler never delays an answer to Pipedrive. Without --spool the same
 * worker runs from memory (nothing survives a crash). --sync runs the sinks inside the
 * request instead and answers their result (a failing handler then costs ban points): it
 * uses the receiver alone. This file keeps only HTTP: libmicrohttpd, the epoll thread pool
 * with requests suspended while their flush runs, the access log, /healthz, the options. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "sinks.h"
#include "guard.h"
#include "serve_redis.h"
#include "autoreconcile.h"

#define MAX_CREDENTIALS 64
#define MAX_THREADS 16  /* default pool: the online CPUs, at most this */

/* ---- configuration ----------------------------------------------------------------- */

typedef struct config {
    const char *listen;
    const char *path;
    const char *output;
    const char *exec;
    const char *spool;
    const char *dead_letter;
    const char *tls_cert, *tls_key;
    const char *allow_from[16];    /* --allow-from FILE|CIDR (repeatable) */
    size_t nallow;
    const char *trusted_proxy[16]; /* --trusted-proxy FILE|CIDR (repeatable) */
    size_t ntrusted;
    const char *token;
    size_t max_body;
    size_t spool_max;
    unsigned exec_timeout, workers, max_attempts, spool_retain_s;
    unsigned inflight_lease_s; /* --inflight-lease; 0: the library's default (60 s) */
    unsigned threads; /* HTTP thread pool size (epoll); 0 until parsed: online CPUs */
    unsigned long long backoff_ms;
    int insecure, sync_mode, sync_failure_status;
    const char *redis, *stream, *redis_prefix; /* --redis: scale-out (serve_redis.h) */
    unsigned long long stream_maxlen;
    unsigned per_ip, header_timeout_s, body_timeout_s; /* the connection guard (guard.h) */
    /* --reconcile, --watch-subscriptions (autoreconcile.h) */
    int reconcile, watch;
    unsigned retry_horizon_s, watch_interval_s;
    const char *api_token, *oauth_token, *base_url, *reconcile_objects;
    const char *public_url, *watch_events, *webhook_version;
    pdw_credential creds[MAX_CREDENTIALS];
    size_t ncreds;
    char *cred_storage[MAX_CREDENTIALS]; /* lines read from --credentials, or generated */
} config;

/* Counters for /healthz; reasons indexed by -code. */
#define NREASONS 64
typedef struct stats {
    atomic_ullong received, accepted, duplicates, rejected, handler_failures, dead_letters;
    atomic_ullong spool_failures, in_flight;
    atomic_ullong answers_lost; /* accepted, but the client was gone before the answer */
    atomic_ullong not_pipedrive; /* requests that are no Pipedrive delivery (no webhook id) */
    atomic_ullong by_reason[NREASONS];
} stats;

typedef struct request_ctx request_ctx;

typedef struct server {
    config cfg;
    pdw_intake *intake;    /* every mode but --sync */
    pdw_receiver *rcv;     /* --sync: the receiver (owned) */
    pdw_dedup_store *dedup; /* ours until handed to the receiver (or the Redis store) */
    int blocking;          /* a thread per connection: it waits for its answer */
    pthread_mutex_t wait_lock; /* (blocking) a request's answer is final */
    pthread_cond_t wait_cond;
    pdw_health *health;
    sinks *sinks;
    serve_redis *redis;
    conn_guard *guard;
    pdw_allowlist *allow, *proxies; /* --allow-from, --trusted-proxy (NULL: none) */
    struct MHD_Daemon *daemon;
    autorec *autorec;      /* --reconcile, --watch-subscriptions */
    stats stats;
} server;

static void logf_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "2024-05-01T12:00:00.123Z " into out (at least 32 bytes); returns its length. The date
 * part is formatted once a second per thread. */
static size_t log_stamp(char *out)
{
    static _Thread_local time_t ts_sec = (time_t)-1;
    static _Thread_local char ts[24];
    static _Thread_local size_t ts_len;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != ts_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        ts_len = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        ts_sec = now.tv_sec;
    }
    long ms = now.tv_nsec / 1000000;
    memcpy(out, ts, ts_len);
    char *p = out + ts_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p++ = ' ';
    return (size_t)(p - out);
}

/* One line (ending in '\n'), one write(2): stderr is unbuffered. */
static void log_put(const char *line, size_t n)
{
    flockfile(stderr);
    fwrite(line, 1, n, stderr);
    funlockfile(stderr);
}

static void logf_(const char *fmt, ...)
{
    char line[1024];
    size_t n = log_stamp(line);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m >= 0 && n + (size_t)m + 1 < sizeof line) {
        line[n + (size_t)m] = '\n';
        log_put(line, n + (size_t)m + 1);
    } else { /* a longer line: written in parts, as it comes */
        flockfile(stderr);
        fwrite(line, 1, n, stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        funlockfile(stderr);
    }
}

/* A line assembled without the format interpreter (the access log: one per request). */
typedef struct lbuf {
    char p[1024];
    size_t n;
} lbuf;

static void lb_mem(lbuf *b, const char *s, size_t n)
{
    size_t room = sizeof b->p - 1 - b->n; /* one byte kept for the '\n' */
    if (n > room)
        n = room;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void lb_str(lbuf *b, const char *s)
{
    lb_mem(b, s, strlen(s));
}

static void lb_uint(lbuf *b, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lb_mem(b, d + i, sizeof d - i);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the handlers ------------------------------------------------------------------- */

/* The intake could not journal a delivery (full disk, I/O error): answered 503. */
static void on_intake_error(int code, const char *message, void *user)
{
    server *s = user;
    atomic_fetch_add(&s->stats.spool_failures, 1);
    logf_("spool: %s", message && message[0] ? message : pdw_strerror(code));
}

/* The worker's handler: the Redis stream first (with --redis), then --output / --exec. */
static int handle_delivery(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                           size_t errcap, void *user)
{
    server *s = user;
    if (s->redis)
        return serve_redis_handle(rec, attempt, errbuf, errcap, s->redis);
    return sinks_handle(rec, attempt, errbuf, errcap, s->sinks);
}

static int sync_sinks(void *user)
{
    server *s = user;
    return sinks_sync(s->sinks);
}

/* Synchronous mode: the sinks run inside the request. */
static int sync_handler(const pdw_event *ev, void *user)
{
    server *s = user;
    char errbuf[256];
    int rc = sinks_event(s->sinks, ev, 0, pdw_event_attempt(ev), errbuf, sizeof errbuf);
    if (rc != 0) {
        atomic_fetch_add(&s->stats.handler_failures, 1);
        logf_("handler failed for %s %s: %s", pdw_event_name(ev), pdw_event_delivery_key(ev),
              errbuf);
    }
    return rc;
}

static void on_dead_letter(const pdw_spool_record *rec, unsigned attempts, const char *error,
                           void *user)
{
    server *s = user;
    atomic_fetch_add(&s->stats.dead_letters, 1);
    logf_("dead letter: id=%llu key=%.*s after %u attempt(s): %s", (unsigned long long)rec->id,
          (int)rec->key_len, rec->key, attempts, error);
}

static void on_possible_loss(const char *webhook_id, int64_t from_ms, int64_t to_ms, void *user)
{
    server *s = user;
    autorec_possible_loss(s->autorec, webhook_id, from_ms, to_ms); /* --reconcile */
    logf_("WARNING: webhook %s has failed 10 first attempts: Pipedrive bans it for 30 minutes "
          "and its events from %lld to %lld may be lost; reconcile through Pipedrive's API",
          webhook_id, (long long)from_ms, (long long)to_ms);
}

/* The ids pending in the journal at start, for the exec markers of the sinks. */
typedef struct claim_ctx {
    uint64_t *ids;
    size_t n, cap;
} claim_ctx;

static int collect_pending(const pdw_spool_record *rec, void *user)
{
    claim_ctx *c = user;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        uint64_t *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return 0;
        c->ids = ids;
        c->cap = cap;
    }
    c->ids[c->n++] = rec->id;
    return 0;
}

static int id_pending(uint64_t id, void *user)
{
    claim_ctx *c = user;
    for (size_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return 1;
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------- */

/* Where a request submitted to the intake stands (state). */
enum { REQ_RUNNING = 0, REQ_DONE = 1, REQ_PARKED = 2 };

/* Per request: the raw URI (for the query string), the headers, the body so far; the
 * verdict, kept (with the body) while the delivery waits for its flush. */
struct request_ctx {
    server *s;
    char *uri;
    pdw_header *headers;
    size_t nheaders, cap;
    char *body;
    size_t len, body_cap;
    int refused; /* a verdict was queued on the first call */
    int too_large;   /* over --max-body mid-body: the rest is read and dropped, then 413 */
    char peer[INET6_ADDRSTRLEN]; /* the client's address, with an allowlist ("" without) */
    size_t dropped;  /* bytes dropped since */
    pdw_intake_pending *ipending;  /* the head passed (credentials included) */
    pdw_receiver_pending *pending; /* the same, --sync */
    double started;
    pdw_verdict verdict;          /* the intake's, final once `state` is REQ_DONE */
    struct MHD_Connection *conn;
    int submitted;                /* the body went to the intake: answer its verdict */
    atomic_int state;             /* REQ_*: the intake's callback and the suspension meet */
};

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c)
{
    server *s = cls;
    request_ctx *r = calloc(1, sizeof *r);
    if (r) {
        r->s = s;
        r->uri = strdup(uri);
        r->started = now_ms();
        r->verdict = (pdw_verdict)PDW_VERDICT_INIT;
        r->conn = c;
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

/* ---- waiting for the intake ----------------------------------------------------------
 *
 * A journaled delivery is answered once its flush is over: the intake calls on_done() on
 * its committer thread, maybe before pdw_intake_finish() has returned. On the epoll pool
 * the request is suspended instead of waiting in its thread; the request and the callback
 * exchange `state`, so that whichever comes second resumes it (the callback, or the
 * request itself when the callback was first). With a thread per connection (--redis) the
 * request's thread waits. */

static void on_done(pdw_verdict *v, void *user)
{
    (void)v; /* r->verdict */
    request_ctx *r = user;
    server *s = r->s;
    if (s->blocking) {
        pthread_mutex_lock(&s->wait_lock);
        atomic_store(&r->state, REQ_DONE);
        pthread_cond_broadcast(&s->wait_cond);
        pthread_mutex_unlock(&s->wait_lock);
        return;
    }
    struct MHD_Connection *c = r->conn;
    if (atomic_exchange(&r->state, REQ_DONE) == REQ_PARKED)
        MHD_resume_connection(c); /* it answers r->verdict when called again */
}

/* Hand the body to the intake. 1: the request is suspended until its answer; 0: answer
 * r->verdict now; -1: drop the connection. */
static int submit(server *s, request_ctx *r, struct MHD_Connection *c)
{
    pdw_intake_pending *p = r->ipending;
    r->ipending = NULL; /* taken over by pdw_intake_finish() */
    r->submitted = 1;
    int rc = pdw_intake_finish(p, r->body ? r->body : "", r->len, &r->verdict, on_done, r);
    if (rc < 0)
        return -1;
    if (rc != PDW_INTAKE_PENDING)
        return 0; /* answered inside the call */
    if (s->blocking) {
        pthread_mutex_lock(&s->wait_lock);
        while (atomic_load(&r->state) != REQ_DONE)
            pthread_cond_wait(&s->wait_cond, &s->wait_lock);
        pthread_mutex_unlock(&s->wait_lock);
        return 0;
    }
    MHD_suspend_connection(c);
    if (atomic_exchange(&r->state, REQ_PARKED) == REQ_DONE)
        MHD_resume_connection(c); /* the callback came first */
    return 1;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    request_ctx *r = *con_cls;
    guard_request_over(c); /* a kept-alive connection: the next head's deadline starts */
    if (r && r->submitted && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
        r->verdict.status >= 200 && r->verdict.status < 300) {
        /* accepted and handed on, but its answer did not reach the sender: Pipedrive may
         * count a failed attempt, and its retry is then answered as a duplicate */
        atomic_fetch_add(&s->stats.answers_lost, 1);
        logf_("the client went away before its answer: %s %s (accepted: it is handed on; "
              "a retry is a duplicate)",
              r->verdict.event[0] ? r->verdict.event : "-",
              r->verdict.delivery_key[0] ? r->verdict.delivery_key : "-");
    }
    if (r) {
        /* a submitted request is over only after its callback (a suspended connection
         * ends only once resumed, a blocking one after its wait) */
        pdw_intake_pending_free(r->ipending); /* the body never came */
        pdw_receiver_pending_free(r->pending);
        free(r->uri);
        free(r->headers);
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
    atomic_fetch_sub(&s->stats.in_flight, 1);
}

static enum MHD_Result send_buffer_close(struct MHD_Connection *c, unsigned status,
                                         const char *body, size_t len, const char *ctype,
                                         const pdw_verdict *v, int close_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (close_after) /* the framing cannot be trusted: nothing more is read on it */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (v)
        for (size_t i = 0; i < v->num_headers; i++)
            MHD_add_response_header(resp, v->headers[i].name, v->headers[i].value);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_buffer(struct MHD_Connection *c, unsigned status, const char *body,
                                   size_t len, const char *ctype, const pdw_verdict *v)
{
    return send_buffer_close(c, status, body, len, ctype, v, 0);
}

static enum MHD_Result send_health(server *s, struct MHD_Connection *c)
{
    json_t *o = json_object(), *reasons = json_object();
    stats *st = &s->stats;
    pdw_intake_stats is;
    memset(&is, 0, sizeof is);
    is.version = PDW_INTAKE_STATS_VERSION;
    pdw_intake_get_stats(s->intake, &is); /* all zero with --sync */
    pdw_spool *spool = pdw_intake_spool(s->intake);
    int full = is.spool_full; /* the journal's last append was refused for space */
#define N(x) json_integer((json_int_t)(x))
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "version", json_string(pdw_version()));
    json_object_set_new(o, "received", N(atomic_load(&st->received)));
    json_object_set_new(o, "accepted", N(atomic_load(&st->accepted)));
    json_object_set_new(o, "duplicates", N(atomic_load(&st->duplicates)));
    json_object_set_new(o, "answers_lost", N(atomic_load(&st->answers_lost)));
    json_object_set_new(o, "not_pipedrive", N(atomic_load(&st->not_pipedrive)));
    json_object_set_new(o, "rejected", N(atomic_load(&st->rejected)));
    for (int i = 1; i < NREASONS; i++) {
        unsigned long long n = atomic_load(&st->by_reason[i]);
        if (n)
            json_object_set_new(reasons, pdw_err_name(-i), N(n));
    }
    json_object_set_new(o, "rejected_by_reason", reasons);
    /* this health request itself is not counted as in flight */
    json_object_set_new(o, "in_flight", N(atomic_load(&st->in_flight) - 1));
    if (s->intake) {
        const pdw_worker_stats ws = is.worker;
        json_object_set_new(o, "handled", N(ws.handled));
        json_object_set_new(o, "queued", N(ws.queued + ws.running));
        json_object_set_new(o, "retries", N(ws.retries));
        json_object_set_new(o, "handler_failures", N(ws.retries + ws.dead_letters));
        json_object_set_new(o, "dead_letters", N(ws.dead_letters));
    } else {
        json_object_set_new(o, "handler_failures", N(atomic_load(&st->handler_failures)));
    }
    if (spool) {
        pdw_spool_stats ss;
        pdw_spool_get_stats(spool, &ss);
        json_t *sp = json_object();
        json_object_set_new(sp, "pending", N(ss.pending));
        json_object_set_new(sp, "appended", N(ss.appended));
        json_object_set_new(sp, "flushes", N(ss.flushes));
        json_object_set_new(sp, "bytes", N(ss.bytes));
        json_object_set_new(sp, "segments", N(ss.segments));
        json_object_set_new(sp, "full", json_boolean(full));
        json_object_set_new(sp, "full_errors", N(ss.full_errors));
        json_object_set_new(sp, "io_errors", N(ss.io_errors));
        json_object_set_new(o, "spool", sp);
    }
    if (s->redis) { /* lag: deliveries in the spool not yet handed on (to Redis first) */
        pdw_spool_stats rs;
        pdw_spool_get_stats(spool, &rs);
        if (serve_redis_health(s->redis, o, rs.pending, wall_ms()))
            json_object_set_new(o, "status",
                                json_string("redis unreachable: deliveries wait in the spool"));
    }
    guard_health(s->guard, o);
    if (sinks_health(s->sinks, o))
        json_object_set_new(o, "status",
                            json_string("output failing: events wait in the spool"));
    if (full)
        json_object_set_new(o, "status", json_string("spool full: answering 503"));
    char *ban = pdw_health_json(s->health, wall_ms());
    json_t *bj = ban ? json_loads(ban, 0, NULL) : NULL;
    pdw_free(ban);
    if (bj) {
        json_t *warnings = json_object_get(bj, "warnings");
        if (json_array_size(warnings) && !full)
            json_object_set_new(o, "status", json_string("warning"));
        json_object_set_new(o, "ban_model", bj);
    }
    if (autorec_health(s->autorec, o) && !full) /* "reconcile", "watchdog" */
        json_object_set_new(o, "status", json_string("warning"));
#undef N
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
    double took = r ? now_ms() - r->started : 0.0;
    /* Only Pipedrive's deliveries move the ban model, as only they count at Pipedrive:
     * authenticated and parsed, with a webhook id. A scanner's GET, an unauthenticated
     * POST or a body without a webhook id is counted apart. */
    if (v->webhook_id[0])
        pdw_health_record(s->health, v->webhook_id, v->attempt, v->status, (uint64_t)took,
                          wall_ms());
    else
        atomic_fetch_add(&st->not_pipedrive, 1);
    /* never the query (it may hold the token) nor any header; the line is
     * "METHOD PATH STATUS REASON event=E key=K 1.2ms" */
    const char *q = r && r->uri ? strchr(r->uri, '?') : NULL;
    size_t pathlen = r && r->uri ? (q ? (size_t)(q - r->uri) : strlen(r->uri)) : 0;
    unsigned long long tenths = took > 0 ? (unsigned long long)(took * 10.0 + 0.5) : 0;
    lbuf b;
    b.n = log_stamp(b.p);
    lb_str(&b, method);
    lb_mem(&b, " ", 1);
    lb_mem(&b, r && r->uri ? r->uri : "", pathlen);
    lb_mem(&b, " ", 1);
    lb_uint(&b, v->status > 0 ? (unsigned long long)v->status : 0);
    lb_mem(&b, " ", 1);
    lb_str(&b, pdw_err_name(v->reason));
    lb_mem(&b, " event=", 7);
    lb_str(&b, v->event[0] ? v->event : "-");
    lb_mem(&b, " key=", 5);
    lb_str(&b, v->delivery_key[0] ? v->delivery_key : "-");
    lb_mem(&b, " ", 1);
    lb_uint(&b, tenths / 10);
    lb_mem(&b, ".", 1);
    lb_uint(&b, tenths % 10);
    lb_mem(&b, "ms", 2);
    b.p[b.n++] = '\n';
    log_put(b.p, b.n);
}

static enum MHD_Result answer(server *s, struct MHD_Connection *c, request_ctx *r,
                              const char *method, const pdw_verdict *v)
{
    count_and_log(s, r, method, v);
    guard_body_done(c);
    return send_buffer(c, (unsigned)v->status, v->body, v->body_len, v->content_type, v);
}

/* A refusal of the HTTP framing itself, answered and the connection closed: what follows
 * on it cannot be told apart from a smuggled request (RFC 9112 section 6.3). */
static enum MHD_Result refuse_and_close(server *s, struct MHD_Connection *c, request_ctx *r,
                                        const char *method, int status, int reason)
{
    pdw_verdict v = PDW_VERDICT_INIT;
    v.status = status;
    v.reason = reason;
    size_t n;
    const char *name = pdw_err_name(reason);
    char body[96];
    n = (size_t)snprintf(body, sizeof body, "{\"ok\":false,\"error\":\"%s\"}", name);
    r->refused = 1;
    count_and_log(s, r, method, &v);
    guard_body_done(c);
    return send_buffer_close(c, (unsigned)status, body, n, "application/json", NULL, 1);
}

static int name_is(const pdw_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* RFC 9110 token characters: a header name with anything else (a space before the colon,
 * "Content-Length :") is not one libmicrohttpd frames by, so the request is refused. */
static int is_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!(ch > 0x20 && ch < 0x7f) || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return 0;
    }
    return 1;
}

/* Why the request's framing cannot be trusted, or NULL: a malformed header name, both
 * Content-Length and Transfer-Encoding, or a transfer coding other than chunked. */
static const char *framing_error(const request_ctx *r)
{
    int cl = 0, te = 0;
    const pdw_header *teh = NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const pdw_header *h = &r->headers[i];
        if (!is_token(h->name, h->name_len))
            return "malformed header name";
        if (name_is(h, "Content-Length"))
            cl++;
        if (name_is(h, "Transfer-Encoding")) {
            te++;
            teh = h;
        }
    }
    if (cl && te)
        return "both Content-Length and Transfer-Encoding";
    if (te > 1)
        return "repeated Transfer-Encoding";
    if (teh) {
        const char *v = teh->value;
        size_t n = teh->value_len;
        while (n && (*v == ' ' || *v == '\t'))
            v++, n--;
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n != 7 || strncasecmp(v, "chunked", 7) != 0)
            return "unsupported transfer coding";
    }
    return NULL;
}

/* An allowlist from --allow-from/--trusted-proxy values: each a CIDR, or a file of them
 * (one per line, # comments). NULL (message printed) when one cannot be read. */
static pdw_allowlist *load_allowlist(const char *opt, const char *const *vals, size_t n)
{
    pdw_allowlist *l = NULL;
    pdw_error err = PDW_ERROR_INIT;
    if (pdw_allowlist_new(&l, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: %s: %s\n", opt, err.message);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (access(vals[i], R_OK) == 0) { /* a file of ranges, else one range */
            size_t len = 0;
            char *text = pdw_cli_read_file(vals[i], &len);
            if (!text) {
                fprintf(stderr, "pdwebhook serve: %s %s: %s\n", opt, vals[i], strerror(errno));
                pdw_allowlist_free(l);
                return NULL;
            }
            rc = pdw_allowlist_add_text(l, text, len, &err);
            free(text);
        } else {
            rc = pdw_allowlist_add(l, vals[i], strlen(vals[i]), &err);
        }
        if (rc != 0) {
            fprintf(stderr, "pdwebhook serve: %s %s: %s\n", opt, vals[i], err.message);
            pdw_allowlist_free(l);
            return NULL;
        }
    }
    if (pdw_allowlist_count(l) == 0) {
        fprintf(stderr, "pdwebhook serve: %s: no address range given (the file is empty? "
                        "refresh it: scripts/update-pipedrive-ranges)\n", opt);
        pdw_allowlist_free(l);
        return NULL;
    }
    return l;
}

/* The connection's peer address as text ("" when unknown). */
static void peer_text(struct MHD_Connection *c, char *out, size_t cap)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ai ? ai->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
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
    if (r->peer[0]) {
        req->peer = r->peer;
        req->peer_len = strlen(r->peer);
    }
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
        if (s->allow)
            peer_text(c, r->peer, sizeof r->peer);
        if (!r->headers)
            r->headers = calloc(1, sizeof *r->headers); /* marks "first call done" */
        guard_head_done(c);
        const char *bad = framing_error(r);
        if (bad) {
            logf_("refused %s %s: %s; connection closed", method,
                  strcmp(bad, "malformed header name") == 0 ? "(header)" : "(framing)", bad);
            return refuse_and_close(s, c, r, method, 400, PDW_EHEADER);
        }
        pdw_request req;
        fill_request(r, method, &req);
        pdw_verdict v = PDW_VERDICT_INIT;
        /* the head (credentials included) is checked here, once: the body step trusts
         * only the pending object that a passing check makes */
        int rc = s->intake ? pdw_intake_begin(&r->ipending, s->intake, &req, &v)
                           : pdw_receiver_begin(&r->pending, s->rcv, &req, &v);
        if (rc != 0) {
            r->refused = 1; /* before reading the body */
            return answer(s, c, r, method, &v);
        }
        return MHD_YES;
    }
    if (*upload_size && r->too_large) {
        /* read and dropped, so that the 413 can be answered when the body ends; a sender
         * that keeps going far past the limit is cut off (and the body deadline holds) */
        r->dropped += *upload_size;
        *upload_size = 0;
        return r->dropped > 16 * s->cfg.max_body ? MHD_NO : MHD_YES;
    }
    if (r->too_large) /* the body ended: the 413, and the connection closed */
        return refuse_and_close(s, c, r, method, 413, PDW_ETOOLARGE);
    if (*upload_size) {
        size_t n = *upload_size;
        if (r->len + n > s->cfg.max_body) {
            /* more than the limit without a Content-Length that said so (a chunked body):
             * libmicrohttpd cannot answer before the body is read, so the rest is dropped
             * and the 413 goes out at its end */
            r->too_large = 1;
            r->dropped = n;
            *upload_size = 0;
            return MHD_YES;
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
    if (r->submitted) /* resumed: the intake's answer is final */
        return answer(s, c, r, method, &r->verdict);
    if (r->ipending) {
        int rc = submit(s, r, c);
        if (rc < 0)
            return MHD_NO;
        return rc ? MHD_YES : answer(s, c, r, method, &r->verdict);
    }
    if (!r->pending)
        return MHD_NO; /* no head check passed: never handled */
    pdw_receiver_finish(r->pending, r->body, r->len, &r->verdict, NULL);
    return answer(s, c, r, method, &r->verdict);
}

/* ---- limits ------------------------------------------------------------------------- */

#define CONNECTION_LIMIT 1000 /* open connections in all (per address: --max-connections-per-ip) */

static void guard_log(const char *line)
{
    logf_("%s", line);
}

static void reconcile_log(const char *line)
{
    logf_("%s", line);
}

/* Room for the connection limit's sockets, the journal and the handlers' pipes: the soft
 * limit of open files raised towards the hard one when it is lower (often 1024). */
static void raise_fd_limit(unsigned long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
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
        "  --exec CMD             run CMD (sh -c) per event, the event JSON line on stdin;\n"
        "                         exit 0 = handled (env: PDWEBHOOK_DELIVERY_KEY, _EVENT, _ATTEMPT)\n"
        "  --exec-timeout SECONDS kill a handler running longer (default 60)\n"
        "  --spool DIR            journal each delivery durably before answering 200; hand it\n"
        "                         on afterwards, exactly once, across crashes and restarts\n"
        "  --spool-max BYTES      answer 503 + Retry-After past this journal size (default: disk)\n"
        "  --spool-retain SECONDS keep handled deliveries this long, so that retries are still\n"
        "                         recognised after a restart (default 900)\n"
        "  --inflight-lease SECONDS  how long a delivery being accepted holds its dedup key\n"
        "                         before it is confirmed (default 60; 0 = default): after a\n"
        "                         crash in between, a retry is taken as new once it is over\n"
        "  --dead-letter FILE     where given-up events go (default DIR/deadletter.jsonl)\n"
        "  --workers N            handler threads; one entity stays in order (default 4)\n"
        "  --threads N            HTTP threads (epoll; default: the online CPUs, at most 16);\n"
        "                         with --sync or --redis, a thread per connection instead\n"
        "  --max-attempts N       tries per event before the dead letter (default 8)\n"
        "  --backoff-ms MS        first retry delay, doubled each time up to 60 s (default 1000)\n"
        "  --sync                 run the handlers inside the request and answer their result\n"
        "                         (--sync-failure-status, default 500): a failing or slow\n"
        "                         handler then feeds Pipedrive's ban counter\n"
        "  --redis URL            share dedup with other receivers and forward each spooled\n"
        "                         event to a Redis stream (redis://[[user]:password@]host[:port][/db];\n"
        "                         needs --spool); see pdwebhook consume\n"
        "  --stream NAME          the stream (default pdwebhook:events)\n"
        "  --redis-prefix P       prefix of pdwebhook's Redis keys (default pdwebhook:)\n"
        "  --stream-maxlen N      trim the stream to about N entries (default: no trimming)\n"
        "  --tls-cert FILE --tls-key FILE   serve HTTPS\n"
        "  --allow-from FILE|CIDR only these source addresses may deliver (403 for others;\n"
        "                         repeatable; a file of CIDRs, # comments: Pipedrive's list\n"
        "                         is dist/pipedrive-ip-ranges.txt)\n"
        "  --trusted-proxy FILE|CIDR  a reverse proxy whose X-Forwarded-For names the client\n"
        "  --max-connections-per-ip N  connections one client address may hold (default 32;\n"
        "                         0 = no limit, e.g. behind a reverse proxy that limits)\n"
        "  --header-timeout SECONDS  a request's whole head must arrive within this (default\n"
        "                         10; 0 = none): a client trickling bytes cannot hold a slot\n"
        "  --body-timeout SECONDS the body must be complete this long after the head\n"
        "                         (default 20; 0 = none)\n"
        );
    fprintf(out,
        "  --reconcile            read what Pipedrive dropped from its API by itself: predicted\n"
        "                         ban windows once over, and this receiver's downtime when\n"
        "                         longer than --retry-horizon (needs --spool and a token)\n"
        "  --api-token T          Pipedrive API token (default $PIPEDRIVE_API_TOKEN)\n"
        "  --oauth-token T        or an OAuth token (default $PIPEDRIVE_OAUTH_TOKEN)\n"
        "  --base-url URL         API base (default $PIPEDRIVE_BASE_URL, else Pipedrive's)\n"
        "  --reconcile-objects L  objects reconciled (default: the plan's, else all)\n"
        "  --retry-horizon SECONDS  downtime Pipedrive's retries cover (default 200)\n"
        "  --watch-subscriptions  list the account's webhooks every --watch-interval; re-create\n"
        "                         a missing one of --public-url and reconcile its gap\n"
        "  --watch-interval SECONDS  (default 300)\n"
        "  --public-url URL       the URL Pipedrive delivers to (as subscriptions --url)\n"
        "  --watch-events LIST    the webhooks that must exist (as subscriptions --events)\n"
        "  --webhook-version V    their version, 1.0 or 2.0 (default 2.0)\n"
        "GET /healthz answers counters, the spool and the ban model as JSON.\n"
        "SIGTERM/SIGINT: finish in-flight requests and handlers, flush, exit 0.\n"
        "Without credentials a random pair is generated and printed once at start.\n");
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

static int add_pair(char *user, char *password, void *ctx)
{
    return add_credential(ctx, user, password);
}

static int load_credentials(config *c, const char *path)
{
    char *text = pdw_cli_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "pdwebhook serve: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    c->cred_storage[c->ncreds] = text; /* owned by the first pair from this file */
    return pdw_cli_parse_credentials(text, path, "pdwebhook serve", add_pair, c) < 0 ? -1 : 0;
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
    c->exec_timeout = 60;
    c->spool_retain_s = 900;
    c->sync_failure_status = 500;
    c->per_ip = 32;
    c->header_timeout_s = 10;
    c->body_timeout_s = 20;
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
        if ((strcmp(a, "--allow-from") == 0 || strcmp(a, "--trusted-proxy") == 0) && v) {
            int allow = strcmp(a, "--allow-from") == 0;
            size_t *n = allow ? &c->nallow : &c->ntrusted;
            if (*n == 16) {
                fprintf(stderr, "pdwebhook serve: %s: at most 16 (use a file)\n", a);
                return -1;
            }
            (allow ? c->allow_from : c->trusted_proxy)[(*n)++] = v;
            i++;
            continue;
        }
        OPT("--user", user)
        OPT("--password", password)
        OPT("--credentials", cred_file)
        OPT("--token", c->token)
        OPT("--output", c->output)
        OPT("--exec", c->exec)
        OPT("--spool", c->spool)
        OPT("--tls-cert", c->tls_cert)
        OPT("--tls-key", c->tls_key)
        OPT("--dead-letter", c->dead_letter)
        OPT("--redis", c->redis)
        OPT("--stream", c->stream)
        OPT("--redis-prefix", c->redis_prefix)
        OPT("--api-token", c->api_token)
        OPT("--oauth-token", c->oauth_token)
        OPT("--base-url", c->base_url)
        OPT("--reconcile-objects", c->reconcile_objects)
        OPT("--public-url", c->public_url)
        OPT("--watch-events", c->watch_events)
        OPT("--webhook-version", c->webhook_version)
#undef OPT
#define NUM(name, field, lo, hi)                                                             \
    if (strcmp(a, name) == 0) {                                                              \
        char *end_;                                                                          \
        unsigned long long n_ = v ? strtoull(v, &end_, 10) : 0;                              \
        if (!v || *end_ || n_ + 1 <= (lo) || n_ > (hi)) {                                    \
            fprintf(stderr, "pdwebhook serve: %s takes a number from %llu to %llu\n", name,  \
                    (unsigned long long)(lo), (unsigned long long)(hi));                     \
            return -1;                                                                       \
        }                                                                                    \
        field = (__typeof__(field))n_;                                                       \
        i++;                                                                                 \
        continue;                                                                            \
    }
        NUM("--exec-timeout", c->exec_timeout, 1, 86400)
        NUM("--workers", c->workers, 1, 256)
        NUM("--threads", c->threads, 1, 256)
        NUM("--max-attempts", c->max_attempts, 1, 1000)
        NUM("--backoff-ms", c->backoff_ms, 1, 3600000)
        NUM("--spool-max", c->spool_max, 4096, 1ull << 50)
        NUM("--spool-retain", c->spool_retain_s, 0, 7 * 86400)
        NUM("--inflight-lease", c->inflight_lease_s, 0, 86400)
        NUM("--sync-failure-status", c->sync_failure_status, 200, 599)
        NUM("--stream-maxlen", c->stream_maxlen, 1, 1ull << 62)
        NUM("--max-connections-per-ip", c->per_ip, 0, 100000)
        NUM("--header-timeout", c->header_timeout_s, 0, 3600)
        NUM("--body-timeout", c->body_timeout_s, 0, 3600)
        NUM("--retry-horizon", c->retry_horizon_s, 1, 86400)
        NUM("--watch-interval", c->watch_interval_s, 1, 86400)
#undef NUM
        if (strcmp(a, "--max-body") == 0 && v) {
            if (parse_size(v, &c->max_body) < 0) {
                fprintf(stderr, "pdwebhook serve: --max-body takes a positive byte count\n");
                return -1;
            }
            i++;
        } else if (strcmp(a, "--insecure-no-auth") == 0) {
            c->insecure = 1;
        } else if (strcmp(a, "--sync") == 0) {
            c->sync_mode = 1;
        } else if (strcmp(a, "--reconcile") == 0) {
            c->reconcile = 1;
        } else if (strcmp(a, "--watch-subscriptions") == 0) {
            c->watch = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "pdwebhook serve: unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!c->threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
    }
    if (c->sync_mode && c->spool) {
        fprintf(stderr, "pdwebhook serve: --sync hands events on inside the request; it does "
                        "not go with --spool\n");
        return -1;
    }
    if (c->redis && !c->spool) {
        fprintf(stderr, "pdwebhook serve: --redis needs --spool DIR: deliveries are journaled "
                        "locally before the answer and forwarded to Redis from there\n");
        return -1;
    }
    if ((c->stream || c->redis_prefix || c->stream_maxlen) && !c->redis) {
        fprintf(stderr, "pdwebhook serve: --stream, --redis-prefix and --stream-maxlen go "
                        "with --redis\n");
        return -1;
    }
    if ((c->reconcile || c->watch) && c->sync_mode) {
        fprintf(stderr, "pdwebhook serve: --reconcile and --watch-subscriptions hand events "
                        "on through the spool; they do not go with --sync\n");
        return -1;
    }
    if (c->reconcile || c->watch || c->public_url || c->watch_events) {
        autorec_config ac = { c->spool, NULL, NULL, NULL, c->reconcile_objects, 0,
                              c->reconcile, c->watch, 0, c->public_url, c->watch_events,
                              c->webhook_version, NULL, NULL, NULL, NULL, NULL };
        if (autorec_check(&ac) < 0)
            return -1;
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

static void shutdown_all(server *s)
{
    autorec_stop(s->autorec); /* it hands events to the intake: first */
    s->autorec = NULL;
    serve_redis_cancel(s->redis); /* forwarding waits for Redis no longer */
    pdw_intake_stop(s->intake);   /* running handlers finish; markers flushed */
    pdw_intake_free(s->intake);   /* the journal closed */
    sinks_close(s->sinks);
    pdw_receiver_free(s->rcv);
    pdw_dedup_store_free(s->dedup); /* never handed on: before the Redis connections */
    serve_redis_close(s->redis);
    pdw_health_free(s->health);
    guard_free(s->guard);
    s->guard = NULL;
    pdw_allowlist_free(s->allow); /* after the receiver: it borrowed them */
    pdw_allowlist_free(s->proxies);
    if (s->blocking) {
        pthread_cond_destroy(&s->wait_cond);
        pthread_mutex_destroy(&s->wait_lock);
    }
    for (size_t i = 0; i < MAX_CREDENTIALS; i++)
        free(s->cfg.cred_storage[i]);
}

int pdw_cmd_serve(int argc, char **argv)
{
    static server srv;
    server *s = &srv;
    int rc = parse_args(&s->cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    config *c = &s->cfg;
    pdw_error err;
    pdw_error_clear(&err);

    /* Signals are taken by sigwait in this thread only; threads started later inherit. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *cert = NULL, *key = NULL;
    if (c->tls_cert && (!(cert = pdw_cli_read_file(c->tls_cert, NULL)) || !(key = pdw_cli_read_file(c->tls_key, NULL)))) {
        fprintf(stderr, "pdwebhook serve: cannot read the TLS certificate or key\n");
        return 2;
    }
    pdw_health_options ho = PDW_HEALTH_OPTIONS_INIT;
    ho.on_possible_loss = on_possible_loss;
    ho.user = s;
    pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    if (pdw_health_new(&s->health, &ho, &err) != 0 ||
        pdw_dedup_memory_new(&s->dedup, &mo, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: %s\n", err.message);
        return 2;
    }

    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.credentials = c->creds;
    o.num_credentials = c->ncreds;
    o.query_token = c->token;
    o.insecure_no_auth = c->insecure;
    o.max_body = c->max_body;
    o.inflight_lease_ms = c->inflight_lease_s * 1000ull;
    if (c->nallow) {
        s->allow = load_allowlist("--allow-from", c->allow_from, c->nallow);
        if (!s->allow)
            return 2;
        o.allowlist = s->allow;
    }
    if (c->ntrusted) {
        s->proxies = load_allowlist("--trusted-proxy", c->trusted_proxy, c->ntrusted);
        if (!s->proxies)
            return 2;
        o.trusted_proxies = s->proxies;
    }
    if (c->redis) { /* Redis's dedup, the local store as its fallback (which it takes) */
        serve_redis_config rcfg = { c->redis, c->stream, c->redis_prefix, c->stream_maxlen,
                                    s->dedup, NULL };
        s->dedup = NULL;
        if (serve_redis_open(&s->redis, &rcfg) != 0) {
            shutdown_all(s);
            return 2;
        }
        s->dedup = serve_redis_take_dedup(s->redis);
    }
    o.dedup = s->dedup;
    s->dedup = NULL; /* the receiver's (or the intake's) from here on, whatever happens */

    char markers[4200], dead[4200];
    if (c->sync_mode) {
        o.handler_error_status = c->sync_failure_status;
        if (pdw_receiver_new(&s->rcv, &o, &err) != 0) {
            fprintf(stderr, "pdwebhook serve: %s\n", err.message);
            shutdown_all(s);
            return 2;
        }
    } else {
        /* the intake opens the journal: what it holds is remembered in dedup before any
         * request, and handed on at start */
        pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
        so.max_bytes = c->spool_max;
        so.retain_ms = c->spool_retain_s * 1000ull;
        if (c->spool) {
            snprintf(markers, sizeof markers, "%s/exec-markers", c->spool);
            snprintf(dead, sizeof dead, "%s/deadletter.jsonl", c->spool);
            if (!c->dead_letter)
                c->dead_letter = dead;
        }
        pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
        wo.handle = handle_delivery; /* the Redis stream first, then --output / --exec */
        wo.handle_user = s;
        wo.sync = sync_sinks;
        wo.sync_user = s;
        wo.threads = c->workers;
        wo.max_attempts = c->max_attempts;
        wo.backoff_base_ms = c->backoff_ms;
        wo.dead_letter_path = c->dead_letter;
        wo.on_dead_letter = on_dead_letter;
        wo.dead_letter_user = s;
        pdw_intake_options io = PDW_INTAKE_OPTIONS_INIT;
        io.receiver = &o;
        io.spool_dir = c->spool;
        io.spool = &so;
        io.worker = &wo;
        io.on_error = on_intake_error;
        io.error_user = s;
        if (pdw_intake_new(&s->intake, &io, &err) != 0) {
            if (c->spool && (err.code == PDW_ELOCKED || err.code == PDW_EIO))
                fprintf(stderr, "pdwebhook serve: spool %s: %s\n", c->spool, err.message);
            else
                fprintf(stderr, "pdwebhook serve: %s\n", err.message);
            shutdown_all(s);
            return 2;
        }
        s->rcv = NULL; /* the intake's own */
        pdw_intake_stats is;
        memset(&is, 0, sizeof is);
        is.version = PDW_INTAKE_STATS_VERSION;
        pdw_intake_get_stats(s->intake, &is);
        if (is.recovery.torn_bytes || is.recovery.skipped_bytes)
            logf_("spool: cut a torn tail of %llu bytes, skipped %llu corrupt bytes",
                  (unsigned long long)is.recovery.torn_bytes,
                  (unsigned long long)is.recovery.skipped_bytes);
    }
    claim_ctx cc = { NULL, 0, 0 };
    if (pdw_intake_spool(s->intake))
        pdw_spool_foreach_pending(pdw_intake_spool(s->intake), collect_pending, &cc);
    sinks_config sc = { c->output, c->exec, c->exec_timeout, c->spool ? markers : NULL,
                        c->max_attempts ? c->max_attempts : 8 };
    if (sinks_open(&s->sinks, &sc) != 0) {
        free(cc.ids);
        shutdown_all(s);
        return 2;
    }
    sinks_clean_markers(s->sinks, id_pending, &cc);
    free(cc.ids);
    serve_redis_set_sinks(s->redis, s->sinks);

    if (c->sync_mode) {
        pdw_router_on(pdw_receiver_router(s->rcv), "*.*", sync_handler, s, NULL);
        pdw_router_freeze(pdw_receiver_router(s->rcv));
    } else {
        /* no handler on the router: the worker hands deliveries to the sinks */
        pdw_router_freeze(pdw_receiver_router(pdw_intake_receiver(s->intake)));
        long n = 0;
        if (pdw_intake_start(s->intake, &n, &err) != 0) {
            fprintf(stderr, "pdwebhook serve: %s\n", err.message);
            shutdown_all(s);
            return 2;
        }
        if (n > 0)
            logf_("recovered %ld spooled deliveries not yet handed on", n);
    }
    if (c->reconcile || c->watch) { /* autoreconcile.h */
        autorec_config ac = { c->spool, c->base_url, c->api_token, c->oauth_token,
                              c->reconcile_objects, c->retry_horizon_s, c->reconcile, c->watch,
                              c->watch_interval_s, c->public_url, c->watch_events,
                              c->webhook_version, c->ncreds ? c->creds[0].user : NULL,
                              c->ncreds ? c->creds[0].password : NULL, s->intake, s->health,
                              reconcile_log };
        if (autorec_start(&s->autorec, &ac) != 0) {
            shutdown_all(s);
            return 2;
        }
    }

    char shown[300];
    int fd = open_listener(c->listen, shown, sizeof shown);
    if (fd < 0) {
        shutdown_all(s);
        return 2;
    }
    /* An epoll thread pool: no request blocks its thread (a spooled one is suspended until
     * the intake's flush). With --sync the handlers run inside the request and with
     * --redis dedup waits for the network: there, a thread per connection, so that one
     * slow request never holds up others (a spooled one then waits in its thread). */
    int pool = !c->sync_mode && !c->redis;
    s->blocking = !pool;
    if (s->blocking && (pthread_mutex_init(&s->wait_lock, NULL) != 0 ||
                        pthread_cond_init(&s->wait_cond, NULL) != 0)) {
        fprintf(stderr, "pdwebhook serve: cannot create a lock\n");
        close(fd);
        s->blocking = 0;
        shutdown_all(s);
        return 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
    flags |= pool ? MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME
                  : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    if (cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem extra[4];
    size_t nx = 0;
    if (pool && c->threads > 1)
        extra[nx++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, c->threads, NULL };
    if (cert) {
        extra[nx++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cert };
        extra[nx++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, key };
    }
    extra[nx] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    guard_config gc = { c->per_ip, c->header_timeout_s * 1000u, c->body_timeout_s * 1000u,
                        guard_log };
    if (guard_new(&s->guard, &gc) != 0) {
        fprintf(stderr, "pdwebhook serve: cannot start the connection guard\n");
        close(fd);
        shutdown_all(s);
        return 2;
    }
    raise_fd_limit(CONNECTION_LIMIT + 256);
    s->daemon = MHD_start_daemon(
        flags, 0, guard_accept, s->guard, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, s, MHD_OPTION_NOTIFY_COMPLETED, request_done,
        s, MHD_OPTION_NOTIFY_CONNECTION, guard_notify, s->guard,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONNECTION_LIMIT, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "pdwebhook serve: cannot start the HTTP server%s\n",
                cert ? " (is libmicrohttpd built with TLS?)" : "");
        close(fd);
        shutdown_all(s);
        return 2;
    }
    printf("listening on %s://%s%s\n", cert ? "https" : "http", shown, c->path ? c->path : "/");
    fflush(stdout);
    logf_("pdwebhook %s serving on %s (%zu credential pair(s)%s%s%s%s%s)", pdw_version(), shown,
          c->ncreds, c->token ? ", query token" : "", c->spool ? ", spool " : "",
          c->spool ? c->spool : "", c->sync_mode ? ", synchronous handlers" : "",
          c->insecure ? ", NO AUTH" : "");
    logf_("point Pipedrive at %s://<your public host>%s (Settings > Tools and apps > "
          "Webhooks, HTTP auth with the credentials above); for deal stage moves subscribe "
          "to updated.deal / change.deal, not updated.stage",
          cert ? "https" : "https", c->path ? c->path : "/");

    int sig;
    sigwait(&sigs, &sig);
    logf_("signal %d: finishing in-flight requests and handlers", sig);
    /* the last flush answers every suspended request (MHD_stop_daemon() wants none); who
     * comes later flushes for itself. Forwarding waits for Redis no longer: the worker
     * stops with the intake. */
    autorec_stop(s->autorec); /* a run in progress stays pending */
    s->autorec = NULL;
    serve_redis_cancel(s->redis);
    pdw_intake_stop(s->intake);
    MHD_stop_daemon(s->daemon); /* waits for the request threads */
    shutdown_all(s);
    free(cert);
    free(key);
    logf_("stopped");
    return 0;
}
