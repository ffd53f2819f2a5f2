/* New objects and bursts.
 *
 * The object list is open: Pipedrive added lead, deal_product, deal_installment, project,
 * task, board and phase to v2, and in 2026 entity-field webhooks (changes to the custom
 * field definitions of deals, leads, persons, organizations, products and projects). Any
 * object name parses and routes by name; no list of names is built in.
 *
 * Bursts: deleting a project makes Pipedrive fire a delete for each of its child entities
 * at once (developers changelog, 2026-04-10), and outgoing webhooks are not rate limited.
 * 10,000 deletes of tasks, boards, phases, deal products and installments arrive from four
 * connections at once; each is claimed in the memory dedup store, journaled in the spool
 * (appended without waiting, one flush per batch, as an event-loop server does), handed to
 * the worker through its public API, and confirmed. Every one must be handed on exactly
 * once, none lost; Pipedrive's retries of them are duplicates. Bodies: the shape of
 * tests/fixtures/v2-delete.deal-pipedrive-docs.json with the child entity's name. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/pdwebhook.h"

#define BURST 10000
#define PRODUCERS 4
#define BATCH 100

static const char *const children[] = { "task", "board", "phase", "deal_product",
                                        "deal_installment" };

static atomic_int handed[BURST];

static int body_of(char *buf, size_t cap, int i, unsigned attempt)
{
    return snprintf(buf, cap,
                    "{\"data\":null,\"previous\":{\"id\":%d,\"project_id\":42,\"title\":\"child %d\"},"
                    "\"meta\":{\"action\":\"delete\",\"company_id\":\"8087566\",\"correlation_id\":"
                    "\"7a1c2b3d-0000-4000-8000-00000000002a\",\"entity_id\":\"%d\",\"entity\":\"%s\","
                    "\"id\":\"00000000-0000-4000-8000-%012d\",\"is_bulk_edit\":false,"
                    "\"timestamp\":\"2026-04-10T12:00:00.%03dZ\",\"type\":\"general\","
                    "\"user_id\":\"12415231\",\"version\":\"2.0\",\"webhook_id\":\"4710827\","
                    "\"webhook_owner_id\":\"12094821\",\"change_source\":\"app\",\"attempt\":%u,"
                    "\"host\":\"pd-us.pipedrive.com\"}}",
                    i, i, i, children[i % 5], i, i % 1000, attempt);
}

static int count_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t cap,
                        void *user)
{
    (void)attempt, (void)errbuf, (void)cap, (void)user;
    pdw_event *ev = NULL;
    if (pdw_event_parse(&ev, rec->body, rec->body_len, NULL, NULL) != 0)
        return 1;
    int i = atoi(pdw_event_entity_id(ev));
    int ok = i >= 0 && i < BURST && strcmp(pdw_event_action(ev), "delete") == 0 &&
             strcmp(pdw_event_object(ev), children[i % 5]) == 0;
    pdw_event_free(ev);
    if (!ok)
        return 1;
    atomic_fetch_add(&handed[i], 1);
    return 0;
}

typedef struct producer {
    int first, count;
    pdw_spool *spool;
    pdw_worker *worker;
    pdw_dedup_store *store;
    int failures;
} producer;

static void *produce(void *p)
{
    producer *pr = p;
    char body[BATCH][1024];
    pdw_event *ev[BATCH];
    uint64_t id[BATCH];
    for (int at = pr->first; at < pr->first + pr->count; at += BATCH) {
        int n = pr->first + pr->count - at < BATCH ? pr->first + pr->count - at : BATCH;
        for (int j = 0; j < n; j++) {
            int len = body_of(body[j], sizeof body[j], at + j, 1);
            ev[j] = NULL;
            if (pdw_event_parse(&ev[j], body[j], (size_t)len, NULL, NULL) != 0) {
                pr->failures++;
                continue;
            }
            const char *key = pdw_event_delivery_key(ev[j]);
            if (pdw_dedup_store_claim(pr->store, key, strlen(key), 1000, 60000) !=
                    PDW_CLAIM_NEW ||
                pdw_spool_append_nowait(pr->spool, key, strlen(key), 1000, body[j],
                                        (size_t)len, &id[j], NULL) != 0)
                pr->failures++;
        }
        uint64_t durable = 0;
        if (pdw_spool_flush(pr->spool, &durable) != 0)
            pr->failures++;
        for (int j = 0; j < n; j++) {
            if (!ev[j])
                continue;
            size_t len;
            const char *b = pdw_event_body(ev[j], &len);
            const char *key = pdw_event_delivery_key(ev[j]);
            pdw_spool_record rec = { id[j], 1, key, strlen(key), b, len };
            if (pdw_spool_durable(pr->spool) < id[j] ||
                pdw_worker_submit_event(pr->worker, &rec, ev[j]) != 0 ||
                pdw_dedup_store_confirm(pr->store, key, strlen(key), 1000, 86400000) != 0)
                pr->failures++;
            pdw_event_free(ev[j]);
        }
    }
    return NULL;
}

static void test_project_delete_burst(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("burst");
    pdw_dedup_store *store = NULL;
    assert_int_equal(pdw_dedup_memory_new(&store, NULL, NULL), 0);
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.spool = sp;
    wo.handle = count_handle;
    wo.threads = 4;
    wo.max_attempts = 1; /* a failure would show as a dead letter, not be retried away */
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);

    pthread_t t[PRODUCERS];
    producer pr[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i] = (producer){ i * (BURST / PRODUCERS), BURST / PRODUCERS, sp, w, store, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, produce, &pr[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(pr[i].failures, 0);
    }
    assert_true(pdw_dedup_memory_count(store) >= BURST);

    /* Pipedrive retries some (its first attempts timed out): duplicates, not handed on */
    char body[1024];
    for (int i = 0; i < BURST; i += 7) {
        int len = body_of(body, sizeof body, i, 2);
        pdw_event *ev = NULL;
        assert_int_equal(pdw_event_parse(&ev, body, (size_t)len, NULL, NULL), 0);
        const char *key = pdw_event_delivery_key(ev);
        assert_int_equal(pdw_dedup_store_claim(store, key, strlen(key), 2000, 60000),
                         PDW_CLAIM_DUPLICATE);
        pdw_event_free(ev);
    }

    pdw_worker_stats st;
    for (int i = 0; i < 6000; i++) { /* up to 30 s on a loaded machine */
        pdw_worker_get_stats(w, &st);
        if (st.handled + st.dead_letters >= BURST && st.running == 0 && st.queued == 0)
            break;
        struct timespec ts = { 0, 5000000L };
        nanosleep(&ts, NULL);
    }
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(st.handled, BURST);
    assert_int_equal(st.dead_letters, 0);
    for (int i = 0; i < BURST; i++)
        if (atomic_load(&handed[i]) != 1)
            fail_msg("delete of child %d handed on %d times", i, atomic_load(&handed[i]));
    pdw_spool_close(sp);
    pdw_dedup_store_free(store);
    pdw_test_rmtree(dir);
    free(dir);
}

/* ---- new objects route by name ------------------------------------------------------ */

static int count_cb(const pdw_event *ev, void *user)
{
    (void)ev;
    (*(int *)user)++;
    return 0;
}

static pdw_event *v2_body(const char *action, const char *entity)
{
    char b[1024];
    int n = snprintf(b, sizeof b,
                     "{\"data\":%s,\"previous\":%s,\"meta\":{\"action\":\"%s\","
                     "\"company_id\":\"8087566\",\"entity_id\":\"17\",\"entity\":\"%s\","
                     "\"id\":\"5c005fea-d653-4bed-a843-a9df3faf0421\",\"is_bulk_edit\":false,"
                     "\"timestamp\":\"2026-05-21T09:00:00.000Z\",\"type\":\"general\","
                     "\"user_id\":\"123456\",\"version\":\"2.0\",\"webhook_id\":\"111\","
                     "\"attempt\":1}}",
                     strcmp(action, "delete") ? "{\"id\":17,\"name\":\"Budget\"}" : "null",
                     strcmp(action, "change") ? "null" : "{\"name\":\"Budgte\"}", action, entity);
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_event_parse(&ev, b, (size_t)n, NULL, &err) != 0)
        fail_msg("%s.%s: %s", action, entity, err.message);
    return ev;
}

static void test_new_objects_route_by_name(void **state)
{
    (void)state;
    /* entity-field webhooks under the names they may carry, the 2026 project family, and
     * a name nobody has announced yet */
    static const char *const objects[] = { "deal_field", "dealField", "lead_field",
                                           "person_field", "organization_field",
                                           "product_field", "project_field", "project", "task",
                                           "board", "phase", "deal_product",
                                           "deal_installment", "some_future_object" };
    static const char *const actions[] = { "create", "change", "delete" };
    size_t n = sizeof objects / sizeof *objects;
    int exact[16] = { 0 }, any = 0, deletes = 0, name_changes = 0, unhandled = 0;
    pdw_router *r = NULL;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    char pattern[96];
    for (size_t i = 0; i < n; i++) {
        /* v1 words work for them too: updated.X is change.X */
        snprintf(pattern, sizeof pattern, "%s.%s", i % 2 ? "updated" : "change", objects[i]);
        assert_int_equal(pdw_router_on(r, pattern, count_cb, &exact[i], NULL), 0);
    }
    assert_int_equal(pdw_router_on(r, "*.*", count_cb, &any, NULL), 0);
    assert_int_equal(pdw_router_on(r, "deleted.*", count_cb, &deletes, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "change.deal_field", "name", count_cb,
                                          &name_changes, NULL), 0);
    assert_int_equal(pdw_router_on_unhandled(r, count_cb, &unhandled), 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 0; a < 3; a++) {
            pdw_event *ev = v2_body(actions[a], objects[i]);
            assert_string_equal(pdw_event_object(ev), objects[i]);
            assert_int_equal(pdw_router_dispatch(r, ev, NULL), 0);
            pdw_event_free(ev);
        }
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(exact[i], 1); /* its own change only, not its neighbours' */
    assert_int_equal(any, (int)(3 * n));
    assert_int_equal(deletes, (int)n);
    assert_int_equal(name_changes, 1);
    assert_int_equal(unhandled, 0);
    pdw_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_objects_route_by_name),
        cmocka_unit_test(test_project_delete_burst),
    };
    PDW_RUN_GROUP(tests);
}
