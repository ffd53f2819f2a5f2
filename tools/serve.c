/* pdwebhook serve: a ready Pipedrive endpoint on libmicrohttpd.
 *
 * The request path runs the library's pipeline (auth, parse, dedup). With --spool DIR an
 * accepted delivery is appended to the durable journal (group commit: concurrent requests
 * share one fdatasync) and answered 200 only once it is on disk; the worker then hands it
 * to --output and --exec, retrying with backoff and dead-lettering what keeps failing, so a
 * slow or failing handler never delays an answer to Pipedrive. Without --spool the same
 * worker runs from memory (nothing survives a crash). --sync runs the sinks inside the
 * request instead and answers their result (a failing handler then costs ban points). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "sinks.h"
#include "serve_redis.h"

#define MAX_CREDENTIALS 64
#define RETRY_AFTER_S 3 /* Retry-After on 503: Pipedrive's own retries come at 3, 30, 150 s */
#define RETRY_AFTER_TEXT "3"
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
    pdw_credential creds[MAX_CREDENTIALS];
    size_t ncreds;
    char *cred_storage[MAX_CREDENTIALS]; /* lines read from --credentials, or generated */
} config;

/* Counters for /healthz; reasons indexed by -code. */
#define NREASONS 64
typedef struct stats {
    atomic_ullong received, accepted, duplicates, rejected, handler_failures, dead_letters;
    atomic_ullong spool_failures, in_flight;
    atomic_int spool_full; /* the last append was refused for space */
    atomic_ullong by_reason[NREASONS];
} stats;

typedef struct request_ctx request_ctx;

/* Group commit without a blocked thread per request (see the commit section below): the
 * requests whose delivery was appended and not yet flushed, suspended in libmicrohttpd. */
typedef struct committer {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a request joined the queue, or stop */
    request_ctx *head, *tail; /* suspended, waiting for the next flush */
    int stopping;            /* no more suspensions: late requests flush for themselves */
    int started;
    pthread_t thread;
} committer;

typedef struct server {
    config cfg;
    pdw_receiver *rcv;
    pdw_dedup_memory *dedup;
    int async_commit;      /* spool appends do not wait: requests suspend (committer) */
    committer commit;
    pdw_spool *spool;
    pdw_worker *worker;
    pdw_health *health;
    sinks *sinks;
    serve_redis *redis;
    struct MHD_Daemon *daemon;
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

/* ---- intake: the accept hook and the handlers --------------------------------------- */

static int append_async(server *s, request_ctx *r, const pdw_event *ev,
                        pdw_spool_record *rec);

static void spool_failed(server *s, int rc, const char *message)
{
    atomic_fetch_add(&s->stats.spool_failures, 1);
    logf_("spool: %s", message && message[0] ? message : pdw_strerror(rc));
}


/* The library's accept hook (asynchronous mode): journal the delivery (durable when the
 * call returns), then queue it for the worker. A full disk answers 503 + Retry-After.
 * In async commit the append does not wait: the request is answered after the flush. */
static int accept_event(const pdw_event *ev, void *request_user, void *user)
{
    server *s = user;
    request_ctx *r = request_user; /* pdw_request::user, given to pdw_receiver_begin() */
    pdw_spool_record rec;
    memset(&rec, 0, sizeof rec);
    rec.body = pdw_event_body(ev, &rec.body_len);
    rec.key = pdw_event_delivery_key(ev);
    rec.key_len = strlen(rec.key);
    rec.received_ms = wall_ms();
    if (s->async_commit && r) {
        /* answered after the flush, which may still fail: settle() confirms or releases */
        int rc = append_async(s, r, ev, &rec);
        return rc < 0 ? rc : PDW_ACCEPT_DEFERRED;
    }
    if (s->spool) {
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw_spool_append(s->spool, rec.key, rec.key_len, rec.received_ms, rec.body,
                                  rec.body_len, &rec.id, &err);
        atomic_store(&s->stats.spool_full, rc == PDW_ENOSPC);
        if (rc < 0) {
            spool_failed(s, rc, err.message);
            return rc; /* 503: Pipedrive retries after 3, 30 and 150 s */
        }
    }
    /* the entity that orders it comes from this event: the body is not parsed again */
    if (pdw_worker_submit_event(s->worker, &rec, ev) != 0 && !s->spool)
        return PDW_ENOMEM; /* without a spool a queued copy is all there is */
    /* with a spool it stays pending there and is handed on after a restart */
    return 0; /* durable (or queued): the receiver confirms the claim */
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
    (void)user;
    logf_("WARNING: webhook %s has failed 10 first attempts: Pipedrive bans it for 30 minutes "
          "and its events from %lld to %lld may be lost; reconcile through Pipedrive's API",
          webhook_id, (long long)from_ms, (long long)to_ms);
}

/* Dedup survives restarts: the key of every delivery still in the journal (pending, or
 * handled but retained for --spool-retain) is claimed again at start, and confirmed: it is
 * durable, a retry of it is a duplicate. */
static int claim_key(const pdw_spool_record *rec, void *user)
{
    server *s = user;
    pdw_dedup_store st;
    pdw_dedup_memory_store_init(s->dedup, &st, PDW_DEDUP_STORE_VERSION);
    st.claim(st.self, rec->key, rec->key_len, (uint64_t)rec->received_ms, 24ull * 3600 * 1000);
    st.confirm(st.self, rec->key, rec->key_len);
    return 0;
}

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

/* Per request: the raw URI (for the query string), the headers, the body so far; in
 * async commit, the journaled delivery waiting for its flush and the verdict to send. */
struct request_ctx {
    char *uri;
    pdw_header *headers;
    size_t nheaders, cap;
    char *body;
    size_t len, body_cap;
    int refused; /* a verdict was queued on the first call */
    pdw_receiver_pending *pending; /* the head passed (credentials included) */
    double started;
    pdw_verdict verdict;          /* the receiver's, kept across the suspension */
    struct MHD_Connection *conn;
    uint64_t spool_id;            /* appended without waiting; 0: none */
    char *key;                    /* its delivery key (owned) and arrival, for the worker */
    int64_t received_ms;
    char object[PDW_NAME_MAX + 1]; /* its entity, so that the worker need not parse again */
    char entity_id[PDW_ID_MAX + 1];
    int settled;                  /* the flush has decided: verdict final */
    char error_body[64];          /* a 503 body made after the fact */
    request_ctx *next;            /* in the committer's queue */
};

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c)
{
    server *s = cls;
    request_ctx *r = calloc(1, sizeof *r);
    if (r) {
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

/* ---- async commit: suspended requests and the committer thread -----------------------
 *
 * In spool mode on the epoll thread pool, no thread waits for fdatasync. The accept hook
 * appends without waiting (append_async); the request is then suspended (commit_wait) and
 * queued for the committer thread, which flushes (one fdatasync for everything appended
 * meanwhile) and resumes every request it took. Each resumed request reads its own outcome
 * (settle) and is answered. Requests arriving during a flush form the next batch. */

/* Journal the delivery of the request on this thread, without waiting for the disk. */
static int append_async(server *s, request_ctx *r, const pdw_event *ev,
                        pdw_spool_record *rec)
{
    char *key = malloc(rec->key_len + 1);
    if (!key)
        return PDW_ENOMEM; /* 503, as a failed append */
    memcpy(key, rec->key, rec->key_len);
    key[rec->key_len] = '\0';
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_spool_append_nowait(s->spool, rec->key, rec->key_len, rec->received_ms,
                                     rec->body, rec->body_len, &rec->id, &err);
    atomic_store(&s->stats.spool_full, rc == PDW_ENOSPC);
    if (rc < 0) {
        free(key);
        spool_failed(s, rc, err.message);
        return rc; /* the receiver releases the claim and answers 503 */
    }
    r->spool_id = rec->id;
    r->key = key;
    r->received_ms = rec->received_ms;
    const char *eid = pdw_event_entity_id(ev);
    snprintf(r->object, sizeof r->object, "%s", pdw_event_object(ev));
    snprintf(r->entity_id, sizeof r->entity_id, "%s", eid ? eid : "");
    return 0;
}

/* The verdict the receiver gives when its accept hook fails with `code`. */
static void verdict_503(request_ctx *r, int code)
{
    pdw_verdict *v = &r->verdict;
    snprintf(r->error_body, sizeof r->error_body, "{\"ok\":false,\"error\":\"%s\"}",
             pdw_err_name(code));
    v->status = 503;
    v->reason = code;
    v->body = r->error_body;
    v->body_len = strlen(r->error_body);
    v->content_type = "application/json";
    v->headers[0] = (pdw_header){ "Retry-After", 11, RETRY_AFTER_TEXT,
                                  sizeof RETRY_AFTER_TEXT - 1 };
    v->num_headers = 1;
}

/* The flush that covered r's delivery is over: confirm the dedup claim of a durable
 * delivery (the accept hook deferred it: retries meanwhile got 503 PDW_EINFLIGHT, from now
 * on they are duplicates) and hand it to the worker; turn a dropped one into exactly what
 * the receiver does when its accept hook fails (the dedup claim released, so that
 * Pipedrive's retry is taken as new; 503 + Retry-After). */
static void settle(server *s, request_ctx *r)
{
    int st = pdw_spool_status(s->spool, r->spool_id);
    if (st == 1) { /* not covered by a flush yet (only when the connection ended early) */
        pdw_spool_flush(s->spool, NULL);
        st = pdw_spool_status(s->spool, r->spool_id);
    }
    r->settled = 1;
    if (st == 0) {
        /* through the receiver: it confirms for its dedup TTL (the claim held the key for
         * the in-flight lease only) in whichever store it claims in (memory, or Redis) */
        (void)pdw_receiver_confirm(s->rcv, r->key, strlen(r->key));
        pdw_spool_record rec = { r->spool_id, r->received_ms, r->key, strlen(r->key),
                                 r->body, r->len };
        /* ordered by the entity kept from the event (the body is not parsed again); on
         * failure it stays pending in the spool and is handed on after a restart */
        pdw_worker_submit_entity(s->worker, &rec, r->object, r->entity_id);
        return;
    }
    if (st == 1)
        st = PDW_EIO; /* a flush settles every id appended before it: not reached */
    atomic_store(&s->stats.spool_full, st == PDW_ENOSPC);
    spool_failed(s, st, "the delivery's flush failed");
    (void)pdw_receiver_release(s->rcv, r->key, strlen(r->key));
    verdict_503(r, st);
}

/* Queue r for the committer and suspend it; returns 0 instead when shutting down, after
 * flushing and settling in place (the committer is gone: nobody would resume it). */
static int commit_wait(server *s, request_ctx *r)
{
    committer *cm = &s->commit;
    pthread_mutex_lock(&cm->lock);
    if (!cm->stopping) {
        r->next = NULL;
        if (cm->tail)
            cm->tail->next = r;
        else
            cm->head = r;
        cm->tail = r;
        /* suspended before the committer can see it: it resumes only what it dequeued */
        MHD_suspend_connection(r->conn);
        if (cm->head == r) /* the committer sleeps only on an empty queue */
            pthread_cond_signal(&cm->cond);
        pthread_mutex_unlock(&cm->lock);
        return 1;
    }
    pthread_mutex_unlock(&cm->lock);
    settle(s, r);
    return 0;
}

static void *committer_main(void *arg)
{
    server *s = arg;
    committer *cm = &s->commit;
    pthread_mutex_lock(&cm->lock);
    for (;;) {
        while (!cm->head && !cm->stopping)
            pthread_cond_wait(&cm->cond, &cm->lock);
        request_ctx *batch = cm->head;
        cm->head = cm->tail = NULL;
        if (!batch)
            break; /* stopping, and nobody waits */
        pthread_mutex_unlock(&cm->lock);
        /* whatever it returns, every id appended before it is settled now: each resumed
         * request reads its own outcome */
        pdw_spool_flush(s->spool, NULL);
        while (batch) {
            request_ctx *next = batch->next; /* once resumed, batch may be freed */
            MHD_resume_connection(batch->conn);
            batch = next;
        }
        pthread_mutex_lock(&cm->lock);
    }
    pthread_mutex_unlock(&cm->lock);
    return NULL;
}

static int committer_start(server *s)
{
    committer *cm = &s->commit;
    if (pthread_mutex_init(&cm->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&cm->cond, NULL) != 0 ||
        pthread_create(&cm->thread, NULL, committer_main, s) != 0) {
        pthread_mutex_destroy(&cm->lock);
        return -1;
    }
    cm->started = 1;
    return 0;
}

/* Before MHD_stop_daemon (which refuses suspended connections): answer who waits. */
static void committer_stop(server *s)
{
    committer *cm = &s->commit;
    if (!cm->started)
        return;
    pthread_mutex_lock(&cm->lock);
    cm->stopping = 1;
    pthread_cond_signal(&cm->cond);
    pthread_mutex_unlock(&cm->lock);
    pthread_join(cm->thread, NULL);
    cm->started = 0;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    server *s = cls;
    request_ctx *r = *con_cls;
    if (r) {
        if (r->spool_id && !r->settled)
            settle(s, r); /* the connection ended before its answer: the worker still
                           * gets a durable delivery (or the claim is released) */
        pdw_receiver_pending_free(r->pending);
        free(r->key);
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
#define N(x) json_integer((json_int_t)(x))
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "version", json_string(pdw_version()));
    json_object_set_new(o, "received", N(atomic_load(&st->received)));
    json_object_set_new(o, "accepted", N(atomic_load(&st->accepted)));
    json_object_set_new(o, "duplicates", N(atomic_load(&st->duplicates)));
    json_object_set_new(o, "rejected", N(atomic_load(&st->rejected)));
    for (int i = 1; i < NREASONS; i++) {
        unsigned long long n = atomic_load(&st->by_reason[i]);
        if (n)
            json_object_set_new(reasons, pdw_err_name(-i), N(n));
    }
    json_object_set_new(o, "rejected_by_reason", reasons);
    /* this health request itself is not counted as in flight */
    json_object_set_new(o, "in_flight", N(atomic_load(&st->in_flight) - 1));
    if (s->worker) {
        pdw_worker_stats ws;
        pdw_worker_get_stats(s->worker, &ws);
        json_object_set_new(o, "handled", N(ws.handled));
        json_object_set_new(o, "queued", N(ws.queued + ws.running));
        json_object_set_new(o, "retries", N(ws.retries));
        json_object_set_new(o, "handler_failures", N(ws.retries + ws.dead_letters));
        json_object_set_new(o, "dead_letters", N(ws.dead_letters));
    } else {
        json_object_set_new(o, "handler_failures", N(atomic_load(&st->handler_failures)));
    }
    if (s->spool) {
        pdw_spool_stats ss;
        pdw_spool_get_stats(s->spool, &ss);
        json_t *sp = json_object();
        json_object_set_new(sp, "pending", N(ss.pending));
        json_object_set_new(sp, "appended", N(ss.appended));
        json_object_set_new(sp, "flushes", N(ss.flushes));
        json_object_set_new(sp, "bytes", N(ss.bytes));
        json_object_set_new(sp, "segments", N(ss.segments));
        json_object_set_new(sp, "full", json_boolean(atomic_load(&st->spool_full)));
        json_object_set_new(sp, "full_errors", N(ss.full_errors));
        json_object_set_new(sp, "io_errors", N(ss.io_errors));
        json_object_set_new(o, "spool", sp);
    }
    if (s->redis) { /* lag: deliveries in the spool not yet handed on (to Redis first) */
        pdw_spool_stats rs;
        pdw_spool_get_stats(s->spool, &rs);
        if (serve_redis_health(s->redis, o, rs.pending, wall_ms()))
            json_object_set_new(o, "status",
                                json_string("redis unreachable: deliveries wait in the spool"));
    }
    if (sinks_health(s->sinks, o))
        json_object_set_new(o, "status",
                            json_string("output failing: events wait in the spool"));
    if (atomic_load(&st->spool_full))
        json_object_set_new(o, "status", json_string("spool full: answering 503"));
    char *ban = pdw_health_json(s->health, wall_ms());
    json_t *bj = ban ? json_loads(ban, 0, NULL) : NULL;
    pdw_free(ban);
    if (bj) {
        json_t *warnings = json_object_get(bj, "warnings");
        if (json_array_size(warnings) && !atomic_load(&st->spool_full))
            json_object_set_new(o, "status", json_string("warning"));
        json_object_set_new(o, "ban_model", bj);
    }
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
    if (v->status != 404)
        pdw_health_record(s->health, v->webhook_id[0] ? v->webhook_id : NULL, v->attempt,
                          v->status, (uint64_t)took, wall_ms());
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
    req->user = r; /* for the accept hook (kept by pdw_receiver_begin()) */
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
        /* the head (credentials included) is checked here, once: the body step trusts
         * only the pending object that a passing check makes */
        if (pdw_receiver_begin(&r->pending, s->rcv, &req, &v) != 0) {
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
    if (r->spool_id) { /* resumed by the committer: the flush is over */
        if (!r->settled)
            settle(s, r);
        return answer(s, c, r, method, &r->verdict);
    }
    if (!r->pending)
        return MHD_NO; /* no head check passed: never handled */
    pdw_receiver_finish(r->pending, r->body, r->len, &r->verdict, NULL);
    if (r->spool_id && commit_wait(s, r))
        return MHD_YES; /* suspended until the flush */
    return answer(s, c, r, method, &r->verdict);
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
        OPT("--dead-letter", c->dead_letter)
        OPT("--redis", c->redis)
        OPT("--stream", c->stream)
        OPT("--redis-prefix", c->redis_prefix)
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
    serve_redis_cancel(s->redis); /* forwarding waits for Redis no longer */
    pdw_worker_stop(s->worker); /* running handlers finish; markers flushed */
    pdw_spool_close(s->spool);
    sinks_close(s->sinks);
    pdw_receiver_free(s->rcv);
    serve_redis_close(s->redis);
    pdw_dedup_memory_free(s->dedup);
    pdw_health_free(s->health);
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
    pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    if (pdw_health_new(&s->health, &ho, &err) != 0 ||
        pdw_dedup_memory_new(&s->dedup, &mo, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: %s\n", err.message);
        return 2;
    }

    /* the journal first: what it recovers is claimed in dedup before any request */
    char markers[4200], dead[4200];
    claim_ctx cc = { NULL, 0, 0 };
    if (c->spool) {
        pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
        so.max_bytes = c->spool_max;
        so.retain_ms = c->spool_retain_s * 1000ull;
        so.on_record = claim_key;
        so.record_user = s;
        pdw_spool_recovery rec;
        if (pdw_spool_open(&s->spool, c->spool, &so, &rec, &err) != 0) {
            fprintf(stderr, "pdwebhook serve: spool %s: %s\n", c->spool, err.message);
            shutdown_all(s);
            return 2;
        }
        if (rec.torn_bytes || rec.skipped_bytes)
            logf_("spool: cut a torn tail of %llu bytes, skipped %llu corrupt bytes",
                  (unsigned long long)rec.torn_bytes, (unsigned long long)rec.skipped_bytes);
        pdw_spool_foreach_pending(s->spool, collect_pending, &cc);
        snprintf(markers, sizeof markers, "%s/exec-markers", c->spool);
        snprintf(dead, sizeof dead, "%s/deadletter.jsonl", c->spool);
        if (!c->dead_letter)
            c->dead_letter = dead;
    }
    sinks_config sc = { c->output, c->exec, c->exec_timeout, c->spool ? markers : NULL };
    if (sinks_open(&s->sinks, &sc) != 0) {
        free(cc.ids);
        shutdown_all(s);
        return 2;
    }
    sinks_clean_markers(s->sinks, id_pending, &cc);
    free(cc.ids);

    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    pdw_dedup_store store;
    pdw_dedup_memory_store_init(s->dedup, &store, PDW_DEDUP_STORE_VERSION);
    o.credentials = c->creds;
    o.num_credentials = c->ncreds;
    o.query_token = c->token;
    o.insecure_no_auth = c->insecure;
    o.max_body = c->max_body;
    o.dedup = &store;
    if (c->redis) { /* Redis's dedup, the local store as its fallback (copied first) */
        serve_redis_config rcfg = { c->redis, c->stream, c->redis_prefix, c->stream_maxlen,
                                    &store, s->sinks };
        if (serve_redis_open(&s->redis, &rcfg) != 0) {
            shutdown_all(s);
            return 2;
        }
        serve_redis_dedup(s->redis, &store);
    }
    o.inflight_lease_ms = c->inflight_lease_s * 1000ull;
    o.retry_after_seconds = RETRY_AFTER_S;
    if (c->sync_mode) {
        o.handler_error_status = c->sync_failure_status;
    } else {
        o.accept = accept_event;
        o.accept_user = s;
    }
    if (pdw_receiver_new(&s->rcv, &o, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: %s\n", err.message);
        shutdown_all(s);
        return 2;
    }
    if (c->sync_mode)
        pdw_router_on(pdw_receiver_router(s->rcv), "*.*", sync_handler, s, NULL);
    pdw_router_freeze(pdw_receiver_router(s->rcv));

    if (!c->sync_mode) {
        pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
        wo.spool = s->spool;
        wo.handle = sinks_handle;
        wo.handle_user = s->sinks;
        if (s->redis) { /* the Redis stream first, then --output / --exec */
            wo.handle = serve_redis_handle;
            wo.handle_user = s->redis;
        }
        wo.sync = sinks_sync;
        wo.sync_user = s->sinks;
        wo.threads = c->workers;
        wo.max_attempts = c->max_attempts;
        wo.backoff_base_ms = c->backoff_ms;
        wo.dead_letter_path = c->dead_letter;
        wo.on_dead_letter = on_dead_letter;
        wo.dead_letter_user = s;
        if (pdw_worker_start(&s->worker, &wo, &err) != 0) {
            fprintf(stderr, "pdwebhook serve: %s\n", err.message);
            shutdown_all(s);
            return 2;
        }
        if (s->spool) {
            long n = pdw_worker_recover(s->worker);
            if (n > 0)
                logf_("recovered %ld spooled deliveries not yet handed on", n);
        }
    }

    char shown[300];
    int fd = open_listener(c->listen, shown, sizeof shown);
    if (fd < 0) {
        shutdown_all(s);
        return 2;
    }
    /* An epoll thread pool: no request blocks its thread (a spooled one is suspended until
     * the committer's flush). With --sync the handlers run inside the request and with
     * --redis dedup waits for the network: there, a thread per connection, so that one
     * slow request never holds up others (a spool append then waits in its thread). */
    int pool = !c->sync_mode && !c->redis;
    s->async_commit = pool && s->spool;
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
    if (s->async_commit && committer_start(s) != 0) {
        fprintf(stderr, "pdwebhook serve: cannot start the commit thread\n");
        close(fd);
        shutdown_all(s);
        return 2;
    }
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, s, MHD_OPTION_NOTIFY_COMPLETED, request_done,
        s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (!s->daemon) {
        committer_stop(s);
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
    committer_stop(s); /* the last flush; who comes later flushes for itself */
    MHD_stop_daemon(s->daemon); /* waits for the request threads */
    shutdown_all(s);
    free(cert);
    free(key);
    logf_("stopped");
    return 0;
}
