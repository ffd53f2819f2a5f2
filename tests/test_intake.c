/* The durable intake (pdwebhook/intake.h): the journal holds a delivery when its callback
 * runs; a failed flush answers the receiver's 503 and releases the dedup claim; duplicates
 * and refusals are answered inside the call; a restart hands pending deliveries on
 * exactly once and remembers their keys; one callback per request under concurrency; the
 * head check refuses a 413 before the body; an intake without a journal. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/sys/dedup_store.h"

#define AUTH "Basic dTpw" /* u:p */

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

/* ---- a shadow of the journal's writes, to see what is durable -------------------------
 * Every byte the spool writes is appended to `bytes`; a sync makes everything written so
 * far durable (synced). Writes can be made to fail (no space), as a full disk does. */
typedef struct shadow {
    pthread_mutex_t lock;
    char *bytes;
    size_t len, cap, synced;
    atomic_int fail_writes;
} shadow;

static shadow g_shadow = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0 };

static long shadow_write(int fd, const void *buf, size_t n, void *user)
{
    shadow *s = user;
    if (atomic_load(&s->fail_writes)) {
        errno = ENOSPC;
        return -1;
    }
    ssize_t k = write(fd, buf, n);
    if (k > 0) {
        pthread_mutex_lock(&s->lock);
        if (s->len + (size_t)k > s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 65536;
            while (cap < s->len + (size_t)k)
                cap *= 2;
            s->bytes = realloc(s->bytes, cap);
            assert_non_null(s->bytes);
            s->cap = cap;
        }
        memcpy(s->bytes + s->len, buf, (size_t)k);
        s->len += (size_t)k;
        pthread_mutex_unlock(&s->lock);
    }
    return (long)k;
}

static int shadow_sync(int fd, void *user)
{
    shadow *s = user;
    int rc = fdatasync(fd);
    if (rc == 0) {
        pthread_mutex_lock(&s->lock);
        s->synced = s->len;
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

/* 1 when `needle` is in the synced part of the journal's writes. */
static int shadow_durable(shadow *s, const char *needle)
{
    size_t n = strlen(needle);
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; !found && s->synced >= n && i <= s->synced - n; i++)
        found = memcmp(s->bytes + i, needle, n) == 0;
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void shadow_reset(shadow *s)
{
    pthread_mutex_lock(&s->lock);
    free(s->bytes);
    s->bytes = NULL;
    s->len = s->cap = s->synced = 0;
    atomic_store(&s->fail_writes, 0);
    pthread_mutex_unlock(&s->lock);
}

static pdw_spool_io g_io = { shadow_write, shadow_sync, &g_shadow };

/* ---- the worker's handler: how often each delivery was handed on --------------------- */

#define MAX_EVENTS 512

typedef struct handled {
    atomic_int total;
    atomic_int per[MAX_EVENTS]; /* by the N of "ev-N" */
    atomic_int fail;            /* 1: fail every attempt (left pending) */
} handled;

static int event_number(const char *body, size_t len)
{
    const char *p = strstr(body, "\"ev-");
    if (!p || p >= body + len)
        return -1;
    return atoi(p + 4);
}

static int handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
                  void *user)
{
    (void)attempt;
    handled *h = user;
    if (atomic_load(&h->fail)) {
        snprintf(errbuf, errcap, "failing on purpose");
        return 1;
    }
    char *copy = strndup(rec->body, rec->body_len);
    assert_non_null(copy);
    int n = event_number(copy, rec->body_len);
    free(copy);
    if (n >= 0 && n < MAX_EVENTS)
        atomic_fetch_add(&h->per[n], 1);
    atomic_fetch_add(&h->total, 1);
    return 0;
}

static void wait_handled(handled *h, int n)
{
    for (int i = 0; i < 1000 && atomic_load(&h->total) < n; i++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&h->total), n);
}

/* ---- requests and their callbacks -------------------------------------------------- */

typedef struct call {
    pdw_request req;
    pdw_header h[3];
    char body[8192];
    char clen[24];
    pdw_verdict v;
    atomic_int calls;
    pthread_t thread;      /* where the callback ran */
    int durable;           /* the body was in the synced journal when it ran */
    int status, reason;
    char retry_after[16];
} call;

/* A v2 delivery of event N, attempt A; auth "AUTH" or the given header value. */
static void make_call(call *c, int n, int attempt, const char *auth)
{
    memset(c, 0, sizeof *c);
    snprintf(c->body, sizeof c->body,
             "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
             "\"entity_id\":\"%d\",\"id\":\"ev-%d\",\"attempt\":%d,\"webhook_id\":\"9\","
             "\"timestamp\":\"2026-11-27T10:00:00.000Z\"},\"data\":{\"stage_id\":2},"
             "\"previous\":{\"stage_id\":1}}",
             n % 5, n, attempt);
    snprintf(c->clen, sizeof c->clen, "%zu", strlen(c->body));
    size_t k = 0;
    c->h[k++] = (pdw_header){ "Content-Type", 12, "application/json", 16 };
    c->h[k++] = (pdw_header){ "Content-Length", 14, c->clen, strlen(c->clen) };
    if (auth)
        c->h[k++] = (pdw_header){ "Authorization", 13, auth, strlen(auth) };
    pdw_request init = PDW_REQUEST_INIT;
    c->req = init;
    c->req.method = "POST";
    c->req.method_len = 4;
    c->req.headers = c->h;
    c->req.num_headers = k;
    c->req.body = c->body;
    c->req.body_len = strlen(c->body);
    pdw_verdict vi = PDW_VERDICT_INIT;
    c->v = vi;
}

static void on_done(pdw_verdict *v, void *user)
{
    call *c = user;
    assert_ptr_equal(v, &c->v);
    c->thread = pthread_self();
    c->durable = shadow_durable(&g_shadow, c->body);
    c->status = v->status;
    c->reason = v->reason;
    for (size_t i = 0; i < v->num_headers; i++)
        if (strcmp(v->headers[i].name, "Retry-After") == 0)
            snprintf(c->retry_after, sizeof c->retry_after, "%.*s", (int)v->headers[i].value_len,
                     v->headers[i].value);
    atomic_fetch_add(&c->calls, 1); /* last: the waiter reads the fields after it */
}

static void wait_call(call *c)
{
    for (int i = 0; i < 2000 && atomic_load(&c->calls) == 0; i++)
        sleep_ms(1);
    assert_int_equal(atomic_load(&c->calls), 1);
}

/* submit and wait for the answer; returns the submit's return value */
static int submit_wait(pdw_intake *in, call *c)
{
    int rc = pdw_intake_submit(in, &c->req, &c->v, on_done, c);
    assert_true(rc == 0 || rc == PDW_INTAKE_PENDING);
    if (rc == 0)
        assert_int_equal(atomic_load(&c->calls), 1); /* called back inside the call */
    wait_call(c);
    return rc;
}

/* ---- an intake on a journal in dir ------------------------------------------------------ */

typedef struct setup {
    pdw_credential cred;
    pdw_receiver_options ro;
    pdw_spool_options so;
    pdw_worker_options wo;
    pdw_intake_options io;
} setup;

static int g_dedup_change; /* the next make_intake()'s dedup_change option */

static pdw_intake *make_intake(setup *s, const char *dir, handled *h)
{
    memset(s, 0, sizeof *s);
    s->cred = (pdw_credential){ "u", "p" };
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    s->ro = ro;
    s->ro.credentials = &s->cred;
    s->ro.num_credentials = 1;
    s->ro.retry_after_seconds = 7;
    pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
    s->so = so;
    s->so.io = &g_io;
    s->so.retain_ms = 3600000; /* handled deliveries stay known across restarts */
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    s->wo = wo;
    s->wo.handle = handle;
    s->wo.handle_user = h;
    s->wo.threads = 2;
    s->wo.backoff_base_ms = 60000; /* a failing handler is not retried within a test */
    s->wo.marker_flush_ms = 5;
    assert_int_equal(pdw_intake_options_init(&s->io, PDW_INTAKE_OPTIONS_VERSION), 0);
    s->io.receiver = &s->ro;
    s->io.spool_dir = dir; /* NULL: no journal */
    s->io.spool = &s->so;
    s->io.worker = &s->wo;
    s->io.dedup_change = g_dedup_change;
    pdw_intake *in = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_intake_new(&in, &s->io, &err);
    if (rc != 0)
        fail_msg("pdw_intake_new: %s %s", pdw_err_name(rc), err.message);
    return in;
}

static pdw_intake_stats stats_of(pdw_intake *in)
{
    pdw_intake_stats st;
    memset(&st, 0, sizeof st);
    st.version = PDW_INTAKE_STATS_VERSION;
    assert_int_equal(pdw_intake_get_stats(in, &st), 0);
    return st;
}

static long start(pdw_intake *in)
{
    long n = -1;
    assert_int_equal(pdw_intake_start(in, &n, NULL), 0);
    return n;
}

/* A delivery is in the synced journal when its callback runs (and not before its flush):
 * called back on the committer thread, 200, the worker gets it, its retry is a duplicate. */
static void test_durable_before_callback(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h;
    memset(&h, 0, sizeof h);
    setup s;
    pdw_intake *in = make_intake(&s, dir, &h);
    assert_int_equal(start(in), 0);
    static call c, retry;
    make_call(&c, 1, 1, AUTH);
    assert_int_equal(submit_wait(in, &c), PDW_INTAKE_PENDING);
    assert_int_equal(c.status, 200);
    assert_int_equal(c.reason, PDW_OK);
    assert_true(c.durable);
    assert_false(pthread_equal(c.thread, pthread_self())); /* the committer's */
    wait_handled(&h, 1);
    assert_int_equal(atomic_load(&h.per[1]), 1);
    /* Pipedrive's retry: a duplicate, answered inside the call */
    make_call(&retry, 1, 2, AUTH);
    assert_int_equal(submit_wait(in, &retry), 0);
    assert_int_equal(retry.status, 200);
    assert_int_equal(retry.reason, PDW_EDUPLICATE);
    assert_true(pthread_equal(retry.thread, pthread_self()));
    pdw_intake_stats st = stats_of(in);
    assert_int_equal(st.durable, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.worker.handled, 1);
    pdw_intake_stats bad;
    memset(&bad, 0, sizeof bad);
    bad.version = 99;
    assert_int_equal(pdw_intake_get_stats(in, &bad), PDW_EVERSIONSTRUCT);
    pdw_intake_stop(in);
    pdw_intake_stop(in); /* idempotent */
    pdw_intake_free(in);
    assert_int_equal(atomic_load(&h.total), 1);
    pdw_test_rmtree(dir);
    free(dir);
}

/* A flush that fails (no space on the write) answers the receiver's 503 with its
 * Retry-After, releases the claim (the retry is new and accepted), and says so in the
 * stats and through on_error; nothing of it reaches the worker. */
typedef struct errors {
    atomic_int n;
    atomic_int last;
} errors;

static void on_error(int code, const char *message, void *user)
{
    errors *e = user;
    assert_non_null(message);
    atomic_store(&e->last, code);
    atomic_fetch_add(&e->n, 1);
}

static void test_failed_flush_503_releases_claim(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h;
    memset(&h, 0, sizeof h);
    errors e;
    memset(&e, 0, sizeof e);
    setup s;
    memset(&s, 0, sizeof s);
    /* on_error is an option of the intake: set it before new */
    pdw_intake *in = make_intake(&s, dir, &h);
    pdw_intake_free(in);
    s.io.on_error = on_error;
    s.io.error_user = &e;
    assert_int_equal(pdw_intake_new(&in, &s.io, NULL), 0);
    assert_int_equal(start(in), 0);
    static call c, retry, again;
    make_call(&c, 2, 1, AUTH);
    atomic_store(&g_shadow.fail_writes, 1);
    assert_int_equal(submit_wait(in, &c), PDW_INTAKE_PENDING);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.reason, PDW_ENOSPC);
    assert_string_equal(c.retry_after, "7"); /* the receiver's retry_after_seconds */
    assert_string_equal(c.v.body, "{\"ok\":false,\"error\":\"PDW_ENOSPC\"}");
    assert_false(c.durable);
    assert_true(atomic_load(&e.n) >= 1);
    assert_int_equal(atomic_load(&e.last), PDW_ENOSPC);
    pdw_intake_stats st = stats_of(in);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.durable, 0);
    assert_int_equal(st.spool_full, 1);
    /* space again: the retry is taken as new (the claim was released), and durable */
    atomic_store(&g_shadow.fail_writes, 0);
    make_call(&retry, 2, 2, AUTH);
    assert_int_equal(submit_wait(in, &retry), PDW_INTAKE_PENDING);
    assert_int_equal(retry.status, 200);
    assert_int_equal(retry.reason, PDW_OK);
    assert_true(retry.durable);
    make_call(&again, 2, 3, AUTH);
    assert_int_equal(submit_wait(in, &again), 0);
    assert_int_equal(again.reason, PDW_EDUPLICATE);
    wait_handled(&h, 1);
    st = stats_of(in);
    assert_int_equal(st.spool_full, 0);
    assert_int_equal(st.durable, 1);
    pdw_intake_free(in); /* stops first */
    assert_int_equal(atomic_load(&h.per[2]), 1);
    pdw_test_rmtree(dir);
    free(dir);
}

/* What needs no flush is answered inside the call, on the calling thread: refusals,
 * duplicates; nothing of it is journaled. */
static void test_refusals_and_duplicates_inside_the_call(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h;
    memset(&h, 0, sizeof h);
    setup s;
    pdw_intake *in = make_intake(&s, dir, &h);
    static call c;
    make_call(&c, 3, 1, AUTH);
    /* not started: refused, no callback */
    assert_int_equal(pdw_intake_submit(in, &c.req, &c.v, on_done, &c), PDW_EINVAL);
    assert_int_equal(atomic_load(&c.calls), 0);
    assert_int_equal(start(in), 0);
    assert_int_equal(pdw_intake_start(in, NULL, NULL), PDW_EINVAL); /* twice */
    assert_int_equal(pdw_intake_submit(in, &c.req, &c.v, NULL, &c), PDW_EINVAL);
    assert_int_equal(pdw_intake_submit(NULL, &c.req, &c.v, on_done, &c), PDW_EINVAL);
    assert_int_equal(atomic_load(&c.calls), 0);

    static call bad_auth, no_auth, bad_json, get, first, dup;
    make_call(&bad_auth, 4, 1, "Basic d3Jvbmc6cA==");
    assert_int_equal(submit_wait(in, &bad_auth), 0);
    assert_int_equal(bad_auth.status, 401);
    make_call(&no_auth, 4, 1, NULL);
    assert_int_equal(submit_wait(in, &no_auth), 0);
    assert_int_equal(no_auth.reason, PDW_EAUTHMISSING);
    make_call(&bad_json, 4, 1, AUTH);
    bad_json.body[strlen(bad_json.body) - 1] = ','; /* not JSON any more */
    assert_int_equal(submit_wait(in, &bad_json), 0);
    assert_int_equal(bad_json.status, 400);
    make_call(&get, 4, 1, AUTH);
    get.req.method = "GET";
    get.req.method_len = 3;
    assert_int_equal(submit_wait(in, &get), 0);
    assert_int_equal(get.status, 405);
    assert_true(pthread_equal(get.thread, pthread_self()));
    make_call(&first, 4, 1, AUTH);
    assert_int_equal(submit_wait(in, &first), PDW_INTAKE_PENDING);
    assert_int_equal(first.status, 200);
    make_call(&dup, 4, 1, AUTH); /* the same event from a second webhook */
    assert_int_equal(submit_wait(in, &dup), 0);
    assert_int_equal(dup.reason, PDW_EDUPLICATE);
    wait_handled(&h, 1);
    pdw_intake_stop(in);
    /* after stop: answered inside the call, flushed by the submitting thread */
    static call late;
    make_call(&late, 5, 1, AUTH);
    assert_int_equal(submit_wait(in, &late), 0);
    assert_int_equal(late.status, 200);
    assert_true(late.durable);
    pdw_intake_free(in);
    assert_int_equal(atomic_load(&h.per[5]), 0); /* pending in the journal: next start */
    pdw_test_rmtree(dir);
    free(dir);
}

/* A restart on the journal hands every pending delivery on, once; their retries are
 * duplicates (remembered from the journal); a third start hands nothing on again. */
static void test_restart_recovers_once(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h1;
    memset(&h1, 0, sizeof h1);
    atomic_store(&h1.fail, 1); /* nothing is handed on in the first life */
    setup s;
    pdw_intake *in = make_intake(&s, dir, &h1);
    assert_int_equal(start(in), 0);
    static call c[6];
    for (int i = 0; i < 6; i++) {
        make_call(&c[i], 10 + i, 1, AUTH);
        assert_int_equal(submit_wait(in, &c[i]), PDW_INTAKE_PENDING);
        assert_int_equal(c[i].status, 200);
    }
    pdw_intake_free(in); /* "crash" with everything pending (the markers were never due) */

    handled h2;
    memset(&h2, 0, sizeof h2);
    in = make_intake(&s, dir, &h2);
    pdw_intake_stats st = stats_of(in);
    assert_int_equal(st.recovery.pending, 6);
    assert_non_null(pdw_intake_spool(in));
    assert_non_null(pdw_intake_receiver(in));
    assert_int_equal(start(in), 6);
    wait_handled(&h2, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(atomic_load(&h2.per[10 + i]), 1);
    static call retry;
    make_call(&retry, 12, 2, AUTH);
    assert_int_equal(submit_wait(in, &retry), 0);
    assert_int_equal(retry.reason, PDW_EDUPLICATE);
    for (int i = 0; i < 200; i++) { /* the handled markers are flushed in the background */
        pdw_spool_stats ss;
        pdw_spool_get_stats(pdw_intake_spool(in), &ss);
        if (ss.pending == 0)
            break;
        sleep_ms(5);
    }
    pdw_intake_stop(in);
    pdw_intake_free(in);
    sleep_ms(20);
    assert_int_equal(atomic_load(&h2.total), 6);

    handled h3;
    memset(&h3, 0, sizeof h3);
    in = make_intake(&s, dir, &h3);
    assert_int_equal(start(in), 0);
    make_call(&retry, 15, 3, AUTH);
    assert_int_equal(submit_wait(in, &retry), 0);
    assert_int_equal(retry.reason, PDW_EDUPLICATE); /* still known (retained) */
    pdw_intake_free(in);
    assert_int_equal(atomic_load(&h3.total), 0);
    pdw_test_rmtree(dir);
    free(dir);
}

/* Many threads, new deliveries, duplicates and refusals mixed: every request is called
 * back exactly once; every accepted delivery is handed on once. */
#define THREADS 4
#define PER_THREAD 60

typedef struct worker_arg {
    pdw_intake *in;
    call *calls;
    int base;
} worker_arg;

static void *submitter(void *arg)
{
    worker_arg *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        call *c = &a->calls[i];
        int n = (a->base + i) % (THREADS * PER_THREAD / 2); /* every event twice */
        make_call(c, n, 1, i % 10 == 9 ? "Basic eDp5" : AUTH);
        int rc = pdw_intake_submit(a->in, &c->req, &c->v, on_done, c);
        assert_true(rc == 0 || rc == PDW_INTAKE_PENDING);
    }
    return NULL;
}

/* One change delivered by both webhooks of a v1 -> v2 migration (different delivery keys;
 * the shapes of tests/fixtures/v2-change.deal-pipedrive-docs.json and its v1 twin
 * derived/v1-updated.deal-pair.json, see derived/README.md): with dedup_change it is
 * handed on once and the second copy answered 200; without it, twice. */
static void set_body(call *c, const char *body)
{
    snprintf(c->body, sizeof c->body, "%s", body);
    snprintf(c->clen, sizeof c->clen, "%zu", strlen(c->body));
    c->h[1].value = c->clen;
    c->h[1].value_len = strlen(c->clen);
    c->req.body = c->body;
    c->req.body_len = strlen(c->body);
}

static void test_same_change_in_both_versions(void **state)
{
    (void)state;
    char *v2 = pdw_test_fixture("v2-change.deal-pipedrive-docs.json", NULL);
    char *v1 = pdw_test_fixture("derived/v1-updated.deal-pair.json", NULL);
    assert_non_null(v2);
    assert_non_null(v1);
    for (int on = 0; on <= 1; on++) {
        char *dir = pdw_test_tmpdir("intake");
        shadow_reset(&g_shadow);
        handled h;
        memset(&h, 0, sizeof h);
        setup s;
        g_dedup_change = on;
        pdw_intake *in = make_intake(&s, dir, &h);
        g_dedup_change = 0;
        assert_int_equal(start(in), 0);
        static call c[3];
        make_call(&c[0], 0, 1, AUTH);
        set_body(&c[0], v2);
        submit_wait(in, &c[0]);
        assert_int_equal(c[0].status, 200);
        assert_int_equal(c[0].reason, PDW_OK);
        assert_true(c[0].durable);
        make_call(&c[1], 0, 1, AUTH);
        set_body(&c[1], v1);
        submit_wait(in, &c[1]);
        assert_int_equal(c[1].status, 200);
        assert_int_equal(c[1].reason, PDW_OK);
        assert_int_equal(c[1].durable, !on); /* its twin's copy is not journaled */
        wait_handled(&h, on ? 1 : 2);
        sleep_ms(100); /* nothing more comes */
        assert_int_equal(atomic_load(&h.total), on ? 1 : 2);
        /* a retry of the v1 copy is a duplicate of its own delivery either way */
        make_call(&c[2], 0, 1, AUTH);
        set_body(&c[2], v1);
        submit_wait(in, &c[2]);
        assert_int_equal(c[2].status, 200);
        assert_int_equal(c[2].reason, PDW_EDUPLICATE);
        pdw_intake_stop(in);
        pdw_intake_free(in);
        pdw_test_rmtree(dir);
        free(dir);
    }
    free(v1);
    free(v2);
}

static void test_callback_exactly_once(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h;
    memset(&h, 0, sizeof h);
    setup s;
    pdw_intake *in = make_intake(&s, dir, &h);
    assert_int_equal(start(in), 0);
    static call calls[THREADS][PER_THREAD];
    worker_arg args[THREADS];
    pthread_t t[THREADS];
    for (int k = 0; k < THREADS; k++) {
        args[k] = (worker_arg){ in, calls[k], k * PER_THREAD };
        assert_int_equal(pthread_create(&t[k], NULL, submitter, &args[k]), 0);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    int accepted = 0, refused = 0, dups = 0;
    for (int k = 0; k < THREADS; k++)
        for (int i = 0; i < PER_THREAD; i++) {
            wait_call(&calls[k][i]);
            call *c = &calls[k][i];
            if (c->reason == PDW_OK) {
                accepted++;
                assert_true(c->durable);
            } else if (c->reason == PDW_EDUPLICATE) {
                dups++;
            } else {
                assert_int_equal(c->status, 401);
                refused++;
            }
        }
    assert_int_equal(accepted + dups + refused, THREADS * PER_THREAD);
    wait_handled(&h, accepted);
    pdw_intake_stop(in);
    for (int n = 0; n < THREADS * PER_THREAD / 2; n++)
        assert_true(atomic_load(&h.per[n]) <= 1);
    sleep_ms(20);
    for (int k = 0; k < THREADS; k++)
        for (int i = 0; i < PER_THREAD; i++)
            assert_int_equal(atomic_load(&calls[k][i].calls), 1);
    pdw_intake_free(in);
    pdw_test_rmtree(dir);
    free(dir);
}

/* Two steps: a Content-Length over the limit is refused by begin (413, no callback,
 * no body read); a good head goes on with finish; a pending request whose body never
 * comes is freed. */
static void test_head_check_413(void **state)
{
    (void)state;
    char *dir = pdw_test_tmpdir("intake");
    shadow_reset(&g_shadow);
    handled h;
    memset(&h, 0, sizeof h);
    setup s;
    pdw_intake *in = make_intake(&s, dir, &h);
    pdw_intake_free(in);
    s.ro.max_body = 1000;
    assert_int_equal(pdw_intake_new(&in, &s.io, NULL), 0);
    assert_int_equal(start(in), 0);
    static call big, good, lost;
    make_call(&big, 20, 1, AUTH);
    snprintf(big.clen, sizeof big.clen, "%d", 5000000);
    big.h[1].value_len = strlen(big.clen);
    pdw_intake_pending *p = (pdw_intake_pending *)&big; /* overwritten with NULL */
    assert_int_equal(pdw_intake_begin(&p, in, &big.req, &big.v), PDW_ETOOLARGE);
    assert_null(p);
    assert_int_equal(big.v.status, 413);
    assert_int_equal(atomic_load(&big.calls), 0);

    make_call(&good, 21, 1, AUTH);
    assert_int_equal(pdw_intake_begin(&p, in, &good.req, &good.v), 0);
    assert_non_null(p);
    int rc = pdw_intake_finish(p, good.body, strlen(good.body), &good.v, on_done, &good);
    assert_int_equal(rc, PDW_INTAKE_PENDING);
    wait_call(&good);
    assert_int_equal(good.status, 200);
    assert_true(good.durable);

    make_call(&lost, 22, 1, AUTH);
    assert_int_equal(pdw_intake_begin(&p, in, &lost.req, &lost.v), 0);
    pdw_intake_pending_free(p); /* the client went away */
    pdw_intake_pending_free(NULL);
    assert_int_equal(pdw_intake_finish(NULL, "", 0, &lost.v, on_done, &lost), PDW_EINVAL);
    assert_int_equal(atomic_load(&lost.calls), 0);
    wait_handled(&h, 1);
    pdw_intake_free(in);
    pdw_test_rmtree(dir);
    free(dir);
}

/* Without a journal: answered inside the call once queued (not durable), handed on;
 * after stop, 503 (nothing could keep it). */
static void test_without_journal(void **state)
{
    (void)state;
    handled h;
    memset(&h, 0, sizeof h);
    setup s;
    pdw_intake *in = make_intake(&s, NULL, &h);
    assert_null(pdw_intake_spool(in));
    assert_int_equal(start(in), 0);
    static call c, late;
    make_call(&c, 30, 1, AUTH);
    assert_int_equal(submit_wait(in, &c), 0);
    assert_int_equal(c.status, 200);
    wait_handled(&h, 1);
    pdw_intake_stop(in);
    make_call(&late, 31, 1, AUTH);
    assert_int_equal(submit_wait(in, &late), 0);
    assert_int_equal(late.status, 503);
    assert_string_equal(late.retry_after, "7");
    pdw_intake_free(in);
    assert_int_equal(atomic_load(&h.total), 1);
}

static int some_hook(const pdw_event *ev, void *request_user, void *user)
{
    (void)ev, (void)request_user, (void)user;
    return 0;
}

/* Options: versions, the accept hook reserved, the receiver's own errors. */
static void test_options(void **state)
{
    (void)state;
    pdw_intake_options o;
    assert_int_equal(pdw_intake_options_init(&o, 99), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_intake_options_init(NULL, PDW_INTAKE_OPTIONS_VERSION), PDW_EINVAL);
    assert_int_equal(pdw_intake_options_init(&o, PDW_INTAKE_OPTIONS_VERSION), 0);
    pdw_intake_options m = PDW_INTAKE_OPTIONS_INIT;
    assert_int_equal(o.version, m.version);
    assert_null(o.receiver);
    assert_null(o.spool_dir);
    assert_null(o.spool);
    assert_null(o.worker);
    assert_null(o.error_user);
    assert_null(o.allocator);
    pdw_intake *in = (pdw_intake *)&o;
    pdw_error err;
    assert_int_equal(pdw_intake_new(&in, &o, &err), PDW_EINVAL); /* no receiver options */
    assert_null(in);
    assert_int_equal(err.code, PDW_EINVAL);
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    o.receiver = &ro;
    assert_int_equal(pdw_intake_new(&in, &o, &err), PDW_ENOAUTH); /* the receiver's */
    ro.insecure_no_auth = 1;
    ro.accept = some_hook;
    assert_int_equal(pdw_intake_new(&in, &o, &err), PDW_EINVAL);
    ro.accept = NULL;
    o.version = 2;
    assert_int_equal(pdw_intake_new(&in, &o, &err), PDW_EVERSIONSTRUCT);
    o.version = PDW_INTAKE_OPTIONS_VERSION;
    assert_int_equal(pdw_intake_new(&in, &o, &err), 0);
    assert_int_equal(err.code, PDW_OK); /* reset by the call */
    pdw_intake_free(in);
    pdw_intake_free(NULL);
    pdw_intake_stop(NULL);
    assert_null(pdw_intake_receiver(NULL));
}

/* A dedup store that counts its frees. */
typedef struct freed_store {
    pdw_dedup_store parent;
    int freed;
} freed_store;

static int fs_claim(pdw_dedup_store *s, const char *k, size_t n, uint64_t now, uint64_t ttl)
{
    (void)s, (void)k, (void)n, (void)now, (void)ttl;
    return PDW_CLAIM_NEW;
}
static int fs_release(pdw_dedup_store *s, const char *k, size_t n)
{
    (void)s, (void)k, (void)n;
    return 0;
}
static int fs_confirm(pdw_dedup_store *s, const char *k, size_t n, uint64_t now, uint64_t ttl)
{
    (void)s, (void)k, (void)n, (void)now, (void)ttl;
    return 0;
}
static void fs_free(pdw_dedup_store *s)
{
    ((freed_store *)s)->freed++;
}

/* The dedup store of the receiver options is the intake's whatever pdw_intake_new()
 * returns: freed once with the intake, or at once when its creation fails, before the
 * receiver (an intake option refused) or by it (the receiver's own refusal). */
static void test_dedup_store_taken_over(void **state)
{
    (void)state;
    freed_store fs = { PDW_DEDUP_STORE_INIT, 0 };
    fs.parent.claim = fs_claim;
    fs.parent.release = fs_release;
    fs.parent.confirm = fs_confirm;
    fs.parent.free = fs_free;
    pdw_intake_options o = PDW_INTAKE_OPTIONS_INIT;
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    ro.dedup = &fs.parent;
    ro.insecure_no_auth = 1;
    o.receiver = &ro;
    pdw_intake *in = NULL;
    ro.accept = some_hook; /* refused by the intake, before its receiver exists */
    assert_int_equal(pdw_intake_new(&in, &o, NULL), PDW_EINVAL);
    assert_int_equal(fs.freed, 1);
    ro.accept = NULL;
    ro.insecure_no_auth = 0; /* refused by the receiver */
    assert_int_equal(pdw_intake_new(&in, &o, NULL), PDW_ENOAUTH);
    assert_int_equal(fs.freed, 2);
    ro.insecure_no_auth = 1;
    assert_int_equal(pdw_intake_new(&in, &o, NULL), 0);
    assert_int_equal(fs.freed, 2);
    pdw_intake_free(in);
    assert_int_equal(fs.freed, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_before_callback),
        cmocka_unit_test(test_dedup_store_taken_over),
        cmocka_unit_test(test_failed_flush_503_releases_claim),
        cmocka_unit_test(test_refusals_and_duplicates_inside_the_call),
        cmocka_unit_test(test_restart_recovers_once),
        cmocka_unit_test(test_callback_exactly_once),
        cmocka_unit_test(test_same_change_in_both_versions),
        cmocka_unit_test(test_head_check_413),
        cmocka_unit_test(test_without_journal),
        cmocka_unit_test(test_options),
    };
    PDW_RUN_GROUP(tests);
}
