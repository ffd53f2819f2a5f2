/* The in-memory dedup store: atomic claims, in flight and confirmed, TTL, the in-flight
 * lease (confirm_for), bounded size, release, threads, and the version-1 and version-2
 * vtables kept for old programs. */
#include <pthread.h>
#include <stdatomic.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

/* The current vtable (version 3: in flight / confirmed, and confirm_for). */
static pdw_dedup_memory *make(size_t cap, pdw_dedup_store *s)
{
    pdw_dedup_memory_options o = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    pdw_dedup_memory *m = NULL;
    o.capacity = cap;
    assert_int_equal(pdw_dedup_memory_new(&m, &o, NULL), 0);
    assert_int_equal(pdw_dedup_memory_store_init(m, s, PDW_DEDUP_STORE_VERSION), 0);
    return m;
}

static int claim(pdw_dedup_store *s, const char *k, uint64_t now, uint64_t ttl)
{
    return s->claim(s->self, k, strlen(k), now, ttl);
}

static int confirm(pdw_dedup_store *s, const char *k)
{
    return s->confirm(s->self, k, strlen(k));
}

static int confirm_for(pdw_dedup_store *s, const char *k, uint64_t now, uint64_t ttl)
{
    return s->confirm_for(s->self, k, strlen(k), now, ttl);
}

static void test_claim_inflight_confirm_duplicate(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(s.version, PDW_DEDUP_STORE_VERSION);
    assert_int_equal(PDW_DEDUP_STORE_VERSION, 3);
    assert_non_null(s.confirm);
    assert_non_null(s.confirm_for);
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1000, 60000), PDW_CLAIM_NEW);
    /* claimed, not confirmed: another request is still accepting it */
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1001, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1002, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(confirm(&s, "2:deal:change:a:1"), 0);
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1003, 60000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(confirm(&s, "2:deal:change:a:1"), 0); /* again: nothing changes */
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1004, 60000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "2:deal:change:b:1", 1005, 60000), PDW_CLAIM_NEW);
    /* keys are byte strings: a prefix is another key */
    assert_int_equal(claim(&s, "2:deal:change:a:", 1006, 60000), PDW_CLAIM_NEW);
    assert_int_equal(confirm(&s, "2:deal:change:"), PDW_ENOTFOUND); /* never claimed */
    assert_int_equal(claim(&s, "2:deal:change:b:1", 1007, 60000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_memory_count(m), 3);
    pdw_dedup_memory_free(m);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(claim(&s, "k", 1000, 500), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 1499, 500), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "k", 1500, 500), PDW_CLAIM_NEW); /* expired: new again */
    assert_int_equal(confirm(&s, "k"), 0);
    assert_int_equal(claim(&s, "k", 1999, 500), PDW_CLAIM_DUPLICATE);
    /* a confirmed key expires too, and its new claim is in flight again */
    assert_int_equal(claim(&s, "k", 2000, 500), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 2001, 500), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_memory_count(m), 1);
    /* confirm of an expired claim (as of the latest claim's time): not held */
    assert_int_equal(claim(&s, "e", 3000, 10), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "other", 3010, 10), PDW_CLAIM_NEW);
    assert_int_equal(confirm(&s, "e"), PDW_ENOTFOUND);
    assert_int_equal(claim(&s, "e", 3011, 10), PDW_CLAIM_NEW);
    pdw_dedup_memory_free(m);
}

static void test_release(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(claim(&s, "k", 1, 1000), PDW_CLAIM_NEW);
    assert_int_equal(s.release(s.self, "k", 1), 0);
    assert_int_equal(pdw_dedup_memory_count(m), 0);
    assert_int_equal(confirm(&s, "k"), PDW_ENOTFOUND); /* released: nothing to confirm */
    assert_int_equal(claim(&s, "k", 2, 1000), PDW_CLAIM_NEW);
    assert_int_equal(s.release(s.self, "absent", 6), 0);
    assert_int_equal(pdw_dedup_memory_count(m), 1);
    /* a confirmed key can be released too (forgotten) */
    assert_int_equal(confirm(&s, "k"), 0);
    assert_int_equal(claim(&s, "k", 3, 1000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(s.release(s.self, "k", 1), 0);
    assert_int_equal(claim(&s, "k", 4, 1000), PDW_CLAIM_NEW);
    pdw_dedup_memory_free(m);
}

static int canary_confirm(void *self, const char *key, size_t len)
{
    (void)self, (void)key, (void)len;
    return 42;
}

/* The version-1 vtable, for programs built against the old struct: only its members are
 * written, and a key in flight is a duplicate there, as it always was. */
static void test_version1_vtable(void **state)
{
    (void)state;
    pdw_dedup_memory *m = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    pdw_dedup_store s;
    s.confirm = canary_confirm; /* past the end of a version-1 struct: must stay */
    pdw_dedup_memory_store(m, &s);
    assert_int_equal(s.version, 1);
    assert_true(s.confirm == canary_confirm);
    assert_int_equal(claim(&s, "k", 1, 1000), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 2, 1000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(s.release(s.self, "k", 1), 0);
    assert_int_equal(claim(&s, "k", 3, 1000), PDW_CLAIM_NEW);
    /* store_init of version 1 is the same; unknown versions leave out untouched */
    pdw_dedup_store s1;
    s1.confirm = NULL;
    assert_int_equal(pdw_dedup_memory_store_init(m, &s1, 1), 0);
    assert_int_equal(s1.version, 1);
    assert_null(s1.confirm);
    pdw_dedup_store s3;
    memset(&s3, 0x5a, sizeof s3);
    assert_int_equal(pdw_dedup_memory_store_init(m, &s3, 4), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_dedup_memory_store_init(m, &s3, 0), PDW_EVERSIONSTRUCT);
    assert_int_equal(s3.version, 0x5a5a5a5au);
    assert_int_equal(pdw_dedup_memory_store_init(NULL, &s3, 2), PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_store_init(m, NULL, 2), PDW_EINVAL);
    pdw_dedup_memory_free(m);
}

#define LEASE 60000ull               /* the receiver's default in-flight lease */
#define TTL (24ull * 3600ull * 1000ull) /* its default dedup TTL */

/* Version 3: a claim made for the lease is free again once the lease is over (a claimant
 * that crashed before confirming does not hold the key for the whole TTL). */
static void test_lease_expires_unconfirmed(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(claim(&s, "k", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 4000, LEASE), PDW_CLAIM_INFLIGHT);          /* retry 1 */
    assert_int_equal(claim(&s, "k", 1000 + LEASE - 1, LEASE), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "k", 1000 + LEASE, LEASE), PDW_CLAIM_NEW); /* lease over */
    /* the new claim is in flight for a lease of its own */
    assert_int_equal(claim(&s, "k", 1000 + LEASE + 1, LEASE), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "k", 1000 + 2 * LEASE, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_memory_count(m), 1);
    pdw_dedup_memory_free(m);
}

/* confirm_for marks the key confirmed and keeps it for the TTL from the confirm: a
 * duplicate long after the lease, free again after the TTL. */
static void test_confirm_for_extends_to_ttl(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(claim(&s, "k", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm_for(&s, "k", 3000, TTL), 0); /* confirmed 2 s after the claim */
    assert_int_equal(claim(&s, "k", 1000 + LEASE, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k", 1000 + 10 * LEASE, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k", 3000 + TTL - 1, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k", 3000 + TTL, LEASE), PDW_CLAIM_NEW); /* TTL over */
    assert_int_equal(claim(&s, "k", 3000 + TTL + 1, LEASE), PDW_CLAIM_INFLIGHT);
    pdw_dedup_memory_free(m);

    /* a fresh store, its clock back at 0 (confirm judges expiry by the latest claim) */
    m = make(0, &s);
    /* a confirmed key: confirm_for again moves its expiry (and keeps it confirmed) */
    assert_int_equal(claim(&s, "c", 0, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm_for(&s, "c", 10, 1000), 0);
    assert_int_equal(confirm_for(&s, "c", 500, 1000), 0);
    assert_int_equal(claim(&s, "c", 1499, LEASE), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "c", 1500, LEASE), PDW_CLAIM_NEW);

    /* the version-2 confirm keeps the claim's own expiry: the lease */
    assert_int_equal(claim(&s, "v2", 1500, 100), PDW_CLAIM_NEW);
    assert_int_equal(confirm(&s, "v2"), 0);
    assert_int_equal(claim(&s, "v2", 1599, 100), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "v2", 1600, 100), PDW_CLAIM_NEW);

    /* no overflow: a TTL past the end of time keeps the key for good */
    assert_int_equal(claim(&s, "f", 5, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(confirm_for(&s, "f", 5, UINT64_MAX), 0);
    assert_int_equal(claim(&s, "f", UINT64_MAX - 1, LEASE), PDW_CLAIM_DUPLICATE);
    pdw_dedup_memory_free(m);
}

/* confirm_for of a key that is not held: PDW_ENOTFOUND, and nothing is stored. */
static void test_confirm_for_not_held(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(confirm_for(&s, "never", 1, TTL), PDW_ENOTFOUND);
    assert_int_equal(pdw_dedup_memory_count(m), 0);
    /* expired: the lease ran out before the confirm (as of the confirm's now_ms) */
    assert_int_equal(claim(&s, "e", 1000, 100), PDW_CLAIM_NEW);
    assert_int_equal(confirm_for(&s, "e", 1099, TTL), 0);
    assert_int_equal(claim(&s, "e2", 1000, 100), PDW_CLAIM_NEW);
    assert_int_equal(confirm_for(&s, "e2", 1100, TTL), PDW_ENOTFOUND);
    assert_int_equal(claim(&s, "e2", 1100, 100), PDW_CLAIM_NEW); /* not revived: free */
    /* released */
    assert_int_equal(claim(&s, "r", 1000, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(s.release(s.self, "r", 1), 0);
    assert_int_equal(confirm_for(&s, "r", 1001, TTL), PDW_ENOTFOUND);
    assert_int_equal(claim(&s, "r", 1002, LEASE), PDW_CLAIM_NEW);
    /* evicted */
    pdw_dedup_store t;
    pdw_dedup_memory *m2 = make(2, &t);
    assert_int_equal(claim(&t, "a", 1, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(&t, "b", 1, LEASE), PDW_CLAIM_NEW);
    assert_int_equal(claim(&t, "c", 1, LEASE), PDW_CLAIM_NEW); /* a gives way */
    assert_int_equal(confirm_for(&t, "a", 2, TTL), PDW_ENOTFOUND);
    assert_int_equal(confirm_for(&t, "b", 2, TTL), 0);
    pdw_dedup_memory_free(m2);
    pdw_dedup_memory_free(m);
}

static int canary_confirm_for(void *self, const char *key, size_t len, uint64_t now,
                              uint64_t ttl)
{
    (void)self, (void)key, (void)len, (void)now, (void)ttl;
    return 43;
}

/* The version-2 vtable, for programs built against the version-2 struct: only its members
 * are written, and it behaves as before (confirm keeps the claim's TTL). */
static void test_version2_vtable(void **state)
{
    (void)state;
    pdw_dedup_memory *m = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    pdw_dedup_store s;
    s.confirm_for = canary_confirm_for; /* past the end of a version-2 struct: must stay */
    assert_int_equal(pdw_dedup_memory_store_init(m, &s, 2), 0);
    assert_int_equal(s.version, 2);
    assert_non_null(s.confirm);
    assert_true(s.confirm_for == canary_confirm_for);
    assert_int_equal(claim(&s, "k", 1000, TTL), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 1000 + LEASE, TTL), PDW_CLAIM_INFLIGHT);
    assert_int_equal(confirm(&s, "k"), 0);
    assert_int_equal(claim(&s, "k", 1000 + TTL - 1, TTL), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k", 1000 + TTL, TTL), PDW_CLAIM_NEW);
    assert_int_equal(s.release(s.self, "k", 1), 0);
    assert_int_equal(confirm(&s, "k"), PDW_ENOTFOUND);
    pdw_dedup_memory_free(m);
}

static void test_capacity_evicts_oldest(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(4, &s);
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(claim(&s, k, 1, 100000), PDW_CLAIM_NEW);
    }
    assert_int_equal(confirm(&s, "k2"), 0);
    assert_int_equal(claim(&s, "k4", 1, 100000), PDW_CLAIM_NEW); /* k0 gives way */
    assert_int_equal(pdw_dedup_memory_count(m), 4);
    assert_int_equal(confirm(&s, "k0"), PDW_ENOTFOUND); /* evicted: not held */
    assert_int_equal(claim(&s, "k1", 1, 100000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "k4", 1, 100000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(claim(&s, "k0", 1, 100000), PDW_CLAIM_NEW); /* forgotten; k1 gives way */
    assert_int_equal(claim(&s, "k2", 1, 100000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k1", 1, 100000), PDW_CLAIM_NEW);
    pdw_dedup_memory_free(m);
}

/* Random claims, confirms and releases against a simple model: the index (open addressing
 * with backward-shift deletion) must never lose or invent a key, nor its state. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { CAP = 64, KEYS = 200, OPS = 200000 };
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(CAP, &s);
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
            assert_int_equal(s.release(s.self, k, strlen(k)), 0);
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
            assert_int_equal(confirm(&s, k), present[key] ? 0 : PDW_ENOTFOUND);
            if (present[key])
                confirmed[key] = 1;
            continue;
        }
        int rc = claim(&s, k, 1, 1u << 30);
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
        assert_int_equal(pdw_dedup_memory_count(m), (size_t)used);
    }
    pdw_dedup_memory_free(m);
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
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    race r = { &s, 0 };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.news), 5000); /* each key claimed exactly once */
    assert_int_equal(pdw_dedup_memory_count(m), 5000);
    pdw_dedup_memory_free(m);
}

static void test_options(void **state)
{
    (void)state;
    pdw_dedup_memory_options o;
    pdw_dedup_memory *m = NULL;
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
    pdw_dedup_memory_free(m);
    pdw_dedup_memory_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_inflight_confirm_duplicate),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_version1_vtable),
        cmocka_unit_test(test_lease_expires_unconfirmed),
        cmocka_unit_test(test_confirm_for_extends_to_ttl),
        cmocka_unit_test(test_confirm_for_not_held),
        cmocka_unit_test(test_version2_vtable),
        cmocka_unit_test(test_capacity_evicts_oldest),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_concurrent_claims_once),
        cmocka_unit_test(test_options),
    };
    PDW_RUN_GROUP(tests);
}
