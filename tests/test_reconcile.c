/* Reconciled events (pdwebhook/reconcile.h): each object's API record becomes a marked,
 * v2-shaped event with the right action, entity, id and time; the window is honoured;
 * the update key of a delivery equals that of the reconciled record of the same state;
 * the intake hands a reconciled record on once, not when its state was delivered, and
 * not again after a restart (pdw_intake_reconcile()). */
#include <jansson.h>
#include <stdatomic.h>
#include <time.h>

#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/reconcile.h"

#define FROM 1767225600000LL /* 2026-01-01T00:00:00Z */
#define TO (FROM + 3600000LL)

typedef struct mapping {
    const char *object;
    const char *record;  /* as the API returns it (v2 list endpoints, /v1/recents, leads) */
    const char *action;
    const char *entity_id;
    long long update_ms; /* the record's update time */
} mapping;

static const mapping cases[] = {
    /* v2 list endpoints: RFC 3339 times, is_deleted */
    { "deal", "{\"id\":42,\"title\":\"Big\",\"stage_id\":3,\"add_time\":\"2025-12-01T10:00:00Z\","
              "\"update_time\":\"2026-01-01T00:10:00Z\",\"is_deleted\":false}",
      "change", "42", FROM + 600000 },
    { "person", "{\"id\":7,\"name\":\"Ann\",\"add_time\":\"2026-01-01T00:05:00Z\","
                "\"update_time\":\"2026-01-01T00:05:00Z\"}",
      "create", "7", FROM + 300000 },
    { "organization", "{\"id\":9,\"name\":\"Acme\",\"add_time\":\"2020-01-01T00:00:00Z\","
                      "\"update_time\":\"2026-01-01T00:59:59Z\",\"is_deleted\":true}",
      "delete", "9", FROM + 3599000 },
    { "activity", "{\"id\":311,\"subject\":\"Call\",\"add_time\":\"2025-01-01T00:00:00Z\","
                  "\"update_time\":\"2026-01-01T00:00:00Z\",\"done\":true}",
      "change", "311", FROM },
    { "product", "{\"id\":5,\"name\":\"Widget\",\"add_time\":\"2025-06-01T00:00:00Z\","
                 "\"update_time\":\"2026-01-01T00:30:00Z\"}",
      "change", "5", FROM + 1800000 },
    /* /v1/recents: "YYYY-MM-DD HH:MM:SS" times, active_flag */
    { "note", "{\"id\":12,\"content\":\"hi\",\"deal_id\":42,\"add_time\":\"2026-01-01 00:20:00\","
              "\"update_time\":\"2026-01-01 00:21:00\",\"active_flag\":true}",
      "create", "12", FROM + 1260000 },
    { "pipeline", "{\"id\":1,\"name\":\"Sales\",\"add_time\":\"2019-01-01 00:00:00\","
                  "\"update_time\":\"2026-01-01 00:40:00\",\"active\":true}",
      "change", "1", FROM + 2400000 },
    { "stage", "{\"id\":3,\"name\":\"Won\",\"pipeline_id\":1,\"add_time\":\"2019-01-01 00:00:00\","
               "\"update_time\":\"2026-01-01 00:45:00\",\"active_flag\":false}",
      "delete", "3", FROM + 2700000 },
    /* users: created / modified, and a deactivation is a change */
    { "user", "{\"id\":1236582,\"name\":\"Joe\",\"created\":\"2016-04-07 19:42:07\","
              "\"modified\":\"2026-01-01 00:50:00\",\"active_flag\":false}",
      "change", "1236582", FROM + 3000000 },
    /* leads: a UUID id, ISO times with milliseconds */
    { "lead", "{\"id\":\"adf21080-0e10-11eb-879b-05d71fb426ec\",\"title\":\"L\","
              "\"add_time\":\"2026-01-01T00:55:00.250Z\",\"update_time\":\"2026-01-01T00:55:00.250Z\"}",
      "create", "adf21080-0e10-11eb-879b-05d71fb426ec", FROM + 3300250 },
};

static pdw_event *parse(const char *body, size_t len)
{
    pdw_event *ev = NULL;
    pdw_error err;
    int rc = pdw_event_parse(&ev, body, len, NULL, &err);
    if (rc != 0)
        fail_msg("parse: %s (%s)", err.message, body);
    return ev;
}

static void test_each_object(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mapping *m = &cases[i];
        char *body = NULL;
        size_t len = 0;
        assert_int_equal(pdw_reconcile_record_time(m->object, m->record, strlen(m->record)),
                         m->update_ms);
        assert_int_equal(pdw_reconcile_body(&body, &len, m->object, m->record,
                                            strlen(m->record), FROM, TO, "/test", NULL),
                         0);
        assert_int_equal(strlen(body), len);
        pdw_event *ev = parse(body, len);
        assert_int_equal(pdw_event_version(ev), 2);
        assert_true(pdw_event_is_reconciled(ev));
        assert_string_equal(pdw_event_object(ev), m->object);
        assert_string_equal(pdw_event_action(ev), m->action);
        assert_string_equal(pdw_event_entity_id(ev), m->entity_id);
        assert_int_equal(pdw_event_timestamp_ms(ev), m->update_ms);
        assert_int_equal(pdw_event_attempt(ev), 1);
        char key[PDW_DELIVERY_KEY_MAX], want[PDW_DELIVERY_KEY_MAX];
        snprintf(want, sizeof want, "u:%s:%s:%lld", m->object, m->entity_id, m->update_ms);
        assert_int_equal(pdw_event_update_key(ev, key, sizeof key), (int)strlen(want));
        assert_string_equal(key, want);
        /* the record, whole, as data (or as previous for a delete, data null) */
        json_t *rec = json_loads(m->record, 0, NULL), *dom = pdw_event_json(ev);
        int del = strcmp(m->action, "delete") == 0;
        assert_true(json_equal(json_object_get(dom, del ? "previous" : "data"), rec));
        assert_true(json_is_null(json_object_get(dom, del ? "data" : "previous")));
        json_t *meta = json_object_get(dom, "meta");
        assert_true(json_is_true(json_object_get(meta, "reconciled")));
        assert_string_equal(json_string_value(json_object_get(meta, "reconciled_from")), "/test");
        assert_string_equal(json_string_value(json_object_get(meta, "version")), "2.0");
        json_decref(rec);
        /* the same record twice: the same body (same event id, same delivery key) */
        char *again = NULL;
        assert_int_equal(pdw_reconcile_body(&again, NULL, m->object, m->record,
                                            strlen(m->record), FROM, TO, "/test", NULL),
                         0);
        assert_string_equal(again, body);
        pdw_free(again);
        pdw_event_free(ev);
        pdw_free(body);
    }
}

static void test_window(void **state)
{
    (void)state;
    const char *rec = "{\"id\":1,\"update_time\":\"2026-01-01T01:00:00Z\"}"; /* == TO */
    char *body = (char *)1;
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", rec, strlen(rec), FROM, TO, NULL,
                                        NULL),
                     PDW_RECONCILE_OUTSIDE);
    assert_null(body);
    const char *before = "{\"id\":1,\"update_time\":\"2025-12-31 23:59:59\"}";
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", before, strlen(before), FROM, TO,
                                        NULL, NULL),
                     PDW_RECONCILE_OUTSIDE);
    /* no end: everything since FROM */
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", rec, strlen(rec), FROM, 0, NULL,
                                        NULL),
                     0);
    pdw_free(body);
}

static void test_bad_records(void **state)
{
    (void)state;
    char *body = NULL;
    pdw_error err;
    const char *noid = "{\"update_time\":\"2026-01-01T00:10:00Z\"}";
    const char *notime = "{\"id\":3}";
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", noid, strlen(noid), FROM, TO, NULL,
                                        &err),
                     PDW_EFIELD);
    assert_int_equal(err.code, PDW_EFIELD);
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", notime, strlen(notime), FROM, TO,
                                        NULL, NULL),
                     PDW_EFIELD);
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", "[1]", 3, FROM, TO, NULL, NULL),
                     PDW_ENOTOBJECT);
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", "{", 1, FROM, TO, NULL, NULL),
                     PDW_EJSON);
    assert_int_equal(pdw_reconcile_body(&body, NULL, "de al", notime, strlen(notime), FROM, TO,
                                        NULL, NULL),
                     PDW_EFIELD);
    assert_int_equal(pdw_reconcile_body(NULL, NULL, "deal", notime, strlen(notime), FROM, TO,
                                        NULL, NULL),
                     PDW_EINVAL);
    assert_null(body);
    assert_int_equal(pdw_reconcile_record_time("deal", notime, strlen(notime)), PDW_ENOTFOUND);
}

/* A delivery and the reconciled record of the same state share the update key; an
 * ordinary delivery is not reconciled. */
static void test_update_key_of_deliveries(void **state)
{
    (void)state;
    const char *v2 = "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                     "\"entity_id\":\"42\",\"id\":\"e1\",\"timestamp\":\"2026-01-01T00:10:00.120Z\"},"
                     "\"data\":{\"id\":42,\"update_time\":\"2026-01-01T00:10:00Z\"},"
                     "\"previous\":{\"stage_id\":1,\"update_time\":\"2025-01-01T00:00:00Z\"}}";
    const char *v1 = "{\"v\":1,\"event\":\"updated.deal\",\"retry\":0,\"meta\":{\"v\":1,"
                     "\"action\":\"updated\",\"object\":\"deal\",\"id\":42,\"timestamp\":1767226200},"
                     "\"current\":{\"id\":42,\"update_time\":\"2026-01-01 00:10:00\"},"
                     "\"previous\":{\"id\":42,\"update_time\":\"2025-01-01 00:00:00\"}}";
    const char *user = "{\"v\":1,\"event\":\"updated.user\",\"meta\":{\"v\":1,\"action\":"
                       "\"updated\",\"object\":\"user\",\"id\":5,\"timestamp\":1767226200},"
                       "\"current\":[{\"id\":5,\"modified\":\"2026-01-01 00:10:00\"}],"
                       "\"previous\":[{\"id\":5}]}";
    const char *del = "{\"meta\":{\"version\":\"2.0\",\"action\":\"delete\",\"entity\":\"deal\","
                      "\"entity_id\":\"42\",\"id\":\"e2\",\"timestamp\":\"2026-01-01T00:10:00Z\"},"
                      "\"data\":null,\"previous\":{\"update_time\":\"2026-01-01T00:10:00Z\"}}";
    const char *none = "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                       "\"entity_id\":\"42\",\"id\":\"e3\",\"timestamp\":\"2026-01-01T00:10:00Z\"},"
                       "\"data\":{\"id\":42},\"previous\":null}";
    const char *rec = "{\"id\":42,\"update_time\":\"2026-01-01T00:10:00Z\"}";
    char *body = NULL, k1[PDW_DELIVERY_KEY_MAX], k2[PDW_DELIVERY_KEY_MAX];
    assert_int_equal(pdw_reconcile_body(&body, NULL, "deal", rec, strlen(rec), FROM, TO, NULL,
                                        NULL),
                     0);
    pdw_event *r = parse(body, strlen(body));
    assert_true(pdw_event_update_key(r, k1, sizeof k1) > 0);
    assert_string_equal(k1, "u:deal:42:1767226200000");
    const char *bodies[] = { v2, v1, del };
    for (size_t i = 0; i < 3; i++) {
        pdw_event *ev = parse(bodies[i], strlen(bodies[i]));
        assert_false(pdw_event_is_reconciled(ev));
        assert_true(pdw_event_update_key(ev, k2, sizeof k2) > 0);
        assert_string_equal(k2, k1);
        pdw_event_free(ev);
    }
    pdw_event *ev = parse(user, strlen(user));
    assert_true(pdw_event_update_key(ev, k2, sizeof k2) > 0);
    assert_string_equal(k2, "u:user:5:1767226200000");
    assert_int_equal(pdw_event_update_key(ev, k2, 8), PDW_ERANGE);
    pdw_event_free(ev);
    ev = parse(none, strlen(none));
    assert_int_equal(pdw_event_update_key(ev, k2, sizeof k2), PDW_ENOTFOUND);
    pdw_event_free(ev);
    assert_false(pdw_event_is_reconciled(NULL));
    pdw_event_free(r);
    pdw_free(body);
}

/* ---- the intake ------------------------------------------------------------------------ */

static atomic_int g_handled;

static int count(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
                 void *user)
{
    (void)rec, (void)attempt, (void)errbuf, (void)errcap, (void)user;
    atomic_fetch_add(&g_handled, 1);
    return 0;
}

static pdw_intake *open_intake(const char *dir, int start)
{
    static pdw_credential cred = { "u", "p" };
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    ro.credentials = &cred;
    ro.num_credentials = 1;
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = count;
    pdw_intake_options io = PDW_INTAKE_OPTIONS_INIT;
    io.receiver = &ro;
    io.spool_dir = dir;
    io.worker = &wo;
    pdw_intake *in = NULL;
    pdw_error err;
    if (pdw_intake_new(&in, &io, &err) != 0)
        fail_msg("intake: %s", err.message);
    if (start)
        assert_int_equal(pdw_intake_start(in, NULL, NULL), 0);
    return in;
}

static void on_done(pdw_verdict *v, void *user)
{
    *(int *)user = v->status;
}

static void wait_handled(int n)
{
    for (int i = 0; i < 2000 && atomic_load(&g_handled) < n; i++) {
        struct timespec t = { 0, 1000000L };
        nanosleep(&t, NULL);
    }
    assert_int_equal(atomic_load(&g_handled), n);
}

static void test_intake_dedup(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("reconcile");
    atomic_store(&g_handled, 0);
    pdw_intake *in = open_intake(dir, 1);
    /* a real delivery of deal 42's state at 00:10 */
    const char *delivery =
        "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
        "\"entity_id\":\"42\",\"id\":\"e1\",\"attempt\":1,\"timestamp\":\"2026-01-01T00:10:00.120Z\"},"
        "\"data\":{\"id\":42,\"update_time\":\"2026-01-01T00:10:00Z\"},\"previous\":null}";
    pdw_header h[] = { { "Content-Type", 12, "application/json", 16 },
                       { "Authorization", 13, "Basic dTpw", 10 } };
    pdw_request req = PDW_REQUEST_INIT;
    req.method = "POST";
    req.method_len = 4;
    req.headers = h;
    req.num_headers = 2;
    req.body = delivery;
    req.body_len = strlen(delivery);
    pdw_verdict v = PDW_VERDICT_INIT;
    int status = 0;
    int rc = pdw_intake_submit(in, &req, &v, on_done, &status);
    assert_true(rc == 0 || rc == PDW_INTAKE_PENDING);
    for (int i = 0; i < 2000 && !status; i++) {
        struct timespec t = { 0, 1000000L };
        nanosleep(&t, NULL);
    }
    assert_int_equal(status, 200);
    wait_handled(1);

    char *same = NULL, *newer = NULL;
    const char *r1 = "{\"id\":42,\"update_time\":\"2026-01-01T00:10:00Z\"}";
    const char *r2 = "{\"id\":43,\"update_time\":\"2026-01-01T00:20:00Z\"}";
    assert_int_equal(pdw_reconcile_body(&same, NULL, "deal", r1, strlen(r1), FROM, TO, NULL,
                                        NULL),
                     0);
    assert_int_equal(pdw_reconcile_body(&newer, NULL, "deal", r2, strlen(r2), FROM, TO, NULL,
                                        NULL),
                     0);
    assert_int_equal(pdw_intake_reconcile(in, same, strlen(same), NULL), 0); /* delivered */
    assert_int_equal(pdw_intake_reconcile(in, newer, strlen(newer), NULL), 1);
    assert_int_equal(pdw_intake_reconcile(in, newer, strlen(newer), NULL), 0); /* twice */
    wait_handled(2);
    pdw_intake_free(in);

    /* a restart remembers both from the journal; a stopped intake journals pending */
    in = open_intake(dir, 0);
    assert_int_equal(pdw_intake_reconcile(in, same, strlen(same), NULL), 0);
    assert_int_equal(pdw_intake_reconcile(in, newer, strlen(newer), NULL), 0);
    const char *r3 = "{\"id\":44,\"update_time\":\"2026-01-01T00:30:00Z\"}";
    char *third = NULL;
    assert_int_equal(pdw_reconcile_body(&third, NULL, "deal", r3, strlen(r3), FROM, TO, NULL,
                                        NULL),
                     0);
    assert_int_equal(pdw_intake_reconcile(in, third, strlen(third), NULL), 1);
    assert_int_equal(pdw_intake_reconcile(in, "{", 1, NULL), PDW_EJSON);
    long recovered = 0;
    assert_int_equal(pdw_intake_start(in, &recovered, NULL), 0);
    assert_int_equal(recovered, 1); /* the one journaled while stopped */
    wait_handled(3);
    pdw_intake_free(in);
    pdw_free(same);
    pdw_free(newer);
    pdw_free(third);
    pdw_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_object),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_update_key_of_deliveries),
        cmocka_unit_test(test_intake_dedup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
