/* The source-address allowlist (pdwebhook/allow.h): CIDR ranges of both families, merged;
 * lookups of addresses in and out; what is refused. */
#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

static int in(const pdw_allowlist *l, const char *a)
{
    return pdw_allowlist_contains(l, a, strlen(a));
}

static int add(pdw_allowlist *l, const char *c)
{
    return pdw_allowlist_add(l, c, strlen(c), NULL);
}

static void test_ipv4_ranges(void **state)
{
    (void)state;
    pdw_allowlist *l = NULL;
    assert_int_equal(pdw_allowlist_new(&l, NULL), 0);
    assert_false(in(l, "192.0.2.1")); /* empty: nothing allowed */
    assert_int_equal(add(l, "192.0.2.0/24"), 0);
    assert_int_equal(add(l, "198.51.100.7"), 0); /* one address */
    assert_true(in(l, "192.0.2.0"));
    assert_true(in(l, "192.0.2.255"));
    assert_false(in(l, "192.0.3.0"));
    assert_false(in(l, "192.0.1.255"));
    assert_true(in(l, "198.51.100.7"));
    assert_false(in(l, "198.51.100.8"));
    assert_true(in(l, "::ffff:192.0.2.9")); /* IPv4-mapped IPv6 */
    assert_false(in(l, "not an address"));
    assert_false(in(l, "192.0.2.1:443"));
    assert_false(in(l, ""));
    assert_int_equal(pdw_allowlist_count(l), 2);
    pdw_allowlist_free(l);
}

static void test_ipv6_and_merging(void **state)
{
    (void)state;
    pdw_allowlist *l = NULL;
    assert_int_equal(pdw_allowlist_new(&l, NULL), 0);
    assert_int_equal(add(l, "2001:db8::/32"), 0);
    assert_int_equal(add(l, "2001:db8:8000::/33"), 0); /* inside: merged away */
    assert_int_equal(add(l, "10.0.0.0/25"), 0);
    assert_int_equal(add(l, "10.0.0.128/25"), 0); /* adjacent: one range */
    assert_int_equal(add(l, "10.0.1.0/24"), 0);   /* adjacent again */
    assert_int_equal(pdw_allowlist_count(l), 2);
    assert_true(in(l, "2001:db8::1"));
    assert_true(in(l, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(in(l, "2001:db9::"));
    assert_true(in(l, "10.0.1.255"));
    assert_false(in(l, "10.0.2.0"));
    assert_false(in(l, "::ffff:10.0.3.1"));
    assert_int_equal(add(l, "::/0"), 0); /* everything of IPv6 */
    assert_true(in(l, "::1"));
    assert_true(in(l, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_int_equal(add(l, "0.0.0.0/0"), 0);
    assert_true(in(l, "255.255.255.255"));
    assert_int_equal(pdw_allowlist_count(l), 2);
    pdw_allowlist_free(l);
}

static void test_refused_entries(void **state)
{
    (void)state;
    pdw_allowlist *l = NULL;
    assert_int_equal(pdw_allowlist_new(&l, NULL), 0);
    const char *bad[] = { "192.0.2.1/24", "192.0.2.0/33", "2001:db8::/129", "192.0.2.0/",
                          "192.0.2.0/-1", "192.0.2.0/2x", "example.com", "1.2.3", "",
                          "2001:db8::1/64" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pdw_error e = { 0, -1, "" };
        assert_int_equal(pdw_allowlist_add(l, bad[i], strlen(bad[i]), &e), PDW_EINVAL);
        assert_int_equal(e.code, PDW_EINVAL);
    }
    assert_int_equal(pdw_allowlist_count(l), 0);
    pdw_allowlist_free(l);
}

static void test_text_all_or_nothing(void **state)
{
    (void)state;
    pdw_allowlist *l = NULL;
    assert_int_equal(pdw_allowlist_new(&l, NULL), 0);
    const char good[] = "# Pipedrive's ranges (example)\n192.0.2.0/24\n\n  198.51.100.0/25  # a comment\r\n2001:db8::/48\n";
    pdw_error e = { 0, -1, "" };
    assert_int_equal(pdw_allowlist_add_text(l, good, strlen(good), &e), 0);
    assert_int_equal(pdw_allowlist_count(l), 3);
    const char bad[] = "203.0.113.0/24\n203.0.113.0/33\n";
    assert_int_equal(pdw_allowlist_add_text(l, bad, strlen(bad), &e), PDW_EINVAL);
    assert_non_null(strstr(e.message, "line 2"));
    assert_false(in(l, "203.0.113.5")); /* the good first line was not added either */
    assert_int_equal(pdw_allowlist_count(l), 3);
    assert_true(in(l, "198.51.100.127"));
    assert_false(in(l, "198.51.100.128"));
    pdw_allowlist_free(l);
}

static void test_many_ranges(void **state)
{
    (void)state;
    pdw_allowlist *l = NULL;
    assert_int_equal(pdw_allowlist_new(&l, NULL), 0);
    char buf[32];
    for (int i = 0; i < 1000; i += 2) { /* every other /24 of 10.0.0.0/14 */
        snprintf(buf, sizeof buf, "10.%d.%d.0/24", i / 256, i % 256);
        assert_int_equal(add(l, buf), 0);
    }
    assert_int_equal(pdw_allowlist_count(l), 500);
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "10.%d.%d.77", i / 256, i % 256);
        assert_int_equal(in(l, buf), i % 2 == 0);
    }
    pdw_allowlist_free(l);
    pdw_allowlist_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_ranges),
        cmocka_unit_test(test_ipv6_and_merging),
        cmocka_unit_test(test_refused_entries),
        cmocka_unit_test(test_text_all_or_nothing),
        cmocka_unit_test(test_many_ranges),
    };
    PDW_RUN_GROUP(tests);
}
