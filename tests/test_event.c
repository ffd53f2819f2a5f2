/* The event: leniencies, strictness, delivery keys, changed fields, merges, lazy DOM. */
#include <jansson.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

static pdw_event *parse_ok(const char *body)
{
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_event_parse(&ev, body, strlen(body), NULL, &err);
    if (rc != 0)
        fail_msg("parse failed: %s (%s) for %s", pdw_err_name(rc), err.message, body);
    return ev;
}

static int parse_rc(const char *body)
{
    pdw_event *ev = NULL;
    int rc = pdw_event_parse(&ev, body, strlen(body), NULL, NULL);
    pdw_event_free(ev);
    return rc;
}

/* A v2 body with the meta members given (a JSON fragment), data and previous. */
static char *v2(const char *meta_extra, const char *data, const char *previous)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"meta\":{\"version\":\"2.0\",\"company_id\":\"5\",\"user_id\":\"7\"%s%s},"
             "\"data\":%s,\"previous\":%s}",
             *meta_extra ? "," : "", meta_extra, data, previous);
    return buf;
}

static void test_v2_basic_accessors(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok(v2("\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
                                "\"id\":\"u-1\",\"timestamp\":\"2022-11-24T15:11:55.724Z\","
                                "\"webhook_id\":\"99\",\"attempt\":3,\"is_bulk_edit\":true,"
                                "\"change_source\":\"api\",\"correlation_id\":\"c-1\"",
                                "{\"id\":8,\"stage_id\":2}", "{\"stage_id\":1}"));
    assert_int_equal(pdw_event_version(ev), 2);
    assert_string_equal(pdw_event_action(ev), "change");
    assert_string_equal(pdw_event_delivered_action(ev), "change");
    assert_string_equal(pdw_event_object(ev), "deal");
    assert_string_equal(pdw_event_name(ev), "change.deal");
    assert_string_equal(pdw_event_entity_id(ev), "8");
    assert_string_equal(pdw_event_event_id(ev), "u-1");
    assert_string_equal(pdw_event_webhook_id(ev), "99");
    assert_string_equal(pdw_event_company_id(ev), "5");
    assert_string_equal(pdw_event_user_id(ev), "7");
    assert_string_equal(pdw_event_change_source(ev), "api");
    assert_string_equal(pdw_event_correlation_id(ev), "c-1");
    assert_int_equal(pdw_event_attempt(ev), 3);
    assert_int_equal(pdw_event_is_bulk(ev), 1);
    assert_int_equal(pdw_event_is_merge(ev), 0);
    assert_null(pdw_event_merged_from_id(ev));
    assert_int_equal(pdw_event_timestamp_ms(ev), 1669302715724LL);
    assert_int_equal(pdw_event_changed(ev, "stage_id"), 1);
    assert_int_equal(pdw_event_changed(ev, "id"), 0);
    pdw_event_free(ev);
}

static void test_ids_int_or_string(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok(v2("\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":8,"
                                "\"id\":\"x\",\"timestamp\":1,\"webhook_id\":4710827",
                                "{}", "null"));
    assert_string_equal(pdw_event_entity_id(ev), "8");
    assert_string_equal(pdw_event_webhook_id(ev), "4710827");
    pdw_event_free(ev);
    ev = parse_ok("{\"v\":1,\"retry\":0,\"meta\":{\"v\":1,\"action\":\"updated\","
                  "\"object\":\"pipeline\",\"id\":\"1\",\"timestamp\":1492704744,"
                  "\"webhook_id\":\"77\"},\"current\":{},\"previous\":{}}");
    assert_string_equal(pdw_event_entity_id(ev), "1");
    assert_string_equal(pdw_event_webhook_id(ev), "77");
    pdw_event_free(ev);
    /* ids that are neither: refused */
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":1.5,"
                                 "\"timestamp\":1", "{}", "null")), PDW_EFIELD);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":[1],"
                                 "\"timestamp\":1", "{}", "null")), PDW_EFIELD);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"deal\",\"webhook_id\":true,"
                                 "\"timestamp\":1", "{}", "null")), PDW_EFIELD);
    /* an id longer than PDW_ID_MAX */
    char meta[512];
    snprintf(meta, sizeof meta, "\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":\"%0*d\"",
             PDW_ID_MAX + 1, 1);
    assert_int_equal(parse_rc(v2(meta, "{}", "null")), PDW_EFIELD);
    /* control characters in an id, raw (only DEL can be: JSON forbids the others) or
     * escaped, at the start, the middle and the end: refused; other escapes are fine */
    static const char *const bad[] = { "\"a\x7f\"", "\"\x7f" "b\"", "\"a\\u007f\"",
                                       "\"\\u0001x\"", "\"x\\u001f\"", "\"x\\ty\"",
                                       "\"x\\ny\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(meta, sizeof meta,
                 "\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":%s", bad[i]);
        assert_int_equal(parse_rc(v2(meta, "{}", "null")), PDW_EFIELD);
    }
    ev = parse_ok(v2("\"action\":\"create\",\"entity\":\"deal\",\"entity_id\":"
                     "\"a\\u00e9\\/b \\u0020~\"", "{}", "null"));
    assert_string_equal(pdw_event_entity_id(ev), "a\xc3\xa9/b  ~");
    pdw_event_free(ev);
}

static int64_t ts_of(const char *meta_ts)
{
    char meta[256];
    snprintf(meta, sizeof meta, "\"action\":\"create\",\"entity\":\"product\",\"id\":\"a\",%s",
             meta_ts);
    pdw_event *ev = parse_ok(v2(meta, "{}", "null"));
    int64_t t = pdw_event_timestamp_ms(ev);
    pdw_event_free(ev);
    return t;
}

static void test_timestamp_forms(void **state)
{
    (void)state;
    assert_int_equal(ts_of("\"timestamp\":\"2022-11-24T15:28:13.375Z\""), 1669303693375LL);
    assert_int_equal(ts_of("\"timestamp\":\"2022-11-24T16:28:13.375+01:00\""), 1669303693375LL);
    assert_int_equal(ts_of("\"timestamp\":\"2022-11-24T15:28:13Z\""), 1669303693000LL);
    assert_int_equal(ts_of("\"timestamp\":\"2022-11-24 15:28:13\""), 1669303693000LL);
    assert_int_equal(ts_of("\"timestamp\":1669304389"), 1669304389000LL);
    assert_int_equal(ts_of("\"timestamp\":\"1669304389\""), 1669304389000LL);
    assert_int_equal(ts_of("\"timestamp\":1669304389123"), 1669304389123LL);
    assert_int_equal(ts_of("\"timestamp\":1669304389123456"), 1669304389123LL);
    assert_int_equal(ts_of("\"timestamp\":\"not a time\""), -1);
    assert_int_equal(ts_of("\"timestamp\":\"2022-13-24 15:28:13\""), -1);
    assert_int_equal(ts_of("\"timestamp\":null"), -1);
    assert_int_equal(ts_of("\"host\":\"x\""), -1);
    /* v1: micro beats milli beats seconds */
    pdw_event *ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"added\",\"object\":\"deal\","
                             "\"id\":1,\"timestamp\":1739826584,\"timestamp_micro\":"
                             "1739826584443168,\"timestamp_milli\":1739826584441},"
                             "\"current\":{},\"previous\":null}");
    assert_int_equal(pdw_event_timestamp_ms(ev), 1739826584443LL);
    pdw_event_free(ev);
    ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"added\",\"object\":\"deal\",\"id\":1,"
                  "\"timestamp\":1739826584},\"current\":{},\"previous\":null}");
    assert_int_equal(pdw_event_timestamp_ms(ev), 1739826584000LL);
    pdw_event_free(ev);
}

static void test_nulls_and_unknowns(void **state)
{
    (void)state;
    /* delete: data null; unknown keys everywhere; an object Pipedrive added in 2026 */
    pdw_event *ev = parse_ok(v2("\"action\":\"delete\",\"entity\":\"deal_product\","
                                "\"id\":\"q\",\"entity_id\":\"3\",\"timestamp\":1,"
                                "\"brand_new_key\":{\"x\":[1,2]}",
                                "null", "{\"id\":3}"));
    assert_string_equal(pdw_event_name(ev), "delete.deal_product");
    assert_int_equal(pdw_event_changed_count(ev), 0);
    pdw_event_free(ev);
    /* missing previous altogether, data null and previous null */
    ev = parse_ok("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"project\","
                  "\"id\":\"z\"},\"data\":null}");
    assert_string_equal(pdw_event_name(ev), "change.project");
    assert_int_equal(pdw_event_changed_count(ev), 0);
    assert_int_equal(pdw_event_attempt(ev), 1);
    assert_null(pdw_event_webhook_id(ev));
    pdw_event_free(ev);
    /* keys in any order, meta last */
    ev = parse_ok("{\"previous\":null,\"data\":{},\"meta\":{\"id\":\"k\",\"entity\":\"task\","
                  "\"action\":\"create\",\"version\":\"2.0\"}}");
    assert_string_equal(pdw_event_name(ev), "create.task");
    pdw_event_free(ev);
}

static void test_v1_user_arrays(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok("{\"v\":1,\"retry\":2,\"meta\":{\"v\":1,\"action\":\"updated\","
                             "\"object\":\"user\",\"id\":12,\"timestamp\":1},"
                             "\"current\":[{\"id\":12,\"name\":\"B\",\"active_flag\":true}],"
                             "\"previous\":[{\"id\":12,\"name\":\"A\",\"active_flag\":true}]}");
    assert_string_equal(pdw_event_name(ev), "change.user");
    assert_int_equal(pdw_event_attempt(ev), 3);
    assert_int_equal(pdw_event_changed_count(ev), 1);
    assert_string_equal(pdw_event_changed_field(ev, 0), "name");
    pdw_event_free(ev);
}

static void test_strictness(void **state)
{
    (void)state;
    assert_int_equal(parse_rc("[]"), PDW_ENOTOBJECT);
    assert_int_equal(parse_rc("\"meta\""), PDW_ENOTOBJECT);
    assert_int_equal(parse_rc("{}"), PDW_ENOMETA);
    assert_int_equal(parse_rc("{\"meta\":[]}"), PDW_ENOMETA);
    assert_int_equal(parse_rc("{\"meta\":{\"action\":\"change\",\"entity\":\"deal\"}}"),
                     PDW_EVERSION);
    assert_int_equal(parse_rc("{\"meta\":{\"version\":\"3.0\",\"action\":\"change\","
                              "\"entity\":\"deal\"}}"), PDW_EVERSION);
    assert_int_equal(parse_rc("{\"meta\":{\"version\":2,\"action\":\"change\","
                              "\"entity\":\"deal\"}}"), PDW_EVERSION);
    assert_int_equal(parse_rc("{\"v\":2,\"meta\":{\"v\":2,\"action\":\"updated\","
                              "\"object\":\"deal\"}}"), PDW_EVERSION);
    assert_int_equal(parse_rc(v2("\"entity\":\"deal\"", "{}", "null")), PDW_EACTION);
    assert_int_equal(parse_rc(v2("\"action\":\"merged\",\"entity\":\"deal\"", "{}", "null")),
                     PDW_EACTION);
    assert_int_equal(parse_rc(v2("\"action\":\"updated\",\"entity\":\"deal\"", "{}", "null")),
                     PDW_EACTION);
    assert_int_equal(parse_rc(v2("\"action\":1,\"entity\":\"deal\"", "{}", "null")),
                     PDW_EACTION);
    assert_int_equal(parse_rc("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"change\","
                              "\"object\":\"deal\"}}"), PDW_EACTION);
    assert_int_equal(parse_rc(v2("\"action\":\"create\"", "{}", "null")), PDW_EOBJECT);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"\"", "{}", "null")),
                     PDW_EOBJECT);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"de.al\"", "{}", "null")),
                     PDW_EOBJECT);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"deal\",\"attempt\":0",
                                 "{}", "null")), PDW_EFIELD);
    assert_int_equal(parse_rc(v2("\"action\":\"create\",\"entity\":\"deal\",\"attempt\":\"x\"",
                                 "{}", "null")), PDW_EFIELD);
    assert_int_equal(parse_rc("{\"v\":1,\"retry\":-1,\"meta\":{\"v\":1,\"action\":\"added\","
                              "\"object\":\"deal\"}}"), PDW_EFIELD);
    /* JSON errors come with a byte offset */
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    const char *bad = "{\"meta\":{\"version\":\"2.0\",}}";
    assert_int_equal(pdw_event_parse(&ev, bad, strlen(bad), NULL, &err), PDW_EJSON);
    assert_null(ev);
    assert_int_equal(err.code, PDW_EJSON);
    assert_true(err.offset > 20 && err.offset <= (long long)strlen(bad));
    pdw_error_clear(&err);
    const char *dup = "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"action\":\"delete\","
                      "\"entity\":\"deal\"}}";
    assert_int_equal(pdw_event_parse(&ev, dup, strlen(dup), NULL, &err), PDW_EDUPKEY);
    /* not NUL-terminated input: the parser must stop at len */
    const char *v2full = v2("\"action\":\"create\",\"entity\":\"deal\",\"id\":\"n\"", "{}", "null");
    size_t n = strlen(v2full);
    char *copy = malloc(n + 8);
    memcpy(copy, v2full, n);
    memcpy(copy + n, "garbage!", 8);
    assert_int_equal(pdw_event_parse(&ev, copy, n, NULL, NULL), 0);
    pdw_event_free(ev);
    free(copy);
}

static const char *key_of(const char *body, char *buf)
{
    pdw_event *ev = parse_ok(body);
    snprintf(buf, PDW_DELIVERY_KEY_MAX, "%s", pdw_event_delivery_key(ev));
    pdw_event_free(ev);
    return buf;
}

static void test_delivery_keys(void **state)
{
    (void)state;
    char a[PDW_DELIVERY_KEY_MAX], b[PDW_DELIVERY_KEY_MAX];
    /* v2: attempts 1..4 of one event share the key */
    const char *m = "\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\",\"id\":\"e-1\","
                    "\"timestamp\":\"2022-11-24T15:11:55.724Z\"";
    char meta[512];
    key_of(v2(m, "{}", "{}"), a);
    for (int at = 1; at <= 4; at++) {
        snprintf(meta, sizeof meta, "%s,\"attempt\":%d", m, at);
        assert_string_equal(key_of(v2(meta, "{}", "{}"), b), a);
    }
    /* another event id: another key */
    assert_string_not_equal(key_of(v2("\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":"
                                      "\"8\",\"id\":\"e-2\",\"timestamp\":\"2022-11-24T15:11:55."
                                      "724Z\"", "{}", "{}"), b), a);
    /* user events: id == user id; two changes differ by timestamp */
    key_of(v2("\"action\":\"change\",\"entity\":\"user\",\"entity_id\":\"5\",\"id\":\"5\","
              "\"timestamp\":1669304542", "{}", "{}"), a);
    assert_string_not_equal(key_of(v2("\"action\":\"change\",\"entity\":\"user\",\"entity_id\":"
                                      "\"5\",\"id\":\"5\",\"timestamp\":1669304802", "{}", "{}"),
                                   b), a);
    /* v1: retry 0..3 share the key; another object id or another time does not */
#define v1fmt "{\"v\":1,\"retry\":%d,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":" \
              "\"deal\",\"id\":%d,\"user_id\":3,\"timestamp\":1739827361," \
              "\"timestamp_micro\":%lld},\"current\":{},\"previous\":{}}"
    char body[512];
    snprintf(body, sizeof body, v1fmt, 0, 9, 1739827361322662LL);
    key_of(body, a);
    for (int r = 1; r <= 3; r++) {
        snprintf(body, sizeof body, v1fmt, r, 9, 1739827361322662LL);
        assert_string_equal(key_of(body, b), a);
    }
    snprintf(body, sizeof body, v1fmt, 0, 10, 1739827361322662LL);
    assert_string_not_equal(key_of(body, b), a);
    snprintf(body, sizeof body, v1fmt, 0, 9, 1739827361322663LL);
    assert_string_not_equal(key_of(body, b), a);
    /* v1 merge: the merged.X and the deleted.X of one merge are two events */
    key_of("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"merged\",\"object\":\"person\",\"id\":1,"
           "\"timestamp\":5},\"current\":{\"merge_what_id\":2},\"previous\":{}}", a);
    assert_string_not_equal(key_of("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"deleted\",\"object\":"
                                   "\"person\",\"id\":2,\"timestamp\":5},\"current\":null,"
                                   "\"previous\":{}}", b), a);
    /* the same event from two subscriptions (different webhook ids): one key */
    key_of(v2("\"action\":\"create\",\"entity\":\"deal\",\"id\":\"w\",\"webhook_id\":\"1\"", "{}",
              "null"), a);
    assert_string_equal(key_of(v2("\"action\":\"create\",\"entity\":\"deal\",\"id\":\"w\","
                                  "\"webhook_id\":\"2\"", "{}", "null"), b), a);
}

static void test_changed_v2_custom_fields(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok(v2("\"action\":\"change\",\"entity\":\"deal\",\"id\":\"c\"",
                                "{\"stage_id\":2}",
                                "{\"stage_id\":1,\"custom_fields\":{\"3d0fa3429dfa2d3dec265b4fc5"
                                "dc8258ab66cdf3\":null,\"aa\":{\"type\":\"varchar\"}}}"));
    assert_int_equal(pdw_event_changed_count(ev), 3);
    assert_string_equal(pdw_event_changed_field(ev, 0), "stage_id");
    assert_string_equal(pdw_event_changed_field(ev, 1),
                        "custom_fields.3d0fa3429dfa2d3dec265b4fc5dc8258ab66cdf3");
    assert_string_equal(pdw_event_changed_field(ev, 2), "custom_fields.aa");
    assert_int_equal(pdw_event_changed(ev, "custom_fields.aa"), 1);
    assert_int_equal(pdw_event_changed(ev, "custom_fields"), 1);
    assert_int_equal(pdw_event_changed(ev, "custom_fields.bb"), 0);
    assert_int_equal(pdw_event_changed(ev, "stage"), 0);
    pdw_event_free(ev);
    /* create: nothing changed even though previous is an object here */
    ev = parse_ok(v2("\"action\":\"create\",\"entity\":\"deal\",\"id\":\"c\"", "{}",
                     "{\"stage_id\":1}"));
    assert_int_equal(pdw_event_changed_count(ev), 0);
    pdw_event_free(ev);
}

static void test_changed_v1(void **state)
{
    (void)state;
    /* white space differences are not changes; reordered keys are still found; keys only
     * in one side are not changes (real bodies carry different key sets on the two
     * sides); 40-hex custom field keys are named the v2 way */
    pdw_event *ev = parse_ok(
        "{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"deal\",\"id\":1},"
        "\"current\":{\"id\":1,\"stage_id\":3,\"title\":\"T\",\"lab\":[1, 2],"
        "\"0123456789abcdef0123456789abcdef01234567\":\"x\",\"new_key\":1,\"o\":{\"a\":1}},"
        "\"previous\":{\"title\":\"T\",\"id\":1,\"stage_id\":2,\"lab\":[1,2],"
        "\"0123456789abcdef0123456789abcdef01234567\":\"y\",\"gone\":0,\"o\":{\"a\": 1}}}");
    assert_int_equal(pdw_event_changed(ev, "stage_id"), 1);
    assert_int_equal(pdw_event_changed(ev, "title"), 0);
    assert_int_equal(pdw_event_changed(ev, "lab"), 0);
    assert_int_equal(pdw_event_changed(ev, "o"), 0);
    assert_int_equal(pdw_event_changed(ev, "new_key"), 0);
    assert_int_equal(pdw_event_changed(ev, "gone"), 0);
    assert_int_equal(pdw_event_changed(ev, "custom_fields.0123456789abcdef0123456789abcdef01234567"),
                     1);
    assert_int_equal(pdw_event_changed_count(ev), 2);
    pdw_event_free(ev);
}

static void test_merges(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok(v2("\"action\":\"change\",\"entity\":\"person\",\"id\":\"m\","
                                "\"entity_id\":\"1\",\"merged_from_id\":\"2\"",
                                "{}", "{}"));
    assert_int_equal(pdw_event_is_merge(ev), 1);
    assert_string_equal(pdw_event_merged_from_id(ev), "2");
    assert_string_equal(pdw_event_name(ev), "change.person");
    pdw_event_free(ev);
    ev = parse_ok(v2("\"action\":\"delete\",\"entity\":\"person\",\"id\":\"m2\","
                     "\"entity_id\":\"2\",\"merged_to_id\":1", "null", "{}"));
    assert_int_equal(pdw_event_is_merge(ev), 0);
    assert_string_equal(pdw_event_merged_to_id(ev), "1");
    pdw_event_free(ev);
    ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"merged\",\"object\":\"organization\","
                  "\"id\":996},\"current\":{\"merge_what_id\":995},\"previous\":{}}");
    assert_int_equal(pdw_event_is_merge(ev), 1);
    assert_string_equal(pdw_event_action(ev), "change");
    assert_string_equal(pdw_event_delivered_name(ev), "merged.organization");
    assert_string_equal(pdw_event_merged_from_id(ev), "995");
    assert_string_equal(pdw_event_merged_to_id(ev), "996");
    pdw_event_free(ev);
}

static void test_lazy_dom(void **state)
{
    (void)state;
    pdw_event *ev = parse_ok(v2("\"action\":\"create\",\"entity\":\"deal\",\"id\":\"d\"",
                                "{\"title\":\"caf\\u00e9\"}", "null"));
    json_t *dom = pdw_event_json(ev);
    assert_non_null(dom);
    assert_string_equal(json_string_value(json_object_get(json_object_get(dom, "data"), "title")),
                        "caf\xc3\xa9");
    json_incref(dom); /* a caller may keep the DOM past the event */
    pdw_event_free(ev);
    assert_int_equal(json_object_size(dom), 3);
    json_decref(dom);
}

/* A fixture parsed; the body is freed with the event. */
static pdw_event *fixture(const char *name)
{
    size_t len;
    char *body = pdw_test_fixture(name, &len);
    assert_non_null(body);
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, body, len, NULL, NULL), 0);
    free(body); /* the event keeps its own copy */
    return ev;
}

static json_int_t id_of(const json_t *o)
{
    return json_integer_value(json_object_get(o, "id"));
}

/* pdw_event_data() / pdw_event_previous(): v2 data / v1 current and previous, borrowed from
 * the lazy DOM of pdw_event_json(); NULL for JSON null or absent; v1 user arrays give
 * their first element. */
static void test_data_and_previous(void **state)
{
    (void)state;
    /* v1: created (previous null), updated (both), deleted (current null), merged */
    pdw_event *ev = fixture("v1-added.deal-django_pipedrive.json");
    json_t *d = pdw_event_data(ev);
    assert_non_null(d);
    assert_true(d == json_object_get(pdw_event_json(ev), "current")); /* the one DOM */
    assert_int_equal(id_of(d), 9);
    assert_null(pdw_event_previous(ev));
    pdw_event_free(ev);

    ev = fixture("v1-updated.deal-django_pipedrive.json");
    assert_true(pdw_event_data(ev) == json_object_get(pdw_event_json(ev), "current"));
    assert_true(pdw_event_previous(ev) == json_object_get(pdw_event_json(ev), "previous"));
    assert_int_equal(id_of(pdw_event_data(ev)), 999);
    assert_int_equal(id_of(pdw_event_previous(ev)), 999);
    pdw_event_free(ev);

    ev = fixture("v1-deleted.organization-django_pipedrive.json");
    assert_null(pdw_event_data(ev));
    assert_int_equal(id_of(pdw_event_previous(ev)), 997);
    pdw_event_free(ev);

    ev = fixture("v1-merged.organization-django_pipedrive.json");
    assert_int_equal(id_of(pdw_event_data(ev)), 996);     /* the survivor */
    assert_int_equal(id_of(pdw_event_previous(ev)), 995); /* the record merged away */
    pdw_event_free(ev);

    /* v2: change (both), create (previous null), delete (data null), user */
    ev = fixture("v2-change.deal-pipedrive-docs.json");
    /* asked before pdw_event_json(): the DOM is built by the accessor */
    json_t *prev = pdw_event_previous(ev);
    assert_non_null(prev);
    assert_true(json_is_object(prev));
    assert_true(prev == json_object_get(pdw_event_json(ev), "previous"));
    assert_true(pdw_event_data(ev) == json_object_get(pdw_event_json(ev), "data"));
    assert_int_equal(id_of(pdw_event_data(ev)), 8);
    pdw_event_free(ev);

    ev = fixture("v2-create.deal-pipedrive-docs.json");
    assert_int_equal(id_of(pdw_event_data(ev)), 8);
    assert_null(pdw_event_previous(ev));
    pdw_event_free(ev);

    ev = fixture("v2-delete.deal-pipedrive-docs.json");
    assert_null(pdw_event_data(ev));
    assert_int_equal(id_of(pdw_event_previous(ev)), 8);
    pdw_event_free(ev);

    ev = fixture("v2-change.user-pipedrive-docs.json");
    /* user ids are strings in v2 data */
    assert_string_equal(json_string_value(json_object_get(pdw_event_data(ev), "id")),
                        "12415231");
    assert_non_null(pdw_event_previous(ev));
    pdw_event_free(ev);

    /* v1 user events: arrays of one; an empty array is none */
    ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"user\","
                  "\"id\":12,\"timestamp\":1},\"current\":[{\"id\":12,\"name\":\"B\"}],"
                  "\"previous\":[]}");
    d = pdw_event_data(ev);
    assert_true(json_is_object(d));
    assert_string_equal(json_string_value(json_object_get(d, "name")), "B");
    assert_null(pdw_event_previous(ev));
    json_incref(d); /* kept past the event */
    pdw_event_free(ev);
    assert_int_equal(id_of(d), 12);
    json_decref(d);

    /* absent altogether (v2 without previous; v1 without current) */
    ev = parse_ok("{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"entity\":\"deal\","
                  "\"id\":\"e\"},\"data\":{\"id\":1}}");
    assert_int_equal(id_of(pdw_event_data(ev)), 1);
    assert_null(pdw_event_previous(ev));
    pdw_event_free(ev);
    ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"deleted\",\"object\":\"deal\","
                  "\"id\":3,\"timestamp\":1}}");
    assert_null(pdw_event_data(ev));
    assert_null(pdw_event_previous(ev));
    /* not the other version's key: a v1 body's "data" is not its data */
    pdw_event_free(ev);
    ev = parse_ok("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"added\",\"object\":\"deal\","
                  "\"id\":3,\"timestamp\":1},\"data\":{\"id\":3}}");
    assert_null(pdw_event_data(ev));
    pdw_event_free(ev);
}

static void test_options_and_args(void **state)
{
    (void)state;
    pdw_parse_options o;
    assert_int_equal(pdw_parse_options_init(&o, PDW_PARSE_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, PDW_PARSE_OPTIONS_VERSION);
    assert_int_equal(pdw_parse_options_init(&o, 99), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_parse_options_init(NULL, PDW_PARSE_OPTIONS_VERSION), PDW_EINVAL);
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(NULL, "{}", 2, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_event_parse(&ev, NULL, 2, NULL, NULL), PDW_EINVAL);
    o.version = 7;
    assert_int_equal(pdw_event_parse(&ev, "{}", 2, &o, NULL), PDW_EVERSIONSTRUCT);
    pdw_parse_options_init(&o, PDW_PARSE_OPTIONS_VERSION);
    o.max_depth = 3;
    const char *deep = "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"entity\":\"deal\"},"
                       "\"data\":{\"a\":{\"b\":{}}}}";
    assert_int_equal(pdw_event_parse(&ev, deep, strlen(deep), &o, NULL), PDW_EDEPTH);
    o.max_depth = 4;
    assert_int_equal(pdw_event_parse(&ev, deep, strlen(deep), &o, NULL), 0);
    pdw_event_free(ev);
    pdw_event_free(NULL);
    assert_int_equal(pdw_event_parse(&ev, "", 0, NULL, NULL), PDW_EJSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_basic_accessors),
        cmocka_unit_test(test_ids_int_or_string),
        cmocka_unit_test(test_timestamp_forms),
        cmocka_unit_test(test_nulls_and_unknowns),
        cmocka_unit_test(test_v1_user_arrays),
        cmocka_unit_test(test_strictness),
        cmocka_unit_test(test_delivery_keys),
        cmocka_unit_test(test_changed_v2_custom_fields),
        cmocka_unit_test(test_changed_v1),
        cmocka_unit_test(test_merges),
        cmocka_unit_test(test_lazy_dom),
        cmocka_unit_test(test_data_and_previous),
        cmocka_unit_test(test_options_and_args),
    };
    PDW_RUN_GROUP(tests);
}
