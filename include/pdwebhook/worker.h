/**
 * @file pdwebhook/worker.h
 * @brief Hand accepted deliveries on after the answer: ordered, retried, dead-lettered.
 *
 * With a spool, a delivery is answered 200 as soon as it is durable; the worker hands it
 * on afterwards, so a slow or failing handler never costs Pipedrive's ban counter:
 *
 * - **order**: events of one entity (object + entity id) are handled one after another in
 *   receive order; different entities run in parallel on `threads` threads;
 * - **retries**: a failing handler is retried with exponential backoff and jitter
 *   (`backoff_base_ms` x 2^n, at most `backoff_max_ms`, each delay drawn in [d/2, d]),
 *   up to `max_attempts` attempts;
 * - **dead letters**: then the event is appended to a JSON-lines file
 *   (`{"id","delivery_key","received_ms","failed_at_ms","attempts","error","body"}`,
 *   fsync'ed) and the `on_dead_letter` callback is told;
 * - **markers**: handled (or dead-lettered) deliveries are marked in the spool by a
 *   background flush every `marker_flush_ms`, after the `sync` callback (which makes a
 *   sink's own output durable first, so that a crash can never leave an event marked but
 *   not handed on).
 *
 * Guarantee: every delivery in the spool is handed on at least once. A crash between a
 * handler's success and its marker repeats it after restart; make user handlers idempotent
 * with pdw_event_delivery_key(). The `pdwebhook` program's sinks (--output, --exec) check
 * their own records so that they see each event exactly once.
 *
 * Under load a worker thread is not woken for every delivery: one that was busy a moment
 * ago looks at its queue again within about 2 ms (or at once when 64 deliveries wait), so
 * a delivery may wait that much longer for its handler; an idle thread is woken at once.
 *
 * The worker owns its threads (POSIX threads). The rest of the library does not need it.
 *
 * @par Stopping and freeing
 * As every object of pdwebhook that runs (docs/API.md, *Conventions*): pdw_worker_stop()
 * stops it (drains as described there, joins its threads, returns once it is stopped; a
 * second call, also from another thread at the same time, waits for the first and does
 * nothing more), and pdw_worker_free() releases its memory, stopping it first when it
 * still runs. A stopped worker takes no more deliveries.
 *
 * @par Thread safety
 * pdw_worker_submit(), pdw_worker_submit_event(), pdw_worker_submit_entity(),
 * pdw_worker_get_stats() and pdw_worker_stop() may be called from any thread;
 * pdw_worker_free() once no other call on the worker runs (not from a handler).
 */
#ifndef PDWEBHOOK_WORKER_H
#define PDWEBHOOK_WORKER_H

#include "common.h"
#include "error.h"
#include "receiver.h"
#include "spool.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque worker. */
typedef struct pdw_worker pdw_worker;

/**
 * @brief Hand one delivery on.
 * @param rec the delivery (borrowed for the call).
 * @param attempt 1 for the first try, then 2, 3, ...
 * @param errbuf where to write why it failed (NUL-terminated, at most @p errcap bytes).
 * @param errcap the size of @p errbuf.
 * @param user the options' @c handle_user.
 * @return 0 when handled; non-zero to retry later (or dead-letter after the last attempt).
 */
typedef int (*pdw_worker_handle_cb)(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                                    size_t errcap, void *user);

/** @brief Told when a delivery is given up and written to the dead-letter file. */
typedef void (*pdw_dead_letter_cb)(const pdw_spool_record *rec, unsigned attempts,
                                   const char *error, void *user);

/** @brief Make a sink's output durable before handled markers are; 0 when it is. */
typedef int (*pdw_worker_sync_cb)(void *user);

/** @brief Worker options. Initialise with ::PDW_WORKER_OPTIONS_INIT; 0 means the default. */
typedef struct pdw_worker_options {
    unsigned version;                  /**< ::PDW_WORKER_OPTIONS_VERSION */
    const pdw_allocator *allocator;    /**< NULL: malloc/realloc/free; copied */
    pdw_spool *spool;                  /**< where deliveries are marked; NULL: no spool (nothing
                                            durable; pdw_worker_stop() then drains the queue) */
    pdw_receiver *receiver;            /**< for the default handler */
    pdw_worker_handle_cb handle;       /**< NULL: pdw_receiver_dispatch_body() on @c receiver */
    void *handle_user;                 /**< handed to @c handle */
    unsigned threads;                  /**< 0: 4 */
    unsigned max_attempts;             /**< 0: 8 */
    uint64_t backoff_base_ms;          /**< 0: 1000 */
    uint64_t backoff_max_ms;           /**< 0: 60000 */
    const char *dead_letter_path;      /**< JSON-lines file; NULL: none (callback only). Copied. */
    pdw_dead_letter_cb on_dead_letter; /**< NULL: none */
    void *dead_letter_user;            /**< handed to @c on_dead_letter */
    pdw_worker_sync_cb sync;           /**< NULL: none */
    void *sync_user;                   /**< handed to @c sync */
    uint64_t marker_flush_ms;          /**< 0: 50 */
    uint64_t max_queued_bytes;         /**< keys and bodies kept in memory by queued
                                            deliveries; 0: 16 MiB. Past it, with a spool,
                                            a delivery is queued by id and read back from
                                            the journal when handled; without one,
                                            submitting fails with ::PDW_ENOSPC */
} pdw_worker_options;

/** Version of ::pdw_worker_options this header describes. */
#define PDW_WORKER_OPTIONS_VERSION 1
/** Initialiser for ::pdw_worker_options. */
#define PDW_WORKER_OPTIONS_INIT PDW_STRUCT_INIT(pdw_worker_options, PDW_WORKER_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_worker_options_init(pdw_worker_options *opts, unsigned version);

/**
 * @brief Start the worker threads.
 * @param[out] out the worker, running; stop it with pdw_worker_stop() and free it with
 *   pdw_worker_free() (which stops it too).
 * @param opts options (handler or receiver, spool, retry policy).
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL (no handler and no receiver), ::PDW_ENOMEM, ::PDW_EIO (the
 *   dead-letter file cannot be opened), ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_worker_start(pdw_worker **out, const pdw_worker_options *opts,
                                pdw_error *err);

/**
 * @brief Queue a durable delivery. Call it once the delivery is durable.
 *
 * Its key and body are copied while the queue's copies stay within
 * pdw_worker_options::max_queued_bytes; past that, with a spool, only its id is queued and
 * the record is read back (pdw_spool_read()) when it is handled.
 * @return 0, ::PDW_ENOMEM (it stays pending in the spool and is handed on after restart),
 *   ::PDW_ENOSPC (no spool, and the queue holds its budget of bytes already: answer 503
 *   so that Pipedrive retries), ::PDW_EINVAL (a malformed record, or the worker is
 *   stopped).
 */
PDW_EXTERN int pdw_worker_submit(pdw_worker *w, const pdw_spool_record *rec);

/**
 * @brief Queue a durable delivery whose event is already parsed (copied), without parsing
 * its body again.
 *
 * Same as pdw_worker_submit(), but the entity that orders the delivery (object and entity
 * id) is read from @p ev instead of from a new parse of the body: use it from the accept
 * hook (::pdw_accept_cb), which holds the event the receiver parsed, with
 * `rec->body = pdw_event_body(ev, &rec->body_len)`.
 * @param w the worker.
 * @param rec the delivery; copied.
 * @param ev the event parsed from `rec->body`, borrowed for the call. Its body must be the
 *   record's body, byte for byte (the same pointer is checked in O(1), other memory is
 *   compared), or the call fails: order per entity holds only when every delivery of an
 *   entity is assigned by the same fields.
 * @return 0, ::PDW_EINVAL (NULL argument, @p ev not parsed from @p rec's body, or the
 *   worker is stopped),
 *   ::PDW_ENOMEM (with a spool the delivery stays pending there and is handed on after a
 *   restart), ::PDW_ENOSPC (as for pdw_worker_submit()).
 * @par Thread safety
 * Like pdw_worker_submit(): from any thread.
 */
PDW_EXTERN int pdw_worker_submit_event(pdw_worker *w, const pdw_spool_record *rec,
                                       const pdw_event *ev);

/**
 * @brief Queue a durable delivery by the entity it belongs to (copied), for a caller that
 * kept the entity but no longer has the event (e.g. after waiting for a group commit).
 *
 * Same as pdw_worker_submit_event(), with the entity given as text: @p object and
 * @p entity_id must be what pdw_event_object() and pdw_event_entity_id() returned for the
 * event parsed from `rec->body` (NULL is taken as ""). They are not checked against the
 * body (that would be the parse this call exists to avoid): other values never lose the
 * delivery, but deliveries of one entity could then run on two threads, out of order.
 * @param w the worker.
 * @param rec the delivery; copied.
 * @param object the event's object ("deal"), or NULL; borrowed for the call.
 * @param entity_id the event's entity id, or NULL when it has none; borrowed for the call.
 * @return 0, ::PDW_EINVAL (NULL @p w, malformed @p rec, or the worker is stopped),
 *   ::PDW_ENOMEM (with a spool the delivery stays pending there and is handed on after a
 *   restart), ::PDW_ENOSPC (as for pdw_worker_submit()).
 * @par Thread safety
 * Like pdw_worker_submit(): from any thread.
 */
PDW_EXTERN int pdw_worker_submit_entity(pdw_worker *w, const pdw_spool_record *rec,
                                        const char *object, const char *entity_id);

/**
 * @brief Queue every pending delivery of the spool (after a restart), in id order.
 *
 * Records are read one at a time; past pdw_worker_options::max_queued_bytes only their
 * ids are queued, so a backlog larger than memory recovers in bounded memory.
 * @return the number queued, or a negative code.
 */
PDW_EXTERN long pdw_worker_recover(pdw_worker *w);

/** @brief Counters. */
typedef struct pdw_worker_stats {
    uint64_t queued;        /**< waiting now */
    uint64_t running;       /**< being handled now */
    uint64_t handled;       /**< handed on since start */
    uint64_t retries;       /**< failed attempts that were retried */
    uint64_t dead_letters;  /**< given up */
    uint64_t queued_bytes;  /**< keys and bodies held in memory by queued deliveries (at
                                 most pdw_worker_options::max_queued_bytes, or one
                                 delivery) */
} pdw_worker_stats;

/** @brief Read the counters. */
PDW_EXTERN void pdw_worker_get_stats(pdw_worker *w, pdw_worker_stats *out);

/**
 * @brief Stop the worker: when it returns, no thread of it runs.
 *
 * Attempts under way finish. With a spool, queued deliveries are left pending there (they
 * are durable and handed on after the next start) and backoff waits end at once; without a
 * spool, the queue is drained first. Markers are flushed, the threads joined. Later
 * submits fail with ::PDW_EINVAL (with a spool the delivery stays pending there).
 * Idempotent: a second call, also a concurrent one, waits until the worker is stopped
 * and does nothing more. Not from one of the worker's own handlers (it would wait for
 * itself).
 * @param w the worker or NULL.
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN void pdw_worker_stop(pdw_worker *w);

/**
 * @brief Free the worker, stopping it first (pdw_worker_stop()) when it still runs.
 * @param w the worker or NULL.
 * @par Thread safety
 * Once no other call on the worker runs.
 */
PDW_EXTERN void pdw_worker_free(pdw_worker *w);

#ifdef __cplusplus
}
#endif
#endif
