/* The durable intake (pdwebhook/intake.h): the receiver's pipeline, the journal's group
 * commit and the worker as one object that answers through a completion callback.
 *
 * A request runs the receiver's pipeline on the submitting thread. Its accept hook (this
 * file's accept()) appends the delivery to the journal without waiting and defers the
 * dedup claim; the request's ticket then joins the committer's queue. The committer thread
 * takes the whole queue, flushes once (one fdatasync for everything appended meanwhile:
 * requests arriving during a flush form the next batch) and settles each ticket: durable
 * -> confirm the claim, hand the delivery to the worker, call back with 200; dropped by a
 * failed flush -> release the claim, call back with the receiver's 503. No thread waits
 * for the disk but the committer. Everything that needs no flush is called back inside
 * the submitting call. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "durable/durable.h"
#include "pdwebhook/sys/dedup_store.h"
#include "pdwebhook/intake.h"
#include "pdwebhook/reconcile.h"

/* One submitted request, from its head (or its whole body) to its callback. */
typedef struct ticket {
    struct ticket *next;          /* in the committer's queue */
    pdw_intake *in;
    pdw_receiver_pending *rp;     /* the head passed (two-step form); NULL otherwise */
    pdw_verdict *verdict;         /* the caller's, until the callback */
    pdw_intake_done_cb done;
    void *user;
    const char *body;             /* the caller's, until the callback */
    size_t body_len;
    uint64_t spool_id;            /* appended, waiting for a flush; 0: not appended */
    int64_t received_ms;
    char object[PDW_NAME_MAX + 1]; /* the entity that orders it in the worker, kept from */
    char entity_id[PDW_ID_MAX + 1]; /* the event so that the body is not parsed again */
    char update_key[PDW_DELIVERY_KEY_MAX]; /* remembered once durable; "" when none */
    char change_key[PDW_DELIVERY_KEY_MAX]; /* claimed (dedup_change): confirmed with the
                                              delivery, or released; "" when none */
} ticket;

struct pdw_intake_pending {
    ticket t;
};

struct pdw_intake {
    pdw_allocator alloc;
    pdw_receiver *rcv;
    pdw_spool *spool;              /* NULL: no journal */
    pdw_spool_recovery recovery;
    pdw_spool_record_cb user_on_record;
    void *user_record_user;
    pdw_worker_options wo;         /* copied at new, used at start */
    char *dead_letter_path;        /* wo's, copied */
    pdw_intake_error_cb on_error;
    void *error_user;

    pthread_rwlock_t worker_lock;  /* worker: read to use it, write to take it away */
    pdw_worker *worker;            /* NULL before start and after stop */
    pdw_worker_stats last_worker;  /* its counters when it stopped */

    pthread_mutex_t lock;          /* the committer's queue and state */
    pthread_cond_t cond;           /* a ticket joined an empty queue, or stop */
    ticket *head, *tail;
    int stopping;                  /* no more queueing: late requests flush themselves */
    int committer_started;
    pthread_t committer;
    atomic_int started;
    int locks_made;                /* 1: worker_lock, 2: and lock/cond */

    atomic_ullong waiting, durable, failed;
    int dedup_change; /* options: claim each delivery's change key too */
    atomic_int spool_full;
};

int pdw_intake_options_init(pdw_intake_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_INTAKE_OPTIONS_VERSION);
}

static void report(pdw_intake *in, int code, const char *message)
{
    atomic_fetch_add(&in->failed, 1);
    if (in->on_error)
        in->on_error(code, message && message[0] ? message : pdw_strerror(code),
                     in->error_user);
}

/* The change key claimed for t (dedup_change): kept for the dedup TTL with its delivery,
 * or given back when the delivery was not accepted after all. */
static void settle_change_key(pdw_intake *in, ticket *t, int accepted)
{
    if (!t->change_key[0])
        return;
    size_t n = strlen(t->change_key);
    if (accepted)
        (void)pdw_receiver_confirm(in->rcv, t->change_key, n);
    else
        (void)pdw_receiver_release(in->rcv, t->change_key, n);
    t->change_key[0] = '\0';
}

/* ---- the accept hook: append without waiting ---------------------------------------- */

static int intake_accept(const pdw_event *ev, void *request_user, void *user)
{
    pdw_intake *in = user;
    ticket *t = request_user;
    if (!t)
        return PDW_ENOMEM; /* no room for the request's ticket: 503, Pipedrive retries */
    if (t->in != in)
        return PDW_EINVAL; /* pdw_receiver_handle() called on the intake's receiver: 503 */
    t->change_key[0] = '\0';
    if (in->dedup_change) {
        /* the same change in the other payload version: one copy is handed on */
        const char *ck = pdw_event_change_key(ev);
        if (ck && strlen(ck) < sizeof t->change_key) {
            int c = pdw_receiver_claim(in->rcv, ck, strlen(ck));
            if (c == PDW_CLAIM_DUPLICATE || (c == PDW_CLAIM_INFLIGHT && pdw_event_attempt(ev) < 2))
                return 0; /* accepted: its twin is (being) handed on; nothing journaled */
            if (c == PDW_CLAIM_INFLIGHT)
                return PDW_EINFLIGHT; /* a retry while the twin is accepted: come back */
            if (c != PDW_CLAIM_NEW)
                return PDW_ESTORE;
            snprintf(t->change_key, sizeof t->change_key, "%s", ck);
        }
    }
    pdw_spool_record rec;
    memset(&rec, 0, sizeof rec);
    rec.body = pdw_event_body(ev, &rec.body_len);
    rec.key = pdw_event_delivery_key(ev);
    rec.key_len = strlen(rec.key);
    rec.received_ms = pdw__wall_ms();
    if (!in->spool) {
        /* no journal: queued in memory is all there is, answered now */
        pthread_rwlock_rdlock(&in->worker_lock);
        int rc = in->worker ? pdw_worker_submit_event(in->worker, &rec, ev) : PDW_EIO;
        pthread_rwlock_unlock(&in->worker_lock);
        char uk[PDW_DELIVERY_KEY_MAX];
        int ul = rc < 0 ? -1 : pdw_event_update_key(ev, uk, sizeof uk);
        if (ul > 0)
            (void)pdw_receiver_remember(in->rcv, uk, (size_t)ul, rec.received_ms);
        settle_change_key(in, t, rc >= 0);
        return rc < 0 ? rc : 0;
    }
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_spool_append_nowait(in->spool, rec.key, rec.key_len, rec.received_ms,
                                     rec.body, rec.body_len, &rec.id, &err);
    atomic_store(&in->spool_full, rc == PDW_ENOSPC);
    if (rc < 0) {
        report(in, rc, err.message);
        settle_change_key(in, t, 0);
        return rc; /* the receiver releases the claim and answers 503 + Retry-After */
    }
    const char *eid = pdw_event_entity_id(ev);
    t->spool_id = rec.id;
    t->received_ms = rec.received_ms;
    t->body = rec.body;
    t->body_len = rec.body_len;
    snprintf(t->object, sizeof t->object, "%s", pdw_event_object(ev));
    snprintf(t->entity_id, sizeof t->entity_id, "%s", eid ? eid : "");
    if (pdw_event_update_key(ev, t->update_key, sizeof t->update_key) < 0)
        t->update_key[0] = '\0';
    return PDW_ACCEPT_DEFERRED; /* answered after the flush, which may still fail */
}

/* ---- settling a flushed delivery ---------------------------------------------------- */

/* The flush that covered t's delivery is over: confirm and hand on a durable one, or
 * answer a dropped one as the receiver answers a failing accept hook (the claim released
 * so that Pipedrive's retry is taken as new; 503 + Retry-After). */
static void settle(pdw_intake *in, ticket *t)
{
    int st = pdw_spool_status(in->spool, t->spool_id);
    if (st == 1) { /* not covered by a flush yet (a request settled in place) */
        pdw_spool_flush(in->spool, NULL);
        st = pdw_spool_status(in->spool, t->spool_id);
    }
    if (st == 1)
        st = PDW_EIO; /* a flush settles every id appended before it: not reached */
    if (st == 0) {
        (void)pdw_receiver_settle(in->rcv, 0, t->verdict);
        settle_change_key(in, t, 1);
        /* the state it carries: a reconciled record of the same state is a duplicate */
        if (t->update_key[0])
            (void)pdw_receiver_remember(in->rcv, t->update_key, strlen(t->update_key),
                                        t->received_ms);
        pdw_spool_record rec = { t->spool_id, t->received_ms, t->verdict->delivery_key,
                                 strlen(t->verdict->delivery_key), t->body, t->body_len };
        /* without a worker (stopped) or on a failure it stays pending in the journal
         * and is handed on after the next start */
        pthread_rwlock_rdlock(&in->worker_lock);
        if (in->worker)
            (void)pdw_worker_submit_entity(in->worker, &rec, t->object, t->entity_id);
        pthread_rwlock_unlock(&in->worker_lock);
        atomic_fetch_add(&in->durable, 1);
        return;
    }
    atomic_store(&in->spool_full, st == PDW_ENOSPC);
    report(in, st, "the delivery's flush failed");
    settle_change_key(in, t, 0);
    (void)pdw_receiver_settle(in->rcv, st, t->verdict);
}

static void ticket_free(ticket *t)
{
    pdw_intake *in = t->in;
    pdw_receiver_pending_free(t->rp);
    pdw__free(&in->alloc, t);
}

/* Call back and free (read nothing of t after the callback: its memory is the caller's). */
static void complete(ticket *t)
{
    pdw_intake_done_cb done = t->done;
    pdw_verdict *v = t->verdict;
    void *user = t->user;
    ticket_free(t);
    done(v, user);
}

/* ---- the committer -------------------------------------------------------------------- */

static void *committer_main(void *arg)
{
    pdw_intake *in = arg;
    pthread_mutex_lock(&in->lock);
    for (;;) {
        while (!in->head && !in->stopping)
            pthread_cond_wait(&in->cond, &in->lock);
        ticket *batch = in->head;
        in->head = in->tail = NULL;
        if (!batch)
            break; /* stopping, and nobody waits */
        pthread_mutex_unlock(&in->lock);
        /* whatever it returns, every id appended before it is settled now: each ticket
         * reads its own outcome */
        pdw_spool_flush(in->spool, NULL);
        while (batch) {
            ticket *next = batch->next;
            settle(in, batch);
            atomic_fetch_sub(&in->waiting, 1);
            complete(batch);
            batch = next;
        }
        pthread_mutex_lock(&in->lock);
    }
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

/* After the receiver's pipeline: answer now, or queue for the committer. */
static int dispatch(pdw_intake *in, ticket *t)
{
    if (!t->spool_id) { /* refused, duplicate, failed append, or no journal: final now */
        complete(t);
        return 0;
    }
    pthread_mutex_lock(&in->lock);
    if (!in->stopping) {
        t->next = NULL;
        if (in->tail)
            in->tail->next = t;
        else
            in->head = t;
        in->tail = t;
        atomic_fetch_add(&in->waiting, 1);
        if (in->head == t) /* the committer sleeps only on an empty queue */
            pthread_cond_signal(&in->cond);
        pthread_mutex_unlock(&in->lock);
        return PDW_INTAKE_PENDING;
    }
    pthread_mutex_unlock(&in->lock);
    /* stopping: the committer is gone or going; this request flushes for itself */
    pdw_spool_flush(in->spool, NULL);
    settle(in, t);
    complete(t);
    return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

static ticket *ticket_new(pdw_intake *in, pdw_verdict *verdict, pdw_intake_done_cb done,
                          void *user)
{
    ticket *t = pdw__malloc(&in->alloc, sizeof *t);
    if (!t)
        return NULL;
    t->next = NULL;
    t->in = in;
    t->rp = NULL;
    t->verdict = verdict;
    t->done = done;
    t->user = user;
    t->body = NULL;
    t->body_len = 0;
    t->spool_id = 0;
    t->received_ms = 0;
    t->object[0] = t->entity_id[0] = t->update_key[0] = t->change_key[0] = '\0';
    return t;
}

/* A copy of req with the ticket as its user; an unknown version is copied as version 0,
 * for the receiver to refuse. */
static void request_copy(const pdw_request *req, ticket *t, pdw_request *out)
{
    pdw_request init = PDW_REQUEST_INIT;
    *out = init;
    if (req->version != PDW_REQUEST_VERSION) {
        out->version = 0;
        return;
    }
    *out = *req;
    out->user = t;
}

int pdw_intake_submit(pdw_intake *in, const pdw_request *req, pdw_verdict *verdict,
                      pdw_intake_done_cb done, void *user)
{
    if (!in || !req || !verdict || !done || !atomic_load(&in->started))
        return PDW_EINVAL;
    ticket *t = ticket_new(in, verdict, done, user);
    pdw_request rq;
    request_copy(req, t, &rq);
    /* without a ticket (no memory) the hook answers an accepted delivery 503 */
    (void)pdw_receiver_handle(in->rcv, &rq, verdict, NULL);
    if (!t) {
        done(verdict, user);
        return 0;
    }
    return dispatch(in, t);
}

int pdw_intake_begin(pdw_intake_pending **out, pdw_intake *in, const pdw_request *req,
                     pdw_verdict *verdict)
{
    if (out)
        *out = NULL;
    if (!out || !in || !req || !verdict)
        return PDW_EINVAL;
    ticket *t = ticket_new(in, verdict, NULL, NULL);
    if (!t) { /* refused as the head says, else 503: nothing is claimed yet */
        int rc = pdw_receiver_check_head(in->rcv, req, verdict);
        return rc < 0 ? rc : pdw_receiver_settle(in->rcv, PDW_ENOMEM, verdict);
    }
    pdw_request rq;
    request_copy(req, t, &rq);
    int rc = pdw_receiver_begin(&t->rp, in->rcv, &rq, verdict);
    if (rc < 0) {
        pdw__free(&in->alloc, t);
        return rc;
    }
    *out = (pdw_intake_pending *)(void *)t;
    return 0;
}

int pdw_intake_finish(pdw_intake_pending *p, const char *body, size_t len, pdw_verdict *verdict,
                      pdw_intake_done_cb done, void *user)
{
    if (!p)
        return PDW_EINVAL;
    ticket *t = &p->t;
    pdw_intake *in = t->in;
    if (!verdict || !done || !atomic_load(&in->started)) {
        ticket_free(t);
        return PDW_EINVAL;
    }
    t->verdict = verdict;
    t->done = done;
    t->user = user;
    (void)pdw_receiver_finish(t->rp, body, len, verdict, NULL);
    pdw_receiver_pending_free(t->rp);
    t->rp = NULL;
    return dispatch(in, t);
}

void pdw_intake_pending_free(pdw_intake_pending *p)
{
    if (p)
        ticket_free(&p->t);
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* Every delivery the journal holds at open is remembered in dedup: a retry of it is a
 * duplicate (for the receiver's TTL from its arrival). */
static int remember_record(const pdw_spool_record *rec, void *user)
{
    pdw_intake *in = user;
    (void)pdw_receiver_remember(in->rcv, rec->key, rec->key_len, rec->received_ms);
    /* and the update key of the state it carries (a reconciled record's key is one) */
    if (rec->key_len < 2 || memcmp(rec->key, "u:", 2) != 0) {
        pdw_event *ev = NULL;
        char uk[PDW_DELIVERY_KEY_MAX];
        int ul = pdw_event_parse(&ev, rec->body, rec->body_len, NULL, NULL) < 0
                     ? -1 : pdw_event_update_key(ev, uk, sizeof uk);
        pdw_event_free(ev);
        if (ul > 0)
            (void)pdw_receiver_remember(in->rcv, uk, (size_t)ul, rec->received_ms);
    }
    if (in->user_on_record)
        (void)in->user_on_record(rec, in->user_record_user);
    return 0;
}

/* *handed: set once the receiver options went to pdw_receiver_new(), which owns their dedup
 * store from then on, whatever it returns. */
static int intake_new(pdw_intake **out, const pdw_intake_options *opts, int *handed,
                      pdw_error *err)
{
    pdw_allocator a;
    int rc;
    if (out)
        *out = NULL;
    if (!out || !opts)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and opts are required");
    if (opts->version != PDW_INTAKE_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "intake options version %u",
                              opts->version);
    const pdw_receiver_options *ro = opts->receiver;
    if (!ro)
        return pdw__error_set(err, PDW_EINVAL, -1, "receiver options are required");
    if (ro->version != PDW_RECEIVER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "receiver options version %u",
                              ro->version);
    if (ro->accept)
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "the receiver's accept hook is the intake's: leave it NULL");
    if (opts->spool && opts->spool->version != PDW_SPOOL_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "spool options version %u",
                              opts->spool->version);
    if (opts->worker && opts->worker->version != PDW_WORKER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "worker options version %u",
                              opts->worker->version);
    if (pdw__alloc_set(&a, opts->allocator) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");

    pdw_intake *in = pdw__calloc(&a, 1, sizeof *in);
    if (!in)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    in->alloc = a;
    in->dedup_change = opts->dedup_change;
    in->on_error = opts->on_error;
    in->error_user = opts->error_user;
    if (pthread_rwlock_init(&in->worker_lock, NULL) != 0) {
        pdw__free(&a, in);
        return pdw__error_set(err, PDW_ENOMEM, -1, "cannot create a lock");
    }
    in->locks_made = 1;
    if (pthread_mutex_init(&in->lock, NULL) != 0) {
        rc = pdw__error_set(err, PDW_ENOMEM, -1, "cannot create a lock");
        goto fail;
    }
    if (pthread_cond_init(&in->cond, NULL) != 0) {
        pthread_mutex_destroy(&in->lock);
        rc = pdw__error_set(err, PDW_ENOMEM, -1, "cannot create a condition");
        goto fail;
    }
    in->locks_made = 2;

    /* the receiver first: the journal's records are remembered in its dedup */
    pdw_receiver_options rcvo = *ro;
    rcvo.accept = intake_accept;
    rcvo.accept_user = in;
    if (!rcvo.allocator)
        rcvo.allocator = &in->alloc;
    *handed = 1;
    if ((rc = pdw_receiver_new(&in->rcv, &rcvo, err)) < 0)
        goto fail;

    if (opts->spool_dir) {
        pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
        if (opts->spool)
            so = *opts->spool;
        in->user_on_record = so.on_record;
        in->user_record_user = so.record_user;
        so.on_record = remember_record;
        so.record_user = in;
        if (!so.allocator)
            so.allocator = &in->alloc;
        if ((rc = pdw_spool_open(&in->spool, opts->spool_dir, &so, &in->recovery, err)) < 0)
            goto fail;
    }

    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    if (opts->worker)
        wo = *opts->worker;
    if (wo.dead_letter_path) {
        in->dead_letter_path = pdw__strdup(&in->alloc, wo.dead_letter_path);
        if (!in->dead_letter_path) {
            rc = pdw__error_set(err, PDW_ENOMEM, -1, NULL);
            goto fail;
        }
        wo.dead_letter_path = in->dead_letter_path;
    }
    wo.spool = in->spool;
    wo.receiver = in->rcv;
    if (!wo.allocator)
        wo.allocator = &in->alloc;
    in->wo = wo;
    *out = in;
    return 0;
fail:
    pdw_intake_free(in);
    return rc;
}

int pdw_intake_new(pdw_intake **out, const pdw_intake_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    int handed = 0;
    int rc = intake_new(out, opts, &handed, err);
    /* the receiver options' dedup store is the intake's whatever the result: freed here when
     * it never reached pdw_receiver_new() (which frees it on its own failures) */
    const pdw_receiver_options *ro = opts ? opts->receiver : NULL;
    if (rc < 0 && !handed && ro && ro->version >= 1 &&
        ro->version <= PDW_RECEIVER_OPTIONS_VERSION && ro->dedup &&
        ro->dedup->version == PDW_DEDUP_STORE_VERSION)
        pdw_dedup_store_free(ro->dedup);
    return rc;
}

pdw_receiver *pdw_intake_receiver(pdw_intake *in)
{
    return in ? in->rcv : NULL;
}

pdw_spool *pdw_intake_spool(pdw_intake *in)
{
    return in ? in->spool : NULL;
}

int pdw_intake_start(pdw_intake *in, long *recovered, pdw_error *err)
{
    pdw__error_reset(err);
    if (recovered)
        *recovered = 0;
    if (!in || atomic_load(&in->started) || in->stopping)
        return pdw__error_set(err, PDW_EINVAL, -1, "no intake, or started before");
    pdw_worker *w = NULL;
    int rc = pdw_worker_start(&w, &in->wo, err);
    if (rc < 0)
        return rc;
    if (in->spool) {
        if (pthread_create(&in->committer, NULL, committer_main, in) != 0) {
            pdw_worker_free(w); /* stops it first */
            return pdw__error_set(err, PDW_ENOMEM, -1, "cannot start the commit thread");
        }
        in->committer_started = 1;
    }
    pthread_rwlock_wrlock(&in->worker_lock);
    in->worker = w;
    pthread_rwlock_unlock(&in->worker_lock);
    if (in->spool) {
        long n = pdw_worker_recover(w);
        if (n < 0)
            pdw__error_set(err, (int)n, -1, "handing the pending deliveries to the worker");
        else if (recovered)
            *recovered = n;
    }
    atomic_store(&in->started, 1);
    return 0;
}

/* ---- reconciled records ------------------------------------------------------------ */

int pdw_intake_reconcile(pdw_intake *in, const char *body, size_t len, pdw_error *err)
{
    pdw__error_reset(err);
    if (!in || (!body && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "intake and body are required");
    pdw_event *ev = NULL;
    int rc = pdw_event_parse(&ev, body ? body : "", len, NULL, err);
    if (rc < 0)
        return rc;
    char uk[PDW_DELIVERY_KEY_MAX];
    int ul = pdw_event_update_key(ev, uk, sizeof uk);
    if (ul < 0) {
        pdw_event_free(ev);
        return pdw__error_set(err, PDW_EFIELD, -1, "the event carries no update time");
    }
    rc = pdw_receiver_claim(in->rcv, uk, (size_t)ul);
    if (rc < 0 || rc == PDW_CLAIM_DUPLICATE || rc == PDW_CLAIM_INFLIGHT) {
        pdw_event_free(ev);
        /* in flight: a delivery of the same state is being accepted now */
        return rc < 0 ? pdw__error_set(err, rc, -1, "the dedup store failed") : 0;
    }
    pdw_spool_record rec = { 0, pdw__wall_ms(), uk, (size_t)ul, body, len };
    if (in->spool) {
        rc = pdw_spool_append(in->spool, uk, (size_t)ul, rec.received_ms, body, len, &rec.id,
                              err);
        atomic_store(&in->spool_full, rc == PDW_ENOSPC);
        pthread_rwlock_rdlock(&in->worker_lock);
        if (rc == 0 && in->worker) /* without a worker it waits, pending, for a start */
            (void)pdw_worker_submit_entity(in->worker, &rec, pdw_event_object(ev),
                                           pdw_event_entity_id(ev));
        pthread_rwlock_unlock(&in->worker_lock);
    } else {
        pthread_rwlock_rdlock(&in->worker_lock);
        rc = in->worker ? pdw_worker_submit_event(in->worker, &rec, ev)
                        : pdw__error_set(err, PDW_EINVAL, -1,
                                         "no journal and no worker: start the intake");
        pthread_rwlock_unlock(&in->worker_lock);
    }
    pdw_event_free(ev);
    if (rc < 0) {
        (void)pdw_receiver_release(in->rcv, uk, (size_t)ul);
        return rc;
    }
    (void)pdw_receiver_confirm(in->rcv, uk, (size_t)ul);
    return 1;
}

int pdw_intake_get_stats(pdw_intake *in, pdw_intake_stats *out)
{
    if (!in || !out)
        return PDW_EINVAL;
    if (out->version != PDW_INTAKE_STATS_VERSION)
        return PDW_EVERSIONSTRUCT;
    out->waiting = atomic_load(&in->waiting);
    out->durable = atomic_load(&in->durable);
    out->failed = atomic_load(&in->failed);
    out->spool_full = atomic_load(&in->spool_full);
    out->recovery = in->recovery;
    pthread_rwlock_rdlock(&in->worker_lock);
    if (in->worker)
        pdw_worker_get_stats(in->worker, &out->worker);
    else
        out->worker = in->last_worker;
    pthread_rwlock_unlock(&in->worker_lock);
    return 0;
}

void pdw_intake_stop(pdw_intake *in)
{
    if (!in || in->locks_made < 2)
        return;
    pthread_mutex_lock(&in->lock);
    int was = in->stopping;
    in->stopping = 1;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->lock);
    if (was)
        return;
    if (in->committer_started) { /* its last batch settles and calls back everyone */
        pthread_join(in->committer, NULL);
        in->committer_started = 0;
    }
    pthread_rwlock_wrlock(&in->worker_lock);
    pdw_worker *w = in->worker;
    in->worker = NULL; /* late requests leave their deliveries pending in the journal */
    if (w)
        pdw_worker_get_stats(w, &in->last_worker);
    pthread_rwlock_unlock(&in->worker_lock);
    if (w) {
        pdw_worker_free(w); /* stops it first: attempts under way finish; markers flushed */
        pthread_rwlock_wrlock(&in->worker_lock);
        in->last_worker.queued = in->last_worker.running = 0;
        pthread_rwlock_unlock(&in->worker_lock);
    }
}

void pdw_intake_free(pdw_intake *in)
{
    if (!in)
        return;
    pdw_intake_stop(in);
    pdw_spool_close(in->spool);
    pdw_receiver_free(in->rcv);
    if (in->locks_made >= 2) {
        pthread_cond_destroy(&in->cond);
        pthread_mutex_destroy(&in->lock);
    }
    if (in->locks_made >= 1)
        pthread_rwlock_destroy(&in->worker_lock);
    pdw__free(&in->alloc, in->dead_letter_path);
    pdw_allocator a = in->alloc;
    pdw__free(&a, in);
}
