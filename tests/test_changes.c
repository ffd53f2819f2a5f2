/* Changed fields, both versions, on bodies shaped as Pipedrive sends them: key sets that
 * differ (v1), custom-field companion keys (v1), previous entries equal to data (v2),
 * merges, and one field filter that works for both versions. The bodies come from
 * tests/fixtures/ (real) and tests/fixtures/derived/ (real bodies with one edit each,
 * written by derived/make.py; derived/README.md says which edit). */
#include <jansson.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

#define MONEY "d4de1c1518b4531717c676029a45911c340390a6" /* derived/make.py */
#define ADDR "9ba1f93b1b8e2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
#define ADDR_V2 "3d0fa3429dfa2d3dec265b4fc5dc8258ab66cdf3" /* v2-change.deal docs */

static pdw_event *parse_text(const char *body, size_t len)
{
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_event_parse(&ev, body, len, NULL, &err);
    if (rc != 0)
        fail_msg("parse failed: %s (%s)", pdw_err_name(rc), err.message);
    return ev;
}

static pdw_event *parse_fixture(const char *name)
{
    size_t len;
    char *body = pdw_test_fixture(name, &len);
    if (!body)
        fail_msg("cannot read fixture %s", name);
    pdw_event *ev = parse_text(body, len);
    free(body);
    return ev;
}

static pdw_event *parse_str(const char *body)
{
    return parse_text(body, strlen(body));
}

/* The changed fields joined with ",", "" when none. */
static const char *changed_list(const pdw_event *ev)
{
    static char buf[2048];
    buf[0] = '\0';
    for (size_t i = 0, n = pdw_event_changed_count(ev); i < n; i++) {
        const char *f = pdw_event_changed_field(ev, i);
        assert_non_null(f);
        assert_int_equal(pdw_event_changed(ev, f), 1);
        strncat(buf, i ? "," : "", sizeof buf - strlen(buf) - 1);
        strncat(buf, f, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

/* ---- 1. v1: only keys both sides carry ------------------------------------------- */

static void test_v1_key_only_on_one_side(void **state)
{
    (void)state;
    static const char *const previous_only[] = { "user", "org", "activityNote", "activity_note",
                                                 "service_reference", "local_sorting_due_date" };
    /* marked done: previous carries six keys current lacks, current carries no_gcal */
    pdw_event *ev = parse_fixture("derived/v1-updated.activity-keysets.json");
    assert_string_equal(changed_list(ev), "done,marked_as_done_time,update_time");
    for (size_t i = 0; i < sizeof previous_only / sizeof *previous_only; i++)
        assert_int_equal(pdw_event_changed(ev, previous_only[i]), 0);
    assert_int_equal(pdw_event_changed(ev, "no_gcal"), 0);
    pdw_event_free(ev);

    /* the same body with equal values: only the key sets differ, nothing changed */
    ev = parse_fixture("derived/v1-updated.activity-keys-only.json");
    assert_int_equal(pdw_event_changed_count(ev), 0);
    assert_null(pdw_event_changed_field(ev, 0));
    pdw_event_free(ev);

    /* updated.product: company_id in current only */
    ev = parse_fixture("derived/v1-updated.product-company_id.json");
    assert_string_equal(changed_list(ev), "description,update_time");
    assert_int_equal(pdw_event_changed(ev, "company_id"), 0);
    pdw_event_free(ev);

    /* the real activity body: no_gcal (current only) is not a change */
    ev = parse_fixture("v1-updated.activity-django_pipedrive.json");
    assert_string_equal(changed_list(ev), "done,marked_as_done_time,update_time");
    pdw_event_free(ev);

    /* a key on one side only in the middle does not put the rest out of step, and keys
     * in another order are still paired */
    ev = parse_str("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"deal\",\"id\":1},"
                   "\"current\":{\"a\":1,\"x\":0,\"b\":2,\"c\":3,\"d\":4},"
                   "\"previous\":{\"a\":1,\"b\":2,\"y\":9,\"d\":5,\"c\":3}}");
    assert_string_equal(changed_list(ev), "d");
    pdw_event_free(ev);
}

/* ---- 2. v1: companion keys of custom fields -------------------------------------- */

static void test_v1_companion_keys(void **state)
{
    (void)state;
    /* a monetary field whose currency alone changed */
    pdw_event *ev = parse_fixture("derived/v1-updated.deal-currency.json");
    assert_string_equal(changed_list(ev), "update_time,custom_fields." MONEY);
    assert_int_equal(pdw_event_changed(ev, "custom_fields." MONEY), 1);
    assert_int_equal(pdw_event_changed(ev, "custom_fields"), 1);
    assert_int_equal(pdw_event_changed(ev, MONEY "_currency"), 0);
    pdw_event_free(ev);

    /* an address field with its twelve companions; the postal code alone changed */
    ev = parse_fixture("derived/v1-updated.person-address.json");
    assert_string_equal(changed_list(ev),
                        "phone,email,update_time,"
                        "custom_fields.66fb3447cad79ece76413df362fea1122856bcb3,"
                        "custom_fields." ADDR);
    pdw_event_free(ev);

    /* several parts of one field changed: named once, where the first one stands; a
     * time range (_until) and a time zone (_timezone_id) fold the same way */
    ev = parse_str("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"deal\",\"id\":1},"
                   "\"current\":{\"" ADDR "_route\":\"B\",\"" ADDR "\":\"B 1\",\"" ADDR "_lat\":2,"
                   "\"" MONEY "\":\"10:00:00\",\"" MONEY "_until\":\"12:00:00\","
                   "\"" MONEY "_timezone_id\":1},"
                   "\"previous\":{\"" ADDR "_route\":\"A\",\"" ADDR "\":\"A 1\",\"" ADDR "_lat\":1,"
                   "\"" MONEY "\":\"10:00:00\",\"" MONEY "_until\":\"11:00:00\","
                   "\"" MONEY "_timezone_id\":1}}");
    assert_string_equal(changed_list(ev), "custom_fields." ADDR ",custom_fields." MONEY);
    pdw_event_free(ev);

    /* not companions: upper-case hex, a 39-digit hash, nothing after the underscore, a
     * character outside [a-z0-9_] */
    ev = parse_str("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"deal\",\"id\":1},"
                   "\"current\":{\"D4DE1C1518B4531717C676029A45911C340390A6\":1,"
                   "\"d4de1c1518b4531717c676029a45911c340390a_x\":1,\"" MONEY "_\":1,"
                   "\"" MONEY "_Currency\":1},"
                   "\"previous\":{\"D4DE1C1518B4531717C676029A45911C340390A6\":2,"
                   "\"d4de1c1518b4531717c676029a45911c340390a_x\":2,\"" MONEY "_\":2,"
                   "\"" MONEY "_Currency\":2}}");
    assert_string_equal(changed_list(ev), "D4DE1C1518B4531717C676029A45911C340390A6,"
                                          "d4de1c1518b4531717c676029a45911c340390a_x,"
                                          MONEY "_," MONEY "_Currency");
    pdw_event_free(ev);
}

/* ---- 3. v2: previous entries equal to data are not changes ------------------------ */

static void test_v2_equal_entries_dropped(void **state)
{
    (void)state;
    /* Pipedrive's own lead example: next_activity_id is null in previous and in data */
    pdw_event *ev = parse_fixture("v2-change.lead-pipedrive-docs.json");
    assert_string_equal(changed_list(ev), "is_archived,update_time,value");
    assert_int_equal(pdw_event_changed(ev, "next_activity_id"), 0);
    pdw_event_free(ev);

    /* JSON equality: objects whatever their member order, white space and escapes aside;
     * custom fields compared with data.custom_fields; an entry data lacks stays */
    const char *head = "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                       "\"entity_id\":\"8\",\"id\":\"e\",\"timestamp\":\"2022-11-24T15:11:55.724Z\"},";
    char body[2048];
    snprintf(body, sizeof body,
             "%s\"data\":{\"value\":{\"amount\":5,\"currency\":\"EUR\"},\"title\":\"caf\\u00e9\","
             "\"label_ids\":[1,2],\"stage_id\":2,\"custom_fields\":{\"" ADDR_V2 "\":"
             "{\"type\":\"double\",\"value\":978},\"" MONEY "\":{\"type\":\"monetary\","
             "\"value\":10,\"currency\":\"USD\"}}},"
             "\"previous\":{\"value\":{\"currency\":\"EUR\", \"amount\":5},\"title\":\"caf\xc3\xa9\","
             "\"label_ids\":[2,1],\"stage_id\":1,\"gone\":null,\"custom_fields\":{\"" ADDR_V2 "\":"
             "{\"value\":978,\"type\":\"double\"},\"" MONEY "\":{\"type\":\"monetary\","
             "\"value\":10,\"currency\":\"EUR\"},\"" ADDR "\":null}}}",
             head);
    ev = parse_str(body);
    assert_string_equal(changed_list(ev),
                        "label_ids,stage_id,gone,custom_fields." MONEY ",custom_fields." ADDR);
    pdw_event_free(ev);

    /* numbers compare by their text: 1 and 1.0 are reported (never a change hidden) */
    snprintf(body, sizeof body, "%s\"data\":{\"p\":1.0,\"q\":true},\"previous\":{\"p\":1,\"q\":1}}",
             head);
    ev = parse_str(body);
    assert_string_equal(changed_list(ev), "p,q");
    pdw_event_free(ev);

    /* no data to compare with: previous is the list */
    snprintf(body, sizeof body, "%s\"data\":null,\"previous\":{\"a\":1,\"custom_fields\":{\"h\":1}}}",
             head);
    ev = parse_str(body);
    assert_string_equal(changed_list(ev), "a,custom_fields.h");
    pdw_event_free(ev);

    /* what the list cannot say: a stage move whose previous names stage_id alone (as real
     * deliveries do) reports stage_id, not update_time or stage_change_time */
    snprintf(body, sizeof body,
             "%s\"data\":{\"stage_id\":3,\"update_time\":\"2024-01-02T00:00:00Z\","
             "\"stage_change_time\":\"2024-01-02T00:00:00Z\"},\"previous\":{\"stage_id\":2}}",
             head);
    ev = parse_str(body);
    assert_string_equal(changed_list(ev), "stage_id");
    assert_int_equal(pdw_event_changed(ev, "update_time"), 0);
    pdw_event_free(ev);

    /* the real bodies whose previous is exact keep every entry */
    ev = parse_fixture("v2-change.deal-pipedrive-docs.json");
    assert_string_equal(changed_list(ev), "custom_fields." ADDR_V2);
    pdw_event_free(ev);
}

/* ---- 4. merges -------------------------------------------------------------------- */

static int count_cb(const pdw_event *ev, void *user)
{
    (void)ev;
    (*(int *)user)++;
    return 0;
}

static void test_merges_have_no_field_diff(void **state)
{
    (void)state;
    /* v1 merged.organization: previous is the record merged away (another name, owner,
     * address): no field changed */
    pdw_event *ev = parse_fixture("v1-merged.organization-django_pipedrive.json");
    assert_int_equal(pdw_event_is_merge(ev), 1);
    assert_int_equal(pdw_event_changed_count(ev), 0);
    assert_int_equal(pdw_event_changed(ev, "name"), 0);
    assert_int_equal(pdw_event_changed(ev, "owner_id"), 0);

    /* a field filter does not fire for it; merged.organization does */
    pdw_router *r = NULL;
    int by_field = 0, by_merge = 0;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "change.organization", "name", count_cb, &by_field,
                                          NULL), 0);
    assert_int_equal(pdw_router_on(r, "merged.organization", count_cb, &by_merge, NULL), 0);
    assert_int_equal(pdw_router_dispatch(r, ev, NULL), 0);
    assert_int_equal(by_field, 0);
    assert_int_equal(by_merge, 1);
    pdw_router_free(r);
    pdw_event_free(ev);

    /* v2 has no merged action: the survivor's change carries merged_from_id and a previous
     * of the survivor itself, read like any change */
    ev = parse_str("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"person\","
                   "\"entity_id\":\"1\",\"id\":\"m\",\"merged_from_id\":\"2\","
                   "\"timestamp\":\"2025-01-01T00:00:00.000Z\"},"
                   "\"data\":{\"id\":1,\"name\":\"A\",\"emails\":[\"a@x\",\"b@x\"]},"
                   "\"previous\":{\"name\":\"A\",\"emails\":[\"a@x\"]}}");
    assert_int_equal(pdw_event_is_merge(ev), 1);
    assert_string_equal(changed_list(ev), "emails");
    pdw_event_free(ev);
}

/* ---- one filter for both versions ------------------------------------------------- */

static void test_one_filter_both_versions(void **state)
{
    (void)state;
    pdw_router *r = NULL;
    int money = 0, addr_v2 = 0, stage = 0;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "change.deal", "custom_fields." MONEY, count_cb,
                                          &money, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "updated.deal", "custom_fields." ADDR_V2, count_cb,
                                          &addr_v2, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "change.*", "stage_id", count_cb, &stage, NULL), 0);
    pdw_event *ev = parse_fixture("derived/v1-updated.deal-currency.json");
    assert_int_equal(pdw_router_dispatch(r, ev, NULL), 0);
    pdw_event_free(ev);
    ev = parse_fixture("v2-change.deal-pipedrive-docs.json");
    assert_int_equal(pdw_router_dispatch(r, ev, NULL), 0);
    pdw_event_free(ev);
    ev = parse_fixture("v2-change.lead-pipedrive-docs.json");
    assert_int_equal(pdw_router_dispatch(r, ev, NULL), 0);
    pdw_event_free(ev);
    assert_int_equal(money, 1);   /* v1 currency-only change */
    assert_int_equal(addr_v2, 1); /* v2 address change */
    assert_int_equal(stage, 0);
    pdw_router_free(r);
}

/* ---- bodies of pathological shape ------------------------------------------------- */

static char *reversed_body(size_t n, int differ_at)
{
    size_t cap = n * 40 + 256, at = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    at += (size_t)snprintf(b + at, cap - at, "{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\","
                                             "\"object\":\"deal\",\"id\":1},\"current\":{");
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(b + at, cap - at, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    at += (size_t)snprintf(b + at, cap - at, "},\"previous\":{");
    for (size_t i = n; i-- > 0;)
        at += (size_t)snprintf(b + at, cap - at, "\"k%zu\":%zu%s", i,
                               i + ((int)i == differ_at), i ? "," : "");
    snprintf(b + at, cap - at, "}}");
    return b;
}

static void test_reordered_and_huge(void **state)
{
    (void)state;
    /* every key out of order: still paired (a few hundred keys is a real body's size) */
    char *b = reversed_body(300, 7);
    pdw_event *ev = parse_str(b);
    assert_string_equal(changed_list(ev), "k7");
    pdw_event_free(ev);
    free(b);
    /* 40,000 keys in reverse order: the work budget ends the search instead of a
     * quadratic walk; whatever the list says, it comes back, and quickly */
    b = reversed_body(40000, 39999);
    ev = parse_str(b);
    assert_true(pdw_event_changed_count(ev) <= 1);
    pdw_event_free(ev);
    free(b);
}

/* ---- out of memory while building the list ---------------------------------------- */

static void test_changes_out_of_memory(void **state)
{
    (void)state;
    size_t len;
    char *body = pdw_test_fixture("derived/v1-updated.person-address.json", &len);
    assert_non_null(body);
    for (long fail_at = 0;; fail_at++) {
        pdw_chaos c = { -1, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        pdw_parse_options o = PDW_PARSE_OPTIONS_INIT;
        o.allocator = &a;
        pdw_event *ev = NULL;
        assert_int_equal(pdw_event_parse(&ev, body, len, &o, NULL), 0);
        c.countdown = fail_at;
        int rc = pdw_event_changed(ev, "custom_fields." ADDR);
        if (rc == 1) {
            assert_int_equal(pdw_event_changed_count(ev), 5);
            pdw_event_free(ev);
            assert_int_equal(c.live, 0);
            break;
        }
        assert_int_equal(rc, PDW_ENOMEM);
        c.countdown = -1; /* the next call builds it */
        assert_int_equal(pdw_event_changed(ev, "custom_fields." ADDR), 1);
        pdw_event_free(ev);
        assert_int_equal(c.live, 0);
    }
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_key_only_on_one_side),
        cmocka_unit_test(test_v1_companion_keys),
        cmocka_unit_test(test_v2_equal_entries_dropped),
        cmocka_unit_test(test_merges_have_no_field_diff),
        cmocka_unit_test(test_one_filter_both_versions),
        cmocka_unit_test(test_reordered_and_huge),
        cmocka_unit_test(test_changes_out_of_memory),
    };
    PDW_RUN_GROUP(tests);
}
