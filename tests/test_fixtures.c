/* Data-driven: parse one real Pipedrive fixture and compare every accessor with the row of
 * tests/fixtures/expected.tsv written by gen_expected.py (an independent Python oracle).
 * Usage: test_fixtures EXPECTED.tsv FIXTURE-NAME */
#include <jansson.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

static const char *g_expected, *g_fixture;

#define NCOLS 16

static int split_row(char *line, char **cols)
{
    int n = 0;
    char *p = line;
    while (n < NCOLS) {
        cols[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    char *nl = strchr(cols[n - 1], '\n');
    if (nl)
        *nl = '\0';
    return n;
}

static void expect_str(const char *want, const char *got, const char *what)
{
    if (strcmp(want, "-") == 0) {
        if (got)
            fail_msg("%s: expected absent, got \"%s\"", what, got);
        return;
    }
    if (!got)
        fail_msg("%s: expected \"%s\", got NULL", what, want);
    if (strcmp(want, got) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", what, want, got);
}

static void test_fixture(void **state)
{
    (void)state;
    size_t elen = 0, blen = 0;
    char *table = pdw_test_read_file(g_expected, &elen);
    assert_non_null(table);
    char *row = NULL;
    size_t flen = strlen(g_fixture);
    for (char *line = table; line && *line;) {
        char *next = strchr(line, '\n');
        if (strncmp(line, g_fixture, flen) == 0 && line[flen] == '\t') {
            row = line;
            if (next)
                *next = '\0';
            break;
        }
        line = next ? next + 1 : NULL;
    }
    if (!row)
        fail_msg("%s has no row in %s", g_fixture, g_expected);
    char *c[NCOLS];
    assert_int_equal(split_row(row, c), NCOLS);

    char *body = pdw_test_fixture(g_fixture, &blen);
    assert_non_null(body);
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_event_parse(&ev, body, blen, NULL, &err);
    if (strcmp(c[1], pdw_err_name(rc)) != 0)
        fail_msg("expected %s, got %s (%s)", c[1], pdw_err_name(rc), err.message);
    if (rc != 0) {
        assert_null(ev);
        assert_int_equal(err.code, rc);
        assert_true(err.offset >= 0);
        free(body);
        free(table);
        return;
    }
    assert_int_equal(pdw_event_version(ev), atoi(c[2]));
    expect_str(c[3], pdw_event_name(ev), "event");
    expect_str(c[4], pdw_event_delivered_name(ev), "delivered");
    expect_str(c[5], pdw_event_entity_id(ev), "entity_id");
    expect_str(c[6], pdw_event_event_id(ev), "event_id");
    expect_str(c[7], pdw_event_webhook_id(ev), "webhook_id");
    expect_str(c[8], pdw_event_company_id(ev), "company_id");
    expect_str(c[9], pdw_event_user_id(ev), "user_id");
    assert_int_equal(pdw_event_attempt(ev), strtoul(c[10], NULL, 10));
    assert_int_equal(pdw_event_timestamp_ms(ev), strtoll(c[11], NULL, 10));
    assert_int_equal(pdw_event_is_merge(ev), atoi(c[12]));
    assert_int_equal(pdw_event_is_bulk(ev), atoi(c[13]));
    char *bar = strchr(c[14], '|');
    assert_non_null(bar);
    *bar = '\0';
    expect_str(c[14], pdw_event_merged_from_id(ev), "merged_from_id");
    expect_str(bar + 1, pdw_event_merged_to_id(ev), "merged_to_id");

    /* changed fields, in order */
    char got[4096] = "";
    size_t n = pdw_event_changed_count(ev);
    for (size_t i = 0; i < n; i++) {
        const char *f = pdw_event_changed_field(ev, i);
        assert_non_null(f);
        assert_int_equal(pdw_event_changed(ev, f), 1);
        strncat(got, i ? "," : "", sizeof got - strlen(got) - 1);
        strncat(got, f, sizeof got - strlen(got) - 1);
    }
    assert_null(pdw_event_changed_field(ev, n));
    expect_str(c[15], n ? got : NULL, "changed");
    assert_int_equal(pdw_event_changed(ev, "no_such_field_anywhere"), 0);

    /* the delivery key is stable and names the version and object */
    const char *key = pdw_event_delivery_key(ev);
    assert_true(strlen(key) > 4 && strlen(key) < PDW_DELIVERY_KEY_MAX);
    assert_int_equal(key[0], c[2][0]);

    /* the lazy DOM is the same document */
    json_t *dom = pdw_event_json(ev);
    assert_non_null(dom);
    assert_ptr_equal(dom, pdw_event_json(ev));
    json_t *meta = json_object_get(dom, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "action")),
                        pdw_event_delivered_action(ev));
    size_t got_len;
    assert_ptr_not_equal(pdw_event_body(ev, &got_len), body); /* parse copies */
    assert_int_equal(got_len, blen);

    pdw_event_free(ev);
    free(body);
    free(table);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s EXPECTED.tsv FIXTURE\n", argv[0]);
        return 2;
    }
    g_expected = argv[1];
    g_fixture = argv[2];
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_fixture) };
    return cmocka_run_group_tests_name(g_fixture, tests, NULL, NULL);
}
