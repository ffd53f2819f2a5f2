/* Allocation-failure sweep (jansson's test_chaos idea): fail the Nth allocation for every N
 * and check that each operation returns PDW_ENOMEM (or an ENOMEM-driven status), leaks
 * nothing (valgrind/ASan runs check that) and leaves its object usable. */
#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"


static const char BODY[] =
    "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
    "\"id\":\"e\",\"timestamp\":\"2022-11-24T15:11:55.724Z\"},\"data\":{\"stage_id\":2},"
    "\"previous\":{\"stage_id\":1,\"title\":\"x\",\"custom_fields\":{\"aa\":null}}}";

static int handled;
static int on_event(const pdw_event *ev, void *user)
{
    (void)ev, (void)user;
    handled++;
    return 0;
}

static void test_event_parse_sweep(void **state)
{
    (void)state;
    int done = 0;
    for (long n = 0; !done && n < 1000; n++) {
        pdw_chaos c = { n, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        pdw_parse_options o = PDW_PARSE_OPTIONS_INIT;
        o.allocator = &a;
        pdw_event *ev = NULL;
        int rc = pdw_event_parse(&ev, BODY, strlen(BODY), &o, NULL);
        if (rc == PDW_ENOMEM) {
            assert_null(ev);
            assert_int_equal(c.live, 0);
            continue;
        }
        assert_int_equal(rc, 0);
        int ch = pdw_event_changed(ev, "stage_id");
        if (ch == PDW_ENOMEM) {
            /* usable afterwards: the next call may succeed */
            c.countdown = -1;
            assert_int_equal(pdw_event_changed(ev, "stage_id"), 1);
        } else {
            assert_int_equal(ch, 1);
            assert_int_equal(pdw_event_changed_count(ev), 3);
            done = c.countdown >= 0; /* succeeded without reaching the failure */
        }
        pdw_event_free(ev);
        assert_int_equal(c.live, 0);
    }
    assert_true(done);
}

static void test_receiver_sweep(void **state)
{
    (void)state;
    static const pdw_credential creds[] = { { "u", "p" } };
    int done = 0;
    for (long n = 0; !done && n < 1000; n++) {
        pdw_chaos c = { n, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
        o.allocator = &a;
        o.credentials = creds;
        o.num_credentials = 1;
        o.dedup_capacity = 16;
        pdw_receiver *r = NULL;
        int rc = pdw_receiver_new(&r, &o, NULL);
        if (rc == PDW_ENOMEM) {
            assert_null(r);
            assert_int_equal(c.live, 0);
            continue;
        }
        assert_int_equal(rc, 0);
        rc = pdw_router_on_change(pdw_receiver_router(r), "updated.deal", "stage_id", on_event,
                                  NULL, NULL);
        if (rc == PDW_ENOMEM) {
            assert_int_equal(pdw_router_count(pdw_receiver_router(r)), 0);
            pdw_receiver_free(r);
            assert_int_equal(c.live, 0);
            continue;
        }
        assert_int_equal(rc, 0);
        pdw_header h[] = { { "Content-Type", 12, "application/json", 16 },
                           { "Authorization", 13, "Basic dTpw", 10 } };
        pdw_request q = PDW_REQUEST_INIT;
        q.method = "POST";
        q.method_len = 4;
        q.headers = h;
        q.num_headers = 2;
        q.body = BODY;
        q.body_len = strlen(BODY);
        pdw_verdict v = PDW_VERDICT_INIT;
        handled = 0;
        rc = pdw_receiver_handle(r, &q, &v, NULL);
        if (rc == PDW_OK) {
            assert_int_equal(handled, 1);
            done = c.countdown >= 0;
        } else {
            /* out of memory in the dedup store (503, retried) or in the field filter */
            assert_true(rc == PDW_ESTORE || rc == PDW_EHANDLER || rc == PDW_ENOMEM);
            assert_int_equal(handled, 0);
            c.countdown = -1; /* memory is back: the same delivery now goes through */
            if (rc == PDW_ESTORE) {
                assert_int_equal(v.status, 503);
                assert_int_equal(pdw_receiver_handle(r, &q, &v, NULL), PDW_OK);
                assert_int_equal(handled, 1);
            }
        }
        pdw_receiver_free(r);
        assert_int_equal(c.live, 0);
    }
    assert_true(done);
}

static void test_router_sweep(void **state)
{
    (void)state;
    static const char *pats[] = { "*.*", "change.deal", "*.person", "added.*", "merged.organization",
                                  "delete.deal_product", "updated.deal" };
    int done = 0;
    for (long n = 0; !done && n < 2000; n++) {
        pdw_chaos c = { n, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        pdw_router_options o = PDW_ROUTER_OPTIONS_INIT;
        o.allocator = &a;
        pdw_router *r = NULL;
        if (pdw_router_new(&r, &o, NULL) == PDW_ENOMEM) {
            assert_int_equal(c.live, 0);
            continue;
        }
        size_t ok = 0;
        int failed = 0;
        for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
            int rc = pdw_router_on(r, pats[i], on_event, NULL, NULL);
            if (rc == 0)
                ok++;
            else {
                assert_int_equal(rc, PDW_ENOMEM);
                failed = 1;
            }
            assert_int_equal(pdw_router_count(r), ok);
        }
        done = !failed;
        pdw_router_free(r);
        assert_int_equal(c.live, 0);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_parse_sweep),
        cmocka_unit_test(test_receiver_sweep),
        cmocka_unit_test(test_router_sweep),
    };
    PDW_RUN_GROUP(tests);
}
