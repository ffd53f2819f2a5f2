/* The API conventions that hold across the headers (STYLE.md, Interface): every options
 * struct's pdw_*_options_init() gives exactly its PDW_*_INIT (the version, every other
 * member zero: zero is the default everywhere) and refuses any other version without
 * writing; 1.0 starts every versioned struct at version 1. */
#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/subscriptions.h"
#include "pdwebhook/sys/dedup_store.h"
#ifdef PDW_TEST_HAVE_REDIS
#include "pdwebhook/redis.h"
#endif

/* init(opts, version) against the macro, byte for byte (static: padding zero too). */
#define CHECK_OPTIONS(type, init_fn, VERSION, INIT)                                           \
    do {                                                                                      \
        static const type want = INIT;                                                        \
        type got;                                                                             \
        memset(&got, 0xa5, sizeof got);                                                       \
        assert_int_equal(init_fn(&got, VERSION), 0);                                          \
        assert_memory_equal(&got, &want, sizeof got);                                         \
        assert_int_equal(got.version, 1);                                                     \
        assert_int_equal(VERSION, 1);                                                         \
        memset(&got, 0xa5, sizeof got);                                                       \
        assert_int_equal(init_fn(&got, (VERSION) + 1), PDW_EVERSIONSTRUCT);                   \
        assert_int_equal(init_fn(&got, 0), PDW_EVERSIONSTRUCT);                               \
        assert_int_equal(got.version, 0xa5a5a5a5u); /* untouched */                           \
        assert_int_equal(init_fn(NULL, VERSION), PDW_EINVAL);                                 \
    } while (0)

static void test_options_init_is_the_macro(void **state)
{
    (void)state;
    CHECK_OPTIONS(pdw_parse_options, pdw_parse_options_init, PDW_PARSE_OPTIONS_VERSION,
                  PDW_PARSE_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_router_options, pdw_router_options_init, PDW_ROUTER_OPTIONS_VERSION,
                  PDW_ROUTER_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_dedup_memory_options, pdw_dedup_memory_options_init,
                  PDW_DEDUP_MEMORY_OPTIONS_VERSION, PDW_DEDUP_MEMORY_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_dedup_store, pdw_dedup_store_init, PDW_DEDUP_STORE_VERSION,
                  PDW_DEDUP_STORE_INIT);
    CHECK_OPTIONS(pdw_receiver_options, pdw_receiver_options_init,
                  PDW_RECEIVER_OPTIONS_VERSION, PDW_RECEIVER_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_health_options, pdw_health_options_init, PDW_HEALTH_OPTIONS_VERSION,
                  PDW_HEALTH_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_spool_options, pdw_spool_options_init, PDW_SPOOL_OPTIONS_VERSION,
                  PDW_SPOOL_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_worker_options, pdw_worker_options_init, PDW_WORKER_OPTIONS_VERSION,
                  PDW_WORKER_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_intake_options, pdw_intake_options_init, PDW_INTAKE_OPTIONS_VERSION,
                  PDW_INTAKE_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_plan_options, pdw_plan_options_init, PDW_PLAN_OPTIONS_VERSION,
                  PDW_PLAN_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_recency_options, pdw_recency_options_init, PDW_RECENCY_OPTIONS_VERSION,
                  PDW_RECENCY_OPTIONS_INIT);
#ifdef PDW_TEST_HAVE_REDIS
    CHECK_OPTIONS(pdw_redis_options, pdw_redis_options_init, PDW_REDIS_OPTIONS_VERSION,
                  PDW_REDIS_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_redis_dedup_options, pdw_redis_dedup_options_init,
                  PDW_REDIS_DEDUP_OPTIONS_VERSION, PDW_REDIS_DEDUP_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_redis_stream_options, pdw_redis_stream_options_init,
                  PDW_REDIS_STREAM_OPTIONS_VERSION, PDW_REDIS_STREAM_OPTIONS_INIT);
    CHECK_OPTIONS(pdw_redis_consumer_options, pdw_redis_consumer_options_init,
                  PDW_REDIS_CONSUMER_OPTIONS_VERSION, PDW_REDIS_CONSUMER_OPTIONS_INIT);
#endif
}

/* The structs the caller fills that are not options: version 1 as well. */
static void test_versions_start_at_one(void **state)
{
    (void)state;
    assert_int_equal(PDW_REQUEST_VERSION, 1);
    assert_int_equal(PDW_VERDICT_VERSION, 1);
    assert_int_equal(PDW_INTAKE_STATS_VERSION, 1);
#ifdef PDW_TEST_HAVE_REDIS
    assert_int_equal(PDW_REDIS_URL_VERSION, 1);
#endif
    pdw_verdict v = PDW_VERDICT_INIT;
    assert_int_equal(v.version, 1);
    assert_int_equal(v.status, 0);
    assert_string_equal(v.event, "");
    pdw_request q = PDW_REQUEST_INIT;
    assert_int_equal(q.version, 1);
    assert_null(q.method);
}

/* Pipedrive's protocol constants are the facts of PIPEDRIVE.md (the library, the tools and
 * the tests derive theirs from these macros, so their values are pinned here). */
static void test_pipedrive_constants(void **state)
{
    (void)state;
    assert_int_equal(PDW_PIPEDRIVE_TIMEOUT_MS, 10 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_RETRIES, 3);
    assert_int_equal(PDW_PIPEDRIVE_MAX_ATTEMPTS, 4);
    assert_int_equal(PDW_PIPEDRIVE_RETRY1_DELAY_MS, 3 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_RETRY2_DELAY_MS, 30 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_RETRY3_DELAY_MS, 150 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_RETRY_HORIZON_MS, 183 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_BAN_THRESHOLD, 10);
    assert_int_equal(PDW_PIPEDRIVE_BAN_MS, 30 * 60 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_DELETE_AFTER_MS, 3 * 24 * 3600 * 1000);
    assert_int_equal(PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER, 40);
    assert_int_equal(PDW_PIPEDRIVE_V1_FIRST_RETRY, 0);
    assert_int_equal(PDW_PIPEDRIVE_V2_FIRST_ATTEMPT, 1);
    /* the defaults that follow from them */
    pdw_health *h = NULL;
    assert_int_equal(pdw_health_new(&h, NULL, NULL), 0);
    for (int i = 0; i < PDW_PIPEDRIVE_BAN_THRESHOLD - 1; i++)
        assert_int_equal(pdw_health_record(h, "w", 1, 500, 1, 1000), 0);
    assert_int_equal(pdw_health_record(h, "w", 1, 500, 1, 1000), 1); /* the 10th bans */
    pdw_health_webhook w;
    assert_int_equal(pdw_health_get(h, 0, 1000, &w), 0);
    assert_int_equal(w.ban_to_ms - w.ban_from_ms, PDW_PIPEDRIVE_BAN_MS);
    pdw_health_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_init_is_the_macro),
        cmocka_unit_test(test_versions_start_at_one),
        cmocka_unit_test(test_pipedrive_constants),
    };
    PDW_RUN_GROUP(tests);
}
