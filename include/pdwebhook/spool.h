/**
 * @file pdwebhook/spool.h
 * @brief The durable spool: an append-only journal of accepted deliveries.
 *
 * A delivery is answered 2xx only once its record is on disk, so that no acknowledged
 * event is lost to a crash, a kill -9 or a power cut. The journal lives in one directory:
 * segment files `journal-<16 hex digits>.pdwj`, each a sequence of records
 *
 * ```
 *   u32 magic "PDWJ" | u32 payload length | u32 CRC32C of the payload | payload
 *   payload: u8 type | u64 id | ...   (all integers little-endian)
 *     type 1, delivery: i64 received_ms | u16 key length | key | body
 *     type 2, handled:  u32 count | count x u64 id of handled deliveries
 * ```
 *
 * Ids grow by one per delivery, across segments and restarts (a restart or a rotation may
 * skip some). A segment named N holds deliveries with ids >= N only, in increasing order
 * (journals written before segment files were reused may hold id N - 1 in segment N).
 * Appends use **group commit**: records appended while a flush is running are written and
 * fdatasync'ed together by the next one, so N concurrent deliveries cost about one fsync,
 * not N. When the previous flush carried several deliveries, the next one first waits a
 * little (half the last flush's duration, at most 0.5 ms) for the appends of the clients
 * just answered, so that a steady load is not split into two half-size batches; a lone
 * appender never waits.
 *
 * At open, every segment is read and checked; a torn tail (a record cut by a crash in the
 * middle of a write) is detected by its length and CRC and cut off, and every complete
 * record before it is kept. Deliveries without a handled marker are *pending*: hand them
 * on again (pdw_spool_foreach_pending()). Segments are rotated by size and deleted, oldest
 * first, once every delivery in them and in all older segments is handled.
 *
 * Instead of being deleted, one handled segment file is kept as `DIR/spare.pdwj` and
 * reused as the next segment: it is written in place, over the records of its earlier life,
 * so that its size does not change and fdatasync has only the data to write (not the inode
 * too). The directory therefore holds, besides the journal, at most one spare file of up to
 * about @c segment_bytes (plus one batch), and a reused active segment takes its file's
 * whole size from the start: up to about two @c segment_bytes of disk beyond the journal's
 * bytes, which are what @c max_bytes counts. Recovery never takes the old records of a
 * reused file for live ones (a delivery below what its segment may hold, or not above the
 * previous one, ends the last segment like a torn tail). Remove `spare.pdwj` freely while
 * the spool is closed.
 *
 * When the disk is full, or the journal would grow over its configured size, appends fail
 * with ::PDW_ENOSPC (answer 503 + Retry-After: Pipedrive's retries may still land) and the
 * journal stays consistent: a partly written record is cut back.
 *
 * One process at a time: pdw_spool_open() takes an exclusive lock on `DIR/LOCK`.
 *
 * @par Thread safety
 * All functions may be called from several threads at once, except pdw_spool_close().
 */
#ifndef PDWEBHOOK_SPOOL_H
#define PDWEBHOOK_SPOOL_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque spool. */
typedef struct pdw_spool pdw_spool;

/**
 * @brief I/O hooks, for tests that inject faults (ENOSPC, EIO, short writes). NULL members
 * mean the system call. Each returns like the system call and sets errno.
 */
typedef struct pdw_spool_io {
    /** Like write(2), at the file offset: the spool sets it (lseek) before each batch (without
     *  the hook it calls pwrite(2)). */
    long (*write)(int fd, const void *buf, size_t n, void *user);
    /** Like fdatasync(2). */
    int (*sync)(int fd, void *user);
    /** Handed back to each function. */
    void *user;
} pdw_spool_io;

/** @brief One delivery record, borrowed for the duration of a callback. */
typedef struct pdw_spool_record {
    uint64_t id;         /**< the delivery's id */
    int64_t received_ms; /**< when it arrived */
    const char *key;     /**< delivery key (not NUL-terminated) */
    size_t key_len;      /**< its length */
    const char *body;    /**< raw body (not NUL-terminated) */
    size_t body_len;     /**< its length */
} pdw_spool_record;

/** @brief Called for each pending record; return non-zero to stop the walk. */
typedef int (*pdw_spool_record_cb)(const pdw_spool_record *rec, void *user);

/** @brief Spool options. Initialise with ::PDW_SPOOL_OPTIONS_INIT. */
typedef struct pdw_spool_options {
    unsigned version;               /**< ::PDW_SPOOL_OPTIONS_VERSION */
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied */
    uint64_t segment_bytes;         /**< rotate a segment past this size; 0: 64 MiB */
    uint64_t max_bytes;             /**< refuse appends (::PDW_ENOSPC) past this total of
                                         journal bytes (not counted: the spare file, and
                                         the unwritten rest of a reused one); 0: no limit */
    int no_sync;                    /**< 1: never fdatasync (NOT durable; benchmarks only) */
    const pdw_spool_io *io;         /**< fault injection; NULL: the system calls; copied */
    uint64_t retain_ms;             /**< keep a fully handled segment until its newest
                                         delivery is this old (so that a restart can rebuild
                                         dedup for Pipedrive's retries); 0: delete at once */
    pdw_spool_record_cb on_record;  /**< told of every
                                         delivery record found by pdw_spool_open(), handled
                                         or not (e.g. to claim its key in dedup); its return
                                         value is ignored; NULL: none */
    void *record_user;              /**< handed to @c on_record */
} pdw_spool_options;

/** Version of ::pdw_spool_options this header describes. */
#define PDW_SPOOL_OPTIONS_VERSION 1
/** Initialiser for ::pdw_spool_options. */
#define PDW_SPOOL_OPTIONS_INIT PDW_STRUCT_INIT(pdw_spool_options, PDW_SPOOL_OPTIONS_VERSION)

/** @brief Fill spool options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_spool_options_init(pdw_spool_options *opts, unsigned version);

/** @brief What pdw_spool_open() found. */
typedef struct pdw_spool_recovery {
    uint64_t segments;      /**< segment files read */
    uint64_t deliveries;    /**< complete delivery records found */
    uint64_t pending;       /**< of which without a handled marker */
    uint64_t torn_bytes;    /**< bytes cut from the end of the last segment (a torn tail, or
                                 the old records of a reused file after a crash) */
    uint64_t skipped_bytes; /**< corrupt or stale bytes skipped inside older segments */
} pdw_spool_recovery;

/**
 * @brief Open (creating it if needed) the spool in @p dir and recover it.
 * @param[out] out the spool; close with pdw_spool_close().
 * @param dir the directory (created with mode 0700 when missing). Copied.
 * @param opts options or NULL.
 * @param[out] recovery what recovery found; may be NULL.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_ELOCKED (another process has it), ::PDW_EIO, ::PDW_ENOMEM,
 *   ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_spool_open(pdw_spool **out, const char *dir, const pdw_spool_options *opts,
                              pdw_spool_recovery *recovery, pdw_error *err);

/**
 * @brief Flush what was appended, close the files and free the spool. @param s or NULL.
 * No other call on @p s may be running or follow.
 */
PDW_EXTERN void pdw_spool_close(pdw_spool *s);

/**
 * @brief Append a delivery and wait until it is durable (group commit).
 * @param s the spool.
 * @param key the delivery key (pdw_event_delivery_key()), at most 65535 bytes.
 * @param key_len its length.
 * @param received_ms when it arrived (ms since the epoch).
 * @param body the raw body.
 * @param len its length.
 * @param[out] id_out the delivery's id; may be NULL.
 * @param err optional error detail, or NULL.
 * @return 0 once the record is on disk; ::PDW_ENOSPC, ::PDW_EIO (nothing of it is kept),
 *   ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_ERANGE (ids exhausted: 2^62 deliveries).
 */
PDW_EXTERN int pdw_spool_append(pdw_spool *s, const char *key, size_t key_len,
                                int64_t received_ms, const char *body, size_t len,
                                uint64_t *id_out, pdw_error *err);

/**
 * @brief Append a delivery without waiting: it becomes durable with the next flush.
 *
 * For servers that suspend the request instead of blocking a thread: remember the id,
 * call pdw_spool_flush() (from any thread), and answer once pdw_spool_durable() >= id.
 * @return as pdw_spool_append(); ::PDW_ENOSPC when over max_bytes.
 */
PDW_EXTERN int pdw_spool_append_nowait(pdw_spool *s, const char *key, size_t key_len,
                                       int64_t received_ms, const char *body, size_t len,
                                       uint64_t *id_out, pdw_error *err);

/**
 * @brief Write and fdatasync everything appended so far (one flush for all of it).
 *
 * If another thread is flushing, waits for it and then flushes what is left.
 * @param s the spool.
 * @param[out] durable_out the highest id now durable; may be NULL.
 * @return 0, or ::PDW_ENOSPC / ::PDW_EIO: the records of the failed flush are dropped
 *   (they were never durable, so never acknowledged) and pdw_spool_dropped() tells
 *   which ids were lost that way.
 */
PDW_EXTERN int pdw_spool_flush(pdw_spool *s, uint64_t *durable_out);

/** @brief The highest delivery id that is durable (0 when none). */
PDW_EXTERN uint64_t pdw_spool_durable(pdw_spool *s);

/**
 * @brief Whether delivery @p id was dropped by a failed flush (and so must be answered
 * 503, never 2xx). @return 1 dropped, 0 not (durable, or still waiting for a flush).
 */
PDW_EXTERN int pdw_spool_dropped(pdw_spool *s, uint64_t id);

/**
 * @brief Where delivery @p id stands: durable, still waiting for a flush, or dropped.
 *
 * For servers that append with pdw_spool_append_nowait() and answer after a
 * pdw_spool_flush(): once that flush returned (whatever it returned), every id appended
 * before it is settled, and this call says how. A dropped delivery was never durable:
 * answer it 503 + `Retry-After` and forget it (release its dedup claim), so that
 * Pipedrive's retry is taken as new.
 *
 * The ranges of failed flushes are remembered for the last 1024 failed batches; ask
 * soon after the flush (an older dropped id below the durable mark would read as durable).
 * @param s the spool.
 * @param id an id that pdw_spool_append_nowait() or pdw_spool_append() handed out.
 * @return 0 durable (a 2xx may go out; this stays true until pdw_spool_close()); 1 still
 *   pending (appended, not written yet: flush, then ask again); ::PDW_ENOSPC or ::PDW_EIO
 *   dropped by a flush that failed with that code (or, ::PDW_EIO, dropped so long ago that
 *   its range was forgotten); ::PDW_EINVAL @p s is NULL or @p id was never handed out.
 * @par Thread safety
 * From any thread, concurrently with appends and flushes. Allocates nothing, owns nothing.
 */
PDW_EXTERN int pdw_spool_status(pdw_spool *s, uint64_t id);

/**
 * @brief Record that delivery @p id was handed on. The marker is written with the next
 * flush (pdw_spool_flush() or an append); call pdw_spool_flush() to make it durable now.
 * @return 0, ::PDW_ENOTFOUND (no such pending id), ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_spool_mark_handled(pdw_spool *s, uint64_t id);

/**
 * @brief Walk the pending (durable, not handled) deliveries in id order.
 * @return 0, the callback's non-zero value, ::PDW_EIO, ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_spool_foreach_pending(pdw_spool *s, pdw_spool_record_cb cb, void *user);

/**
 * @brief Read one pending delivery back from the journal.
 *
 * For a consumer that keeps only ids in memory (the worker does so past its memory
 * budget, pdw_worker_options::max_queued_bytes) and wants the record when it handles it.
 * @param s the spool.
 * @param id a pending (durable, not handled) delivery's id.
 * @param cb called once with the record, which is borrowed for the call.
 * @param user handed to @p cb.
 * @return the callback's value, ::PDW_ENOTFOUND (not pending: unknown, not durable yet, or
 *   handled), ::PDW_EIO (the record cannot be read back intact), ::PDW_ENOMEM,
 *   ::PDW_EINVAL.
 * @par Thread safety: any thread, concurrently with appends, flushes and markers.
 */
PDW_EXTERN int pdw_spool_read(pdw_spool *s, uint64_t id, pdw_spool_record_cb cb, void *user);

/** @brief Counters for health views. */
typedef struct pdw_spool_stats {
    uint64_t appended;   /**< deliveries appended since open */
    uint64_t flushes;    /**< fdatasync calls since open (appended/flushes = group size) */
    uint64_t pending;    /**< deliveries durable and not handled */
    uint64_t bytes;      /**< bytes in all segments (not the spare file) */
    uint64_t segments;   /**< segment files (not the spare file) */
    uint64_t full_errors;/**< appends refused with ::PDW_ENOSPC since open */
    uint64_t io_errors;  /**< flushes failed with ::PDW_EIO since open */
} pdw_spool_stats;

/** @brief Read the counters. @param s the spool. @param[out] out filled. */
PDW_EXTERN void pdw_spool_get_stats(pdw_spool *s, pdw_spool_stats *out);

#ifdef __cplusplus
}
#endif
#endif
