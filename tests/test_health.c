/* The ban model against Pipedrive's rules: first attempts only, 10 bans for 30 minutes,
 * late answers fail, the counter resets, possible losses are recorded, 48 h staleness. */
#include <jansson.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

#define T0 1700000000000LL
#define MIN (60 * 1000LL)

typedef struct losses {
    int calls;
    char id[72];
    int64_t from, to;
} losses;

static void on_loss(const char *id, int64_t from, int64_t to, void *user)
{
    losses *l = user;
    l->calls++;
    snprintf(l->id, sizeof l->id, "%s", id);
    l->from = from;
    l->to = to;
}

static pdw_health *make(losses *l)
{
    pdw_health_options o = PDW_HEALTH_OPTIONS_INIT;
    o.on_possible_loss = on_loss;
    o.user = l;
    pdw_health *h = NULL;
    assert_int_equal(pdw_health_new(&h, &o, NULL), 0);
    return h;
}

static pdw_health_webhook get(pdw_health *h, size_t i, int64_t now)
{
    pdw_health_webhook w;
    assert_int_equal(pdw_health_get(h, i, now, &w), 0);
    return w;
}

static void test_ten_failed_first_attempts_ban(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    for (int i = 0; i < PDW_PIPEDRIVE_BAN_THRESHOLD - 1; i++)
        assert_int_equal(pdw_health_record(h, "4710827", 1, 500, 5, T0 + i), 0);
    assert_int_equal(get(h, 0, T0 + 9).failed_first_attempts, PDW_PIPEDRIVE_BAN_THRESHOLD - 1);
    assert_int_equal(l.calls, 0);
    assert_int_equal(pdw_health_record(h, "4710827", 1, 503, 5, T0 + 10), 1);
    pdw_health_webhook w = get(h, 0, T0 + 11);
    assert_int_equal(w.failed_first_attempts, 0); /* reset, as Pipedrive does */
    assert_int_equal(w.bans, 1);
    assert_int_equal(w.banned, 1);
    assert_int_equal(w.ban_from_ms, T0 + 10);
    assert_int_equal(w.ban_to_ms, T0 + 10 + PDW_PIPEDRIVE_BAN_MS);
    assert_int_equal(l.calls, 1);
    assert_string_equal(l.id, "4710827");
    assert_int_equal(l.to - l.from, PDW_PIPEDRIVE_BAN_MS);
    assert_int_equal(get(h, 0, T0 + 10 + PDW_PIPEDRIVE_BAN_MS).banned, 0); /* window over */
    pdw_health_free(h);
}

static void test_retries_and_successes_do_not_count(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(pdw_health_record(h, "w", 2 + (unsigned)(i % 3), 500, 5, T0), 0);
        assert_int_equal(pdw_health_record(h, "w", 1, 200, 5, T0), 0);
    }
    pdw_health_webhook w = get(h, 0, T0);
    assert_int_equal(w.failed_first_attempts, 0);
    assert_int_equal(w.failures, 50);
    assert_int_equal(w.deliveries, 100);
    assert_int_equal(w.last_success_ms, T0);
    /* a success does not reset the counter (Pipedrive's docs say nothing of it) */
    for (int i = 0; i < 5; i++)
        pdw_health_record(h, "w", 1, 400, 5, T0);
    pdw_health_record(h, "w", 1, 204, 5, T0);
    assert_int_equal(get(h, 0, T0).failed_first_attempts, 5);
    assert_int_equal(l.calls, 0);
    pdw_health_free(h);
}

static void test_late_answers_fail(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    pdw_health_record(h, "w", 1, 200, PDW_PIPEDRIVE_TIMEOUT_MS, T0); /* exactly 10 s: in time */
    pdw_health_record(h, "w", 1, 200, PDW_PIPEDRIVE_TIMEOUT_MS + 1, T0); /* 200 after 10 s: failed */
    pdw_health_webhook w = get(h, 0, T0);
    assert_int_equal(w.failures, 1);
    assert_int_equal(w.failed_first_attempts, 1);
    pdw_health_free(h);
}

static void test_webhooks_kept_apart_and_unknown(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    for (int i = 0; i < PDW_PIPEDRIVE_BAN_THRESHOLD; i++) {
        pdw_health_record(h, "a", 1, 500, 1, T0);
        pdw_health_record(h, i % 2 ? "b" : NULL, 0, 401, 1, T0);
    }
    assert_int_equal(pdw_health_count(h), 3);
    assert_int_equal(get(h, 0, T0).bans, 1);
    assert_string_equal(get(h, 1, T0).webhook_id, "unknown");
    assert_int_equal(get(h, 1, T0).failed_first_attempts, 5);
    assert_int_equal(get(h, 2, T0).failed_first_attempts, 5);
    pdw_health_webhook w;
    assert_int_equal(pdw_health_get(h, 3, T0, &w), PDW_ENOTFOUND);
    pdw_health_free(h);
}

static void test_stale_after_48_hours(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    pdw_health_record(h, "w", 1, 200, 1, T0);
    pdw_health_record(h, "w", 2, 500, 1, T0 + 1);
    assert_int_equal(get(h, 0, T0 + 47 * 60 * MIN).stale, 0);
    assert_int_equal(get(h, 0, T0 + 48 * 60 * MIN).stale, 1);
    char *js = pdw_health_json(h, T0 + 48 * 60 * MIN);
    assert_non_null(strstr(js, "3 days"));
    pdw_free(js);
    pdw_health_free(h);
}

static void test_json(void **state)
{
    (void)state;
    losses l = { 0, "", 0, 0 };
    pdw_health *h = make(&l);
    for (int i = 0; i < PDW_PIPEDRIVE_BAN_THRESHOLD; i++)
        pdw_health_record(h, "we\"ird\n", 1, 500, 1, T0);
    pdw_health_record(h, "ok", 1, 200, 1, T0);
    char *js = pdw_health_json(h, T0 + 1);
    assert_non_null(js);
    json_error_t e;
    json_t *doc = json_loads(js, 0, &e);
    if (!doc)
        fail_msg("not JSON: %s: %s", e.text, js);
    json_t *ws = json_object_get(doc, "webhooks");
    assert_int_equal(json_array_size(ws), 2);
    json_t *w0 = json_array_get(ws, 0);
    assert_string_equal(json_string_value(json_object_get(w0, "webhook_id")), "we?ird?");
    assert_true(json_is_true(json_object_get(w0, "banned")));
    json_t *pl = json_object_get(doc, "possible_losses");
    assert_int_equal(json_array_size(pl), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pl, 0), "to_ms")),
                     T0 + PDW_PIPEDRIVE_BAN_MS);
    assert_int_equal(json_array_size(json_object_get(doc, "warnings")), 1);
    json_decref(doc);
    pdw_free(js);
    pdw_health_free(h);
}

static void test_bounded_table(void **state)
{
    (void)state;
    pdw_health_options o = PDW_HEALTH_OPTIONS_INIT;
    o.max_webhooks = 3;
    pdw_health *h = NULL;
    assert_int_equal(pdw_health_new(&h, &o, NULL), 0);
    pdw_health_record(h, "a", 1, 200, 1, T0 + 1);
    pdw_health_record(h, "b", 1, 200, 1, T0 + 2);
    pdw_health_record(h, "c", 1, 200, 1, T0 + 3);
    pdw_health_record(h, "a", 1, 200, 1, T0 + 4);
    pdw_health_record(h, "d", 1, 200, 1, T0 + 5); /* b was seen least recently */
    assert_int_equal(pdw_health_count(h), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_not_equal(get(h, i, T0).webhook_id, "b");
    pdw_health_free(h);
    assert_int_equal(pdw_health_options_init(&o, 9), PDW_EVERSIONSTRUCT);
    o.version = 9;
    assert_int_equal(pdw_health_new(&h, &o, NULL), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_health_new(NULL, NULL, NULL), PDW_EINVAL);
    pdw_health_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_failed_first_attempts_ban),
        cmocka_unit_test(test_retries_and_successes_do_not_count),
        cmocka_unit_test(test_late_answers_fail),
        cmocka_unit_test(test_webhooks_kept_apart_and_unknown),
        cmocka_unit_test(test_stale_after_48_hours),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_bounded_table),
    };
    PDW_RUN_GROUP(tests);
}
