/**
 * @file pdwebhook/redis.h
 * @brief Scale-out on Redis: a shared dedup store, a stream of accepted events, consumers.
 *
 * When one receiver is not enough (several hosts behind a load balancer, workers on other
 * machines), receivers share one Redis:
 *
 * ```
 *  Pipedrive ─► load balancer ─► receiver A ─┐ spool ─► worker ─┐
 *                              └► receiver B ─┘ spool ─► worker ─┴► Redis stream ─► consumers
 *                                    └──── dedup: SET key NX PX ────┘   (one consumer group)
 * ```
 *
 * - **dedup** (pdw_redis_dedup_new()): a ::pdw_dedup_store whose claim is
 *   `SET <prefix>dedup:<delivery key> 0 NX PX <lease>` (in flight, for the receiver's
 *   in-flight lease), set to `1` with the full dedup TTL when the receiver confirms it, so
 *   that retries reaching different receivers are handed on once, a retry that arrives
 *   while another receiver is still accepting the delivery is answered 503
 *   (::PDW_EINFLIGHT), not 200, and a claim left behind by a receiver that crashed before
 *   its confirm is free again after the lease. When Redis cannot be reached, claims go to a local
 *   fallback store if one is given (the delivery is then still answered 200, never a 503
 *   that feeds Pipedrive's ban counter); the stream's guard below keeps the stream free of
 *   twins anyway.
 * - **stream** (pdw_redis_stream_new()): the worker appends each spooled delivery to a
 *   stream (default `pdwebhook:events`) with a Lua script that does
 *   `SET <prefix>fwd:<delivery key> <entry id> NX PX <ttl>` and `XADD` together,
 *   atomically. A delivery is therefore in the stream at most once, even when a worker
 *   retries after a crash between the XADD and its local marker, or when two receivers
 *   both spooled it; and at least once, because it stays pending in the local spool until
 *   the append succeeded. Each entry carries the canonical fields (`delivery_key`, `event`,
 *   `action`, `object`, `entity_id`, ...) and the raw `body`.
 * - **consumer** (pdw_redis_consumer_new()): reads the stream in a consumer group
 *   (`XREADGROUP`), runs a callback, `XACK`s on success, retries with backoff, writes dead
 *   letters, and takes over entries left pending by a dead consumer (`XAUTOCLAIM` after
 *   an idle time).
 *
 * @par Availability
 * These functions are libpdwebhook-redis (`pkg-config --libs pdwebhook-redis`,
 * `pdwebhook::redis`), built and installed only where hiredis was found (CMake option
 * `PDWEBHOOK_REDIS`, default: on when `libhiredis-dev` is found). It links
 * libpdwebhook-durable and the core. The header does not include hiredis.
 *
 * @par Connections and threads
 * A ::pdw_redis is one connection, guarded by a mutex: every function may be called from
 * several threads, and calls on one connection take turns. It connects lazily, and after a
 * failure reconnects with exponential backoff (`reconnect_min_ms` doubling up to
 * `reconnect_max_ms`); between tries, calls fail at once with ::PDW_EREDIS instead of
 * waiting for a timeout. Give a consumer its own connection (it blocks in `XREADGROUP`).
 *
 * @par Stopping and freeing
 * As every object of pdwebhook that runs (docs/API.md, *Conventions*): a consumer runs in
 * the thread that calls pdw_redis_consumer_run(); pdw_redis_consumer_cancel() asks it to
 * stop (async-signal-safe), pdw_redis_consumer_stop() asks and waits until it has stopped,
 * pdw_redis_consumer_free() stops it and releases it. The stream writer runs nothing of
 * its own (a worker's threads call pdw_redis_stream_handle()): pdw_redis_stream_cancel()
 * makes those calls stop waiting for Redis, before pdw_worker_stop(), and
 * pdw_redis_stream_free() releases it once no call is under way.
 *
 * @par Errors
 * ::PDW_EINVAL for a bad URL (the message names the part), ::PDW_EREDISAUTH when Redis
 * refuses the credentials or wants some (the password is never printed), ::PDW_EREDIS when
 * it cannot be reached or refuses a command (the message has Redis's words).
 */
#ifndef PDWEBHOOK_REDIS_H
#define PDWEBHOOK_REDIS_H

#include "common.h"
#include "dedup.h"
#include "error.h"
#include "spool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- URL ----------------------------------------------------------------------------- */

/** @brief A parsed `redis://[[user]:password@]host[:port][/db]` URL. */
typedef struct pdw_redis_url {
    unsigned version;   /**< ::PDW_REDIS_URL_VERSION, set by the caller */
    char host[256];     /**< host name or address (IPv6 without brackets) */
    unsigned port;      /**< 6379 when not given */
    unsigned db;        /**< database number, 0 when not given */
    char user[128];     /**< ACL user name, "" for none (AUTH with the password only) */
    char password[256]; /**< "" for none; percent-escapes are decoded */
} pdw_redis_url;

/** Version of ::pdw_redis_url this header describes. */
#define PDW_REDIS_URL_VERSION 1
/** Initialiser for ::pdw_redis_url. */
#define PDW_REDIS_URL_INIT PDW_STRUCT_INIT(pdw_redis_url, PDW_REDIS_URL_VERSION)

/**
 * @brief Parse a Redis URL: `redis://host`, `redis://host:port/db`,
 * `redis://:password@host:port`, `redis://user:password@host` (ACL), `redis://[::1]:6380`.
 *
 * Percent-escapes (`%40` for `@`) are decoded in the user and the password.
 * @param url the URL, NUL-terminated.
 * @param[out] out filled (its @c version must be set, e.g. with ::PDW_REDIS_URL_INIT).
 * @param err optional error detail: the message names the part that is wrong (scheme,
 *   host, port, database, user, password) and never quotes the password.
 * @return 0, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 * @par Thread safety: any thread. Works also without hiredis.
 */
PDW_EXTERN int pdw_redis_url_parse(const char *url, pdw_redis_url *out, pdw_error *err);

/* ---- connection ---------------------------------------------------------------------- */

/** @brief Opaque connection to one Redis (mutex-guarded, reconnecting). */
typedef struct pdw_redis pdw_redis;

/** @brief Connection options. Initialise with ::PDW_REDIS_OPTIONS_INIT; 0 means the default. */
typedef struct pdw_redis_options {
    unsigned version;               /**< ::PDW_REDIS_OPTIONS_VERSION */
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied. Used by the
                                         objects built on the connection too. */
    uint64_t connect_timeout_ms;    /**< 0: 2000 */
    uint64_t command_timeout_ms;    /**< 0: 5000 (a consumer's blocking read adds its wait) */
    uint64_t reconnect_min_ms;      /**< first wait after a failure; 0: 100 */
    uint64_t reconnect_max_ms;      /**< longest wait between tries; 0: 5000 */
} pdw_redis_options;

/** Version of ::pdw_redis_options this header describes. */
#define PDW_REDIS_OPTIONS_VERSION 1
/** Initialiser for ::pdw_redis_options. */
#define PDW_REDIS_OPTIONS_INIT PDW_STRUCT_INIT(pdw_redis_options, PDW_REDIS_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_redis_options_init(pdw_redis_options *opts, unsigned version);

/**
 * @brief Create a connection to the Redis at @p url. Does not connect yet (see
 * pdw_redis_ping()), so a Redis that is down does not stop a program from starting.
 * @param[out] out the connection; free with pdw_redis_free().
 * @param url `redis://...` (see pdw_redis_url_parse()); copied, the password wiped on free.
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL (bad URL), ::PDW_ENOMEM, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_redis_new(pdw_redis **out, const char *url, const pdw_redis_options *opts,
                             pdw_error *err);

/**
 * @brief Free a connection. @param r the connection or NULL. Nothing built on it
 * (dedup, stream, consumer) may be used afterwards.
 */
PDW_EXTERN void pdw_redis_free(pdw_redis *r);

/**
 * @brief Connect now if needed (ignoring the reconnect backoff), authenticate, select the
 * database and send PING: tells at start whether the URL and the credentials work.
 * @param r the connection.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EREDIS (unreachable, or refused a command), ::PDW_EREDISAUTH (wrong
 *   or missing credentials), ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_redis_ping(pdw_redis *r, pdw_error *err);

/** @brief Connection counters. */
typedef struct pdw_redis_stats {
    int connected;             /**< 1 when the last command reached Redis */
    uint64_t connects;         /**< successful connections (1 + reconnections) */
    uint64_t failures;         /**< commands that failed for want of a connection */
    int64_t down_since_ms;     /**< when it went unreachable (ms since the epoch); 0 when up */
    char last_error[PDW_ERROR_MESSAGE_MAX]; /**< the last failure, "" if none; no secret */
} pdw_redis_stats;

/** @brief Read the counters (zeros when not built). Any thread. */
PDW_EXTERN void pdw_redis_get_stats(pdw_redis *r, pdw_redis_stats *out);

/* ---- dedup store ------------------------------------------------------------------------ */

/** @brief Dedup options. Initialise with ::PDW_REDIS_DEDUP_OPTIONS_INIT. */
typedef struct pdw_redis_dedup_options {
    unsigned version;           /**< ::PDW_REDIS_DEDUP_OPTIONS_VERSION */
    const char *prefix;         /**< key prefix; NULL: "pdwebhook:" (keys are
                                     `<prefix>dedup:<delivery key>`); copied */
    pdw_dedup_store *fallback;  /**< where claims go while Redis cannot be reached (e.g. a
                                     pdw_dedup_memory_new() store). Taken over by
                                     pdw_redis_dedup_new() whatever it returns: freed with
                                     the Redis store, or at once when it fails. NULL:
                                     such a claim fails with ::PDW_EREDIS, which a
                                     receiver answers 503 */
} pdw_redis_dedup_options;

/** Version of ::pdw_redis_dedup_options this header describes. */
#define PDW_REDIS_DEDUP_OPTIONS_VERSION 1
/** Initialiser for ::pdw_redis_dedup_options. */
#define PDW_REDIS_DEDUP_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_redis_dedup_options, PDW_REDIS_DEDUP_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_redis_dedup_options_init(pdw_redis_dedup_options *opts, unsigned version);

/**
 * @brief Create a dedup store on a connection (which must outlive it).
 *
 * Claim: one Lua script, atomically, `SET <prefix>dedup:<key> 0 NX PX <ttl>` (the TTL the
 * receiver passes: its in-flight lease; Redis's clock); when the key exists, its value
 * tells ::PDW_CLAIM_DUPLICATE (`1`, confirmed) from ::PDW_CLAIM_INFLIGHT (`0`); the script
 * answers with the claim result itself. Confirm: one Lua script, atomically, `SET <key> 1
 * PX <ttl>` only if the key still exists (else ::PDW_ENOTFOUND: released, or its lease ran
 * out); @c now_ms is not used (Redis's clock). Release: `DEL` of the key (and of the
 * fallback's claim). With a fallback, a key is also looked up there first, so a retry
 * reaching the same receiver during an outage is still recognised; a key in flight there
 * is ::PDW_CLAIM_INFLIGHT without asking Redis; a local claim that Redis finds in flight
 * elsewhere is given back locally, one it finds confirmed is confirmed locally (keeping
 * the local claim's expiry). A confirm goes to the fallback too. Scripting (`EVAL`, Redis
 * 2.6+) must be allowed: the stream writer needs it too.
 * @param[out] out the store: hand it to a receiver (::pdw_receiver_options::dedup, which
 *   then owns it) or free it with pdw_dedup_store_free(); NULL on failure.
 * @param conn the connection (borrowed; it must outlive the store, and so the receiver
 *   that owns it).
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL, ::PDW_ENOMEM, ::PDW_EVERSIONSTRUCT (options or fallback store).
 * @par Thread safety
 * Any thread; the store is thread-safe.
 */
PDW_EXTERN int pdw_redis_dedup_new(pdw_dedup_store **out, pdw_redis *conn,
                                   const pdw_redis_dedup_options *opts, pdw_error *err);

/** @brief Dedup counters. */
typedef struct pdw_redis_dedup_stats {
    uint64_t claims;     /**< claims answered by Redis */
    uint64_t duplicates; /**< of which duplicates (also those found in the fallback) */
    uint64_t fallbacks;  /**< claims that went to the fallback because Redis was down */
    uint64_t errors;     /**< claims that failed (no fallback) */
} pdw_redis_dedup_stats;

/**
 * @brief Read the counters of a Redis dedup store.
 * @param store a store made by pdw_redis_dedup_new() (zeros for NULL or another kind).
 * @param[out] out the counters.
 * @par Thread safety: any thread.
 */
PDW_EXTERN void pdw_redis_dedup_get_stats(const pdw_dedup_store *store,
                                          pdw_redis_dedup_stats *out);

/* ---- stream of accepted events ---------------------------------------------------------- */

/** Default stream name. */
#define PDW_REDIS_DEFAULT_STREAM "pdwebhook:events"

/** @brief Opaque stream writer (the forwarding side). */
typedef struct pdw_redis_stream pdw_redis_stream;

/** @brief Stream writer options. Initialise with ::PDW_REDIS_STREAM_OPTIONS_INIT. */
typedef struct pdw_redis_stream_options {
    unsigned version;      /**< ::PDW_REDIS_STREAM_OPTIONS_VERSION */
    const char *stream;    /**< NULL: ::PDW_REDIS_DEFAULT_STREAM; copied */
    const char *prefix;    /**< NULL: "pdwebhook:"; guard keys are `<prefix>fwd:<key>`; copied */
    uint64_t maxlen;       /**< 0: no trimming; N: `XADD ... MAXLEN ~ N` */
    uint64_t guard_ttl_ms; /**< how long a forwarded key is remembered; 0: 7 days */
    const char *source;    /**< written as the entry's `source` field (e.g. the host);
                                NULL: none; copied */
} pdw_redis_stream_options;

/** Version of ::pdw_redis_stream_options this header describes. */
#define PDW_REDIS_STREAM_OPTIONS_VERSION 1
/** Initialiser for ::pdw_redis_stream_options. */
#define PDW_REDIS_STREAM_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_redis_stream_options, PDW_REDIS_STREAM_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_redis_stream_options_init(pdw_redis_stream_options *opts, unsigned version);

/**
 * @brief Create a stream writer on a connection (which must outlive it).
 * @param[out] out the writer; free with pdw_redis_stream_free().
 * @param conn the connection (borrowed).
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL, ::PDW_ENOMEM, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_redis_stream_new(pdw_redis_stream **out, pdw_redis *conn,
                                    const pdw_redis_stream_options *opts, pdw_error *err);

/** @brief Free the writer. @param s the writer or NULL. Not while it is in use. */
PDW_EXTERN void pdw_redis_stream_free(pdw_redis_stream *s);

/**
 * @brief Append one delivery to the stream, at most once per delivery key (one attempt).
 *
 * Fields: `delivery_key`, `event`, `delivered`, `action`, `object`, `version`, `attempt`,
 * `entity_id`, `event_id`, `webhook_id`, `company_id`, `user_id`, `timestamp_ms` (those
 * the event has), `received_ms`, `spool_id`, `source` (when set) and `body`.
 * @param s the writer.
 * @param rec the delivery (its body must parse as a Pipedrive event).
 * @param[out] id_out the entry's id ("ms-seq"), also when it was there already; may be NULL.
 * @param id_cap the size of @p id_out (32 is enough).
 * @param err optional error detail, or NULL.
 * @return 1 appended now, 0 already in the stream (appended before: nothing done),
 *   ::PDW_EREDIS, ::PDW_EREDISAUTH, ::PDW_EINVAL (body does not parse), ::PDW_ENOMEM.
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_redis_stream_add(pdw_redis_stream *s, const pdw_spool_record *rec,
                                    char *id_out, size_t id_cap, pdw_error *err);

/**
 * @brief A ::pdw_worker_handle_cb that appends the delivery: pass the writer as
 * `handle_user`.
 *
 * While Redis cannot be reached, or refuses the command (wrong credentials, out of
 * memory, a key of the wrong type: none of them the delivery's fault), it waits (backoff
 * from `reconnect_min_ms` doubling to `reconnect_max_ms`) and tries again, without using
 * up the worker's attempts: deliveries wait in the spool, in order, and go on once Redis
 * takes them; pdw_redis_get_stats() tells why meanwhile. It returns non-zero only for a
 * body that does not parse or out of memory (retried, then dead-lettered by the worker),
 * or after pdw_redis_stream_cancel().
 * @return 0 when the delivery is in the stream (now or before), non-zero otherwise.
 */
PDW_EXTERN int pdw_redis_stream_handle(const pdw_spool_record *rec, unsigned attempt,
                                       char *errbuf, size_t errcap, void *user);

/**
 * @brief Make waiting pdw_redis_stream_handle() calls (and later ones) give up at once,
 * so that pdw_worker_stop() does not wait for Redis. Call it just before stopping the
 * worker; the deliveries stay pending in the spool. Any thread.
 */
PDW_EXTERN void pdw_redis_stream_cancel(pdw_redis_stream *s);

/** @brief Forwarding counters (the lag of the local spool behind the stream). */
typedef struct pdw_redis_stream_stats {
    uint64_t added;           /**< entries appended */
    uint64_t already;         /**< deliveries found already forwarded (guard hit) */
    uint64_t waiting;         /**< handle calls waiting for Redis now */
    uint64_t failures;        /**< attempts that failed (unreachable or refused) */
    int64_t last_added_ms;    /**< when the last entry went in (ms since the epoch); 0: none */
    int64_t last_lag_ms;      /**< received -> in the stream, for the last entry */
    int64_t oldest_waiting_ms;/**< received time of the oldest delivery waiting; 0: none */
} pdw_redis_stream_stats;

/** @brief Read the counters. Any thread. */
PDW_EXTERN void pdw_redis_stream_get_stats(pdw_redis_stream *s, pdw_redis_stream_stats *out);

/* ---- consumer ------------------------------------------------------------------------------ */

/** @brief One field of a stream entry (spans; values are NUL-terminated too). */
typedef struct pdw_redis_field {
    const char *name;  /**< field name */
    size_t name_len;   /**< its length */
    const char *value; /**< field value */
    size_t value_len;  /**< its length */
} pdw_redis_field;

/** @brief One stream entry, borrowed for the duration of a callback. */
typedef struct pdw_redis_entry {
    const char *id;                /**< the entry id, "ms-seq" */
    const char *delivery_key;      /**< the `delivery_key` field, "" if absent */
    const char *event;             /**< the `event` field (e.g. "change.deal"), "" if absent */
    const char *body;              /**< the `body` field (the delivery as received) */
    size_t body_len;               /**< its length */
    int64_t received_ms;           /**< the `received_ms` field, 0 if absent */
    unsigned deliveries;           /**< times Redis handed it to a consumer (1 the first time) */
    const pdw_redis_field *fields; /**< every field */
    size_t num_fields;             /**< their number */
} pdw_redis_entry;

/**
 * @brief Handle one entry.
 * @param e the entry (borrowed for the call).
 * @param attempt 1 for the first try here, then 2, 3, ... (a reclaimed entry goes on from
 *   the number of times it was handed out).
 * @param errbuf where to write why it failed (NUL-terminated, at most @p errcap bytes).
 * @param errcap the size of @p errbuf.
 * @param user the options' @c handle_user.
 * @return 0 when handled (the entry is acknowledged); non-zero to retry it later.
 */
typedef int (*pdw_redis_consume_cb)(const pdw_redis_entry *e, unsigned attempt, char *errbuf,
                                    size_t errcap, void *user);

/** @brief Told when an entry is given up (after it was written to the dead-letter file). */
typedef void (*pdw_redis_dead_letter_cb)(const pdw_redis_entry *e, unsigned attempts,
                                         const char *error, void *user);

/** @brief Told after an entry was acknowledged (handled or dead-lettered). */
typedef void (*pdw_redis_acked_cb)(const pdw_redis_entry *e, void *user);

/** @brief Opaque consumer. */
typedef struct pdw_redis_consumer pdw_redis_consumer;

/** @brief Consumer options. Initialise with ::PDW_REDIS_CONSUMER_OPTIONS_INIT. */
typedef struct pdw_redis_consumer_options {
    unsigned version;                     /**< ::PDW_REDIS_CONSUMER_OPTIONS_VERSION */
    const char *stream;                   /**< NULL: ::PDW_REDIS_DEFAULT_STREAM; copied */
    const char *group;                    /**< consumer group (created when missing,
                                               from the stream's start); required; copied */
    const char *consumer;                 /**< this consumer's name, unique in the group;
                                               required; copied */
    pdw_redis_consume_cb handle;          /**< required */
    void *handle_user;                    /**< handed to @c handle */
    unsigned max_attempts;                /**< 0: 8 */
    uint64_t backoff_base_ms;             /**< 0: 1000 */
    uint64_t backoff_max_ms;              /**< 0: 60000 */
    const char *dead_letter_path;         /**< JSON-lines file; NULL: none; copied */
    pdw_redis_dead_letter_cb on_dead_letter; /**< NULL: none */
    void *dead_letter_user;               /**< handed to @c on_dead_letter */
    pdw_redis_acked_cb on_acked;          /**< NULL: none */
    void *acked_user;                     /**< handed to @c on_acked */
    uint64_t claim_idle_ms;               /**< take over entries pending longer than this
                                               with another consumer; 0: 30000. Make it
                                               longer than a handler may run: each entry is
                                               checked to be still ours and its idle time
                                               reset right before its handler runs, but a
                                               handler running longer can be taken over */
    uint64_t block_ms;                    /**< longest wait in one read; 0: 1000 */
    unsigned count;                       /**< entries per read; 0: 16 */
} pdw_redis_consumer_options;

/** Version of ::pdw_redis_consumer_options this header describes. */
#define PDW_REDIS_CONSUMER_OPTIONS_VERSION 1
/** Initialiser for ::pdw_redis_consumer_options. */
#define PDW_REDIS_CONSUMER_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_redis_consumer_options, PDW_REDIS_CONSUMER_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_redis_consumer_options_init(pdw_redis_consumer_options *opts,
                                               unsigned version);

/**
 * @brief Create a consumer on its own connection (which must outlive it). Creates the
 * group when it does not exist yet (`XGROUP CREATE ... 0 MKSTREAM`), so a new group reads
 * the stream from its start; that needs Redis to be reachable.
 * @param[out] out the consumer; free with pdw_redis_consumer_free().
 * @param conn the connection (borrowed; use it for nothing else meanwhile).
 * @param opts options; required.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EINVAL, ::PDW_EREDIS, ::PDW_EREDISAUTH, ::PDW_EIO (dead-letter file),
 *   ::PDW_ENOMEM, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_redis_consumer_new(pdw_redis_consumer **out, pdw_redis *conn,
                                      const pdw_redis_consumer_options *opts, pdw_error *err);

/**
 * @brief One round: take over idle entries of dead consumers (`XAUTOCLAIM`, at most every
 * claim_idle_ms / 2), then this consumer's own pending entries after a restart, then read
 * new ones (waiting up to @c block_ms), and handle what came, each to its end (handled,
 * or dead-lettered after its last attempt; backoff waits happen inside).
 *
 * Entries are handled one at a time, in stream order for this consumer. Several consumers
 * of one group share the entries, so events of one entity may be handled on different
 * consumers at once; run one consumer when that order matters.
 * @param c the consumer.
 * @param err optional error detail, or NULL.
 * @return the number of entries finished (acknowledged), or ::PDW_EREDIS (unreachable:
 *   call again, the connection backs off), ::PDW_EREDISAUTH, ::PDW_ENOMEM.
 */
PDW_EXTERN long pdw_redis_consumer_poll(pdw_redis_consumer *c, pdw_error *err);

/**
 * @brief Run pdw_redis_consumer_poll() until the consumer is cancelled or stopped
 * (pdw_redis_consumer_cancel(), pdw_redis_consumer_stop()), waiting out Redis outages
 * (with backoff). Runs in the calling thread: the consumer starts no thread of its own.
 * @param c the consumer.
 * @param err optional error detail, or NULL.
 * @return 0 once stopped (at once when it was stopped before), ::PDW_EREDISAUTH
 *   (credentials refused: no point in waiting), ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_redis_consumer_run(pdw_redis_consumer *c, pdw_error *err);

/**
 * @brief Ask the consumer to stop, without waiting: the entry being handled finishes (a
 * backoff wait ends at once and the entry stays pending, for this consumer's next start or
 * another's claim), then pdw_redis_consumer_run() and pdw_redis_consumer_poll() return,
 * and later calls of them return at once.
 * @param c the consumer, or NULL.
 * @par Thread safety
 * Any thread, also from a signal handler (async-signal-safe: one atomic store) and from
 * the consumer's own callbacks.
 */
PDW_EXTERN void pdw_redis_consumer_cancel(pdw_redis_consumer *c);

/**
 * @brief Stop the consumer: pdw_redis_consumer_cancel(), then wait until no
 * pdw_redis_consumer_run() or pdw_redis_consumer_poll() is under way any more (within
 * about @c block_ms plus the entry being handled). Idempotent. From one of the consumer's
 * own callbacks it only cancels (the call under way returns once the callback has).
 * @param c the consumer, or NULL.
 * @par Thread safety
 * Any thread, not from a signal handler (use pdw_redis_consumer_cancel() there).
 */
PDW_EXTERN void pdw_redis_consumer_stop(pdw_redis_consumer *c);

/** @brief Consumer counters. */
typedef struct pdw_redis_consumer_stats {
    uint64_t handled;      /**< entries handled and acknowledged */
    uint64_t retries;      /**< failed attempts that were retried */
    uint64_t dead_letters; /**< entries given up */
    uint64_t claimed;      /**< entries taken over from other consumers */
} pdw_redis_consumer_stats;

/** @brief Read the counters. Any thread. */
PDW_EXTERN void pdw_redis_consumer_get_stats(pdw_redis_consumer *c,
                                             pdw_redis_consumer_stats *out);

/**
 * @brief Free a consumer, stopping it first (pdw_redis_consumer_stop()): a run() or
 * poll() under way in another thread returns before the memory goes.
 * @param c the consumer, or NULL.
 * @par Thread safety
 * Not from the consumer's own callbacks; no call on @p c may start during or after it.
 */
PDW_EXTERN void pdw_redis_consumer_free(pdw_redis_consumer *c);

#ifdef __cplusplus
}
#endif
#endif
