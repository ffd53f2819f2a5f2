/* Order and identity of changes: pdw_event_timestamp_us(), pdw_event_change_key() (one
 * change delivered in v1 and in v2), the recency tracker (newer / same / stale, precision,
 * bounded memory and eviction, threads) and the router's stale-event option. Bodies:
 * tests/fixtures/ (real) and tests/fixtures/derived/ (see derived/README.md); the inline
 * ones copy the meta of v2-change.deal-pipedrive-docs.json and v1-updated.deal-pipedream.json. */
#include <pthread.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

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

static pdw_event *parse_str(const char *body)
{
    return parse_text(body, strlen(body));
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

/* A v2 change of (entity, id) at an RFC 3339 time, meta as in Pipedrive's docs. */
static pdw_event *v2_at(const char *entity, const char *id, const char *ts, const char *action)
{
    char b[1024];
    int n = snprintf(b, sizeof b,
                     "{\"meta\":{\"action\":\"%s\",\"company_id\":\"8087566\",\"entity_id\":\"%s\","
                     "\"entity\":\"%s\",\"id\":\"ev-%s-%s\",\"is_bulk_edit\":false,"
                     "\"timestamp\":\"%s\",\"type\":\"general\",\"user_id\":\"12415231\","
                     "\"version\":\"2.0\",\"webhook_id\":\"4710827\",\"attempt\":1},"
                     "\"data\":{\"id\":1},\"previous\":%s}",
                     action, id, entity, id, ts, ts, strcmp(action, "change") ? "null" : "{}");
    return parse_text(b, (size_t)n);
}

/* A v1 updated of (object, id) with the meta time members given (a JSON fragment). */
static pdw_event *v1_at(const char *object, const char *id, const char *times)
{
    char b[1024];
    int n = snprintf(b, sizeof b,
                     "{\"v\":1,\"meta\":{\"action\":\"updated\",\"change_source\":\"api\","
                     "\"company_id\":8087566,\"id\":%s,\"object\":\"%s\",%s,"
                     "\"user_id\":12415231,\"v\":1,\"webhook_id\":\"1\"},"
                     "\"current\":{\"id\":%s},\"previous\":{\"id\":%s},\"retry\":0}",
                     id, object, times, id, id);
    return parse_text(b, (size_t)n);
}

static pdw_recency *tracker(size_t capacity)
{
    pdw_recency_options o = PDW_RECENCY_OPTIONS_INIT;
    o.capacity = capacity;
    pdw_recency *r = NULL;
    assert_int_equal(pdw_recency_new(&r, &o, NULL), 0);
    return r;
}

/* ---- time and identity ------------------------------------------------------------- */

static void test_timestamp_us(void **state)
{
    (void)state;
    pdw_event *ev = parse_fixture("v1-updated.deal-pipedream.json"); /* timestamp_micro */
    assert_int_equal(pdw_event_timestamp_us(ev), 1739827361322662LL);
    assert_int_equal(pdw_event_timestamp_ms(ev), 1739827361322LL);
    pdw_event_free(ev);
    ev = parse_fixture("v1-updated.deal-django_pipedrive.json"); /* timestamp_milli */
    assert_int_equal(pdw_event_timestamp_us(ev), 1492636837696000LL);
    pdw_event_free(ev);
    ev = parse_fixture("v2-change.deal-pipedrive-docs.json"); /* RFC 3339, ms */
    assert_int_equal(pdw_event_timestamp_us(ev), 1669302715724000LL);
    pdw_event_free(ev);
    ev = parse_fixture("v2-change.user-pipedrive-docs.json"); /* integer seconds */
    assert_int_equal(pdw_event_timestamp_us(ev), 1669304542000000LL);
    pdw_event_free(ev);
    /* v2 with timestamp_micro: the finer one wins */
    ev = parse_str("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                    "\"entity_id\":\"8\",\"id\":\"x\",\"timestamp\":\"2022-11-24T15:11:55.724Z\","
                    "\"timestamp_micro\":1669302715724311},\"data\":{},\"previous\":{}}");
    assert_int_equal(pdw_event_timestamp_us(ev), 1669302715724311LL);
    assert_int_equal(pdw_event_timestamp_ms(ev), 1669302715724LL);
    pdw_event_free(ev);
    /* no time */
    ev = parse_str("{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"entity\":\"deal\"}}");
    assert_int_equal(pdw_event_timestamp_us(ev), -1);
    assert_null(pdw_event_change_key(ev));
    pdw_event_free(ev);
}

static void test_change_key_both_versions(void **state)
{
    (void)state;
    /* one change of deal 8 by user 12415231, as v1 (the real pipedream shape) and as v2
     * (Pipedrive's docs example) */
    pdw_event *v1 = parse_fixture("derived/v1-updated.deal-pair.json");
    pdw_event *v2 = parse_fixture("v2-change.deal-pipedrive-docs.json");
    assert_string_not_equal(pdw_event_delivery_key(v1), pdw_event_delivery_key(v2));
    assert_non_null(pdw_event_change_key(v1));
    assert_string_equal(pdw_event_change_key(v1), pdw_event_change_key(v2));
    assert_string_equal(pdw_event_change_key(v2), "c:deal:change:8:1669302715724:12415231");
    assert_ptr_equal(pdw_event_change_key(v2), pdw_event_change_key(v2)); /* cached */

    /* an older change of the same deal (retried late): another change */
    pdw_event *older = parse_fixture("derived/v2-change.deal-older.json");
    assert_string_not_equal(pdw_event_change_key(older), pdw_event_change_key(v2));
    pdw_event_free(older);
    pdw_event_free(v1);
    pdw_event_free(v2);

    /* different changes differ: another time, another entity, another action, a merge */
    pdw_event *a = v2_at("deal", "8", "2022-11-24T15:11:55.724Z", "change");
    pdw_event *b = v2_at("deal", "8", "2022-11-24T15:11:55.725Z", "change");
    pdw_event *c = v2_at("deal", "9", "2022-11-24T15:11:55.724Z", "change");
    pdw_event *d = v2_at("deal", "8", "2022-11-24T15:11:55.724Z", "delete");
    pdw_event *e = v2_at("person", "8", "2022-11-24T15:11:55.724Z", "change");
    assert_string_not_equal(pdw_event_change_key(a), pdw_event_change_key(b));
    assert_string_not_equal(pdw_event_change_key(a), pdw_event_change_key(c));
    assert_string_not_equal(pdw_event_change_key(a), pdw_event_change_key(d));
    assert_string_not_equal(pdw_event_change_key(a), pdw_event_change_key(e));
    pdw_event_free(a);
    pdw_event_free(b);
    pdw_event_free(c);
    pdw_event_free(d);
    pdw_event_free(e);

    /* a v1 merge names itself "merge", like the v2 change carrying merged_from_id */
    a = parse_fixture("v1-merged.organization-django_pipedrive.json");
    assert_string_equal(pdw_event_change_key(a), "c:organization:merge:996:1492654463572:2428657");
    pdw_event_free(a);
    a = parse_str("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"organization\","
                   "\"entity_id\":\"996\",\"id\":\"x\",\"merged_from_id\":\"995\","
                   "\"timestamp\":\"2017-04-20T02:14:23.572Z\",\"user_id\":\"2428657\"},"
                   "\"data\":{},\"previous\":{}}");
    assert_string_equal(pdw_event_change_key(a), "c:organization:merge:996:1492654463572:2428657");
    pdw_event_free(a);
}

/* ---- the tracker ------------------------------------------------------------------- */

static void test_newer_same_stale(void **state)
{
    (void)state;
    pdw_recency *r = tracker(0);
    pdw_event *now = parse_fixture("v2-change.deal-pipedrive-docs.json");
    pdw_event *v1copy = parse_fixture("derived/v1-updated.deal-pair.json");
    pdw_event *older = parse_fixture("derived/v2-change.deal-older.json");
    pdw_event *other = parse_fixture("v2-change.person-pipedrive-docs.json");
    assert_int_equal(pdw_recency_check(r, now), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_check(r, now), PDW_RECENCY_SAME); /* a retry */
    /* the v1 copy is to the µs, the v2 one to the ms: compared at the ms, the same */
    assert_int_equal(pdw_recency_check(r, v1copy), PDW_RECENCY_SAME);
    assert_int_equal(pdw_recency_check(r, older), PDW_RECENCY_STALE); /* retried late */
    assert_int_equal(pdw_recency_check(r, other), PDW_RECENCY_NEWER); /* another entity */
    assert_int_equal(pdw_recency_count(r), 2);
    pdw_event_free(now);
    pdw_event_free(v1copy);
    pdw_event_free(older);
    pdw_event_free(other);

    /* deal 8 and person 8 are different entities */
    pdw_event *p = v2_at("person", "8", "2000-01-01T00:00:00.001Z", "change");
    assert_int_equal(pdw_recency_check(r, p), PDW_RECENCY_STALE); /* person 8 seen at 2022 */
    pdw_event_free(p);
    p = v2_at("lead", "8", "2000-01-01T00:00:00.001Z", "change");
    assert_int_equal(pdw_recency_check(r, p), PDW_RECENCY_NEWER);
    pdw_event_free(p);

    /* µs against µs: finer order; a delete is recorded like any change */
    pdw_event *x = v1_at("deal", "70", "\"timestamp\":1739827361,\"timestamp_micro\":1739827361322662");
    pdw_event *y = v1_at("deal", "70", "\"timestamp\":1739827361,\"timestamp_micro\":1739827361322663");
    pdw_event *z = v2_at("deal", "70", "2025-02-17T21:22:41.323Z", "delete");
    assert_int_equal(pdw_recency_check(r, y), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_check(r, x), PDW_RECENCY_STALE);
    assert_int_equal(pdw_recency_check(r, z), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_check(r, y), PDW_RECENCY_STALE);
    pdw_event_free(x);
    pdw_event_free(y);
    pdw_event_free(z);

    /* seconds only (bodies before 2017): compared at the second */
    x = v1_at("deal", "71", "\"timestamp\":1492636837");
    y = v2_at("deal", "71", "2017-04-19T21:20:37.696Z", "change");
    z = v2_at("deal", "71", "2017-04-19T21:20:36.999Z", "change");
    assert_int_equal(pdw_recency_check(r, x), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_check(r, y), PDW_RECENCY_SAME);
    /* the finer time is kept: now the ms count */
    assert_int_equal(pdw_recency_check(r, z), PDW_RECENCY_STALE);
    pdw_event_free(x);
    pdw_event_free(y);
    pdw_event_free(z);

    /* no entity id or no time: cannot be placed */
    x = parse_str("{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"entity\":\"deal\","
                   "\"entity_id\":\"5\"}}");
    assert_int_equal(pdw_recency_check(r, x), PDW_RECENCY_UNKNOWN);
    pdw_event_free(x);
    assert_int_equal(pdw_recency_check(NULL, NULL), PDW_EINVAL);
    pdw_recency_free(r);
}

static void test_capacity_and_eviction(void **state)
{
    (void)state;
    pdw_recency *r = tracker(3); /* rounded up: one bucket of 8 */
    char id[16];
    pdw_event *ev[10];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "%d", i);
        ev[i] = v2_at("deal", id, "2025-01-01T00:00:10.000Z", "change");
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(pdw_recency_check(r, ev[i]), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_count(r), 8);
    assert_int_equal(pdw_recency_evictions(r), 0);
    assert_int_equal(pdw_recency_check(r, ev[0]), PDW_RECENCY_SAME); /* 0 used again */
    assert_int_equal(pdw_recency_check(r, ev[8]), PDW_RECENCY_NEWER); /* evicts 1 */
    assert_int_equal(pdw_recency_count(r), 8);
    assert_int_equal(pdw_recency_evictions(r), 1);
    pdw_event *old0 = v2_at("deal", "0", "2025-01-01T00:00:09.000Z", "change");
    pdw_event *old1 = v2_at("deal", "1", "2025-01-01T00:00:09.000Z", "change");
    assert_int_equal(pdw_recency_check(r, old0), PDW_RECENCY_STALE); /* remembered */
    /* forgotten: a stale event of an evicted entity reads as newer (missed, never
     * invented) */
    assert_int_equal(pdw_recency_check(r, old1), PDW_RECENCY_NEWER);
    assert_int_equal(pdw_recency_evictions(r), 2);
    pdw_event_free(old0);
    pdw_event_free(old1);
    for (int i = 0; i < 10; i++)
        pdw_event_free(ev[i]);
    pdw_recency_free(r);

    /* a large table: 50,000 entities in 65,536 places, each remembered or evicted */
    r = tracker(50000);
    for (int i = 0; i < 50000; i++) {
        snprintf(id, sizeof id, "%d", i);
        pdw_event *e = v2_at("deal", id, "2025-01-01T00:00:10.000Z", "change");
        assert_int_equal(pdw_recency_check(r, e), PDW_RECENCY_NEWER);
        pdw_event_free(e);
    }
    assert_int_equal(pdw_recency_count(r) + pdw_recency_evictions(r), 50000);
    assert_true(pdw_recency_count(r) > 45000);
    pdw_recency_free(r);
}

typedef struct worker_arg {
    pdw_recency *r;
    int thread;
    int bad;
} worker_arg;

static void *hammer(void *p)
{
    worker_arg *w = p;
    char id[32], ts[64];
    for (int i = 0; i < 2000; i++) {
        /* own entity, time going up: always newer; a shared entity: anything but unknown */
        snprintf(id, sizeof id, "t%d", w->thread);
        snprintf(ts, sizeof ts, "2025-01-01T00:%02d:%02d.%03dZ", i / 60000 % 60, i / 1000 % 60,
                 i % 1000);
        pdw_event *e = v2_at("deal", id, ts, "change");
        if (pdw_recency_check(w->r, e) != PDW_RECENCY_NEWER)
            w->bad++;
        pdw_event_free(e);
        e = v2_at("deal", "shared", ts, "change");
        int v = pdw_recency_check(w->r, e);
        if (v < 0 || v == PDW_RECENCY_UNKNOWN)
            w->bad++;
        pdw_event_free(e);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pdw_recency *r = tracker(64);
    pthread_t t[4];
    worker_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_arg){ r, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    assert_int_equal(pdw_recency_count(r), 5);
    pdw_recency_free(r);
}

static void test_options_and_memory(void **state)
{
    (void)state;
    pdw_recency_options o;
    assert_int_equal(pdw_recency_options_init(&o, PDW_RECENCY_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, PDW_RECENCY_OPTIONS_VERSION);
    assert_int_equal(o.capacity, 0);
    assert_null(o.allocator);
    assert_int_equal(pdw_recency_options_init(&o, 99), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_recency_options_init(NULL, PDW_RECENCY_OPTIONS_VERSION), PDW_EINVAL);
    pdw_recency *r = NULL;
    pdw_error err;
    o.version = 99;
    assert_int_equal(pdw_recency_new(&r, &o, &err), PDW_EVERSIONSTRUCT);
    assert_null(r);
    o.version = PDW_RECENCY_OPTIONS_VERSION;
    o.capacity = SIZE_MAX; /* far above the limit ((size_t)1 << 40 is 0 on 32-bit) */
    assert_int_equal(pdw_recency_new(&r, &o, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_int_equal(pdw_recency_new(NULL, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_recency_new(&r, NULL, NULL), 0); /* defaults */
    pdw_recency_free(r);
    pdw_recency_free(NULL);
    assert_int_equal(pdw_recency_count(NULL), 0);

    /* out of memory: nothing left allocated, the next try works */
    for (long fail_at = 0;; fail_at++) {
        pdw_chaos c = { fail_at, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        pdw_recency_options oo = PDW_RECENCY_OPTIONS_INIT;
        oo.allocator = &a;
        r = NULL;
        int rc = pdw_recency_new(&r, &oo, NULL);
        if (rc == 0) {
            pdw_recency_free(r);
            assert_int_equal(c.live, 0);
            break;
        }
        assert_int_equal(rc, PDW_ENOMEM);
        assert_null(r);
        assert_int_equal(c.live, 0);
    }
}

/* ---- the router option -------------------------------------------------------------- */

static int count_cb(const pdw_event *ev, void *user)
{
    (void)ev;
    (*(int *)user)++;
    return 0;
}

static int fail_cb(const pdw_event *ev, void *user)
{
    (void)ev;
    (*(int *)user)++;
    return 7;
}

static void test_router_skips_stale(void **state)
{
    (void)state;
    pdw_recency *t = tracker(0);
    pdw_router *r = NULL;
    int handled = 0, stale = 0, unhandled = 0;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_int_equal(pdw_router_on(r, "change.deal", count_cb, &handled, NULL), 0);
    assert_int_equal(pdw_router_on_unhandled(r, count_cb, &unhandled), 0);
    assert_int_equal(pdw_router_on_stale(NULL, t, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_stale(r, NULL, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_stale(r, t, count_cb, &stale), 0);

    pdw_event *now = parse_fixture("v2-change.deal-pipedrive-docs.json");
    pdw_event *older = parse_fixture("derived/v2-change.deal-older.json");
    pdw_event *v1copy = parse_fixture("derived/v1-updated.deal-pair.json");
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, now, &res), 0);
    assert_int_equal(handled, 1);
    assert_int_equal(pdw_router_dispatch(r, older, &res), 0); /* superseded */
    assert_int_equal(handled, 1);
    assert_int_equal(stale, 1);
    assert_int_equal(unhandled, 0);
    assert_int_equal(res.matched, 1);
    /* the same event again (a worker's retry) and its copy in the other version run */
    assert_int_equal(pdw_router_dispatch(r, now, &res), 0);
    assert_int_equal(pdw_router_dispatch(r, v1copy, &res), 0);
    assert_int_equal(handled, 3);
    assert_int_equal(pdw_router_on_stale(r, t, NULL, NULL), PDW_EFROZEN);
    pdw_router_free(r);

    /* no callback: dropped, nothing matched; a failing stale callback is a failure */
    int failed = 0;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_int_equal(pdw_router_on(r, "*.*", count_cb, &handled, NULL), 0);
    assert_int_equal(pdw_router_on_stale(r, t, NULL, NULL), 0);
    assert_int_equal(pdw_router_dispatch(r, older, &res), 0);
    assert_int_equal(res.matched, 0);
    assert_int_equal(handled, 3);
    pdw_router_free(r);
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_int_equal(pdw_router_on_stale(r, t, fail_cb, &failed), 0);
    assert_int_equal(pdw_router_dispatch(r, older, &res), PDW_EHANDLER);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.first_failure, 7);
    assert_int_equal(failed, 1);
    pdw_router_free(r);

    pdw_event_free(now);
    pdw_event_free(older);
    pdw_event_free(v1copy);
    pdw_recency_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamp_us),
        cmocka_unit_test(test_change_key_both_versions),
        cmocka_unit_test(test_newer_same_stale),
        cmocka_unit_test(test_capacity_and_eviction),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_options_and_memory),
        cmocka_unit_test(test_router_skips_stale),
    };
    PDW_RUN_GROUP(tests);
}
