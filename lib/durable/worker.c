/* The worker: spooled deliveries handed on after the answer, one entity in order, retried
 * with backoff, dead-lettered when they keep failing, marked handled in the spool.
 *
 * Memory. A queued delivery keeps a copy of its key and body while the queued copies stay
 * within max_queued_bytes; past that, with a spool, only its id is queued and the record is
 * read back from the journal (pdw_spool_read()) when its turn comes, so the worker's memory
 * does not grow with the size of a backlog (a slow handler, a long outage of its sink, a
 * recovery after a restart). Without a spool there is nowhere to read it back from: a
 * submit past the budget is refused with PDW_ENOSPC (the receiver answers 503 and
 * Pipedrive retries). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durable/durable.h"
#include "pdwebhook/worker.h"

#define SHARD_MAX_DEPTH 2048 /* the scanner's own cap */
/* Wake-ups. A shard that just handled something looks at its queue again after LINGER_MS
 * without being signalled, and a submit wakes it only when it sleeps for good (idle) or
 * when WAKE_BATCH deliveries wait: under load a shard thread wakes a few hundred times a
 * second instead of once per delivery (each wake-up is two context switches, dear on a
 * VM), for at most LINGER_MS more before a delivery is handed on. */
#define LINGER_MS 2
#define WAKE_BATCH 64

typedef struct job {
    struct job *next;
    pdw_spool_record rec; /* key and body owned (one block with the job), or both NULL:
                             only the id is queued, read back from the spool */
    size_t held;          /* bytes of key and body held in memory */
} job;

typedef struct shard {
    struct pdw_worker *w;
    pthread_t thread;
    pthread_cond_t cond;
    job *head, *tail;
    size_t len;  /* jobs queued */
    int idle;    /* waiting without a deadline: a submit must signal */
    int linger;  /* handled a job since it last slept */
    pdw__retry retry; /* the worker's policy, its own jitter */
    int started;
} shard;

struct pdw_worker {
    pdw_allocator alloc;
    pdw_spool *spool;
    pdw_receiver *receiver;
    pdw_worker_handle_cb handle;
    void *handle_user;
    unsigned nshards;
    pdw__retry retry; /* attempts and backoff (each shard has a copy with its own jitter) */
    uint64_t flush_ms;
    uint64_t max_held; /* budget of key and body bytes held by queued jobs */
    pdw_dead_letter_cb on_dead;
    void *dead_user;
    pdw_worker_sync_cb sync;
    void *sync_user;
    pdw_dead_letters *dl; /* NULL: no dead-letter file */

    pthread_mutex_t lock; /* queues, stats, done list, stopping */
    pthread_cond_t flush_cond;
    shard *shards;
    int stopping;
    pthread_mutex_t stop_lock; /* one pdw_worker_stop() at a time; the others wait for it */
    int stopped;               /* threads joined, markers flushed (under stop_lock) */
    pthread_t flusher;
    int flusher_started;
    uint64_t *done;
    size_t ndone, capdone;
    pdw_worker_stats stats;
};

static int default_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                          size_t errcap, void *user)
{
    (void)attempt;
    pdw_worker *w = user;
    pdw_dispatch_result res = { 0, 0, 0 };
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_receiver_dispatch_body(w->receiver, rec->body, rec->body_len, &res, &err);
    if (rc == 0)
        return 0;
    if (rc == PDW_EHANDLER)
        snprintf(errbuf, errcap, "%u of %u handler(s) failed, first with %d", res.failed,
                 res.matched, res.first_failure);
    else
        snprintf(errbuf, errcap, "%s", err.code ? err.message : pdw_strerror(rc));
    return rc;
}

/* Queue the handled marker of id. Mutex held. */
static void mark_done_locked(pdw_worker *w, uint64_t id)
{
    if (!w->spool)
        return;
    if (w->ndone == w->capdone) {
        size_t cap = w->capdone ? w->capdone * 2 : 256;
        uint64_t *d = pdw__realloc(&w->alloc, w->done, cap * sizeof *d);
        if (!d)
            return; /* left unmarked: handed on again after a restart, never lost */
        w->done = d;
        w->capdone = cap;
    }
    w->done[w->ndone++] = id;
}

/* Make the sink durable, then the markers: never a marker for output that could vanish. */
static void flush_markers(pdw_worker *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t *ids = w->done;
    size_t n = w->ndone;
    w->done = NULL;
    w->ndone = w->capdone = 0;
    pthread_mutex_unlock(&w->lock);
    if (!n) {
        pdw__free(&w->alloc, ids);
        return;
    }
    if (w->sync && w->sync(w->sync_user) != 0) {
        /* the sink could not make its output durable: leave these unmarked */
        pdw__free(&w->alloc, ids);
        return;
    }
    for (size_t i = 0; i < n; i++)
        pdw_spool_mark_handled(w->spool, ids[i]);
    pdw_spool_flush(w->spool, NULL);
    pdw__free(&w->alloc, ids);
}

static void *flusher_main(void *arg)
{
    pdw_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec t = pdw__deadline_in(w->flush_ms);
        pthread_cond_timedwait(&w->flush_cond, &w->lock, &t);
        pthread_mutex_unlock(&w->lock);
        flush_markers(w);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Append the given-up delivery to the dead-letter file, fsync'ed. */
static void dead_letter(pdw_worker *w, const pdw_spool_record *rec, unsigned attempts,
                        const char *error)
{
    if (w->dl) {
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "id", json_integer((json_int_t)rec->id));
            json_object_set_new(o, "delivery_key", json_stringn(rec->key, rec->key_len));
            json_object_set_new(o, "received_ms", json_integer(rec->received_ms));
        }
        pdw_dead_letters_append(w->dl, o, rec->body, rec->body_len, attempts, error);
    }
    if (w->on_dead)
        w->on_dead(rec, attempts, error, w->dead_user);
}

enum { JOB_PENDING, JOB_HANDLED, JOB_DEAD, JOB_GONE };

typedef struct attempt_ctx {
    pdw_worker *w;
    unsigned attempt;
    char errbuf[256];
    int rc;
} attempt_ctx;

/* One attempt on a record (read back from the spool, or held by the job). */
static int attempt_record(const pdw_spool_record *rec, void *user)
{
    attempt_ctx *c = user;
    pdw_worker *w = c->w;
    c->errbuf[0] = '\0';
    c->rc = w->handle(rec, c->attempt, c->errbuf, sizeof c->errbuf, w->handle_user);
    if (c->rc == 0)
        return JOB_HANDLED;
    if (!c->errbuf[0])
        snprintf(c->errbuf, sizeof c->errbuf, "handler returned %d", c->rc);
    if (c->attempt >= w->retry.max_attempts) {
        dead_letter(w, rec, c->attempt, c->errbuf);
        return JOB_DEAD;
    }
    return JOB_PENDING;
}

/* Attempt one delivery until it is handled or dead-lettered, with backoff between tries.
 * JOB_PENDING when the worker stopped during a backoff (with a spool: it stays there), or
 * when a delivery queued by id cannot be read back (it stays pending in the spool and is
 * tried again after the next start). Called without the mutex. */
static int run_job(pdw_worker *w, shard *s, job *j)
{
    attempt_ctx c = { w, 0, "", 0 };
    for (unsigned attempt = 1;; attempt++) {
        c.attempt = attempt;
        int outcome;
        if (j->rec.body || !w->spool) {
            outcome = attempt_record(&j->rec, &c);
        } else {
            outcome = pdw_spool_read(w->spool, j->rec.id, attempt_record, &c);
            if (outcome == PDW_ENOTFOUND)
                return JOB_GONE; /* handled meanwhile (nothing to hand on) */
            if (outcome < 0)
                return JOB_PENDING; /* unreadable now: left pending in the spool */
        }
        if (outcome != JOB_PENDING)
            return outcome;
        uint64_t delay = pdw__retry_delay_ms(&s->retry, attempt);
        uint64_t until = pdw__mono_ms() + delay;
        pthread_mutex_lock(&w->lock);
        w->stats.retries++;
        while (!w->stopping && pdw__mono_ms() < until) {
            struct timespec t = pdw__deadline_in(until - pdw__mono_ms());
            pthread_cond_timedwait(&s->cond, &w->lock, &t);
        }
        /* stopped during the wait: a spooled delivery stays pending for next time */
        int stop = w->stopping && w->spool;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            return JOB_PENDING;
    }
}

static void *shard_main(void *arg)
{
    shard *s = arg;
    pdw_worker *w = s->w;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!s->head && !w->stopping) {
            if (s->linger) { /* busy a moment ago: look again soon, unsignalled */
                s->linger = 0;
                struct timespec t = pdw__deadline_in(LINGER_MS);
                pthread_cond_timedwait(&s->cond, &w->lock, &t);
            } else {
                s->idle = 1;
                pthread_cond_wait(&s->cond, &w->lock);
                s->idle = 0;
            }
        }
        /* Stopping: with a spool the queue stays pending there; without, drain it. */
        if (!s->head || (w->stopping && w->spool))
            break;
        job *j = s->head;
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->len--;
        w->stats.queued--;
        w->stats.running++;
        pthread_mutex_unlock(&w->lock);

        int outcome = run_job(w, s, j);
        uint64_t id = j->rec.id;
        size_t held = j->held;
        pdw__free(&w->alloc, j);

        pthread_mutex_lock(&w->lock); /* once per job: counters, marker, next job */
        w->stats.queued_bytes -= held;
        if (outcome == JOB_HANDLED)
            w->stats.handled++;
        else if (outcome == JOB_DEAD)
            w->stats.dead_letters++;
        if (outcome == JOB_HANDLED || outcome == JOB_DEAD)
            mark_done_locked(w, id);
        w->stats.running--;
        s->linger = 1;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int pdw_worker_options_init(pdw_worker_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_WORKER_OPTIONS_VERSION);
}

static void destroy(pdw_worker *w)
{
    pdw_allocator a = w->alloc;
    for (unsigned i = 0; i < w->nshards; i++) {
        job *j = w->shards[i].head;
        while (j) {
            job *n = j->next;
            pdw__free(&a, j);
            j = n;
        }
        pthread_cond_destroy(&w->shards[i].cond);
    }
    pdw_dead_letters_free(w->dl);
    pthread_cond_destroy(&w->flush_cond);
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->stop_lock);
    pdw__free(&a, w->done);
    pdw__free(&a, w->shards);
    pdw__free(&a, w);
}

static void stop_threads(pdw_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    for (unsigned i = 0; i < w->nshards; i++)
        pthread_cond_broadcast(&w->shards[i].cond);
    pthread_cond_broadcast(&w->flush_cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->nshards; i++)
        if (w->shards[i].started)
            pthread_join(w->shards[i].thread, NULL);
    if (w->flusher_started)
        pthread_join(w->flusher, NULL);
    if (w->spool)
        flush_markers(w);
}

int pdw_worker_start(pdw_worker **out, const pdw_worker_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out || !opts)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and opts are required");
    *out = NULL;
    if (opts->version != PDW_WORKER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "worker options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts->allocator) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    if (!opts->handle && !opts->receiver)
        return pdw__error_set(err, PDW_EINVAL, -1, "a handle callback or a receiver is needed");
    if (opts->threads > 256)
        return pdw__error_set(err, PDW_EINVAL, -1, "at most 256 worker threads");

    pdw_worker *w = pdw__calloc(&a, 1, sizeof *w);
    if (!w)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    w->alloc = a;
    w->spool = opts->spool;
    w->receiver = opts->receiver;
    w->handle = opts->handle ? opts->handle : default_handle;
    w->handle_user = opts->handle ? opts->handle_user : w;
    w->nshards = opts->threads ? opts->threads : 4;
    pdw__retry_init(&w->retry, opts->max_attempts, opts->backoff_base_ms, opts->backoff_max_ms,
                    0);
    w->flush_ms = opts->marker_flush_ms ? opts->marker_flush_ms : 50;
    w->max_held = opts->max_queued_bytes ? opts->max_queued_bytes : 16u << 20;
    w->on_dead = opts->on_dead_letter;
    w->dead_user = opts->dead_letter_user;
    w->sync = opts->sync;
    w->sync_user = opts->sync_user;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        pdw__free(&a, w);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (pthread_mutex_init(&w->stop_lock, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        pdw__free(&a, w);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    pdw__cond_init(&w->flush_cond);
    w->shards = pdw__calloc(&a, w->nshards, sizeof *w->shards);
    if (!w->shards) {
        w->nshards = 0;
        destroy(w);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    for (unsigned i = 0; i < w->nshards; i++) {
        w->shards[i].w = w;
        w->shards[i].retry = w->retry;
        w->shards[i].retry.rng = 0x9E3779B97F4A7C15ULL * (i + 1) ^ (uint64_t)pdw__wall_ms();
        pdw__cond_init(&w->shards[i].cond);
    }
    if (opts->dead_letter_path) {
        int rc = pdw_dead_letters_open(&w->dl, opts->dead_letter_path, err);
        if (rc < 0) {
            destroy(w);
            return rc;
        }
    }
    for (unsigned i = 0; i < w->nshards; i++) {
        if (pthread_create(&w->shards[i].thread, NULL, shard_main, &w->shards[i]) != 0)
            goto no_threads;
        w->shards[i].started = 1;
    }
    if (w->spool) {
        if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0)
            goto no_threads;
        w->flusher_started = 1;
    }
    *out = w;
    return 0;
no_threads:
    stop_threads(w);
    destroy(w);
    return pdw__error_set(err, PDW_ENOMEM, -1, "cannot start worker threads");
}

/* Which shard: one entity (object and id) always goes to the same one. */
static unsigned shard_hash(const pdw_worker *w, const char *object, const char *entity_id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *parts[2] = { object, entity_id };
    for (int p = 0; p < 2; p++)
        for (const char *c = parts[p]; c && *c; c++) {
            h ^= (unsigned char)*c;
            h *= 0x100000001b3ULL;
        }
    return (unsigned)(h % w->nshards);
}

/* The shard of a record whose event is not at hand: parse the body for its entity. A body
 * that does not parse hashes like an event without object and id (shard of "", ""). Only
 * running out of memory fails (PDW_ENOMEM): a guess would break the order per entity. */
static int shard_of(pdw_worker *w, const pdw_spool_record *rec, unsigned *k)
{
    pdw_event *ev = NULL;
    /* the largest depth any receiver accepts: a body it took must hash by its entity here
     * too, or a recovered record could land on another shard than a live one */
    pdw_parse_options po = PDW_PARSE_OPTIONS_INIT;
    po.max_depth = SHARD_MAX_DEPTH;
    po.allocator = &w->alloc;
    int rc = pdw_event_parse(&ev, rec->body, rec->body_len, &po, NULL);
    if (rc == PDW_ENOMEM)
        return rc;
    if (rc == 0) {
        const char *id = pdw_event_entity_id(ev);
        *k = shard_hash(w, pdw_event_object(ev), id ? id : "");
    } else {
        *k = shard_hash(w, "", "");
    }
    pdw_event_free(ev);
    return 0;
}

static int valid_record(const pdw_spool_record *rec)
{
    return rec && (rec->body || !rec->body_len) && (rec->key || !rec->key_len);
}

/* Queue the record on shard k: with its key and body copied while the queued copies stay
 * within the budget (or when nothing is held: one delivery always fits), else by id alone
 * (with a spool) or not at all (PDW_ENOSPC, without one). */
static int enqueue(pdw_worker *w, const pdw_spool_record *rec, unsigned k)
{
    size_t need = rec->key_len + rec->body_len + 1;
    pthread_mutex_lock(&w->lock);
    int copy = w->stats.queued_bytes == 0 || w->stats.queued_bytes + need <= w->max_held;
    if (copy) /* reserved now, so that racing submits do not overshoot together */
        w->stats.queued_bytes += need;
    pthread_mutex_unlock(&w->lock);
    if (!copy && !w->spool)
        return PDW_ENOSPC;
    job *j = pdw__malloc(&w->alloc, sizeof(job) + (copy ? need : 0));
    if (!j) {
        if (copy) {
            pthread_mutex_lock(&w->lock);
            w->stats.queued_bytes -= need;
            pthread_mutex_unlock(&w->lock);
        }
        return PDW_ENOMEM;
    }
    j->next = NULL;
    j->rec = *rec;
    j->held = copy ? need : 0;
    if (copy) {
        char *key = (char *)(j + 1), *body = key + rec->key_len;
        if (rec->key_len)
            memcpy(key, rec->key, rec->key_len);
        if (rec->body_len)
            memcpy(body, rec->body, rec->body_len);
        body[rec->body_len] = '\0';
        j->rec.key = key;
        j->rec.body = body;
    } else {
        j->rec.key = NULL; /* read back from the spool when its turn comes */
        j->rec.body = NULL;
        j->rec.key_len = j->rec.body_len = 0;
    }
    shard *s = &w->shards[k];
    pthread_mutex_lock(&w->lock);
    if (w->stopping) { /* no thread would take it (with a spool it stays pending there) */
        w->stats.queued_bytes -= j->held; /* the reservation above */
        pthread_mutex_unlock(&w->lock);
        pdw__free(&w->alloc, j);
        return PDW_EINVAL;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->len++;
    w->stats.queued++;
    if (s->idle || s->len >= WAKE_BATCH)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int pdw_worker_submit(pdw_worker *w, const pdw_spool_record *rec)
{
    if (!w || !valid_record(rec))
        return PDW_EINVAL;
    unsigned k;
    int rc = shard_of(w, rec, &k);
    return rc < 0 ? rc : enqueue(w, rec, k);
}

int pdw_worker_submit_event(pdw_worker *w, const pdw_spool_record *rec, const pdw_event *ev)
{
    if (!w || !valid_record(rec) || !ev)
        return PDW_EINVAL;
    /* The order is kept per entity only if the event is the record's: the body the event
     * was parsed from must be the record's body (the same bytes, usually the same
     * pointer), or a record recovered after a restart could land on another shard than
     * the ones submitted now. */
    size_t body_len;
    const char *body = pdw_event_body(ev, &body_len);
    if (body_len != rec->body_len ||
        (body != rec->body && rec->body_len && memcmp(body, rec->body, rec->body_len) != 0))
        return PDW_EINVAL;
    const char *id = pdw_event_entity_id(ev);
    return enqueue(w, rec, shard_hash(w, pdw_event_object(ev), id ? id : ""));
}

int pdw_worker_submit_entity(pdw_worker *w, const pdw_spool_record *rec, const char *object,
                             const char *entity_id)
{
    if (!w || !valid_record(rec))
        return PDW_EINVAL;
    /* "" for a missing id, as shard_of() sees an event without one */
    return enqueue(w, rec, shard_hash(w, object ? object : "", entity_id ? entity_id : ""));
}

typedef struct recover_ctx {
    pdw_worker *w;
    long n;
    int rc;
} recover_ctx;

static int recover_one(const pdw_spool_record *rec, void *user)
{
    recover_ctx *c = user;
    int rc = pdw_worker_submit(c->w, rec);
    if (rc < 0) {
        c->rc = rc;
        return 1;
    }
    c->n++;
    return 0;
}

long pdw_worker_recover(pdw_worker *w)
{
    if (!w || !w->spool)
        return PDW_EINVAL;
    recover_ctx c = { w, 0, 0 };
    int rc = pdw_spool_foreach_pending(w->spool, recover_one, &c);
    if (c.rc < 0)
        return c.rc;
    return rc < 0 ? rc : c.n;
}

void pdw_worker_get_stats(pdw_worker *w, pdw_worker_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

void pdw_worker_stop(pdw_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->stop_lock); /* a second caller waits for the first one's stop */
    if (!w->stopped) {
        stop_threads(w);
        w->stopped = 1;
    }
    pthread_mutex_unlock(&w->stop_lock);
}

void pdw_worker_free(pdw_worker *w)
{
    if (!w)
        return;
    pdw_worker_stop(w);
    destroy(w);
}
