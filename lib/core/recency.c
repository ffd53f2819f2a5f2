/* Order and identity of changes: the precise time of an event, the version-neutral key of
 * a change, and the recency tracker (pdwebhook/recency.h): per entity the newest change
 * time seen, in a fixed set-associative table (8 ways per bucket, the entity checked least
 * recently in a full bucket forgotten). One mutex; no allocation after pdw_recency_new(). */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define WAYS 8u
#define MAX_CAPACITY ((size_t)1 << 26)
#define KEY_MAX (PDW_NAME_MAX + 1 + PDW_ID_MAX) /* object ':' entity id */

typedef struct entry {
    uint64_t hash;   /* 0: empty */
    uint64_t used;   /* the tracker's check counter when last checked */
    long long ts;    /* newest change time seen, µs */
    long long unit;  /* its precision, µs */
    unsigned char klen;
    char key[KEY_MAX];
} entry;

struct pdw_recency {
    pdw_allocator alloc;
    pthread_mutex_t lock;
    entry *table;
    size_t buckets; /* a power of two */
    size_t count;
    uint64_t clock;
    uint64_t evictions;
};

/* ---- the event's side ------------------------------------------------------------- */

int64_t pdw_event_timestamp_us(const pdw_event *ev)
{
    return (int64_t)ev->timestamp_us;
}

const char *pdw_event_change_key(const pdw_event *cev)
{
    /* A cache, like the changed fields: building it does not change what the event is. */
    pdw_event *ev = (pdw_event *)(uintptr_t)cev;
    if (!ev)
        return NULL;
    if (ev->change_key_state == 0) {
        ev->change_key_state = -1;
        if (ev->has_entity_id && ev->timestamp_ms >= 0) {
            const char *what = ev->merge ? "merge" : pdw__action_name(ev->action);
            int n = snprintf(ev->change_key, sizeof ev->change_key, "c:%s:%s:%s:%lld:%s",
                             ev->object, what, ev->entity_id, ev->timestamp_ms,
                             ev->has_user_id ? ev->user_id : "");
            if (n > 0 && (size_t)n < sizeof ev->change_key)
                ev->change_key_state = 1;
        }
    }
    return ev->change_key_state == 1 ? ev->change_key : NULL;
}

/* ---- the tracker ------------------------------------------------------------------ */

int pdw_recency_options_init(pdw_recency_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_RECENCY_OPTIONS_VERSION);
}

int pdw_recency_new(pdw_recency **out, const pdw_recency_options *opts, pdw_error *err)
{
    pdw_allocator a;
    pdw__error_reset(err); /* a reused struct never shows a stale message */
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (opts && opts->version != PDW_RECENCY_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "recency options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    size_t cap = opts && opts->capacity ? opts->capacity : PDW_RECENCY_DEFAULT_CAPACITY;
    if (cap > MAX_CAPACITY)
        return pdw__error_set(err, PDW_EINVAL, -1, "capacity above %zu", MAX_CAPACITY);
    size_t buckets = 1;
    while (buckets * WAYS < cap)
        buckets *= 2;

    pdw_recency *r = pdw__malloc(&a, sizeof *r);
    entry *table = pdw__malloc(&a, buckets * WAYS * sizeof *table);
    if (!r || !table) {
        pdw__free(&a, r);
        pdw__free(&a, table);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    memset(r, 0, sizeof *r);
    memset(table, 0, buckets * WAYS * sizeof *table);
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        pdw__free(&a, table);
        pdw__free(&a, r);
        return pdw__error_set(err, PDW_ENOMEM, -1, "cannot create a mutex");
    }
    r->alloc = a;
    r->table = table;
    r->buckets = buckets;
    *out = r;
    return 0;
}

void pdw_recency_free(pdw_recency *r)
{
    if (!r)
        return;
    pdw_allocator a = r->alloc;
    pthread_mutex_destroy(&r->lock);
    pdw__free(&a, r->table);
    pdw__free(&a, r);
}

/* FNV-1a, then a 64-bit finaliser (splitmix64) so that the low bits pick buckets well. */
static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

/* a against b, each at its precision: compared at the coarser of the two. */
static int compare(long long a, long long ua, long long b, long long ub)
{
    long long u = ua > ub ? ua : ub;
    long long x = a / u, y = b / u;
    return (x > y) - (x < y);
}

int pdw_recency_check(pdw_recency *r, const pdw_event *ev)
{
    if (!r || !ev)
        return PDW_EINVAL;
    if (!ev->has_entity_id || ev->timestamp_us < 0 || ev->timestamp_unit <= 0)
        return PDW_RECENCY_UNKNOWN;
    char key[KEY_MAX];
    size_t ol = strlen(ev->object), il = strlen(ev->entity_id);
    memcpy(key, ev->object, ol); /* the object has no ':', so the key is unambiguous */
    key[ol] = ':';
    memcpy(key + ol + 1, ev->entity_id, il);
    size_t klen = ol + 1 + il;
    uint64_t h = hash_key(key, klen);

    pthread_mutex_lock(&r->lock);
    entry *bucket = r->table + (h & (r->buckets - 1)) * WAYS, *slot = NULL, *lru = bucket;
    r->clock++;
    for (unsigned i = 0; i < WAYS; i++) {
        entry *e = &bucket[i];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            slot = e;
            break;
        }
        if (lru->hash && (!e->hash || e->used < lru->used))
            lru = e;
    }
    int verdict = PDW_RECENCY_NEWER;
    if (slot) {
        int c = compare(ev->timestamp_us, ev->timestamp_unit, slot->ts, slot->unit);
        verdict = c > 0 ? PDW_RECENCY_NEWER : c == 0 ? PDW_RECENCY_SAME : PDW_RECENCY_STALE;
        /* newer: record it; same: keep the finer of the two times */
        if (c > 0 || (c == 0 && ev->timestamp_unit < slot->unit)) {
            slot->ts = ev->timestamp_us;
            slot->unit = ev->timestamp_unit;
        }
        slot->used = r->clock;
    } else {
        if (lru->hash)
            r->evictions++;
        else
            r->count++;
        lru->hash = h;
        lru->klen = (unsigned char)klen;
        memcpy(lru->key, key, klen);
        lru->ts = ev->timestamp_us;
        lru->unit = ev->timestamp_unit;
        lru->used = r->clock;
    }
    pthread_mutex_unlock(&r->lock);
    return verdict;
}

size_t pdw_recency_count(pdw_recency *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    size_t n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

uint64_t pdw_recency_evictions(pdw_recency *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->evictions;
    pthread_mutex_unlock(&r->lock);
    return n;
}
