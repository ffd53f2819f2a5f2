/**
 * @file pdwebhook/dedup.h
 * @brief Deduplication of deliveries: an atomic claim on a delivery key, confirmed once the
 * delivery is accepted for good.
 *
 * Pipedrive delivers at least once: a retry repeats an event whose first attempt we may
 * already have accepted. The receiver claims each event's delivery key
 * (pdw_event_delivery_key()) before handing it on. A key has three states:
 *
 * | state                  | a claim of it returns   | the receiver answers                      |
 * |------------------------|-------------------------|-------------------------------------------|
 * | free (or expired)      | ::PDW_CLAIM_NEW (0)     | hands the event on                        |
 * | claimed, in flight     | ::PDW_CLAIM_INFLIGHT    | 503 + `Retry-After` (::PDW_EINFLIGHT)     |
 * | claimed and confirmed  | ::PDW_CLAIM_DUPLICATE   | 200 (::PDW_EDUPLICATE), not handed on     |
 *
 * A claim is *confirmed* once the delivery was handed on and is answered 2xx; it is
 * *released* (free again) when it was not accepted after all (a failing accept hook, a
 * handler failure answered non-2xx), so that Pipedrive's retry is taken as new.
 *
 * Why three states: a retry may arrive while the first attempt is still in flight (a
 * synchronous handler slower than Pipedrive's 10 s timeout, a stalled disk flush). Were it
 * answered 200 as a duplicate and the first attempt then failed, the event would be lost
 * for good: Pipedrive stops at the 200, the first attempt's claim is released, and nothing
 * is handed on. Answering it 503 instead makes Pipedrive come back later (30 s, 150 s),
 * when the first attempt has either been confirmed (then: a duplicate) or released (then:
 * new).
 *
 * @par The in-flight lease
 * A claim in flight is held for a short *lease* (pdw_receiver_options::inflight_lease_ms,
 * default 60 s), not for the whole dedup TTL (24 h); the confirm then keeps the key for
 * the full TTL from the moment of the confirm. Why: a process that crashes between the
 * claim and its confirm or release (during a journal flush, say) leaves the key in flight.
 * With a store that survives the crash (Redis), a key claimed for 24 h would answer every
 * retry of the delivery 503 ::PDW_EINFLIGHT until Pipedrive gives up, and the event would
 * be lost. With the lease the key is free again once the lease is over, and Pipedrive's
 * next retry is taken as new. The trade-off: a first attempt still running when the lease
 * ends (a synchronous handler slower than the lease) may be handed on a second time by a
 * retry that arrives after the lease: at least once, never lost.
 *
 * @par Stores and who frees them
 * A store is an object behind a small vtable (::pdw_dedup_store, defined for people who
 * write one in pdwebhook/sys/dedup_store.h), so that persistent or shared stores (Redis:
 * pdw_redis_dedup_new()) plug in. pdw_dedup_memory_new() gives the default: a bounded
 * in-memory table with a time to live. Every store is released with
 * pdw_dedup_store_free(), unless it was handed to an owner: a receiver
 * (::pdw_receiver_options::dedup, also through an intake's receiver options) or a Redis
 * store (its fallback) *takes the store over as soon as it is passed to the function that
 * creates the owner, whatever that function returns* (as jansson's `json_object_set_new()`
 * steals its value): the owner frees it with itself, or at once when its creation fails.
 * So an error path never frees a store that was passed on. (The one exception: a store
 * whose @c version is not `PDW_DEDUP_STORE_VERSION` is refused and not freed, its layout
 * being unknown.)
 */
#ifndef PDWEBHOOK_DEDUP_H
#define PDWEBHOOK_DEDUP_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Claim result: the key was free (or expired) and is now ours, in flight. The normal
 *  case, so 0, as every normal return in pdwebhook. */
#define PDW_CLAIM_NEW 0
/** Claim result: the key is claimed but not confirmed yet: another request is accepting
 *  the same delivery right now and may still fail (until the in-flight lease runs out).
 *  The receiver does not hand the event on; it answers a retry (attempt 2 or later) 503 +
 *  `Retry-After` (::PDW_EINFLIGHT), and a first attempt (another webhook's copy of the
 *  same event) 200 as a duplicate, since a 503 to a first attempt costs a ban point. */
#define PDW_CLAIM_INFLIGHT 1
/** Claim result: the key is claimed and confirmed: a duplicate of an accepted delivery. */
#define PDW_CLAIM_DUPLICATE 2

/**
 * @brief A dedup store (opaque here; its vtable is in pdwebhook/sys/dedup_store.h).
 */
typedef struct pdw_dedup_store pdw_dedup_store;

/**
 * @brief Claim @p key for @p ttl_ms milliseconds from @p now_ms, atomically (of two
 * concurrent claims of one free key exactly one gets ::PDW_CLAIM_NEW).
 *
 * The receiver calls it with its in-flight lease as @p ttl_ms; call it yourself only for
 * what the receiver does not see (e.g. deliveries recovered from a journal at start).
 * @param store the store.
 * @param key the delivery key (pdw_event_delivery_key()), no NUL needed; borrowed.
 * @param key_len its length.
 * @param now_ms the time now, in the receiver's clock (ms).
 * @param ttl_ms how long an unconfirmed claim holds the key.
 * @return ::PDW_CLAIM_NEW (0), ::PDW_CLAIM_INFLIGHT, ::PDW_CLAIM_DUPLICATE, or a negative
 *   code (the store failed; ::PDW_EINVAL for a NULL @p store or @p key with a length).
 * @par Thread safety
 * Any thread; stores are thread-safe.
 */
PDW_EXTERN int pdw_dedup_store_claim(pdw_dedup_store *store, const char *key, size_t key_len,
                                     uint64_t now_ms, uint64_t ttl_ms);

/**
 * @brief Confirm a claim (in flight or confirmed already) and keep @p key for @p ttl_ms
 * milliseconds from @p now_ms: later claims of it, until then, are ::PDW_CLAIM_DUPLICATE.
 * @param store the store.
 * @param key the delivery key, no NUL needed; borrowed.
 * @param key_len its length.
 * @param now_ms the time now, in the receiver's clock (ms).
 * @param ttl_ms how long the confirmed key is kept (the receiver passes its dedup TTL).
 * @return 0, ::PDW_ENOTFOUND when the key is not held (never claimed, released, expired
 *   as of @p now_ms, e.g. its lease ran out, or evicted; nothing is stored then), or the
 *   store's failure (::PDW_EINVAL for NULL arguments).
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN int pdw_dedup_store_confirm(pdw_dedup_store *store, const char *key,
                                       size_t key_len, uint64_t now_ms, uint64_t ttl_ms);

/**
 * @brief Release a claim, in flight or confirmed: the key is free again (the delivery was
 * not accepted after all, and its next retry is to be handed on).
 * @param store the store.
 * @param key the delivery key, no NUL needed; borrowed.
 * @param key_len its length.
 * @return 0 (also when the key was not held), or the store's failure (::PDW_EINVAL for
 *   NULL arguments).
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN int pdw_dedup_store_release(pdw_dedup_store *store, const char *key,
                                       size_t key_len);

/**
 * @brief Free a store that no receiver or Redis store owns (see "Stores and who frees
 * them" above): calls its @c free.
 * @param store the store, or NULL (nothing happens).
 * @par Thread safety
 * Not while the store is in use.
 */
PDW_EXTERN void pdw_dedup_store_free(pdw_dedup_store *store);

/** @brief Options of the in-memory store. Initialise with ::PDW_DEDUP_MEMORY_OPTIONS_INIT. */
typedef struct pdw_dedup_memory_options {
    unsigned version;               /**< ::PDW_DEDUP_MEMORY_OPTIONS_VERSION */
    size_t capacity;                /**< most keys kept; 0: 65536. When full the oldest
                                         claim is forgotten first (a later retry of it would
                                         be handed on again: never lost, maybe twice). */
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied */
} pdw_dedup_memory_options;

/** Version of ::pdw_dedup_memory_options this header describes. */
#define PDW_DEDUP_MEMORY_OPTIONS_VERSION 1
/** Initialiser for ::pdw_dedup_memory_options. */
#define PDW_DEDUP_MEMORY_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_dedup_memory_options, PDW_DEDUP_MEMORY_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_dedup_memory_options_init(pdw_dedup_memory_options *opts,
                                             unsigned version);

/**
 * @brief Create the bounded in-memory store: a hash table with insertion-order eviction
 * and expiry.
 *
 * A claim of a key in flight returns ::PDW_CLAIM_INFLIGHT, of a confirmed one
 * ::PDW_CLAIM_DUPLICATE; a confirm marks the key confirmed and sets its expiry to
 * @c now_ms + @c ttl_ms (::PDW_ENOTFOUND when it is not held as of @c now_ms). Expiry is
 * judged by the @c now_ms the calls pass (the receiver's clock).
 * @param[out] out the store: hand it to a receiver (which then owns it, see "Stores and
 *   who frees them") or free it with pdw_dedup_store_free(). NULL on failure.
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 * @par Thread safety
 * Any thread; the store is thread-safe (one mutex).
 */
PDW_EXTERN int pdw_dedup_memory_new(pdw_dedup_store **out, const pdw_dedup_memory_options *opts,
                                    pdw_error *err);

/**
 * @brief Keys an in-memory store holds now (expired ones may still count until they are
 * reused).
 * @param store a store made by pdw_dedup_memory_new().
 * @return the count; 0 for NULL or any other kind of store.
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN size_t pdw_dedup_memory_count(const pdw_dedup_store *store);

#ifdef __cplusplus
}
#endif
#endif
