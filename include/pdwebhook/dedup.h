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
 * | free (or expired)      | ::PDW_CLAIM_NEW         | hands the event on                        |
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
 * @par The in-flight lease (version-3 stores)
 * A claim in flight is held for a short *lease* (pdw_receiver_options::inflight_lease_ms,
 * default 60 s), not for the whole dedup TTL (24 h); the confirm (@c confirm_for) then
 * keeps the key for the full TTL. Why: a process that crashes between the claim and its
 * confirm or release (during a journal flush, say) leaves the key in flight. With a store
 * that survives the crash (Redis), a key claimed for 24 h would answer every retry of the
 * delivery 503 ::PDW_EINFLIGHT until Pipedrive gives up, and the event would be lost. With
 * the lease the key is free again once the lease is over, and Pipedrive's next retry is
 * taken as new. The trade-off: a first attempt still running when the lease ends (a
 * synchronous handler slower than the lease) may be handed on a second time by a retry
 * that arrives after the lease: at least once, never lost. A store of version 2 (or one
 * whose @c confirm_for is NULL) is claimed for the full TTL, as before, and keeps the
 * crash window.
 *
 * A store is a small vtable (::pdw_dedup_store) so that persistent or shared stores
 * (a spool-backed one, Redis) plug in. pdw_dedup_memory_new() gives the default: a bounded
 * in-memory table with a time to live.
 *
 * @par Version-1 stores
 * A store of version 1 has no @c confirm and never answers ::PDW_CLAIM_INFLIGHT: a key
 * in flight is a duplicate there. The receiver keeps working with it as before, and keeps
 * the race described above (a retry arriving during a first attempt that then fails is
 * lost). Implement version 2 to close it, and version 3 for the lease.
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
/** Claim result (stores of version 2 and later): the key is claimed but not confirmed
 *  yet: another request is accepting the same delivery right now and may still fail
 *  (until the in-flight lease of a version-3 store runs out). The receiver
 *  does not hand the event on; it answers a retry (attempt 2 or later) 503 +
 *  `Retry-After` (::PDW_EINFLIGHT), and a first attempt (another webhook's copy of the
 *  same event) 200 as a duplicate, since a 503 to a first attempt costs a ban point. */
#define PDW_CLAIM_INFLIGHT 1
/** Claim result: the key is claimed and confirmed: a duplicate of an accepted delivery.
 *  (A version-1 store also returns it for a key still in flight.) */
#define PDW_CLAIM_DUPLICATE 2

/**
 * @brief A deduplication store. Implement it to plug in your own.
 *
 * All functions get @c self back. They may be called from several threads at once when
 * the receiver is used that way, so they must be thread-safe (claim atomic: of two
 * concurrent claims of one free key exactly one gets ::PDW_CLAIM_NEW). Keys are byte
 * strings (@p key, @p key_len; no NUL needed), borrowed for the call: copy what you keep.
 *
 * Layout: members are only ever appended, and @c version says which the struct has
 * (version 1: up to @c self; version 2: @c confirm too; version 3: @c confirm_for too).
 * The receiver reads only the members of the version it is given.
 */
typedef struct pdw_dedup_store {
    unsigned version; /**< ::PDW_DEDUP_STORE_VERSION (3), or 2 for a store without
                           confirm_for, or 1 for a store without confirm */
    /**
     * Claim @p key for @p ttl_ms milliseconds from @p now_ms, atomically. With a version-3
     * store (@c confirm_for set) the receiver passes its in-flight lease here, not the
     * dedup TTL: a claim never confirmed is free again after the lease.
     * @return ::PDW_CLAIM_NEW (the key was free or expired: now claimed, in flight),
     *   ::PDW_CLAIM_INFLIGHT (claimed, not confirmed yet; version 2 and later: the receiver
     *   answers 503 ::PDW_EINFLIGHT), ::PDW_CLAIM_DUPLICATE (claimed and confirmed; a
     *   version-1 store also for a key in flight), or a negative code (the receiver then
     *   answers ::PDW_ESTORE, 503, so that Pipedrive retries).
     */
    int (*claim)(void *self, const char *key, size_t key_len, uint64_t now_ms,
                 uint64_t ttl_ms);
    /**
     * Forget a claim (the event was not accepted after all, e.g. a synchronous handler
     * failed and a non-2xx status asks Pipedrive to retry): the key is free again, in
     * flight or confirmed. @return 0 or a negative code (the receiver ignores it).
     */
    int (*release)(void *self, const char *key, size_t key_len);
    /** The implementation's state. */
    void *self;
    /**
     * (Version 2; optional: NULL behaves as version 1.) Confirm a claim in flight: the
     * delivery was handed on and is answered 2xx, so later claims of @p key (until it
     * expires, the TTL of its claim unchanged) return ::PDW_CLAIM_DUPLICATE instead of
     * ::PDW_CLAIM_INFLIGHT. Confirming a confirmed key does nothing.
     *
     * The receiver calls it after a successful hand-on (see pdw_receiver_handle()), or
     * the caller does, through pdw_receiver_confirm(), for an accept hook that returned
     * ::PDW_ACCEPT_DEFERRED.
     * @return 0, or a negative code: ::PDW_ENOTFOUND when the key is not claimed (never
     *   claimed, released, expired or evicted), or the store's failure. The receiver
     *   ignores a failure (the event was handed on already; a retry of it then sees the
     *   key as it is: in flight until it expires, or free and handed on again).
     */
    int (*confirm)(void *self, const char *key, size_t key_len);
    /**
     * (Version 3; optional: NULL behaves as version 2, without a lease.) Confirm a claim,
     * in flight or already confirmed, as @c confirm does, and keep @p key for @p ttl_ms
     * milliseconds from @p now_ms (the dedup TTL: the claim itself held it only for the
     * in-flight lease). Later claims of @p key, until then, return ::PDW_CLAIM_DUPLICATE.
     *
     * The receiver calls it instead of @c confirm when it is set: after a successful
     * hand-on (see pdw_receiver_handle()), or through pdw_receiver_confirm() for an accept
     * hook that returned ::PDW_ACCEPT_DEFERRED; @p now_ms is its clock at that moment.
     * @return 0, or a negative code: ::PDW_ENOTFOUND when the key is not held (never
     *   claimed, released, expired, e.g. its lease ran out, or evicted: nothing is stored
     *   then), or the store's failure. The receiver ignores a failure, as for @c confirm
     *   (a retry of the delivery may then be handed on again: at least once, never lost).
     */
    int (*confirm_for)(void *self, const char *key, size_t key_len, uint64_t now_ms,
                       uint64_t ttl_ms);
} pdw_dedup_store;

/** Version of ::pdw_dedup_store this header describes (3: with @c confirm_for). */
#define PDW_DEDUP_STORE_VERSION 3

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
#define PDW_DEDUP_MEMORY_OPTIONS_INIT { PDW_DEDUP_MEMORY_OPTIONS_VERSION, 0, NULL }

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_dedup_memory_options_init(pdw_dedup_memory_options *opts,
                                             unsigned version);

/** @brief Opaque in-memory store. */
typedef struct pdw_dedup_memory pdw_dedup_memory;

/**
 * @brief Create the bounded in-memory store (a hash table with insertion-order eviction and
 * expiry). Thread-safe: claims are serialised by a mutex.
 * @param[out] out the store, free with pdw_dedup_memory_free().
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_dedup_memory_new(pdw_dedup_memory **out,
                                    const pdw_dedup_memory_options *opts, pdw_error *err);

/** @brief Free the store. @param m the store or NULL. Not while it is in use. */
PDW_EXTERN void pdw_dedup_memory_free(pdw_dedup_memory *m);

/**
 * @brief The store's version-1 vtable, to pass to a receiver (kept for programs built
 * against version 1 of ::pdw_dedup_store; new code calls pdw_dedup_memory_store_init()).
 *
 * Writes only the version-1 members (@c version = 1, @c claim, @c release, @c self), so a
 * caller's version-1 struct is never overrun. Its @c claim answers ::PDW_CLAIM_DUPLICATE
 * for a key in flight too, as before: with it the receiver keeps the race described in
 * this file's introduction.
 * @param m the store.
 * @param[out] out filled with functions bound to @p m (valid while @p m lives).
 */
PDW_EXTERN void pdw_dedup_memory_store(pdw_dedup_memory *m, pdw_dedup_store *out);

/**
 * @brief The store's vtable of a given version, to pass to a receiver.
 *
 * Version 3 (::PDW_DEDUP_STORE_VERSION) adds @c confirm_for to version 2: the key is
 * marked confirmed and its expiry set to @c now_ms + @c ttl_ms (so a claim made for the
 * in-flight lease is kept for the dedup TTL once confirmed); ::PDW_ENOTFOUND when it is
 * not held (never claimed, released, expired as of @c now_ms, or evicted). Version 2 has
 * @c confirm: a claim of a key in flight returns ::PDW_CLAIM_INFLIGHT, of a confirmed one
 * ::PDW_CLAIM_DUPLICATE; @c confirm of a key that is not held returns ::PDW_ENOTFOUND
 * ("expired" as of the latest @c now_ms a claim passed) and keeps the claim's expiry.
 * Version 1 is pdw_dedup_memory_store(). Only the members of @p version are written (a
 * caller's version-2 struct is never overrun).
 * @param m the store.
 * @param[out] out filled with functions bound to @p m (valid while @p m lives).
 * @param version ::PDW_DEDUP_STORE_VERSION, 2 or 1.
 * @return 0, ::PDW_EINVAL (NULL argument), ::PDW_EVERSIONSTRUCT (unknown version: @p out
 *   untouched).
 * @par Thread safety
 * Any thread; the functions it gives are thread-safe (one mutex per store).
 */
PDW_EXTERN int pdw_dedup_memory_store_init(pdw_dedup_memory *m, pdw_dedup_store *out,
                                           unsigned version);

/** @brief Keys currently held (expired ones may still count until they are reused). */
PDW_EXTERN size_t pdw_dedup_memory_count(pdw_dedup_memory *m);

#ifdef __cplusplus
}
#endif
#endif
