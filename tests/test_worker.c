/* The worker on a real spool: per-entity order, retries with backoff, dead letters, markers
 * across a restart, drain without a spool; and the whole pipeline answering 503 when the
 * journal's write path hits ENOSPC, then 200 once space is back. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pdw_test.h"
#include "core/core.h"
#include "pdwebhook/durable.h"

static char *tmpdir(void)
{
    return pdw_test_tmpdir("worker");
}

static void rmtree(const char *d)
{
    pdw_test_rmtree(d);
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

static char *body_for(int entity, int seq)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
             "\"entity_id\":\"%d\",\"id\":\"e%d-%d\"},\"data\":{\"seq\":%d},\"previous\":{}}",
             entity, entity, seq, seq);
    return buf;
}

static uint64_t append(pdw_spool *sp, const char *body)
{
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, body, strlen(body), NULL, NULL), 0);
    const char *key = pdw_event_delivery_key(ev);
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(sp, key, strlen(key), 1, body, strlen(body), &id, NULL), 0);
    pdw_event_free(ev);
    return id;
}

static void submit(pdw_worker *w, pdw_spool *sp, const char *body)
{
    pdw_spool_record rec = { 0, 1, "k", 1, body, strlen(body) };
    rec.id = sp ? append(sp, body) : 0;
    assert_int_equal(pdw_worker_submit(w, &rec), 0);
}

static void wait_handled(pdw_worker *w, uint64_t n)
{
    pdw_worker_stats st;
    for (int i = 0; i < 1000; i++) {
        pdw_worker_get_stats(w, &st);
        if (st.handled + st.dead_letters >= n && st.running == 0 && st.queued == 0)
            return;
        sleep_ms(5);
    }
    fail_msg("worker did not finish: handled %llu", (unsigned long long)st.handled);
}

/* ---- order per entity -------------------------------------------------------------- */

typedef struct order {
    pthread_mutex_t lock;
    int last[8];
    int violations, calls;
} order;

static int order_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                        size_t cap, void *user)
{
    (void)attempt, (void)errbuf, (void)cap;
    order *o = user;
    json_t *d = json_loadb(rec->body, rec->body_len, 0, NULL);
    int entity = atoi(json_string_value(json_object_get(json_object_get(d, "meta"), "entity_id")));
    int seq = (int)json_integer_value(json_object_get(json_object_get(d, "data"), "seq"));
    json_decref(d);
    if (seq % 7 == 0)
        sleep_ms(1); /* make threads interleave */
    pthread_mutex_lock(&o->lock);
    if (seq <= o->last[entity])
        o->violations++;
    o->last[entity] = seq;
    o->calls++;
    pthread_mutex_unlock(&o->lock);
    return 0;
}

static void test_order_per_entity(void **state)
{
    (void)state;
    order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = order_handle;
    wo.handle_user = &o;
    wo.threads = 4;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int seq = 1; seq <= 200; seq++)
        for (int e = 0; e < 8; e++)
            submit(w, NULL, body_for(e, seq));
    wait_handled(w, 1600);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(o.calls, 1600);
    assert_int_equal(o.violations, 0);
}

/* The entity comes with the event: the same per-entity order, the body not parsed again. */
static void test_submit_event_order_per_entity(void **state)
{
    (void)state;
    order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = order_handle;
    wo.handle_user = &o;
    wo.threads = 4;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int seq = 1; seq <= 200; seq++)
        for (int e = 0; e < 8; e++) {
            const char *body = body_for(e, seq);
            pdw_event *ev = NULL;
            assert_int_equal(pdw_event_parse(&ev, body, strlen(body), NULL, NULL), 0);
            pdw_spool_record rec = { 0, 1, "k", 1, NULL, 0 };
            rec.body = pdw_event_body(ev, &rec.body_len); /* the event's own bytes */
            assert_int_equal(pdw_worker_submit_event(w, &rec, ev), 0);
            pdw_event_free(ev); /* the worker keeps a copy of the record */
        }
    wait_handled(w, 1600);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(o.calls, 1600);
    assert_int_equal(o.violations, 0);
}

/* Both ways of submitting put one entity on one shard: a worker with a single slow shard
 * per entity sees them in order even when the two are mixed. */
static void test_submit_event_mixed_with_submit(void **state)
{
    (void)state;
    order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = order_handle;
    wo.handle_user = &o;
    wo.threads = 8;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int seq = 1; seq <= 100; seq++)
        for (int e = 0; e < 8; e++) {
            const char *body = body_for(e, seq);
            if ((seq + e) % 2) {
                submit(w, NULL, body);
                continue;
            }
            pdw_event *ev = NULL;
            assert_int_equal(pdw_event_parse(&ev, body, strlen(body), NULL, NULL), 0);
            /* another copy of the same bytes is fine too */
            pdw_spool_record rec = { 0, 1, "k", 1, body, strlen(body) };
            assert_int_equal(pdw_worker_submit_event(w, &rec, ev), 0);
            pdw_event_free(ev);
        }
    wait_handled(w, 800);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(o.calls, 800);
    assert_int_equal(o.violations, 0);
}

/* The entity as text (what serve keeps across a group commit): the same shard as a parse
 * of the body gives, so mixing it with pdw_worker_submit() keeps each entity in order. */
static void test_submit_entity_mixed_with_submit(void **state)
{
    (void)state;
    order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = order_handle;
    wo.handle_user = &o;
    wo.threads = 8;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int seq = 1; seq <= 100; seq++)
        for (int e = 0; e < 8; e++) {
            const char *body = body_for(e, seq);
            if ((seq + e) % 2) {
                submit(w, NULL, body);
                continue;
            }
            pdw_event *ev = NULL;
            assert_int_equal(pdw_event_parse(&ev, body, strlen(body), NULL, NULL), 0);
            char object[64], id[64];
            snprintf(object, sizeof object, "%s", pdw_event_object(ev));
            snprintf(id, sizeof id, "%s", pdw_event_entity_id(ev));
            pdw_event_free(ev); /* only the text is kept, as across a commit */
            pdw_spool_record rec = { 0, 1, "k", 1, body, strlen(body) };
            assert_int_equal(pdw_worker_submit_entity(w, &rec, object, id), 0);
        }
    wait_handled(w, 800);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(o.calls, 800);
    assert_int_equal(o.violations, 0);
    assert_int_equal(pdw_worker_submit_entity(NULL, NULL, "deal", "1"), PDW_EINVAL);
}

static void test_submit_event_refuses_other_body(void **state)
{
    (void)state;
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0, 0 };
    wo.handle = order_handle;
    wo.handle_user = &o;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", body_for(1, 1));
    snprintf(b, sizeof b, "%s", body_for(2, 1)); /* same length, other entity */
    assert_int_equal(strlen(a), strlen(b));
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, a, strlen(a), NULL, NULL), 0);
    pdw_spool_record rec = { 0, 1, "k", 1, b, strlen(b) };
    assert_int_equal(pdw_worker_submit_event(w, &rec, ev), PDW_EINVAL);
    rec.body_len--; /* other length */
    assert_int_equal(pdw_worker_submit_event(w, &rec, ev), PDW_EINVAL);
    assert_int_equal(pdw_worker_submit_event(w, &rec, NULL), PDW_EINVAL);
    assert_int_equal(pdw_worker_submit_event(NULL, &rec, ev), PDW_EINVAL);
    assert_int_equal(pdw_worker_submit_event(w, NULL, ev), PDW_EINVAL);
    rec.body = a;
    rec.body_len = strlen(a);
    assert_int_equal(pdw_worker_submit_event(w, &rec, ev), 0);
    pdw_event_free(ev);
    wait_handled(w, 1);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(o.calls, 1);
}

/* ---- retries, backoff, dead letters ------------------------------------------------- */

typedef struct flaky {
    atomic_int calls;
    int fail_first; /* fail this many attempts, or forever when < 0 */
    atomic_int dead;
    char error[256];
} flaky;

static int flaky_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t cap,
                        void *user)
{
    (void)rec;
    flaky *f = user;
    atomic_fetch_add(&f->calls, 1);
    if (f->fail_first < 0 || (int)attempt <= f->fail_first) {
        snprintf(errbuf, cap, "attempt %u refused", attempt);
        return 1;
    }
    return 0;
}

static void on_dead(const pdw_spool_record *rec, unsigned attempts, const char *error, void *user)
{
    (void)rec;
    flaky *f = user;
    atomic_fetch_add(&f->dead, 1);
    snprintf(f->error, sizeof f->error, "%u:%s", attempts, error);
}

static void test_retries_then_success(void **state)
{
    (void)state;
    char *dir = tmpdir();
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    flaky f = { 0, 2, 0, "" };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.spool = sp;
    wo.handle = flaky_handle;
    wo.handle_user = &f;
    wo.backoff_base_ms = 20;
    wo.max_attempts = 5;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    submit(w, sp, body_for(1, 1));
    wait_handled(w, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pdw_worker_stats st;
    pdw_worker_get_stats(w, &st);
    assert_int_equal(st.handled, 1);
    assert_int_equal(st.retries, 2);
    assert_int_equal(atomic_load(&f.calls), 3);
    /* backoff happened: at least 10 ms (half of 20) + 20 ms (half of 40) */
    long long ms = (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 30);
    pdw_worker_free(w); /* stops it first */
    pdw_spool_stats ss;
    pdw_spool_get_stats(sp, &ss);
    assert_int_equal(ss.pending, 0); /* marked handled on stop at the latest */
    pdw_spool_close(sp);
    rmtree(dir);
    free(dir);
}

static void test_dead_letter_file_and_callback(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char dl[600];
    snprintf(dl, sizeof dl, "%s/dead.jsonl", dir);
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    flaky f = { 0, -1, 0, "" };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.spool = sp;
    wo.handle = flaky_handle;
    wo.handle_user = &f;
    wo.backoff_base_ms = 1;
    wo.max_attempts = 3;
    wo.dead_letter_path = dl;
    wo.on_dead_letter = on_dead;
    wo.dead_letter_user = &f;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int i = 0; i < 10; i++)
        submit(w, sp, body_for(i % 3, i));
    wait_handled(w, 10);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(atomic_load(&f.dead), 10);
    assert_int_equal(atomic_load(&f.calls), 30);
    assert_string_equal(f.error, "3:attempt 3 refused");
    size_t len;
    char *text = pdw_test_read_file(dl, &len);
    assert_non_null(text);
    int lines = 0;
    for (char *l = text; l && *l; lines++) {
        char *nl = strchr(l, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_t *d = json_loads(l, 0, NULL);
        assert_non_null(d);
        assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
        assert_string_equal(json_string_value(json_object_get(d, "error")), "attempt 3 refused");
        assert_true(json_is_object(json_object_get(d, "body")));
        assert_true(json_integer_value(json_object_get(d, "id")) > 0);
        json_decref(d);
        l = nl + 1;
    }
    assert_int_equal(lines, 10);
    free(text);
    pdw_spool_stats ss;
    pdw_spool_get_stats(sp, &ss);
    assert_int_equal(ss.pending, 0); /* dead letters are out of the journal */
    pdw_spool_close(sp);
    rmtree(dir);
    free(dir);
}

/* ---- the default handler, markers and a restart -------------------------------------- */

static atomic_int routed;
static int count_event(const pdw_event *ev, void *user)
{
    (void)ev, (void)user;
    atomic_fetch_add(&routed, 1);
    return 0;
}

static pdw_receiver *make_receiver(void)
{
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.insecure_no_auth = 1;
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "change.deal", count_event, NULL,
                                   NULL), 0);
    return r;
}

static void test_markers_survive_restart(void **state)
{
    (void)state;
    char *dir = tmpdir();
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    for (int i = 0; i < 50; i++)
        append(sp, body_for(i % 5, i));
    pdw_receiver *r = make_receiver();
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.spool = sp;
    wo.receiver = r;
    wo.marker_flush_ms = 5;
    pdw_worker *w = NULL;
    atomic_store(&routed, 0);
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    assert_int_equal(pdw_worker_recover(w), 50);
    wait_handled(w, 50);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(atomic_load(&routed), 50);
    pdw_spool_close(sp);
    /* reopen: nothing is pending, the worker recovers nothing */
    pdw_spool_recovery rec;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, &rec, NULL), 0);
    assert_int_equal(rec.pending, 0);
    wo.spool = sp;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    assert_int_equal(pdw_worker_recover(w), 0);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(atomic_load(&routed), 50);
    pdw_spool_close(sp);
    pdw_receiver_free(r);
    rmtree(dir);
    free(dir);
}

/* Without a spool, stopping drains the queue: nothing queued is dropped. */
static void test_drain_without_spool(void **state)
{
    (void)state;
    pdw_receiver *r = make_receiver();
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.receiver = r;
    wo.threads = 2;
    pdw_worker *w = NULL;
    atomic_store(&routed, 0);
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int i = 0; i < 500; i++)
        submit(w, NULL, body_for(i % 4, i));
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(atomic_load(&routed), 500);
    pdw_receiver_free(r);
}

/* With a spool, stopping leaves the queue pending in the journal, handed on next time. */
static void test_stop_leaves_pending_in_spool(void **state)
{
    (void)state;
    char *dir = tmpdir();
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    flaky f = { 0, -1, 0, "" };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.spool = sp;
    wo.handle = flaky_handle; /* fails, then waits 10 s before retrying */
    wo.handle_user = &f;
    wo.backoff_base_ms = 10000;
    wo.threads = 1;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int i = 0; i < 5; i++)
        submit(w, sp, body_for(1, i));
    sleep_ms(50);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pdw_worker_free(w); /* stops it first: ends the backoff wait at once */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    pdw_spool_stats ss;
    pdw_spool_get_stats(sp, &ss);
    assert_int_equal(ss.pending, 5);
    pdw_spool_close(sp);
    rmtree(dir);
    free(dir);
}

/* ---- ENOSPC in the journal's write path, through the whole pipeline ------------------- */

typedef struct fault {
    atomic_int full;
} fault;

static long faulty_write(int fd, const void *buf, size_t n, void *user)
{
    fault *f = user;
    if (atomic_load(&f->full)) {
        if (n > 16) { /* a short write first, then no space: the worst case */
            ssize_t k = write(fd, buf, 16);
            (void)k;
        }
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, n);
}

typedef struct intake {
    pdw_spool *sp;
} intake;

static int journal(const pdw_event *ev, void *request_user, void *user)
{
    (void)request_user;
    intake *in = user;
    size_t len;
    const char *body = pdw_event_body(ev, &len);
    const char *key = pdw_event_delivery_key(ev);
    return pdw_spool_append(in->sp, key, strlen(key), 1, body, len, NULL, NULL);
}

static int post(pdw_receiver *r, const char *body, pdw_verdict *v)
{
    pdw_header h[] = { { "Content-Type", 12, "application/json", 16 } };
    pdw_request q = PDW_REQUEST_INIT;
    q.method = "POST";
    q.method_len = 4;
    q.headers = h;
    q.num_headers = 1;
    q.body = body;
    q.body_len = strlen(body);
    pdw_verdict init = PDW_VERDICT_INIT;
    *v = init;
    return pdw_receiver_handle(r, &q, v, NULL);
}

static void test_enospc_gives_503_then_recovers(void **state)
{
    (void)state;
    char *dir = tmpdir();
    fault f = { 0 };
    pdw_spool_io io = { faulty_write, NULL, &f };
    pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
    so.io = &io;
    intake in = { NULL };
    assert_int_equal(pdw_spool_open(&in.sp, dir, &so, NULL, NULL), 0);
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.insecure_no_auth = 1;
    o.accept = journal;
    o.accept_user = &in;
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    pdw_verdict v;
    assert_int_equal(post(r, body_for(1, 1), &v), PDW_OK);
    atomic_store(&f.full, 1);
    assert_int_equal(post(r, body_for(1, 2), &v), PDW_ENOSPC);
    assert_int_equal(v.status, 503);
    int retry_after = 0;
    for (size_t i = 0; i < v.num_headers; i++)
        if (strcmp(v.headers[i].name, "Retry-After") == 0)
            retry_after = atoi(v.headers[i].value);
    assert_int_equal(retry_after, 3);
    atomic_store(&f.full, 0);
    /* Pipedrive's retry of the refused delivery: accepted now (the claim was released) */
    assert_int_equal(post(r, body_for(1, 2), &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(post(r, body_for(1, 2), &v), PDW_EDUPLICATE);
    pdw_spool_close(in.sp);
    /* the journal holds exactly the two accepted deliveries, no torn bytes */
    pdw_spool_recovery rec;
    assert_int_equal(pdw_spool_open(&in.sp, dir, NULL, &rec, NULL), 0);
    assert_int_equal(rec.deliveries, 2);
    assert_int_equal(rec.torn_bytes, 0);
    pdw_spool_close(in.sp);
    pdw_receiver_free(r);
    rmtree(dir);
    free(dir);
}

/* The timed waits the worker and the Redis consumer use: a condition from pdw__cond_init()
 * and a deadline from pdw__deadline_in() are on one clock, so a wait of 60 ms times out
 * after 60 ms of monotonic time, neither at once nor never. */
static void test_timed_wait_clock(void **state)
{
    (void)state;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    assert_int_equal(pdw__cond_init(&c), 0);
    for (int round = 0; round < 3; round++) {
        pthread_mutex_lock(&m);
        uint64_t t0 = pdw__mono_ms();
        struct timespec dl = pdw__deadline_in(60);
        int rc = 0;
        while (rc == 0) /* spurious wake-ups: wait again for the same deadline */
            rc = pthread_cond_timedwait(&c, &m, &dl);
        uint64_t took = pdw__mono_ms() - t0;
        pthread_mutex_unlock(&m);
        assert_int_equal(rc, ETIMEDOUT);
        assert_true(took >= 59);
        assert_true(took < 5000);
    }
    pthread_cond_destroy(&c);
}

/* ---- memory bounded by max_queued_bytes, not by the backlog ------------------------- */

/* A handler that waits at a gate, then checks each body (its padding tells its length). */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    int seen[400];
    int bad, calls;
} gate;

static char *big_body_in(char *buf, size_t cap, int seq)
{
    char pad[1025];
    memset(pad, 'x', 1024);
    pad[1024] = '\0';
    snprintf(buf, cap,
             "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
             "\"entity_id\":\"%d\",\"id\":\"b%d\"},\"data\":{\"seq\":%d,\"pad\":\"%s\"},"
             "\"previous\":{}}",
             seq % 8, seq, seq, pad);
    return buf;
}

static char *big_body(int seq) /* the test's thread only */
{
    static char buf[2048];
    return big_body_in(buf, sizeof buf, seq);
}

static int gate_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t cap,
                       void *user)
{
    (void)attempt, (void)errbuf, (void)cap;
    gate *g = user;
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    json_t *d = json_loadb(rec->body, rec->body_len, 0, NULL);
    json_t *data = json_object_get(d, "data");
    int seq = (int)json_integer_value(json_object_get(data, "seq"));
    const char *pad = json_string_value(json_object_get(data, "pad"));
    char want[2048];
    big_body_in(want, sizeof want, seq);
    if (!d || seq < 0 || seq >= 400 || !pad || strlen(pad) != 1024 || rec->key_len == 0 ||
        rec->body_len != strlen(want) || memcmp(want, rec->body, rec->body_len) != 0)
        g->bad++;
    else
        g->seen[seq]++;
    g->calls++;
    pthread_mutex_unlock(&g->lock);
    json_decref(d);
    return 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* 300 deliveries of 1 KB behind a handler that does not move: the worker holds at most its
 * budget (8 KB) of bodies, the rest by id; once the handler moves, each is handed on
 * exactly once, with the body read back from the journal intact. */
static void test_backlog_memory_bounded(void **state)
{
    (void)state;
    char *dir = tmpdir();
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = gate_handle;
    wo.handle_user = &g;
    wo.spool = sp;
    wo.threads = 2;
    wo.max_queued_bytes = 8192;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    uint64_t most = 0;
    for (int seq = 0; seq < 300; seq++) {
        const char *body = big_body(seq);
        pdw_spool_record rec = { append(sp, body), 1, "k", 1, body, strlen(body) };
        assert_int_equal(pdw_worker_submit(w, &rec), 0);
        pdw_worker_stats st;
        pdw_worker_get_stats(w, &st);
        if (st.queued_bytes > most)
            most = st.queued_bytes;
    }
    assert_true(most <= 8192);
    assert_true(most >= 4096); /* the budget is used before ids alone are queued */
    gate_open(&g);
    wait_handled(w, 300);
    pdw_worker_stats st;
    pdw_worker_get_stats(w, &st);
    assert_int_equal(st.queued_bytes, 0);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(g.bad, 0);
    assert_int_equal(g.calls, 300);
    for (int seq = 0; seq < 300; seq++)
        assert_int_equal(g.seen[seq], 1);
    pdw_spool_stats ss;
    pdw_spool_get_stats(sp, &ss);
    assert_int_equal(ss.pending, 0);
    pdw_spool_close(sp);
    rmtree(dir);
    free(dir);
}

/* After a restart, a backlog is recovered within the budget too, and handed on in order. */
static void test_recovery_memory_bounded(void **state)
{
    (void)state;
    char *dir = tmpdir();
    pdw_spool *sp = NULL;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    for (int seq = 0; seq < 200; seq++)
        append(sp, big_body(seq));
    pdw_spool_close(sp);
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, NULL, NULL), 0);
    gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = gate_handle;
    wo.handle_user = &g;
    wo.spool = sp;
    wo.threads = 3;
    wo.max_queued_bytes = 4096;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    assert_int_equal(pdw_worker_recover(w), 200);
    pdw_worker_stats st;
    pdw_worker_get_stats(w, &st);
    assert_true(st.queued_bytes <= 4096);
    gate_open(&g);
    wait_handled(w, 200);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(g.bad, 0);
    for (int seq = 0; seq < 200; seq++)
        assert_int_equal(g.seen[seq], 1);
    pdw_spool_get_stats(sp, &(pdw_spool_stats){ 0 });
    pdw_spool_close(sp);
    /* all marked handled: nothing comes back */
    pdw_spool_recovery rc;
    assert_int_equal(pdw_spool_open(&sp, dir, NULL, &rc, NULL), 0);
    pdw_spool_stats ss;
    pdw_spool_get_stats(sp, &ss);
    assert_int_equal(ss.pending, 0);
    pdw_spool_close(sp);
    rmtree(dir);
    free(dir);
}

/* Without a spool nothing can be read back: past the budget a submit is refused with
 * PDW_ENOSPC (503: Pipedrive retries), and accepted again once the queue has drained. */
static void test_no_spool_over_budget_enospc(void **state)
{
    (void)state;
    gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 }, 0, 0 };
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = gate_handle;
    wo.handle_user = &g;
    wo.threads = 1;
    wo.max_queued_bytes = 4096;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    int accepted = 0, refused = 0;
    for (int seq = 0; seq < 20; seq++) {
        const char *body = big_body(seq);
        pdw_spool_record rec = { 0, 1, "k", 1, body, strlen(body) };
        int rc = pdw_worker_submit(w, &rec);
        if (rc == 0)
            accepted++;
        else if (rc == PDW_ENOSPC)
            refused++;
        else
            fail_msg("submit: %d", rc);
    }
    assert_true(accepted >= 3 && accepted <= 5); /* 4 KB of ~1.2 KB bodies (+1 running) */
    assert_int_equal(accepted + refused, 20);
    gate_open(&g);
    wait_handled(w, (uint64_t)accepted);
    const char *body = big_body(399);
    pdw_spool_record rec = { 0, 1, "k", 1, body, strlen(body) };
    assert_int_equal(pdw_worker_submit(w, &rec), 0);
    wait_handled(w, (uint64_t)accepted + 1);
    pdw_worker_free(w); /* stops it first */
    assert_int_equal(g.bad, 0);
    assert_int_equal(g.calls, accepted + 1);
}

static int ok_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t cap,
                     void *user)
{
    (void)rec, (void)attempt, (void)errbuf, (void)cap, (void)user;
    return 0;
}

/* Every durable call that takes a pdw_error resets it at entry: failure, success (no stale
 * message), another failure with its own message. */
static void test_error_reset_by_every_call(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char path[256];
    pdw_error e = PDW_ERROR_INIT;

    /* pdw_spool_open */
    pdw_spool *sp = NULL;
    snprintf(path, sizeof path, "%s/no/such/dir", dir);
    pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
    so.version = 99;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_spool_open(&sp, dir, &so, NULL, &e), PDW_EVERSIONSTRUCT);
    assert_error_own(e, PDW_EVERSIONSTRUCT);
    snprintf(path, sizeof path, "%s/spool", dir);
    assert_int_equal(pdw_spool_open(&sp, path, NULL, NULL, &e), 0);
    assert_error_reset(e);
    pdw_spool *sp2 = NULL;
    assert_int_equal(pdw_spool_open(&sp2, path, NULL, NULL, &e), PDW_ELOCKED);
    assert_error_own(e, PDW_ELOCKED);

    /* pdw_spool_append, pdw_spool_append_nowait */
    static char big[70000];
    assert_int_equal(pdw_spool_append(sp, big, sizeof big, 1, "{}", 2, NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_spool_append(sp, "k", 1, 1, "{}", 2, NULL, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_spool_append_nowait(sp, big, sizeof big, 1, "{}", 2, NULL, &e),
                     PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_spool_append_nowait(sp, "k2", 2, 1, "{}", 2, NULL, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_spool_flush(sp, NULL), 0);
    pdw_spool_close(sp);

    /* pdw_worker_start */
    pdw_worker *w = NULL;
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_worker_start(&w, &wo, &e), PDW_EINVAL); /* no handler */
    assert_error_own(e, PDW_EINVAL);
    wo.handle = ok_handle;
    wo.threads = 1;
    assert_int_equal(pdw_worker_start(&w, &wo, &e), 0);
    assert_error_reset(e);
    pdw_worker_free(w); /* stops it first */
    wo.threads = 1000;
    assert_int_equal(pdw_worker_start(&w, &wo, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);

    /* pdw_dead_letters_open */
    pdw_dead_letters *dl = NULL;
    snprintf(path, sizeof path, "%s/no/such/dir/dead.jsonl", dir);
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_dead_letters_open(&dl, path, &e), PDW_EIO);
    assert_error_own(e, PDW_EIO);
    snprintf(path, sizeof path, "%s/dead.jsonl", dir);
    assert_int_equal(pdw_dead_letters_open(&dl, path, &e), 0);
    assert_error_reset(e);
    pdw_dead_letters_free(dl);
    assert_int_equal(pdw_dead_letters_open(&dl, NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);

    rmtree(dir);
    free(dir);
}

static int slow_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t cap,
                       void *user)
{
    (void)rec, (void)attempt, (void)errbuf, (void)cap;
    sleep_ms(20);
    atomic_fetch_add((atomic_int *)user, 1);
    return 0;
}

typedef struct stopper {
    pdw_worker *w;
    int returned_with; /* the handled count seen right after pdw_worker_stop() returned */
    atomic_int *handled;
} stopper;

static void *stop_thread(void *arg)
{
    stopper *s = arg;
    pdw_worker_stop(s->w);
    s->returned_with = atomic_load(s->handled);
    return NULL;
}

/* Stop and free are separate: pdw_worker_stop() drains (no spool), joins and returns once
 * stopped; a second stop, also concurrent, waits and does nothing more; a stopped worker
 * refuses deliveries but still answers its stats; pdw_worker_free() frees it (and stops a
 * running one first). */
static void test_stop_then_free(void **state)
{
    (void)state;
    atomic_int handled = 0;
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.handle = slow_handle;
    wo.handle_user = &handled;
    wo.threads = 2;
    pdw_worker *w = NULL;
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    static const char body[] = "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\","
                               "\"entity\":\"deal\",\"entity_id\":\"1\",\"id\":\"x\"},"
                               "\"data\":{}}";
    pdw_spool_record rec = { 1, 1, "k", 1, body, sizeof body - 1 };
    for (int i = 0; i < 10; i++)
        assert_int_equal(pdw_worker_submit(w, &rec), 0);
    stopper a = { w, -1, &handled }, b = { w, -1, &handled };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, stop_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, stop_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    /* both returned only once the queue was drained: no spool */
    assert_int_equal(a.returned_with, 10);
    assert_int_equal(b.returned_with, 10);
    pdw_worker_stop(w); /* idempotent */
    assert_int_equal(pdw_worker_submit(w, &rec), PDW_EINVAL);
    assert_int_equal(pdw_worker_submit_entity(w, &rec, "deal", "1"), PDW_EINVAL);
    pdw_worker_stats st;
    pdw_worker_get_stats(w, &st);
    assert_int_equal(st.handled, 10);
    assert_int_equal(st.queued, 0);
    assert_int_equal(atomic_load(&handled), 10);
    pdw_worker_free(w);
    pdw_worker_free(NULL);
    pdw_worker_stop(NULL);

    /* free of a running worker stops it first (here: drains it) */
    atomic_store(&handled, 0);
    assert_int_equal(pdw_worker_start(&w, &wo, NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pdw_worker_submit(w, &rec), 0);
    pdw_worker_free(w);
    assert_int_equal(atomic_load(&handled), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timed_wait_clock),
        cmocka_unit_test(test_order_per_entity),
        cmocka_unit_test(test_submit_event_order_per_entity),
        cmocka_unit_test(test_submit_entity_mixed_with_submit),
        cmocka_unit_test(test_submit_event_mixed_with_submit),
        cmocka_unit_test(test_submit_event_refuses_other_body),
        cmocka_unit_test(test_retries_then_success),
        cmocka_unit_test(test_dead_letter_file_and_callback),
        cmocka_unit_test(test_markers_survive_restart),
        cmocka_unit_test(test_drain_without_spool),
        cmocka_unit_test(test_stop_leaves_pending_in_spool),
        cmocka_unit_test(test_enospc_gives_503_then_recovers),
        cmocka_unit_test(test_backlog_memory_bounded),
        cmocka_unit_test(test_recovery_memory_bounded),
        cmocka_unit_test(test_no_spool_over_budget_enospc),
        cmocka_unit_test(test_error_reset_by_every_call),
        cmocka_unit_test(test_stop_then_free),
    };
    PDW_RUN_GROUP(tests);
}
