/**
 * @file pdwebhook/sys/dedup_store.h
 * @brief The dedup store vtable, for people who write a store (libgit2's
 * `git2/sys/odb_backend.h`). Users of the stores need only pdwebhook/dedup.h.
 *
 * A store is a struct of yours whose first member is a ::pdw_dedup_store, set up with
 * pdw_dedup_store_init() (or ::PDW_DEDUP_STORE_INIT) and the functions filled in; each
 * function gets that member back and finds the rest of your struct from it:
 *
 * ```
 * typedef struct my_store { pdw_dedup_store parent; my_table *t; } my_store;
 * static int my_claim(pdw_dedup_store *s, const char *key, size_t len, uint64_t now_ms,
 *                     uint64_t ttl_ms)
 * {
 *     my_store *m = (my_store *)s;
 *     ...
 * }
 * my_store *m = calloc(1, sizeof *m);
 * pdw_dedup_store_init(&m->parent, PDW_DEDUP_STORE_VERSION);
 * m->parent.claim = my_claim; ... m->parent.free = my_free;
 * opts.dedup = &m->parent; // the receiver owns it once pdw_receiver_new() succeeded
 * ```
 *
 * The semantics every store must keep are those of pdw_dedup_store_claim(),
 * pdw_dedup_store_confirm() and pdw_dedup_store_release() (pdwebhook/dedup.h), which call
 * these functions. They may be called from several threads at once: they must be
 * thread-safe, and the claim atomic. Keys are byte strings (no NUL), borrowed for the
 * call: copy what you keep.
 */
#ifndef PDWEBHOOK_SYS_DEDUP_STORE_H
#define PDWEBHOOK_SYS_DEDUP_STORE_H

#include "pdwebhook/common.h"
#include "pdwebhook/dedup.h"
#include "pdwebhook/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief The vtable of a dedup store: one version, every member required but @c free.
 */
typedef struct pdw_dedup_store {
    unsigned version; /**< ::PDW_DEDUP_STORE_VERSION */
    /**
     * Claim @p key for @p ttl_ms milliseconds from @p now_ms, atomically.
     * @return ::PDW_CLAIM_NEW (0: the key was free or expired, now claimed, in flight),
     *   ::PDW_CLAIM_INFLIGHT (claimed, not confirmed), ::PDW_CLAIM_DUPLICATE (claimed and
     *   confirmed), or a negative code (the receiver then answers ::PDW_ESTORE, 503, so
     *   that Pipedrive retries; so does it for any other value).
     */
    int (*claim)(pdw_dedup_store *store, const char *key, size_t key_len, uint64_t now_ms,
                 uint64_t ttl_ms);
    /**
     * Forget a claim, in flight or confirmed: the key is free again.
     * @return 0 or a negative code (the receiver ignores it).
     */
    int (*release)(pdw_dedup_store *store, const char *key, size_t key_len);
    /**
     * Confirm a claim (in flight or confirmed) and keep @p key for @p ttl_ms milliseconds
     * from @p now_ms (the claim held it only for the in-flight lease).
     * @return 0, ::PDW_ENOTFOUND when the key is not held (never claimed, released,
     *   expired as of @p now_ms, evicted: store nothing then), or a negative code. The
     *   receiver ignores a failure (the event was handed on already; a retry of it may
     *   then be handed on again: at least once, never lost).
     */
    int (*confirm)(pdw_dedup_store *store, const char *key, size_t key_len, uint64_t now_ms,
                   uint64_t ttl_ms);
    /**
     * Release the store and everything it holds; called once, by its owner
     * (pdw_dedup_store_free(), a receiver, a Redis store), when nothing uses it any more.
     * NULL: the store is not freed by anyone (e.g. a static one the caller keeps).
     */
    void (*free)(pdw_dedup_store *store);
} pdw_dedup_store;

/** Version of ::pdw_dedup_store this header describes. */
#define PDW_DEDUP_STORE_VERSION 1
/** Initialiser for ::pdw_dedup_store (the version; the functions are yours to set). */
#define PDW_DEDUP_STORE_INIT PDW_STRUCT_INIT(pdw_dedup_store, PDW_DEDUP_STORE_VERSION)

/**
 * @brief Set up a vtable: every member zero, the version set (for FFI, where the macro is
 * out of reach).
 * @param store the vtable (the first member of your store's struct).
 * @param version ::PDW_DEDUP_STORE_VERSION.
 * @return 0, ::PDW_EINVAL (@p store NULL) or ::PDW_EVERSIONSTRUCT (@p store untouched).
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN int pdw_dedup_store_init(pdw_dedup_store *store, unsigned version);

#ifdef __cplusplus
}
#endif
#endif
