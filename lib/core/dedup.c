/* The default dedup store: a bounded in-memory table of delivery keys with a time to live,
 * and the exported calls of the store interface (pdwebhook/dedup.h,
 * pdwebhook/sys/dedup_store.h).
 *
 * Keys live in a ring of `capacity` slots, filled in claim order, so that when the ring is
 * full the oldest claim is the one forgotten. An open-addressing index (linear probing,
 * backward-shift deletion, at most half full) finds a key in O(1). One mutex makes claims
 * atomic; the critical section is a hash probe and, for a new key, one allocation.
 *
 * Each key is in flight (claimed) or confirmed (accepted for good); a confirm also moves
 * the expiry: the receiver claims for a short in-flight lease and keeps a confirmed key
 * for the whole TTL. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "pdwebhook/sys/dedup_store.h"

#define DEFAULT_CAPACITY 65536

typedef struct slot {
    char *key; /* NULL: free */
    size_t len;
    uint64_t hash;
    uint64_t expires_ms;
    int confirmed; /* accepted for good; 0: in flight */
} slot;

typedef struct pdw_dedup_memory {
    pdw_dedup_store parent; /* first: the store's functions get it back */
    pdw_allocator alloc;
    pthread_mutex_t lock;
    slot *ring;
    size_t capacity;
    size_t head; /* next ring slot to fill */
    size_t count;
    uint32_t *index; /* ring position + 1; 0 = empty */
    size_t index_mask;
    uint64_t seed;
} pdw_dedup_memory;

static pdw_dedup_memory *mem_of(pdw_dedup_store *s)
{
    return (pdw_dedup_memory *)(void *)s;
}

static uint64_t hash_key(uint64_t seed, const char *k, size_t n)
{
    /* FNV-1a with a per-store seed, finished with a 64-bit mixer so that the low bits
     * used by the index are well spread. */
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* Index position of key, or of the empty bucket where it would go. */
static size_t probe(const pdw_dedup_memory *m, const char *k, size_t n, uint64_t h,
                    int *found)
{
    size_t i = (size_t)h & m->index_mask;
    for (;;) {
        uint32_t e = m->index[i];
        if (e == 0) {
            *found = 0;
            return i;
        }
        const slot *s = &m->ring[e - 1];
        if (s->hash == h && s->len == n && memcmp(s->key, k, n) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & m->index_mask;
    }
}

/* Remove index bucket i, shifting later members of its cluster back (no tombstones). */
static void index_remove(pdw_dedup_memory *m, size_t i)
{
    size_t j = i;
    for (;;) {
        m->index[i] = 0;
        for (;;) {
            j = (j + 1) & m->index_mask;
            uint32_t e = m->index[j];
            if (e == 0)
                return;
            size_t home = (size_t)m->ring[e - 1].hash & m->index_mask;
            /* j's entry may move to i only if its home is not cyclically in (i, j] */
            int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        m->index[i] = m->index[j];
        i = j;
    }
}

static void slot_forget(pdw_dedup_memory *m, size_t pos)
{
    slot *s = &m->ring[pos];
    if (!s->key)
        return;
    int found;
    size_t i = probe(m, s->key, s->len, s->hash, &found);
    if (found)
        index_remove(m, i);
    pdw__free(&m->alloc, s->key);
    s->key = NULL;
    m->count--;
}

/* Claim key: new, or tell a key in flight (PDW_CLAIM_INFLIGHT) from a confirmed one. */
static int mem_claim(pdw_dedup_store *store, const char *key, size_t len, uint64_t now_ms,
                     uint64_t ttl_ms)
{
    pdw_dedup_memory *m = mem_of(store);
    uint64_t h = hash_key(m->seed, key, len);
    uint64_t expires = ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
    int found, rc = PDW_CLAIM_NEW;

    pthread_mutex_lock(&m->lock);
    size_t i = probe(m, key, len, h, &found);
    if (found) {
        slot *s = &m->ring[m->index[i] - 1];
        if (s->expires_ms > now_ms) {
            rc = s->confirmed ? PDW_CLAIM_DUPLICATE : PDW_CLAIM_INFLIGHT;
        } else { /* expired: a new claim of the same key */
            s->expires_ms = expires;
            s->confirmed = 0;
        }
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    char *copy = pdw__strndup(&m->alloc, key, len);
    if (!copy) {
        pthread_mutex_unlock(&m->lock);
        return PDW_ENOMEM;
    }
    size_t pos = m->head;
    if (m->ring[pos].key) {
        slot_forget(m, pos); /* the oldest claim gives way */
        i = probe(m, key, len, h, &found);
    }
    m->ring[pos] = (slot){ copy, len, h, expires, 0 };
    m->index[i] = (uint32_t)(pos + 1);
    m->head = (pos + 1) % m->capacity;
    m->count++;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Confirm a key held as of now_ms, and keep it ttl_ms from then: the claim held the key
 * only for the lease. */
static int mem_confirm(pdw_dedup_store *store, const char *key, size_t len, uint64_t now_ms,
                       uint64_t ttl_ms)
{
    pdw_dedup_memory *m = mem_of(store);
    uint64_t h = hash_key(m->seed, key, len);
    int found, rc = PDW_ENOTFOUND;
    pthread_mutex_lock(&m->lock);
    size_t i = probe(m, key, len, h, &found);
    if (found) {
        slot *s = &m->ring[m->index[i] - 1];
        if (s->expires_ms > now_ms) {
            s->confirmed = 1;
            s->expires_ms = ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_release(pdw_dedup_store *store, const char *key, size_t len)
{
    pdw_dedup_memory *m = mem_of(store);
    uint64_t h = hash_key(m->seed, key, len);
    int found;
    pthread_mutex_lock(&m->lock);
    size_t i = probe(m, key, len, h, &found);
    if (found)
        slot_forget(m, m->index[i] - 1);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int pdw_dedup_memory_options_init(pdw_dedup_memory_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_DEDUP_MEMORY_OPTIONS_VERSION);
}

static void mem_free(pdw_dedup_store *store)
{
    pdw_dedup_memory *m = mem_of(store);
    for (size_t i = 0; i < m->capacity; i++)
        pdw__free(&m->alloc, m->ring[i].key);
    pthread_mutex_destroy(&m->lock);
    pdw_allocator a = m->alloc;
    pdw__free(&a, m->ring);
    pdw__free(&a, m->index);
    pdw__free(&a, m);
}

int pdw_dedup_memory_new(pdw_dedup_store **out, const pdw_dedup_memory_options *opts,
                         pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (opts && opts->version != PDW_DEDUP_MEMORY_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "dedup options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    size_t cap = opts && opts->capacity ? opts->capacity : DEFAULT_CAPACITY;
    if (cap > (1u << 30))
        return pdw__error_set(err, PDW_EINVAL, -1, "dedup capacity %zu too large", cap);

    size_t isize = 16;
    while (isize < cap * 2)
        isize *= 2;
    pdw_dedup_memory *m = pdw__calloc(&a, 1, sizeof *m);
    if (!m)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    m->alloc = a;
    m->capacity = cap;
    m->ring = pdw__calloc(&a, cap, sizeof *m->ring);
    m->index = pdw__calloc(&a, isize, sizeof *m->index);
    m->index_mask = isize - 1;
    if (!m->ring || !m->index || pthread_mutex_init(&m->lock, NULL) != 0) {
        pdw__free(&a, m->ring);
        pdw__free(&a, m->index);
        pdw__free(&a, m);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    struct timespec ts = pdw__clock_now(CLOCK_MONOTONIC);
    m->seed = (uint64_t)(uintptr_t)m ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
    pdw_dedup_store_init(&m->parent, PDW_DEDUP_STORE_VERSION);
    m->parent.claim = mem_claim;
    m->parent.release = mem_release;
    m->parent.confirm = mem_confirm;
    m->parent.free = mem_free;
    *out = &m->parent;
    return 0;
}

size_t pdw_dedup_memory_count(const pdw_dedup_store *store)
{
    if (!store || store->claim != mem_claim) /* another kind of store */
        return 0;
    pdw_dedup_memory *m = mem_of((pdw_dedup_store *)(uintptr_t)store);
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* ---- the store interface (pdwebhook/dedup.h, pdwebhook/sys/dedup_store.h) ------------ */

int pdw_dedup_store_init(pdw_dedup_store *store, unsigned version)
{
    return pdw__struct_init(store, sizeof *store, version, PDW_DEDUP_STORE_VERSION);
}

int pdw_dedup_store_claim(pdw_dedup_store *store, const char *key, size_t key_len,
                          uint64_t now_ms, uint64_t ttl_ms)
{
    if (!store || !store->claim || (!key && key_len))
        return PDW_EINVAL;
    return store->claim(store, key ? key : "", key_len, now_ms, ttl_ms);
}

int pdw_dedup_store_confirm(pdw_dedup_store *store, const char *key, size_t key_len,
                            uint64_t now_ms, uint64_t ttl_ms)
{
    if (!store || !store->confirm || (!key && key_len))
        return PDW_EINVAL;
    return store->confirm(store, key ? key : "", key_len, now_ms, ttl_ms);
}

int pdw_dedup_store_release(pdw_dedup_store *store, const char *key, size_t key_len)
{
    if (!store || !store->release || (!key && key_len))
        return PDW_EINVAL;
    return store->release(store, key ? key : "", key_len);
}

void pdw_dedup_store_free(pdw_dedup_store *store)
{
    if (store && store->free)
        store->free(store);
}
