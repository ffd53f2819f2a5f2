/**
 * @file pdwebhook/recency.h
 * @brief Stale events: has a newer change of this entity been seen already?
 *
 * Pipedrive does not deliver in order. A failed first attempt is retried after 3, 30 and
 * 150 s, so an older change of a deal can arrive after a newer one; a handler that writes
 * what the event says into a mirror would then overwrite the newer state with the older.
 *
 * A recency tracker remembers, per entity (object and entity id), the newest change time
 * seen (pdw_event_timestamp_us()), and tells each event whether it is newer than that, the
 * same, or older (stale: superseded by a change already seen). v1 and v2 events of one
 * entity share an entry, so during a migration, when both versions run, the copy of a
 * change in the other version is "same", not "stale".
 *
 * @par Precision
 * Times are compared at the coarser precision of the two: v1 `timestamp_micro` is to the
 * microsecond, v2 `meta.timestamp` to the millisecond, old bodies with seconds only to the
 * second. Two changes within one unit of the coarser precision compare "same".
 *
 * @par Bounded memory, and what eviction means
 * The tracker holds `capacity` entities, rounded up to a power of two of at least 8
 * (set-associative: 8 entries per bucket).
 * When a bucket is full, the entity checked least recently in it is forgotten. A forgotten
 * entity's next event is "newer" (there is nothing to compare it with): eviction can only
 * miss a stale event, never call a fresh one stale. Size the capacity for the number of
 * distinct entities changed within Pipedrive's retry horizon (about 3 minutes: 3 + 30 +
 * 150 s): 100 changes a second need about 18,000. Each entry takes about 150 bytes.
 *
 * @par Thread safety
 * pdw_recency_check() may be called from many threads at once (a mutex guards the table).
 * The tracker starts no thread and opens no file or socket.
 */
#ifndef PDWEBHOOK_RECENCY_H
#define PDWEBHOOK_RECENCY_H

#include "common.h"
#include "error.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque recency tracker. */
typedef struct pdw_recency pdw_recency;

/** @brief Options for pdw_recency_new(). Initialise with ::PDW_RECENCY_OPTIONS_INIT. */
typedef struct pdw_recency_options {
    unsigned version;               /**< ::PDW_RECENCY_OPTIONS_VERSION */
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied */
    size_t capacity;                /**< entities remembered; 0: ::PDW_RECENCY_DEFAULT_CAPACITY */
} pdw_recency_options;

/** Version of ::pdw_recency_options this header describes. */
#define PDW_RECENCY_OPTIONS_VERSION 1
/** Initialiser for ::pdw_recency_options: the version, every other member zero (default). */
#define PDW_RECENCY_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_recency_options, PDW_RECENCY_OPTIONS_VERSION)
/** Entities remembered by default (about 2.4 MiB). */
#define PDW_RECENCY_DEFAULT_CAPACITY 16384u

/** @name Verdicts of pdw_recency_check() */
/**@{*/
/** Newer than every change of the entity seen so far, or the first one seen: recorded. */
#define PDW_RECENCY_NEWER 0
/** As new as the newest seen: a retry of it, its copy in the other payload version, or a
 *  second change within the same unit of time. */
#define PDW_RECENCY_SAME 1
/** Older than a change of the entity already seen: superseded. */
#define PDW_RECENCY_STALE 2
/** The event has no entity id or no time: it cannot be placed (nothing recorded). */
#define PDW_RECENCY_UNKNOWN 3
/**@}*/

/**
 * @brief Fill recency options with the defaults (for FFI, where the macro is out of reach).
 * @param[out] opts the struct to fill. @param version ::PDW_RECENCY_OPTIONS_VERSION.
 * @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_recency_options_init(pdw_recency_options *opts, unsigned version);

/**
 * @brief Create a tracker. Its memory is allocated here, once; checks never allocate.
 * @param[out] out the tracker, free with pdw_recency_free(); NULL on failure.
 * @param opts options or NULL for the defaults.
 * @param err optional error detail.
 * @return 0, ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_recency_new(pdw_recency **out, const pdw_recency_options *opts,
                               pdw_error *err);

/** @brief Free a tracker. @param r the tracker or NULL. Not while a check runs. */
PDW_EXTERN void pdw_recency_free(pdw_recency *r);

/**
 * @brief Place @p ev among the changes of its entity seen so far, and record it when newer.
 *
 * Every action counts: a `delete` is the newest thing that happens to an entity, and a
 * `create` that arrives after a change of the same entity (a retried first attempt) is
 * stale too; what to do with a stale event is the caller's choice (a mirror skips it; a
 * "new deal" notification may still want a late create).
 * @param r the tracker. @param ev the event.
 * @return ::PDW_RECENCY_NEWER, ::PDW_RECENCY_SAME, ::PDW_RECENCY_STALE,
 *   ::PDW_RECENCY_UNKNOWN, or ::PDW_EINVAL for a NULL argument.
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_recency_check(pdw_recency *r, const pdw_event *ev);

/** @brief Entities remembered now (at most the capacity). @param r the tracker. */
PDW_EXTERN size_t pdw_recency_count(pdw_recency *r);

/** @brief Entities forgotten to make room since the tracker was made. @param r the tracker. */
PDW_EXTERN uint64_t pdw_recency_evictions(pdw_recency *r);

#ifdef __cplusplus
}
#endif
#endif
