/* The error table: names, messages, statuses, the error struct, the version. */
#include "pdw_test.h"
#include "core/core.h"

static void test_every_code_has_name_message_status(void **state)
{
    (void)state;
    for (int c = 0; c >= PDW__ERRNO_MIN; c--) {
        const char *name = pdw_err_name(c);
        assert_non_null(name);
        assert_true(strncmp(name, "PDW_", 4) == 0);
        assert_string_not_equal(name, "PDW_EUNKNOWN");
        assert_string_not_equal(pdw_strerror(c), "unknown error");
        int s = pdw_err_http_status(c);
        assert_true(s >= 200 && s <= 599);
        size_t len;
        const char *body = pdw__error_body(c, &len);
        assert_int_equal(strlen(body), len);
        assert_non_null(strstr(body, c == 0 ? "\"ok\":true" : name));
    }
}

static void test_status_table(void **state)
{
    (void)state;
    assert_int_equal(pdw_err_http_status(PDW_OK), 200);
    assert_int_equal(pdw_err_http_status(PDW_EDUPLICATE), 200);
    assert_int_equal(pdw_err_http_status(PDW_EMETHOD), 405);
    assert_int_equal(pdw_err_http_status(PDW_EMEDIATYPE), 415);
    assert_int_equal(pdw_err_http_status(PDW_ETOOLARGE), 413);
    assert_int_equal(pdw_err_http_status(PDW_EAUTHMISSING), 401);
    assert_int_equal(pdw_err_http_status(PDW_EAUTHWRONG), 401);
    assert_int_equal(pdw_err_http_status(PDW_EJSON), 400);
    assert_int_equal(pdw_err_http_status(PDW_EDUPKEY), 400);
    assert_int_equal(pdw_err_http_status(PDW_ESTORE), 503);
    assert_string_equal(pdw_err_name(PDW_EJSON), "PDW_EJSON");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    assert_string_equal(pdw_strerror(1), "unknown error");
    assert_string_equal(pdw_strerror(PDW__ERRNO_MIN - 1), "unknown error");
    assert_string_equal(pdw_err_name(-10000), "PDW_EUNKNOWN");
    assert_int_equal(pdw_err_http_status(42), 500);
}

static void test_error_struct_first_error_wins(void **state)
{
    (void)state;
    pdw_error e;
    pdw_error_clear(&e);
    assert_int_equal(e.code, PDW_OK);
    assert_int_equal(e.offset, -1);
    assert_int_equal(pdw__error_set(&e, PDW_EJSON, 12, "at %d", 12), PDW_EJSON);
    assert_int_equal(pdw__error_set(&e, PDW_EUTF8, 3, NULL), PDW_EUTF8);
    assert_int_equal(e.code, PDW_EJSON);
    assert_int_equal(e.offset, 12);
    assert_string_equal(e.message, "at 12");
    pdw_error_clear(&e);
    pdw__error_set(&e, PDW_ENOMEM, -1, NULL);
    assert_string_equal(e.message, pdw_strerror(PDW_ENOMEM));
    assert_int_equal(pdw__error_set(NULL, PDW_EINVAL, -1, NULL), PDW_EINVAL);
    pdw_error_clear(NULL);
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(pdw_version(), PDW_VERSION_STRING);
    assert_int_equal(pdw_version_number(), PDW_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", PDW_VERSION_MAJOR, PDW_VERSION_MINOR,
             PDW_VERSION_PATCH);
    assert_string_equal(pdw_version(), want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_name_message_status),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_error_struct_first_error_wins),
        cmocka_unit_test(test_version),
    };
    PDW_RUN_GROUP(tests);
}
