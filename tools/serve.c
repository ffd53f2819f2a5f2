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
#include "execrun.h"
#include "log.h"
#include "options.h"
#include "serve.h"
#include "serve_metrics.h"
#include "sinks.h"
#include "guard.h"
#include "serve_redis.h"
#include "autoreconcile.h"

/* ---- state ------------------------------------------------------------------------ */

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
    struct MHD_Daemon *admin; /* --admin-listen: /healthz and /metrics */
    stats stats;
    serve_requests requests;  /* by status and reason, for /metrics */
} server;

#define logf_(...) log_msg(LL_INFO, __VA_ARGS__)

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
    log_msg(LL_ERROR, "spool: %s", message && message[0] ? message : pdw_strerror(code));
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
        log_msg(LL_WARN, "handler failed for %s %s: %s", pdw_event_name(ev), pdw_event_delivery_key(ev),
              errbuf);
    }
    return rc;
}

static void on_dead_letter(const pdw_spool_record *rec, unsigned attempts, const char *error,
                           void *user)
{
    server *s = user;
    atomic_fetch_add(&s->stats.dead_letters, 1);
    log_msg(LL_WARN, "dead letter: id=%llu key=%.*s after %u attempt(s): %s", (unsigned long long)rec->id,
          (int)rec->key_len, rec->key, attempts, error);
}

static void on_possible_loss(const char *webhook_id, int64_t from_ms, int64_t to_ms, void *user)
{
    server *s = user;
    autorec_possible_loss(s->autorec, webhook_id, from_ms, to_ms); /* --reconcile */
    log_msg(LL_WARN, "WARNING: webhook %s has failed 10 first attempts: Pipedrive bans it for 30 minutes "
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
    char log_peer[64]; /* the client's address:port, for the log */
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
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char h[48], pt[8];
        if (ci && ci->client_addr &&
            getnameinfo(ci->client_addr,
                        ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in),
                        h, sizeof h, pt, sizeof pt, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(r->log_peer, sizeof r->log_peer, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h,
                     pt);
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

/* The /healthz object (also what /metrics reads). */
static json_t *health_object(server *s, int self)
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
    json_object_set_new(o, "stale_skipped", N(sinks_stale_skipped(s->sinks)));
    json_object_set_new(o, "rejected", N(atomic_load(&st->rejected)));
    for (int i = 1; i < NREASONS; i++) {
        unsigned long long n = atomic_load(&st->by_reason[i]);
        if (n)
            json_object_set_new(reasons, pdw_err_name(-i), N(n));
    }
    json_object_set_new(o, "rejected_by_reason", reasons);
    /* this health request itself is not counted as in flight (self: 1 on the delivery
     * port, 0 on the admin listener) */
    json_object_set_new(o, "in_flight", N(atomic_load(&st->in_flight) - (unsigned)self));
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
    if (s->intake) {
        json_t *in = json_object();
        json_object_set_new(in, "awaiting_flush", N(is.waiting));
        json_object_set_new(in, "durable", N(is.durable));
        json_object_set_new(in, "failed", N(is.failed));
        json_object_set_new(o, "intake", in);
    }
#undef N
    return o;
}

/* "2024-05-01T12:00:00.123Z" */
static void rfc3339(int64_t ms, char *out, size_t cap)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* Next to every "..._ms" that is a time (epoch milliseconds), "..._time" in RFC 3339. */
static void add_times(json_t *j)
{
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            add_times(json_array_get(j, i));
        return;
    }
    if (!json_is_object(j))
        return;
    const char *key;
    json_t *v;
    void *tmp;
    json_t *extra = json_object();
    json_object_foreach_safe(j, tmp, key, v) {
        size_t n = strlen(key);
        if (json_is_integer(v) && n > 3 && n < 60 && strcmp(key + n - 3, "_ms") == 0 &&
            json_integer_value(v) > 100000000000LL) { /* after 1973: a time, not a span */
            char name[64], t[40];
            snprintf(name, sizeof name, "%.*s_time", (int)(n - 3), key);
            rfc3339((int64_t)json_integer_value(v), t, sizeof t);
            json_object_set_new(extra, name, json_string(t));
        } else {
            add_times(v);
        }
    }
    json_object_update(j, extra);
    json_decref(extra);
}

static enum MHD_Result send_health(server *s, struct MHD_Connection *c, int self)
{
    json_t *o = health_object(s, self);
    char now[40];
    rfc3339(wall_ms(), now, sizeof now);
    json_object_set_new(o, "time", json_string(now));
    add_times(o);
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
    if (v->reason <= 0 && -v->reason < SERVE_NREASONS)
        atomic_fetch_add(&s->requests.count[serve_status_index(v->status)][-v->reason], 1);
    double took = r ? now_ms() - r->started : 0.0;
    /* Only Pipedrive's deliveries move the ban model, as only they count at Pipedrive:
     * authenticated and parsed, with a webhook id. A scanner's GET, an unauthenticated
     * POST or a body without a webhook id is counted apart. */
    if (v->webhook_id[0])
        pdw_health_record(s->health, v->webhook_id, v->attempt, v->status, (uint64_t)took,
                          wall_ms());
    else
        atomic_fetch_add(&st->not_pipedrive, 1);
    /* never the query (it may hold the token) nor any header */
    const char *q = r && r->uri ? strchr(r->uri, '?') : NULL;
    size_t pathlen = r && r->uri ? (q ? (size_t)(q - r->uri) : strlen(r->uri)) : 0;
    log_access a = { method, r && r->uri ? r->uri : "", pathlen, v->status,
                     pdw_err_name(v->reason), v->event[0] ? v->event : NULL,
                     v->delivery_key[0] ? v->delivery_key : NULL,
                     v->webhook_id[0] ? v->webhook_id : NULL, took,
                     r && r->log_peer[0] ? r->log_peer : NULL, NULL, -1 };
    /* a body refused as malformed: the parser's message and byte offset (the verdict
     * carries the code only; parsing it again costs what the refusal cost) */
    pdw_error perr;
    if (v->status == 400 && r && r->body && log_enabled(LL_WARN)) {
        pdw_event *ev = NULL;
        pdw_error_clear(&perr);
        if (pdw_event_parse(&ev, r->body, r->len, NULL, &perr) != 0) {
            a.error = perr.message;
            a.offset = perr.offset;
        }
        pdw_event_free(ev);
    }
    log_access_line(&a);
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

    if (first && !s->cfg.admin_listen && strcmp(url, "/healthz") == 0 &&
        strcmp(method, "GET") == 0)
        return send_health(s, c, 1);
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

/* Bind HOST:PORT ourselves (so that port 0 works and the real port can be printed). opt
 * names the option in messages. */
static int open_listener(const char *opt, const char *listen_on, char *shown, size_t shown_cap)
{
    char host[256];
    unsigned port;
    const char *why;
    if (pdw_opt_hostport(listen_on, host, sizeof host, &port, &why) != 0) {
        fprintf(stderr, "pdwebhook serve: %s '%s': %s\n", opt, listen_on, why);
        return -1;
    }
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(*host ? host : NULL, ps, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "pdwebhook serve: %s '%s': %s\n", opt, listen_on, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "pdwebhook serve: %s '%s': cannot listen there: %s\n", opt, listen_on,
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

/* ---- the admin listener: GET /healthz and /metrics ---------------------------------- */

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload_data, (void)upload_size, (void)con_cls;
    server *s = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char na[] = "{\"ok\":false,\"error\":\"method not allowed\"}";
        return send_buffer(c, 405, na, sizeof na - 1, "application/json", NULL);
    }
    if (strcmp(url, "/healthz") == 0)
        return send_health(s, c, 0);
    if (strcmp(url, "/metrics") == 0) {
        json_t *o = health_object(s, 0);
        size_t len = 0;
        char *text = o ? serve_metrics(o, &s->requests, s->health, wall_ms(), &len) : NULL;
        json_decref(o);
        enum MHD_Result rc =
            text ? send_buffer(c, 200, text, len, "text/plain; version=0.0.4; charset=utf-8",
                               NULL)
                 : MHD_NO;
        free(text);
        return rc;
    }
    static const char nf[] = "{\"ok\":false,\"error\":\"not found: GET /healthz or /metrics\"}";
    return send_buffer(c, 404, nf, sizeof nf - 1, "application/json", NULL);
}

/* ---- SIGHUP: reopen what logrotate moved -------------------------------------------- */

/* The dead-letter file is held open by the library's worker: a new file at the same path
 * is put in place of its descriptor (found by the inode it had) with dup2(), atomically
 * for the writer. */
static dev_t dl_dev;
static ino_t dl_ino;

static void remember_dead_letter(const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0) {
        dl_dev = st.st_dev;
        dl_ino = st.st_ino;
    }
}

static int reopen_dead_letter(const char *path)
{
    if (!path || !dl_ino)
        return 0;
    struct stat now;
    if (stat(path, &now) == 0 && now.st_dev == dl_dev && now.st_ino == dl_ino)
        return 0; /* not moved */
    int old = -1;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct stat st;
        if (*end || fd < 3 || fd == dirfd(d) || fstat((int)fd, &st) != 0)
            continue;
        if (st.st_dev == dl_dev && st.st_ino == dl_ino && S_ISREG(st.st_mode)) {
            old = (int)fd;
            break;
        }
    }
    if (d)
        closedir(d);
    if (old < 0)
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || fdatasync(old) != 0 || dup2(fd, old) < 0 ||
        fcntl(old, F_SETFD, FD_CLOEXEC) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        log_msg(LL_ERROR, "SIGHUP: cannot reopen the dead-letter file %s: %s", path,
                strerror(err));
        return -1;
    }
    close(fd);
    remember_dead_letter(path);
    return 0;
}

static void on_sighup(server *s)
{
    int bad = log_reopen() != 0;
    if (s->sinks && sinks_reopen(s->sinks) != 0)
        bad = 1;
    if (reopen_dead_letter(s->cfg.dead_letter) != 0)
        bad = 1;
    log_msg(bad ? LL_WARN : LL_INFO, "SIGHUP: reopened%s%s%s%s%s%s", s->cfg.log_file ? " the log " : "",
            s->cfg.log_file ? s->cfg.log_file : "", s->cfg.output ? ", --output " : "",
            s->cfg.output ? s->cfg.output : "", s->cfg.dead_letter ? ", the dead letters " : "",
            s->cfg.dead_letter ? s->cfg.dead_letter : "");
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
    serve_config_free(&s->cfg);
}

/* A file serve must read: its content, or NULL after printing which option, which file and
 * why. */
static char *read_named(const char *opt, const char *path)
{
    char *text = pdw_cli_read_file(path, NULL);
    if (!text)
        fprintf(stderr, "pdwebhook serve: %s %s: cannot read it: %s\n", opt, path,
                strerror(errno));
    return text;
}

int pdw_cmd_serve(int argc, char **argv)
{
    static server srv;
    server *s = &srv;
    int rc = serve_config_load(&s->cfg, argc, argv);
    if (rc != 0) {
        serve_config_free(&s->cfg);
        return rc > 0 ? 0 : 2;
    }
    config *c = &s->cfg;
    pdw_error err;
    pdw_error_clear(&err);

    /* Signals are taken by sigwait in this thread only; threads started later inherit. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *cert = NULL, *key = NULL;
    if (c->tls_cert && (!(cert = read_named("--tls-cert", c->tls_cert)) ||
                        !(key = read_named("--tls-key", c->tls_key)))) {
        free(cert);
        serve_config_free(c);
        return 2;
    }
    if (log_setup(c->log_json, c->log_level, c->log_file) != 0) {
        free(cert);
        free(key);
        serve_config_free(c);
        return 2;
    }
    /* a handler's output: through a pipe into the log, each line prefixed with the event's
     * spool id, at most LOG_EXEC_CAP bytes per run */
    pdw_cli_exec_set_sink(log_exec_output, NULL, LOG_EXEC_CAP);
    if (c->config_file)
        logf_("configuration file %s", c->config_file);
    pdw_health_options ho = PDW_HEALTH_OPTIONS_INIT;
    ho.on_possible_loss = on_possible_loss;
    ho.user = s;
    pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    mo.capacity = (size_t)c->dedup_capacity;
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
        so.segment_bytes = c->segment_size;
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
        io.dedup_change = c->dedup_versions;
        if (pdw_intake_new(&s->intake, &io, &err) != 0) {
            if (c->spool)
                fprintf(stderr, "pdwebhook serve: --spool %s: %s\n", c->spool, err.message);
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
                        c->max_attempts ? c->max_attempts : 8, c->skip_stale };
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
        remember_dead_letter(c->dead_letter); /* the worker opened it */
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

    char shown[300], admin_shown[300] = "";
    int fd = open_listener("--listen", c->listen, shown, sizeof shown);
    int afd = fd >= 0 && c->admin_listen
                  ? open_listener("--admin-listen", c->admin_listen, admin_shown,
                                  sizeof admin_shown)
                  : -1;
    if (fd < 0 || (c->admin_listen && afd < 0)) {
        if (fd >= 0)
            close(fd);
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
        if (afd >= 0)
            close(afd);
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
                cert ? " (is libmicrohttpd built with TLS? check --tls-cert and --tls-key: "
                       "PEM certificate and its private key)"
                     : "");
        close(fd);
        if (afd >= 0)
            close(afd);
        shutdown_all(s);
        return 2;
    }
    if (afd >= 0) {
        /* plain HTTP, one thread, a few connections: for the monitoring host */
        s->admin = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
                                    NULL, on_admin, s, MHD_OPTION_LISTEN_SOCKET, afd,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                    MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_END);
        if (!s->admin) {
            fprintf(stderr, "pdwebhook serve: --admin-listen: cannot start the HTTP server\n");
            close(afd);
            pdw_intake_stop(s->intake);
            MHD_stop_daemon(s->daemon);
            shutdown_all(s);
            return 2;
        }
    }
    printf("listening on %s://%s%s\n", cert ? "https" : "http", shown, c->path ? c->path : "/");
    if (s->admin)
        printf("admin on http://%s/ (GET /healthz, /metrics)\n", admin_shown);
    fflush(stdout);
    logf_("pdwebhook %s serving on %s (%zu credential pair(s)%s%s%s%s%s)", pdw_version(), shown,
          c->ncreds, c->token ? ", query token" : "", c->spool ? ", spool " : "",
          c->spool ? c->spool : "", c->sync_mode ? ", synchronous handlers" : "",
          c->insecure ? ", NO AUTH" : "");
    if (c->spool_defaulted)
        logf_("spool: %s (the default state directory; --spool DIR to choose another)",
              c->spool);
    if (c->memory)
        log_msg(LL_WARN, "WARNING: --memory: accepted deliveries are kept in memory only; a "
                         "crash, kill -9 or power loss loses every one not yet handed on "
                         "(Pipedrive will not send them again)");
    if (s->admin)
        logf_("admin listener on %s: GET /healthz, /metrics", admin_shown);
    logf_("point Pipedrive at %s://<your public host>%s (Settings > Tools and apps > "
          "Webhooks, HTTP auth with the credentials above); for deal stage moves subscribe "
          "to updated.deal / change.deal, not updated.stage",
          cert ? "https" : "https", c->path ? c->path : "/");

    int sig;
    for (;;) {
        struct timespec tick = { 1, 0 };
        sig = sigtimedwait(&sigs, NULL, &tick);
        log_tick(0); /* the "suppressed" lines of refusals that stopped */
        if (sig == SIGHUP) {
            on_sighup(s);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    logf_("signal %d: finishing in-flight requests and handlers", sig);
    /* the last flush answers every suspended request (MHD_stop_daemon() wants none); who
     * comes later flushes for itself. Forwarding waits for Redis no longer: the worker
     * stops with the intake. */
    autorec_stop(s->autorec); /* a run in progress stays pending */
    s->autorec = NULL;
    serve_redis_cancel(s->redis);
    pdw_intake_stop(s->intake);
    if (s->admin)
        MHD_stop_daemon(s->admin);
    MHD_stop_daemon(s->daemon); /* waits for the request threads */
    log_tick(1); /* the counts of refusals still suppressed */
    shutdown_all(s);
    free(cert);
    free(key);
    logf_("stopped");
    return 0;
}
