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

static const char V2_BODY[] =
    "{\"meta\":{\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
    "\"id\":\"df47d877-b58c-4886-91cd-1aa83e1d7366\",\"timestamp\":"
    "\"2022-11-24T15:11:55.724Z\",\"version\":\"2.0\"},\"data\":{\"id\":8},"
    "\"previous\":{\"stage_id\":1}}";

static int ok_handler(const pdw_event *ev, void *user)
{
    (void)ev, (void)user;
    return 0;
}

/* Every call that takes a pdw_error resets it at entry (jansson's json_error_t): a reused
 * struct never shows a stale message. For each core function: a failure, then a success
 * (PDW_OK, offset -1, empty message), then a different failure with its own message. */
static void test_error_reset_by_every_call(void **state)
{
    (void)state;
    pdw_error e = PDW_ERROR_INIT;
    assert_error_reset(e);
    pdw_error_clear(&e);
    assert_error_reset(e);

    /* pdw_event_parse */
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, "{", 1, NULL, &e), PDW_EJSON);
    assert_error_own(e, PDW_EJSON);
    assert_true(e.offset >= 0);
    assert_int_equal(pdw_event_parse(&ev, V2_BODY, sizeof V2_BODY - 1, NULL, &e), 0);
    assert_error_reset(e);
    pdw_event_free(ev);
    assert_int_equal(pdw_event_parse(&ev, "{\"meta\":{}}", 11, NULL, &e), PDW_EVERSION);
    assert_error_own(e, PDW_EVERSION);

    /* pdw_router_new, pdw_router_on, pdw_router_on_change */
    pdw_router *rt = NULL;
    pdw_router_options ro = PDW_ROUTER_OPTIONS_INIT;
    ro.version = 99;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_router_new(&rt, &ro, &e), PDW_EVERSIONSTRUCT);
    assert_error_own(e, PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_router_new(&rt, NULL, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_router_on(rt, "nope", ok_handler, NULL, &e), PDW_EPATTERN);
    assert_error_own(e, PDW_EPATTERN);
    assert_int_equal(pdw_router_on(rt, "change.deal", ok_handler, NULL, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_router_on_change(rt, "change.deal", NULL, ok_handler, NULL, &e),
                     PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_router_on_change(rt, "change.deal", "stage_id", ok_handler, NULL, &e),
                     0);
    assert_error_reset(e);
    pdw_router_free(rt);

    /* pdw_dedup_memory_new */
    pdw_dedup_store *st = NULL;
    pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    mo.capacity = (size_t)1 << 31;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_dedup_memory_new(&st, &mo, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_dedup_memory_new(&st, NULL, &e), 0);
    assert_error_reset(e);
    pdw_dedup_store_free(st);

    /* pdw_health_new */
    pdw_health *h = NULL;
    pdw_health_options ho = PDW_HEALTH_OPTIONS_INIT;
    ho.version = 99;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_health_new(&h, &ho, &e), PDW_EVERSIONSTRUCT);
    assert_error_own(e, PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_health_new(&h, NULL, &e), 0);
    assert_error_reset(e);
    pdw_health_free(h);

    /* pdw_recency_new */
    pdw_recency *rc = NULL;
    pdw_recency_options rco = PDW_RECENCY_OPTIONS_INIT;
    rco.version = 99;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_recency_new(&rc, &rco, &e), PDW_EVERSIONSTRUCT);
    assert_error_own(e, PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_recency_new(&rc, NULL, &e), 0);
    assert_error_reset(e);
    pdw_recency_free(rc);
    assert_int_equal(pdw_recency_new(NULL, NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);

    /* pdw_allowlist_new, _add, _add_text */
    pdw_allowlist *al = NULL;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_allowlist_new(NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_allowlist_new(&al, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_allowlist_add(al, "10.0.0.0/33", 11, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_allowlist_add(al, "10.0.0.0/8", 10, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_allowlist_add_text(al, "nonsense", 8, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_allowlist_add_text(al, "192.168.0.0/16\n", 15, &e), 0);
    assert_error_reset(e);
    pdw_allowlist_free(al);

    /* pdw_receiver_new, _handle, _finish, _dispatch_body */
    pdw_receiver *r = NULL;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_ENOAUTH);
    assert_error_own(e, PDW_ENOAUTH);
    o.insecure_no_auth = 1;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), 0);
    assert_error_reset(e);
    pdw_header hd[] = { { "Content-Type", 12, "application/json", 16 } };
    pdw_request q = PDW_REQUEST_INIT;
    pdw_verdict v = PDW_VERDICT_INIT;
    q.method = "POST";
    q.method_len = 4;
    q.headers = hd;
    q.num_headers = 1;
    q.body = "[1]";
    q.body_len = 3;
    assert_int_equal(pdw_receiver_handle(r, &q, &v, &e), PDW_ENOTOBJECT);
    assert_error_own(e, PDW_ENOTOBJECT);
    q.body = V2_BODY;
    q.body_len = sizeof V2_BODY - 1;
    assert_int_equal(pdw_receiver_handle(r, &q, &v, &e), 0);
    assert_error_reset(e);
    q.body = "{\"a\":1,\"a\":2}";
    q.body_len = strlen(q.body);
    assert_int_equal(pdw_receiver_handle(r, &q, &v, &e), PDW_EDUPKEY);
    assert_error_own(e, PDW_EDUPKEY);
    pdw_receiver_pending *p = NULL;
    assert_int_equal(pdw_receiver_begin(&p, r, &q, &v), 0);
    assert_int_equal(pdw_receiver_finish(p, "nul", 3, &v, &e), PDW_EJSON);
    assert_error_own(e, PDW_EJSON);
    pdw_receiver_pending_free(p);
    assert_int_equal(pdw_receiver_begin(&p, r, &q, &v), 0);
    assert_int_equal(pdw_receiver_finish(p, V2_BODY, sizeof V2_BODY - 1, &v, &e),
                     PDW_EDUPLICATE); /* handled above: a duplicate is a success here */
    assert_error_reset(e);
    assert_int_equal(pdw_receiver_finish(p, V2_BODY, sizeof V2_BODY - 1, &v, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL); /* a second body on one head */
    pdw_receiver_pending_free(p);
    assert_int_equal(pdw_receiver_dispatch_body(r, V2_BODY, sizeof V2_BODY - 1, NULL, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_receiver_dispatch_body(r, "{}", 2, NULL, &e), PDW_ENOMETA);
    assert_error_own(e, PDW_ENOMETA);
    pdw_receiver_free(r);
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
        cmocka_unit_test(test_error_reset_by_every_call),
        cmocka_unit_test(test_version),
    };
    PDW_RUN_GROUP(tests);
}
