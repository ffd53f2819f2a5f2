/**
 * @file pdwebhook/dedup.h
 * @brief Deduplication of deliveries: an atomic claim on a delivery key.
 *
 * Pipedrive delivers at least once: a retry repeats an event whose first attempt we may
 * already have accepted. The receiver claims each event's delivery key
 * (pdw_event_delivery_key()) before handing it on; a key already claimed is a duplicate,
 * answered 200 and not handed on again.
 *
 * A store is a small vtable (::pdw_dedup_store) so that persistent or shared stores
 * (a spool-backed one, Redis) plug in. pdw_dedup_memory_new() gives the default: a bounded
 * in-memory table with a time to live.
 */
#ifndef PDWEBHOOK_DEDUP_H
#define PDWEBHOOK_DEDUP_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Claim result: the key was free and is now ours. */
#define PDW_CLAIM_NEW 1
/** Claim result: the key was already claimed (a duplicate). */
#define PDW_CLAIM_DUPLICATE 0

/**
 * @brief A deduplication store. Implement it to plug in your own.
 *
 * All functions get @c self back. They may be called from several threads at once when
 * the receiver is used that way, so they must be thread-safe (claim atomic).
 */
typedef struct pdw_dedup_store {
    unsigned version; /**< ::PDW_DEDUP_STORE_VERSION */
    /**
     * Claim @p key for @p ttl_ms milliseconds from @p now_ms, atomically.
     * @return ::PDW_CLAIM_NEW, ::PDW_CLAIM_DUPLICATE, or a negative code (the receiver
     *   then answers ::PDW_ESTORE, 503, so that Pipedrive retries).
     */
    int (*claim)(void *self, const char *key, size_t key_len, uint64_t now_ms,
                 uint64_t ttl_ms);
    /**
     * Forget a claim (the event was not accepted after all, e.g. a synchronous handler
     * failed and a non-2xx status asks Pipedrive to retry). @return 0 or a negative code.
     */
    int (*release)(void *self, const char *key, size_t key_len);
    /** The implementation's state. */
    void *self;
} pdw_dedup_store;

/** Version of ::pdw_dedup_store this header describes. */
#define PDW_DEDUP_STORE_VERSION 1

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
 * @brief The store's vtable, to pass to a receiver.
 * @param m the store.
 * @param[out] out filled with functions bound to @p m (valid while @p m lives).
 */
PDW_EXTERN void pdw_dedup_memory_store(pdw_dedup_memory *m, pdw_dedup_store *out);

/** @brief Keys currently held (expired ones may still count until they are reused). */
PDW_EXTERN size_t pdw_dedup_memory_count(pdw_dedup_memory *m);

#ifdef __cplusplus
}
#endif
#endif
