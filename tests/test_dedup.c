/* The in-memory dedup store: atomic claims, in flight and confirmed, TTL, the in-flight
 * lease (a confirm keeps the key for the TTL from then), bounded size, release, threads;
 * and the store calls and vtable set-up of pdwebhook/dedup.h and sys/dedup_store.h. */
#include <pthread.h>
#include <stdatomic.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"
#include "pdwebhook/sys/dedup_store.h"

static pdw_dedup_store *make(size_t cap)
{
    pdw_dedup_memory_options o = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    pdw_dedup_store *s = NULL;
    o.capacity = cap;
    assert_int_equal(pdw_dedup_memory_new(&s, &o, NULL), 0);
    assert_non_null(s);
    return s;
}

static int claim(pdw_dedup_store *s, const char *k, uint64_t now, uint64_t ttl)
{
    return pdw_dedup_store_claim(s, k, strlen(k), now, ttl);
}

/* Confirm k as of now and keep it ttl from then. */
static int confirm(pdw_dedup_store *s, const char *k, uint64_t now, uint64_t ttl)
{
    return pdw_dedup_store_confirm(s, k, strlen(k), now, ttl);
}

static int release(pdw_dedup_store *s, const char *k)
{
    return pdw_dedup_store_release(s, k, strlen(k));
}

static void test_claim_inflight_confirm_duplicate(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(s->version, PDW_DEDUP_STORE_VERSION);
    assert_int_equal(PDW_DEDUP_STORE_VERSION, 1);
    assert_non_null(s->claim);
    assert_non_null(s->release);
    assert_non_null(s->confirm);
    assert_non_null(s->free);
    assert_int_equal(PDW_CLAIM_NEW, 0); /* the normal case is 0 */
    assert_int_equal(claim(s, "2:deal:change:a:1", 1000, 60000), PDW_CLAIM_NEW);
    /* claimed, not confirmed: another request is still accepting it */
    assert_int_equal(claim(s, "2:deal:change:a:1", 1001, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "2:deal:change:a:1", 1002, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(confirm(s, "2:deal:change:a:1", 1002, 60000), 0);
    assert_int_equal(claim(s, "2:deal:change:a:1", 1003, 60000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(confirm(s, "2:deal:change:a:1", 1003, 60000), 0); /* again: confirmed */
    assert_int_equal(claim(s, "2:deal:change:a:1", 1004, 60000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "2:deal:change:b:1", 1005, 60000), PDW_CLAIM_NEW);
    /* keys are byte strings: a prefix is another key */
    assert_int_equal(claim(s, "2:deal:change:a:", 1006, 60000), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "2:deal:change:", 1006, 60000), PDW_ENOTFOUND); /* never */
    assert_int_equal(claim(s, "2:deal:change:b:1", 1007, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_memory_count(s), 3);
    pdw_dedup_store_free(s);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(claim(s, "k", 1000, 500), PDW_CLAIM_NEW);
    assert_int_equal(claim(s, "k", 1499, 500), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "k", 1500, 500), PDW_CLAIM_NEW); /* expired: new again */
    assert_int_equal(confirm(s, "k", 1500, 500), 0);
    assert_int_equal(claim(s, "k", 1999, 500), PDW_CLAIM_DUPLICATE);
    /* a confirmed key expires too, and its new claim is in flight again */
    assert_int_equal(claim(s, "k", 2000, 500), PDW_CLAIM_NEW);
    assert_int_equal(claim(s, "k", 2001, 500), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_memory_count(s), 1);
    /* confirm of an expired claim (as of the confirm's time): not held */
    assert_int_equal(claim(s, "e", 3000, 10), PDW_CLAIM_NEW);
    assert_int_equal(claim(s, "other", 3010, 10), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "e", 3010, 10), PDW_ENOTFOUND);
    assert_int_equal(claim(s, "e", 3011, 10), PDW_CLAIM_NEW);
    pdw_dedup_store_free(s);
}

static void test_release(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(claim(s, "k", 1, 1000), PDW_CLAIM_NEW);
    assert_int_equal(release(s, "k"), 0);
    assert_int_equal(pdw_dedup_memory_count(s), 0);
    assert_int_equal(confirm(s, "k", 1, 1000), PDW_ENOTFOUND); /* released: nothing held */
    assert_int_equal(claim(s, "k", 2, 1000), PDW_CLAIM_NEW);
    assert_int_equal(release(s, "absent"), 0);
    assert_int_equal(pdw_dedup_memory_count(s), 1);
    /* a confirmed key can be released too (forgotten) */
    assert_int_equal(confirm(s, "k", 2, 1000), 0);
    assert_int_equal(claim(s, "k", 3, 1000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(release(s, "k"), 0);
    assert_int_equal(claim(s, "k", 4, 1000), PDW_CLAIM_NEW);
    pdw_dedup_store_free(s);
}

static int noop_claim(pdw_dedup_store *s, const char *k, size_t n, uint64_t now, uint64_t ttl)
{
    (void)s, (void)k, (void)n, (void)now, (void)ttl;
    return PDW_CLAIM_NEW;
}

/* The store calls check their arguments; the vtable set-up is one version; a store of
 * another kind has no memory-store count; freeing NULL or a store without free is nothing. */
static void test_store_calls_and_init(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(pdw_dedup_store_claim(NULL, "k", 1, 1, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_claim(s, NULL, 1, 1, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_claim(s, NULL, 0, 1, 1000), PDW_CLAIM_NEW); /* "" */
    assert_int_equal(pdw_dedup_store_claim(s, "", 0, 2, 1000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_store_confirm(NULL, "k", 1, 1, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_confirm(s, NULL, 1, 1, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_confirm(s, NULL, 0, 2, 1000), 0);
    assert_int_equal(pdw_dedup_store_release(NULL, "k", 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_release(s, NULL, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_release(s, NULL, 0), 0);
    assert_int_equal(pdw_dedup_memory_count(s), 0);
    pdw_dedup_store_free(s);
    pdw_dedup_store_free(NULL);
    assert_int_equal(pdw_dedup_memory_count(NULL), 0);

    pdw_dedup_store v;
    memset(&v, 0x5a, sizeof v);
    assert_int_equal(pdw_dedup_store_init(&v, PDW_DEDUP_STORE_VERSION + 1), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_dedup_store_init(&v, 0), PDW_EVERSIONSTRUCT);
    assert_int_equal(v.version, 0x5a5a5a5au); /* untouched */
    assert_int_equal(pdw_dedup_store_init(NULL, PDW_DEDUP_STORE_VERSION), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_init(&v, PDW_DEDUP_STORE_VERSION), 0);
    assert_int_equal(v.version, PDW_DEDUP_STORE_VERSION);
    assert_null(v.claim);
    assert_null(v.release);
    assert_null(v.confirm);
    assert_null(v.free);
    static const pdw_dedup_store m = PDW_DEDUP_STORE_INIT; /* static: padding zeroed too */
    assert_memory_equal(&m, &v, sizeof m);
    /* a store without the function asked for: EINVAL, not a crash */
    assert_int_equal(pdw_dedup_store_claim(&v, "k", 1, 1, 1), PDW_EINVAL);
    v.claim = noop_claim;
    assert_int_equal(pdw_dedup_store_claim(&v, "k", 1, 1, 1), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_store_confirm(&v, "k", 1, 1, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_store_release(&v, "k", 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_count(&v), 0); /* not a memory store */
    pdw_dedup_store_free(&v);                        /* no free: nothing happens */
}

#define LEASE 60000ull               /* the receiver's default in-flight lease */
#define TTL (24ull * 3600ull * 1000ull) /* its default dedup TTL */

/* A claim made for the lease is free again once the lease is over (a claimant that crashed
 * before confirming does not hold the key for the whole TTL). */
static void test_lease_expires_unconfirmed(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(claim(s, "k", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(s, "k", 4000, LEASE), PDW_CLAIM_INFLIGHT);          /* retry 1 */
    assert_int_equal(claim(s, "k", 1000 + LEASE - 1, LEASE), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "k", 1000 + LEASE, LEASE), PDW_CLAIM_NEW); /* lease over */
    /* the new claim is in flight for a lease of its own */
    assert_int_equal(claim(s, "k", 1000 + LEASE + 1, LEASE), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "k", 1000 + 2 * LEASE, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_memory_count(s), 1);
    pdw_dedup_store_free(s);
}

/* confirm marks the key confirmed and keeps it for the TTL from the confirm: a duplicate
 * long after the lease, free again after the TTL. */
static void test_confirm_extends_to_ttl(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(claim(s, "k", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "k", 3000, TTL), 0); /* confirmed 2 s after the claim */
    assert_int_equal(claim(s, "k", 1000 + LEASE, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "k", 1000 + 10 * LEASE, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "k", 3000 + TTL - 1, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "k", 3000 + TTL, LEASE), PDW_CLAIM_NEW); /* TTL over */
    assert_int_equal(claim(s, "k", 3000 + TTL + 1, LEASE), PDW_CLAIM_INFLIGHT);
    pdw_dedup_store_free(s);

    s = make(0);
    /* a confirmed key: confirm again moves its expiry (and keeps it confirmed) */
    assert_int_equal(claim(s, "c", 0, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "c", 10, 1000), 0);
    assert_int_equal(confirm(s, "c", 500, 1000), 0);
    assert_int_equal(claim(s, "c", 1499, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "c", 1500, LEASE), PDW_CLAIM_NEW);

    /* no overflow: a TTL past the end of time keeps the key for good */
    assert_int_equal(claim(s, "f", 5, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "f", 5, UINT64_MAX), 0);
    assert_int_equal(claim(s, "f", UINT64_MAX - 1, LEASE), PDW_CLAIM_DUPLICATE);
    /* nor in a claim's own expiry */
    assert_int_equal(claim(s, "g", 5, UINT64_MAX), PDW_CLAIM_NEW);
    assert_int_equal(claim(s, "g", UINT64_MAX - 1, LEASE), PDW_CLAIM_INFLIGHT);
    pdw_dedup_store_free(s);
}

/* confirm of a key that is not held: PDW_ENOTFOUND, and nothing is stored. */
static void test_confirm_not_held(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    assert_int_equal(confirm(s, "never", 1, TTL), PDW_ENOTFOUND);
    assert_int_equal(pdw_dedup_memory_count(s), 0);
    /* expired: the lease ran out before the confirm (as of the confirm's now_ms) */
    assert_int_equal(claim(s, "e", 1000, 100), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "e", 1099, TTL), 0);
    assert_int_equal(claim(s, "e2", 1000, 100), PDW_CLAIM_NEW);
    assert_int_equal(confirm(s, "e2", 1100, TTL), PDW_ENOTFOUND);
    assert_int_equal(claim(s, "e2", 1100, 100), PDW_CLAIM_NEW); /* not revived: free */
    /* released */
    assert_int_equal(claim(s, "r", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(release(s, "r"), 0);
    assert_int_equal(confirm(s, "r", 1001, TTL), PDW_ENOTFOUND);
    assert_int_equal(claim(s, "r", 1002, LEASE), PDW_CLAIM_NEW);
    /* evicted */
    pdw_dedup_store *t = make(2);
    assert_int_equal(claim(t, "a", 1, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(t, "b", 1, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(t, "c", 1, LEASE), PDW_CLAIM_NEW); /* a gives way */
    assert_int_equal(confirm(t, "a", 2, TTL), PDW_ENOTFOUND);
    assert_int_equal(confirm(t, "b", 2, TTL), 0);
    pdw_dedup_store_free(t);
    pdw_dedup_store_free(s);
}

static void test_capacity_evicts_oldest(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(4);
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(claim(s, k, 1, 100000), PDW_CLAIM_NEW);
    }
    assert_int_equal(confirm(s, "k2", 1, 100000), 0);
    assert_int_equal(claim(s, "k4", 1, 100000), PDW_CLAIM_NEW); /* k0 gives way */
    assert_int_equal(pdw_dedup_memory_count(s), 4);
    assert_int_equal(confirm(s, "k0", 1, 100000), PDW_ENOTFOUND); /* evicted: not held */
    assert_int_equal(claim(s, "k1", 1, 100000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "k4", 1, 100000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(s, "k0", 1, 100000), PDW_CLAIM_NEW); /* forgotten; k1 gives way */
    assert_int_equal(claim(s, "k2", 1, 100000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(s, "k1", 1, 100000), PDW_CLAIM_NEW);
    pdw_dedup_store_free(s);
}

/* Random claims, confirms and releases against a simple model: the index (open addressing
 * with backward-shift deletion) must never lose or invent a key, nor its state. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { CAP = 64, KEYS = 200, OPS = 200000 };
    pdw_dedup_store *s = make(CAP);
    int present[KEYS] = { 0 }, confirmed[KEYS] = { 0 };
    int order[CAP], head = 0, used = 0; /* model of the ring: key per slot, -1 free */
    for (int i = 0; i < CAP; i++)
        order[i] = -1;
    unsigned x = 12345;
    char k[16];
    for (int op = 0; op < OPS; op++) {
        x = x * 1103515245u + 12345u;
        int key = (int)((x >> 8) % KEYS);
        snprintf(k, sizeof k, "key-%d", key);
        if ((x >> 28) < 3) {
            assert_int_equal(release(s, k), 0);
            if (present[key]) {
                present[key] = 0;
                confirmed[key] = 0;
                for (int i = 0; i < CAP; i++)
                    if (order[i] == key)
                        order[i] = -1;
                used--;
            }
            continue;
        }
        if ((x >> 28) < 6) {
            /* the claims' own now and TTL: the expiry does not move */
            assert_int_equal(confirm(s, k, 1, 1u << 30), present[key] ? 0 : PDW_ENOTFOUND);
            if (present[key])
                confirmed[key] = 1;
            continue;
        }
        int rc = claim(s, k, 1, 1u << 30);
        if (present[key]) {
            assert_int_equal(rc, confirmed[key] ? PDW_CLAIM_DUPLICATE : PDW_CLAIM_INFLIGHT);
            continue;
        }
        assert_int_equal(rc, PDW_CLAIM_NEW);
        if (order[head] >= 0) { /* the slot's old key gives way */
            present[order[head]] = 0;
            confirmed[order[head]] = 0;
            used--;
        }
        order[head] = key;
        head = (head + 1) % CAP;
        present[key] = 1;
        used++;
        assert_int_equal(pdw_dedup_memory_count(s), (size_t)used);
    }
    pdw_dedup_store_free(s);
}

typedef struct race {
    pdw_dedup_store *s;
    atomic_int news;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    char k[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "r%d", i);
        if (claim(r->s, k, 1, 100000) == PDW_CLAIM_NEW)
            atomic_fetch_add(&r->news, 1);
    }
    return NULL;
}

static void test_concurrent_claims_once(void **state)
{
    (void)state;
    pdw_dedup_store *s = make(0);
    race r = { s, 0 };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.news), 5000); /* each key claimed exactly once */
    assert_int_equal(pdw_dedup_memory_count(s), 5000);
    pdw_dedup_store_free(s);
}

static void test_options(void **state)
{
    (void)state;
    pdw_dedup_memory_options o;
    pdw_dedup_store *m = NULL;
    assert_int_equal(pdw_dedup_memory_options_init(&o, 2), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_dedup_memory_options_init(NULL, 1), PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_options_init(&o, PDW_DEDUP_MEMORY_OPTIONS_VERSION), 0);
    o.version = 9;
    assert_int_equal(pdw_dedup_memory_new(&m, &o, NULL), PDW_EVERSIONSTRUCT);
    pdw_dedup_memory_options_init(&o, PDW_DEDUP_MEMORY_OPTIONS_VERSION);
    o.capacity = (size_t)1 << 31;
    assert_int_equal(pdw_dedup_memory_new(&m, &o, NULL), PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_new(NULL, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    pdw_dedup_store_free(m);
    pdw_dedup_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_inflight_confirm_duplicate),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_store_calls_and_init),
        cmocka_unit_test(test_lease_expires_unconfirmed),
        cmocka_unit_test(test_confirm_extends_to_ttl),
        cmocka_unit_test(test_confirm_not_held),
        cmocka_unit_test(test_capacity_evicts_oldest),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_concurrent_claims_once),
        cmocka_unit_test(test_options),
    };
    PDW_RUN_GROUP(tests);
}
