/**
 * @file pdwebhook/intake.h
 * @brief The durable intake: receiver + spool + worker + group commit as one object, with
 * a completion callback any event loop can drive (libpdwebhook-durable).
 *
 * What it guarantees, for every server that hands it its requests:
 * - **ack only what is durable**: a delivery is answered 2xx only once its record is
 *   fdatasync'ed in the journal (::pdw_spool), so no acknowledged event is lost to a
 *   crash, a `kill -9` or a power cut; concurrent requests share one fdatasync (group
 *   commit) and no thread waits for the disk: the request waits, not the thread.
 * - **no ban from a slow handler**: handlers run after the answer, on the worker's
 *   threads (::pdw_worker: order per entity, retries with backoff, dead letters).
 * - **nothing lost, nothing twice**: a flush that fails answers 503 + `Retry-After` and
 *   releases the delivery's dedup claim, so Pipedrive's retry is taken as new; a delivery
 *   that was answered 2xx is confirmed in dedup, so its retries are duplicates, also
 *   after a restart (the keys found in the journal are remembered at start); at start the
 *   deliveries not handed on yet are handed to the worker.
 *
 * ```
 *   pdw_intake_submit()  ── head, auth, parse, dedup claim ──► journal append (no wait)
 *        │  (401, 400, 405, 413, duplicates, a full disk: answered inside the call)
 *        ▼
 *   committer thread: one fdatasync for everything appended ─► per request: confirm the
 *   claim + hand the delivery to the worker (or release it + 503) ─► done(verdict, user)
 * ```
 *
 * @par The completion interface
 * Submit a request with pdw_intake_submit() (the whole body at hand), or in two steps
 * with pdw_intake_begin() when the headers are in (refuses a request, e.g. 413 on its
 * Content-Length, before its body is read) and pdw_intake_finish() with the body. The
 * ::pdw_intake_done_cb gets the request's verdict when its answer is final:
 * - **inside the call, on the calling thread** when the answer needs no flush: a refused
 *   request (401, 400, 405, 413, 415), a duplicate, a retry in flight (503), a journal
 *   append that failed (503, e.g. a full disk), a delivery accepted by an intake without
 *   a journal (nothing to wait for), and every request submitted after pdw_intake_stop().
 *   The call then returns 0.
 * - **later, on the intake's committer thread** when the delivery was appended to the
 *   journal: once the flush that covered it is over, with 200 (durable: its claim is
 *   confirmed and the worker has it) or 503 + `Retry-After` (the flush failed: its claim
 *   is released). The call then returns ::PDW_INTAKE_PENDING. The callback may run before
 *   the call has returned: an adapter that parks the request (suspends a connection) must
 *   be ready for that, e.g. with an atomic flag that both sides exchange (examples/mhd).
 *
 * The callback runs **exactly once** per pdw_intake_submit() or pdw_intake_finish() call
 * that did not return ::PDW_EINVAL (a NULL argument, a second finish, a request before
 * pdw_intake_start()). Keep it short: on the committer thread it delays the next flush.
 * It must not call pdw_intake_stop() or pdw_intake_free().
 *
 * The status policy (statuses, `Retry-After`, bodies) is the receiver's, set in
 * ::pdw_intake_options::receiver: the 503 of a failed flush is the one the receiver gives
 * a failing accept hook (pdw_receiver_settle()). So are the dedup TTL and the in-flight
 * lease (::pdw_receiver_options::dedup_ttl_ms, ::pdw_receiver_options::inflight_lease_ms):
 * the keys remembered at start are kept for that TTL from their delivery's arrival.
 *
 * @par Life cycle
 * pdw_intake_new() (opens and recovers the journal) → register handlers on
 * pdw_intake_receiver()'s router (for the default worker handler) → pdw_intake_start()
 * (worker and committer threads; the pending deliveries go to the worker) →
 * submit requests → pdw_intake_stop() (answers every request waiting for a flush, joins
 * the committer and the worker) → stop the server → pdw_intake_free().
 *
 * @par Thread safety
 * pdw_intake_submit(), pdw_intake_begin(), pdw_intake_finish(),
 * pdw_intake_pending_free() and pdw_intake_get_stats() from any thread, at once. A
 * pending request belongs to one thread at a time. pdw_intake_start(), pdw_intake_stop()
 * and pdw_intake_free() once each, from one thread, in that order.
 */
#ifndef PDWEBHOOK_INTAKE_H
#define PDWEBHOOK_INTAKE_H

#include "common.h"
#include "error.h"
#include "receiver.h"
#include "spool.h"
#include "worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque intake. */
typedef struct pdw_intake pdw_intake;

/** @brief A request whose head passed pdw_intake_begin(), waiting for its body. Opaque. */
typedef struct pdw_intake_pending pdw_intake_pending;

/**
 * Return value of pdw_intake_submit() and pdw_intake_finish(): the delivery waits for
 * the journal's flush; the callback runs on the committer thread (maybe already has).
 */
#define PDW_INTAKE_PENDING 1

/**
 * @brief A request's answer is final: send it.
 *
 * Called exactly once per submitted request (see the file's introduction for which
 * thread, and when).
 * @param verdict the verdict the caller gave pdw_intake_submit() or pdw_intake_finish(),
 *   now final (status, headers, body). Its header values may point into the verdict
 *   itself: send it from where it is, do not copy the struct.
 * @param user the @p user given with the request.
 */
typedef void (*pdw_intake_done_cb)(pdw_verdict *verdict, void *user);

/**
 * @brief Told when the journal refused an append or a flush failed (a full disk, an I/O
 * error); the request is answered 503 + `Retry-After`. For a log line or a counter.
 * @param code ::PDW_ENOSPC, ::PDW_EIO, ::PDW_ENOMEM, ...
 * @param message a short text without secrets (borrowed for the call), never NULL.
 * @param user the options' @c error_user.
 * @par Thread safety
 * Called on the submitting thread (an append) or the committer thread (a flush).
 */
typedef void (*pdw_intake_error_cb)(int code, const char *message, void *user);

/** @brief Intake options. Initialise with ::PDW_INTAKE_OPTIONS_INIT or
 *  pdw_intake_options_init(); 0 / NULL means the default in every member. */
typedef struct pdw_intake_options {
    unsigned version;                     /**< ::PDW_INTAKE_OPTIONS_VERSION */
    const pdw_receiver_options *receiver; /**< required: credentials, status policy,
                                               dedup store, TTL and lease (read during
                                               pdw_intake_new() only; its dedup store is
                                               the intake's receiver's from then on,
                                               freed with it, also when pdw_intake_new()
                                               fails). Its @c accept must be NULL: the
                                               intake is the accept hook */
    const char *spool_dir;                /**< the journal's directory (created 0700);
                                               copied. NULL: no journal: accepted
                                               deliveries are answered 200 once queued
                                               for the worker, in memory (NOT durable) */
    const pdw_spool_options *spool;       /**< journal options (size limits, retention,
                                               fault injection); NULL: defaults. Its
                                               @c on_record is still told of every
                                               record (after the intake remembers it) */
    const pdw_worker_options *worker;     /**< worker options (handler, threads,
                                               retries, dead letters); NULL: defaults.
                                               Its @c spool and @c receiver are set by the
                                               intake; with @c handle NULL the worker
                                               dispatches to pdw_intake_receiver()'s router */
    pdw_intake_error_cb on_error;         /**< NULL: none */
    void *error_user;                     /**< handed to @c on_error */
    const pdw_allocator *allocator;       /**< for the intake and for the parts whose
                                               options name none; NULL: malloc/free */
    int dedup_change;                     /**< 1: one change is handed on once even when it
                                               comes in both payload versions (a v1 -> v2
                                               migration runs both webhooks): besides its
                                               delivery key, each delivery claims its
                                               version-neutral change key
                                               (pdw_event_change_key()) in the receiver's
                                               dedup store, and a delivery whose change is
                                               already held is answered 200 and not
                                               journaled. 0: off (the two copies have
                                               different delivery keys and are both handed
                                               on). The keys of deliveries journaled before
                                               a restart are not claimed again at start */
} pdw_intake_options;

/** Version of ::pdw_intake_options this header describes. */
#define PDW_INTAKE_OPTIONS_VERSION 1
/** Initialiser for ::pdw_intake_options: the version; every other member 0 / NULL. */
#define PDW_INTAKE_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_intake_options, PDW_INTAKE_OPTIONS_VERSION)

/**
 * @brief Fill intake options with defaults (every member 0 / NULL).
 * @param[out] opts the options to fill.
 * @param version ::PDW_INTAKE_OPTIONS_VERSION.
 * @return 0, ::PDW_EINVAL (@p opts NULL) or ::PDW_EVERSIONSTRUCT (unknown version:
 *   @p opts untouched).
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN int pdw_intake_options_init(pdw_intake_options *opts, unsigned version);

/**
 * @brief Create an intake: the receiver, and the journal opened and recovered.
 *
 * Every delivery found in the journal (handed on or not, as long as the journal keeps
 * it, see ::pdw_spool_options::retain_ms) is remembered in the receiver's dedup
 * (pdw_receiver_remember()): its retries are duplicates. No thread is started yet.
 * @param[out] out the intake; free it with pdw_intake_free(). NULL on failure.
 * @param opts the options; required.
 * @param err optional error detail, or NULL; never contains a secret.
 * @return 0, ::PDW_EINVAL (NULL argument, no receiver options, an accept hook set),
 *   ::PDW_EVERSIONSTRUCT, the receiver's errors (::PDW_ENOAUTH, ...), the spool's
 *   (::PDW_ELOCKED: another process has the directory, ::PDW_EIO), ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_intake_new(pdw_intake **out, const pdw_intake_options *opts,
                              pdw_error *err);

/**
 * @brief The intake's receiver, to register handlers on its router before
 * pdw_intake_start() (the default worker handler dispatches to them).
 * @param in the intake.
 * @return the receiver, borrowed (valid until pdw_intake_free()); NULL if @p in is NULL.
 *   Do not call pdw_receiver_handle() on it for the intake's requests: submit them.
 */
PDW_EXTERN pdw_receiver *pdw_intake_receiver(pdw_intake *in);

/**
 * @brief The intake's journal, for its counters (pdw_spool_get_stats()) or a walk of the
 * pending deliveries before pdw_intake_start().
 * @param in the intake.
 * @return the spool, borrowed (valid until pdw_intake_free()); NULL without a journal.
 */
PDW_EXTERN pdw_spool *pdw_intake_spool(pdw_intake *in);

/**
 * @brief Start the worker and the committer thread, and hand the worker every journaled
 * delivery not handed on yet (in id order).
 * @param in the intake.
 * @param[out] recovered the number of deliveries handed to the worker; may be NULL.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL (NULL, or started before), the worker's errors (::PDW_EIO: the
 *   dead-letter file cannot be opened, ::PDW_ENOMEM), or a pthread failure as
 *   ::PDW_ENOMEM. On failure nothing runs; pdw_intake_free() it.
 */
PDW_EXTERN int pdw_intake_start(pdw_intake *in, long *recovered, pdw_error *err);

/**
 * @brief Take one request, whole: the answer comes through @p done.
 *
 * Runs the receiver's pipeline (method, media type, size, credentials, parse, dedup);
 * an accepted delivery is appended to the journal and answered once it is durable.
 * @param in the intake.
 * @param req the request; borrowed for the call, except its body: the bytes
 *   `req->body[0 .. req->body_len)` must stay valid and unchanged until @p done has run.
 *   Its @c user member is ignored (the intake uses the accept hook's own context).
 * @param verdict where the answer goes (initialised with ::PDW_VERDICT_INIT); must stay
 *   valid until @p done has run, and is handed to it.
 * @param done called once with @p verdict when the answer is final; required.
 * @param user handed to @p done.
 * @return 0 (@p done has run, inside this call), ::PDW_INTAKE_PENDING (it runs on the
 *   committer thread, maybe already did), or ::PDW_EINVAL (a NULL argument, or the
 *   intake not started: @p done is not called).
 */
PDW_EXTERN int pdw_intake_submit(pdw_intake *in, const pdw_request *req,
                                 pdw_verdict *verdict, pdw_intake_done_cb done, void *user);

/**
 * @brief Check a request's head (method, media type, Content-Length against the limit,
 * credentials) before its body is read; the body follows with pdw_intake_finish().
 *
 * As pdw_receiver_begin(): a request over the size limit by its Content-Length is
 * refused (413) here, without reading its body.
 * @param[out] out on success, the pending request, to be given to pdw_intake_finish()
 *   (which takes it over) or, if the body never comes, to pdw_intake_pending_free();
 *   NULL otherwise.
 * @param in the intake.
 * @param req the request; its body is ignored; borrowed for the call.
 * @param[out] verdict filled when the request is refused: send it (no callback runs).
 * @return 0 to read the body; the negative reason (verdict filled) as
 *   pdw_receiver_begin(); ::PDW_EINVAL for a NULL argument (verdict unchanged).
 */
PDW_EXTERN int pdw_intake_begin(pdw_intake_pending **out, pdw_intake *in,
                                const pdw_request *req, pdw_verdict *verdict);

/**
 * @brief Give a pending request its body: the answer comes through @p done.
 * @param p the pending request; taken over (freed by the intake, whatever the result:
 *   do not use it after this call).
 * @param body the body bytes (no NUL needed); must stay valid and unchanged until @p done
 *   has run.
 * @param len their number.
 * @param verdict where the answer goes (initialised with ::PDW_VERDICT_INIT); valid until
 *   @p done has run, and handed to it.
 * @param done called once with @p verdict when the answer is final; required.
 * @param user handed to @p done.
 * @return as pdw_intake_submit(): 0, ::PDW_INTAKE_PENDING or ::PDW_EINVAL (a NULL
 *   argument or an intake not started: @p done is not called, @p p is freed all the same
 *   when it is not NULL).
 */
PDW_EXTERN int pdw_intake_finish(pdw_intake_pending *p, const char *body, size_t len,
                                 pdw_verdict *verdict, pdw_intake_done_cb done, void *user);

/**
 * @brief Free a pending request whose body never came (pdw_intake_finish() frees the
 * others). @param p the pending request, or NULL.
 */
PDW_EXTERN void pdw_intake_pending_free(pdw_intake_pending *p);

/**
 * @brief Hand on a reconciled event (pdwebhook/reconcile.h) as a delivery is handed on:
 * journaled, then given to the worker (or, before pdw_intake_start(), left pending in the
 * journal for the next start).
 *
 * Deduplicated by its update key (pdw_event_update_key()) in the receiver's dedup store,
 * where the intake also remembers the update key of every accepted delivery (and, at
 * open, of every delivery the journal holds): a record whose state was delivered already,
 * or reconciled before, is not handed on again (within the dedup TTL and the journal's
 * retention).
 * @param in the intake (started or not).
 * @param body the event's body (pdw_reconcile_body()); no NUL needed; copied.
 * @param len its length.
 * @param err optional error detail, or NULL.
 * @return 1 (journaled: handed on, or pending), 0 (a duplicate: nothing done), a parse
 *   error, ::PDW_EFIELD (no update time), ::PDW_EINVAL (NULL, or neither a journal nor a
 *   started worker), the journal's errors (::PDW_ENOSPC, ::PDW_EIO), the store's.
 * @par Thread safety
 * From any thread, like pdw_intake_submit(). It waits for the journal's flush.
 */
PDW_EXTERN int pdw_intake_reconcile(pdw_intake *in, const char *body, size_t len,
                                    pdw_error *err);

/** @brief What the intake has done. Set @c version before pdw_intake_get_stats(). */
typedef struct pdw_intake_stats {
    unsigned version;        /**< ::PDW_INTAKE_STATS_VERSION, set by the caller */
    uint64_t waiting;        /**< requests appended and waiting for their flush now */
    uint64_t durable;        /**< deliveries answered 200 after their flush */
    uint64_t failed;         /**< deliveries answered 503 because their append or flush
                                  failed */
    int spool_full;          /**< 1 while the journal is full: its last append was
                                  refused for space (::PDW_ENOSPC); 0 after one that
                                  succeeded */
    pdw_worker_stats worker; /**< the worker's counters (the last ones after
                                  pdw_intake_stop(); zero before pdw_intake_start()) */
    pdw_spool_recovery recovery; /**< what pdw_intake_new() found in the journal (torn
                                      or stale bytes cut, pending deliveries); zero
                                      without one */
} pdw_intake_stats;

/** Version of ::pdw_intake_stats this header describes. */
#define PDW_INTAKE_STATS_VERSION 1
/** Initialiser for ::pdw_intake_stats: the version, to pass to pdw_intake_get_stats(). */
#define PDW_INTAKE_STATS_INIT PDW_STRUCT_INIT(pdw_intake_stats, PDW_INTAKE_STATS_VERSION)

/**
 * @brief Read the counters.
 * @param in the intake.
 * @param[in,out] out its @c version set to ::PDW_INTAKE_STATS_VERSION; filled.
 * @return 0, ::PDW_EINVAL (NULL argument) or ::PDW_EVERSIONSTRUCT (nothing written).
 * @par Thread safety
 * Any thread, at any time between pdw_intake_new() and pdw_intake_free().
 */
PDW_EXTERN int pdw_intake_get_stats(pdw_intake *in, pdw_intake_stats *out);

/**
 * @brief Stop: answer every request waiting for a flush, and join the threads.
 *
 * The committer's last flush settles and calls back every request appended before this
 * call; then the worker stops (attempts under way finish; with a journal, queued
 * deliveries stay pending there and are handed on after the next start; without one,
 * the queue is drained first). Requests submitted from now on are answered inside the
 * submitting call: with a journal, each one flushes for itself (durable, handed on after
 * the next start); without one, 503 ::PDW_EIO (nothing could keep them). So a server
 * can stop its HTTP side after this call, which leaves no request parked. Idempotent.
 * @param in the intake, or NULL.
 */
PDW_EXTERN void pdw_intake_stop(pdw_intake *in);

/**
 * @brief Free the intake: stops it first if needed, flushes and closes the journal,
 * frees the receiver. No other call on it may be running or follow.
 * @param in the intake, or NULL.
 */
PDW_EXTERN void pdw_intake_free(pdw_intake *in);

#ifdef __cplusplus
}
#endif
#endif
