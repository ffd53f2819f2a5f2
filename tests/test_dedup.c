/* The in-memory dedup store: atomic claims, TTL, bounded size, release, threads. */
#include <pthread.h>
#include <stdatomic.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

static pdw_dedup_memory *make(size_t cap, pdw_dedup_store *s)
{
    pdw_dedup_memory_options o = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    pdw_dedup_memory *m = NULL;
    o.capacity = cap;
    assert_int_equal(pdw_dedup_memory_new(&m, &o, NULL), 0);
    pdw_dedup_memory_store(m, s);
    return m;
}

static int claim(pdw_dedup_store *s, const char *k, uint64_t now, uint64_t ttl)
{
    return s->claim(s->self, k, strlen(k), now, ttl);
}

static void test_claim_then_duplicate(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(s.version, PDW_DEDUP_STORE_VERSION);
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1000, 60000), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "2:deal:change:a:1", 1001, 60000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "2:deal:change:b:1", 1002, 60000), PDW_CLAIM_NEW);
    /* keys are byte strings: a prefix is another key */
    assert_int_equal(claim(&s, "2:deal:change:a:", 1003, 60000), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_memory_count(m), 3);
    pdw_dedup_memory_free(m);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(0, &s);
    assert_int_equal(claim(&s, "k", 1000, 500), PDW_CLAIM_NEW);
    assert_int_equal(claim(&s, "k", 1499, 500), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k", 1500, 500), PDW_CLAIM_NEW); /* expired: new again */
    assert_int_equal(claim(&s, "k", 1999, 500), PDW_CLAIM_DUPLICATE);
    assert_int_equal(pdw_dedup_memory_count(m), 1);
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
    assert_int_equal(claim(&s, "k", 2, 1000), PDW_CLAIM_NEW);
    assert_int_equal(s.release(s.self, "absent", 6), 0);
    assert_int_equal(pdw_dedup_memory_count(m), 1);
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
    assert_int_equal(claim(&s, "k4", 1, 100000), PDW_CLAIM_NEW); /* k0 gives way */
    assert_int_equal(pdw_dedup_memory_count(m), 4);
    assert_int_equal(claim(&s, "k1", 1, 100000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k4", 1, 100000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k0", 1, 100000), PDW_CLAIM_NEW); /* forgotten; k1 gives way */
    assert_int_equal(claim(&s, "k2", 1, 100000), PDW_CLAIM_DUPLICATE);
    assert_int_equal(claim(&s, "k1", 1, 100000), PDW_CLAIM_NEW);
    pdw_dedup_memory_free(m);
}

/* Random claims and releases against a simple model: the index (open addressing with
 * backward-shift deletion) must never lose or invent a key. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { CAP = 64, KEYS = 200, OPS = 200000 };
    pdw_dedup_store s;
    pdw_dedup_memory *m = make(CAP, &s);
    int present[KEYS] = { 0 };
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
                for (int i = 0; i < CAP; i++)
                    if (order[i] == key)
                        order[i] = -1;
                used--;
            }
            continue;
        }
        int rc = claim(&s, k, 1, 1u << 30);
        if (present[key]) {
            assert_int_equal(rc, PDW_CLAIM_DUPLICATE);
            continue;
        }
        assert_int_equal(rc, PDW_CLAIM_NEW);
        if (order[head] >= 0) { /* the slot's old key gives way */
            present[order[head]] = 0;
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
        cmocka_unit_test(test_claim_then_duplicate),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_capacity_evicts_oldest),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_concurrent_claims_once),
        cmocka_unit_test(test_options),
    };
    PDW_RUN_GROUP(tests);
}
