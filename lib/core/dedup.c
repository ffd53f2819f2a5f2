/* The default dedup store: a bounded in-memory table of delivery keys with a time to live.
 *
 * Keys live in a ring of `capacity` slots, filled in claim order, so that when the ring is
 * full the oldest claim is the one forgotten. An open-addressing index (linear probing,
 * backward-shift deletion, at most half full) finds a key in O(1). One mutex makes claims
 * atomic; the critical section is a hash probe and, for a new key, one allocation.
 *
 * Each key is in flight (claimed) or confirmed (accepted for good): the version-2 vtable
 * tells a claim of the one from the other (PDW_CLAIM_INFLIGHT / PDW_CLAIM_DUPLICATE); the
 * version-1 vtable, for programs built against the old struct, calls both duplicates. The
 * version-3 vtable adds confirm_for, which also moves the expiry: the receiver claims for
 * a short in-flight lease and keeps a confirmed key for the whole TTL. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define DEFAULT_CAPACITY 65536

typedef struct slot {
    char *key; /* NULL: free */
    size_t len;
    uint64_t hash;
    uint64_t expires_ms;
    int confirmed; /* accepted for good; 0: in flight */
} slot;

struct pdw_dedup_memory {
    pdw_allocator alloc;
    pthread_mutex_t lock;
    slot *ring;
    size_t capacity;
    size_t head; /* next ring slot to fill */
    size_t count;
    uint32_t *index; /* ring position + 1; 0 = empty */
    size_t index_mask;
    uint64_t seed;
    uint64_t now_ms; /* latest time a claim passed: confirm's idea of "expired" */
};

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

/* Claim key; v2: tell a key in flight (PDW_CLAIM_INFLIGHT) from a confirmed one. */
static int claim_key(pdw_dedup_memory *m, const char *key, size_t len, uint64_t now_ms,
                     uint64_t ttl_ms, int v2)
{
    uint64_t h = hash_key(m->seed, key, len);
    int found, rc = PDW_CLAIM_NEW;

    pthread_mutex_lock(&m->lock);
    if (now_ms > m->now_ms)
        m->now_ms = now_ms;
    size_t i = probe(m, key, len, h, &found);
    if (found) {
        slot *s = &m->ring[m->index[i] - 1];
        if (s->expires_ms > now_ms) {
            rc = s->confirmed || !v2 ? PDW_CLAIM_DUPLICATE : PDW_CLAIM_INFLIGHT;
        } else { /* expired: a new claim of the same key */
            s->expires_ms = now_ms + ttl_ms;
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
    m->ring[pos] = (slot){ copy, len, h, now_ms + ttl_ms, 0 };
    m->index[i] = (uint32_t)(pos + 1);
    m->head = (pos + 1) % m->capacity;
    m->count++;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_claim(void *self, const char *key, size_t len, uint64_t now_ms, uint64_t ttl_ms)
{
    return claim_key(self, key, len, now_ms, ttl_ms, 1);
}

static int mem_claim_v1(void *self, const char *key, size_t len, uint64_t now_ms,
                        uint64_t ttl_ms)
{
    return claim_key(self, key, len, now_ms, ttl_ms, 0);
}

/* Confirm a key that is held: as of *now_ms and kept ttl_ms from it (confirm_for), or,
 * with now_ms NULL, as of the latest time a claim passed and with its TTL unchanged
 * (confirm). */
static int confirm_key(pdw_dedup_memory *m, const char *key, size_t len,
                       const uint64_t *now_ms, uint64_t ttl_ms)
{
    uint64_t h = hash_key(m->seed, key, len);
    int found, rc = PDW_ENOTFOUND;
    pthread_mutex_lock(&m->lock);
    if (now_ms && *now_ms > m->now_ms)
        m->now_ms = *now_ms;
    uint64_t t = now_ms ? *now_ms : m->now_ms;
    size_t i = probe(m, key, len, h, &found);
    if (found) {
        slot *s = &m->ring[m->index[i] - 1];
        if (s->expires_ms > t) {
            s->confirmed = 1;
            if (now_ms)
                s->expires_ms = ttl_ms > UINT64_MAX - t ? UINT64_MAX : t + ttl_ms;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_confirm(void *self, const char *key, size_t len)
{
    return confirm_key(self, key, len, NULL, 0);
}

/* Confirmed, and kept ttl_ms from now_ms: the claim held the key only for the lease. */
static int mem_confirm_for(void *self, const char *key, size_t len, uint64_t now_ms,
                           uint64_t ttl_ms)
{
    return confirm_key(self, key, len, &now_ms, ttl_ms);
}

static int mem_release(void *self, const char *key, size_t len)
{
    pdw_dedup_memory *m = self;
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
    if (!opts)
        return PDW_EINVAL;
    if (version != PDW_DEDUP_MEMORY_OPTIONS_VERSION)
        return PDW_EVERSIONSTRUCT;
    pdw_dedup_memory_options def = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    *opts = def;
    return 0;
}

int pdw_dedup_memory_new(pdw_dedup_memory **out, const pdw_dedup_memory_options *opts,
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
    *out = m;
    return 0;
}

void pdw_dedup_memory_free(pdw_dedup_memory *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->capacity; i++)
        pdw__free(&m->alloc, m->ring[i].key);
    pthread_mutex_destroy(&m->lock);
    pdw_allocator a = m->alloc;
    pdw__free(&a, m->ring);
    pdw__free(&a, m->index);
    pdw__free(&a, m);
}

void pdw_dedup_memory_store(pdw_dedup_memory *m, pdw_dedup_store *out)
{
    /* the version-1 members only: the caller's struct may be a version-1 one */
    out->version = 1;
    out->claim = mem_claim_v1;
    out->release = mem_release;
    out->self = m;
}

int pdw_dedup_memory_store_init(pdw_dedup_memory *m, pdw_dedup_store *out, unsigned version)
{
    if (!m || !out)
        return PDW_EINVAL;
    if (version == 1) {
        pdw_dedup_memory_store(m, out);
        return 0;
    }
    if (version < 2 || version > PDW_DEDUP_STORE_VERSION)
        return PDW_EVERSIONSTRUCT;
    /* the members of the version asked for only: a version-2 struct has no confirm_for */
    out->version = version;
    out->claim = mem_claim;
    out->release = mem_release;
    out->self = m;
    out->confirm = mem_confirm;
    if (version >= 3)
        out->confirm_for = mem_confirm_for;
    return 0;
}

size_t pdw_dedup_memory_count(pdw_dedup_memory *m)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}
