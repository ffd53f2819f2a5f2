/* Tests for lib/router.c: patterns, aliases, wildcards, order, filters, fallback, errors,
 * freezing, scale, concurrency and allocation failure. Events are built by hand (the
 * router only reads action, object, merge and the changed-field cache). */
#include "pdw_test.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* What ran, in order: each handler appends its id. */
typedef struct run_log {
    int ids[256];
    size_t n;
} run_log;

/* The user pointer of a recording handler. */
typedef struct tag {
    run_log *log;
    int id;
    int rc; /* what the handler returns */
} tag;

static int record(const pdw_event *ev, void *user)
{
    (void)ev;
    tag *t = user;
    if (t->log->n < sizeof t->log->ids / sizeof t->log->ids[0])
        t->log->ids[t->log->n++] = t->id;
    return t->rc;
}

static void make_event(pdw_event *ev, int action, const char *object, int merge)
{
    memset(ev, 0, sizeof *ev);
    ev->version = 2;
    ev->action = action;
    /* memcpy rather than snprintf: a name that does not fit is a bug in the test, and gcc
     * -O2 warns about possible truncation for computed names */
    size_t n = strlen(object);
    assert_true(n < sizeof ev->object);
    memcpy(ev->object, object, n + 1);
    ev->merge = merge;
    /* "built, nothing changed": pdw_event_changed() answers from the cache and never
     * looks at the (absent) body */
    ev->changed_state = 1;
}

static void set_changed(pdw_event *ev, const char *const *names, size_t n)
{
    ev->changed_state = 1;
    ev->changed = (char **)names;
    ev->changed_count = n;
}

static pdw_router *new_router(void)
{
    pdw_router *r = NULL;
    assert_int_equal(pdw_router_new(&r, NULL, NULL), 0);
    assert_non_null(r);
    return r;
}

/* Dispatch and compare the ids that ran (in order) with want[0..n). */
static void expect_run(const pdw_router *r, run_log *log, const pdw_event *ev, const int *want,
                       size_t n)
{
    log->n = 0;
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, ev, &res), 0);
    if (log->n != n) {
        fprintf(stderr, "event %s.%s merge=%d: %zu handlers ran, want %zu:",
                pdw__action_name(ev->action), ev->object, ev->merge, log->n, n);
        for (size_t i = 0; i < log->n; i++)
            fprintf(stderr, " %d", log->ids[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(log->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(log->ids[i], want[i]);
    assert_int_equal(res.matched, n);
    assert_int_equal(res.failed, 0);
    assert_int_equal(res.first_failure, 0);
}

typedef struct counting_alloc {
    long fail_at; /* the 1-based allocation that fails; 0 never */
    long calls;
    long live;
} counting_alloc;

static void *ca_malloc(size_t n, void *user)
{
    counting_alloc *c = user;
    if (++c->calls == c->fail_at)
        return NULL;
    void *p = malloc(n);
    if (p)
        c->live++;
    return p;
}

static void *ca_realloc(void *p, size_t n, void *user)
{
    counting_alloc *c = user;
    if (++c->calls == c->fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        c->live++;
    return q;
}

static void ca_free(void *p, void *user)
{
    counting_alloc *c = user;
    c->live--;
    free(p);
}

#define WANT(...) (const int[]){ __VA_ARGS__ }, sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int)
#define WANT_NONE NULL, 0

/* ---- the alias and wildcard matrix -------------------------------------------------- */

static const char *const matrix_patterns[] = {
    "updated.deal", /* 0 */
    "change.deal",  /* 1 */
    "added.deal",   /* 2 */
    "create.*",     /* 3 */
    "*.deal",       /* 4 */
    "*.*",          /* 5 */
    "deleted.*",    /* 6 */
    "merged.deal",  /* 7 */
    "merged.*",     /* 8 */
    "updated.deal_product", /* 9 */
    "delete.deal_product",  /* 10 */
    "*.deal_product",       /* 11 */
    "create.person",        /* 12 */
};
#define MATRIX_N (sizeof matrix_patterns / sizeof matrix_patterns[0])

typedef struct matrix {
    pdw_router *r;
    run_log log;
    tag tags[MATRIX_N];
} matrix;

static void matrix_setup(matrix *m)
{
    memset(m, 0, sizeof *m);
    m->r = new_router();
    for (size_t i = 0; i < MATRIX_N; i++) {
        m->tags[i] = (tag){ &m->log, (int)i, 0 };
        pdw_error err;
        pdw_error_clear(&err);
        assert_int_equal(pdw_router_on(m->r, matrix_patterns[i], record, &m->tags[i], &err), 0);
        assert_int_equal(err.code, PDW_OK);
    }
    assert_int_equal(pdw_router_count(m->r), MATRIX_N);
}

static void matrix_create(void **state)
{
    (void)state;
    matrix m;
    matrix_setup(&m);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CREATE, "deal", 0);
    expect_run(m.r, &m.log, &ev, WANT(2, 3, 4, 5));
    make_event(&ev, PDW__ACT_CREATE, "person", 0);
    expect_run(m.r, &m.log, &ev, WANT(3, 5, 12));
    make_event(&ev, PDW__ACT_CREATE, "deal_product", 0);
    expect_run(m.r, &m.log, &ev, WANT(3, 5, 11));
    make_event(&ev, PDW__ACT_CREATE, "project", 0);
    expect_run(m.r, &m.log, &ev, WANT(3, 5));
    pdw_router_free(m.r);
}

static void matrix_change(void **state)
{
    (void)state;
    matrix m;
    matrix_setup(&m);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    expect_run(m.r, &m.log, &ev, WANT(0, 1, 4, 5));
    make_event(&ev, PDW__ACT_CHANGE, "person", 0);
    expect_run(m.r, &m.log, &ev, WANT(5));
    make_event(&ev, PDW__ACT_CHANGE, "deal_product", 0);
    expect_run(m.r, &m.log, &ev, WANT(5, 9, 11));
    make_event(&ev, PDW__ACT_CHANGE, "project", 0);
    expect_run(m.r, &m.log, &ev, WANT(5));
    pdw_router_free(m.r);
}

static void matrix_delete(void **state)
{
    (void)state;
    matrix m;
    matrix_setup(&m);
    pdw_event ev;
    make_event(&ev, PDW__ACT_DELETE, "deal", 0);
    expect_run(m.r, &m.log, &ev, WANT(4, 5, 6));
    make_event(&ev, PDW__ACT_DELETE, "person", 0);
    expect_run(m.r, &m.log, &ev, WANT(5, 6));
    make_event(&ev, PDW__ACT_DELETE, "deal_product", 0);
    expect_run(m.r, &m.log, &ev, WANT(5, 6, 10, 11));
    pdw_router_free(m.r);
}

/* merged.X matches merges only; change.X, updated.X and the wildcards match them too. */
static void matrix_merge(void **state)
{
    (void)state;
    matrix m;
    matrix_setup(&m);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 1);
    expect_run(m.r, &m.log, &ev, WANT(0, 1, 4, 5, 7, 8));
    make_event(&ev, PDW__ACT_CHANGE, "person", 1);
    expect_run(m.r, &m.log, &ev, WANT(5, 8));
    make_event(&ev, PDW__ACT_CHANGE, "deal_product", 1);
    expect_run(m.r, &m.log, &ev, WANT(5, 8, 9, 11));
    /* a merge flag on another action never happens, but merged.* must not match it */
    make_event(&ev, PDW__ACT_DELETE, "deal", 1);
    expect_run(m.r, &m.log, &ev, WANT(4, 5, 6));
    pdw_router_free(m.r);
}

/* Object names route exactly as written: no case folding, no prefix matches. */
static void object_match_is_exact(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 0 };
    assert_int_equal(pdw_router_on(r, "change.deal", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on(r, "change.deal_product", record, &t1, NULL), 0);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "Deal", 0);
    expect_run(r, &log, &ev, WANT_NONE);
    make_event(&ev, PDW__ACT_CHANGE, "dea", 0);
    expect_run(r, &log, &ev, WANT_NONE);
    make_event(&ev, PDW__ACT_CHANGE, "deal_product", 0);
    expect_run(r, &log, &ev, WANT(1));
    make_event(&ev, PDW__ACT_CHANGE, "", 0);
    expect_run(r, &log, &ev, WANT_NONE);
    pdw_router_free(r);
}

/* ---- order -------------------------------------------------------------------------- */

static void order_across_buckets(void **state)
{
    (void)state;
    static const char *const pats[] = { "*.*",    "change.deal", "*.deal",  "change.*",
                                        "*.*",    "updated.deal", "*.deal", "updated.*",
                                        "merged.deal" };
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag tags[9];
    for (int i = 0; i < 9; i++) {
        tags[i] = (tag){ &log, i, 0 };
        assert_int_equal(pdw_router_on(r, pats[i], record, &tags[i], NULL), 0);
    }
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    expect_run(r, &log, &ev, WANT(0, 1, 2, 3, 4, 5, 6, 7));
    make_event(&ev, PDW__ACT_CHANGE, "deal", 1);
    expect_run(r, &log, &ev, WANT(0, 1, 2, 3, 4, 5, 6, 7, 8));
    make_event(&ev, PDW__ACT_CREATE, "deal", 0);
    expect_run(r, &log, &ev, WANT(0, 2, 4, 6));
    make_event(&ev, PDW__ACT_CHANGE, "person", 0);
    expect_run(r, &log, &ev, WANT(0, 3, 4, 7));
    pdw_router_free(r);
}

static void several_handlers_one_pattern(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag tags[5];
    for (int i = 0; i < 5; i++) {
        tags[i] = (tag){ &log, i, 0 };
        /* alternate the two spellings: still one pattern, one bucket */
        assert_int_equal(pdw_router_on(r, i % 2 ? "updated.deal" : "change.deal", record,
                                       &tags[i], NULL),
                         0);
    }
    assert_int_equal(pdw_router_count(r), 5);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    expect_run(r, &log, &ev, WANT(0, 1, 2, 3, 4));
    /* the same handler and user twice runs twice */
    pdw_router_free(r);
}

/* ---- field filter ------------------------------------------------------------------- */

static void field_filter(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 0 }, t2 = { &log, 2, 0 };
    assert_int_equal(pdw_router_on_change(r, "change.deal", "stage_id", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on(r, "change.deal", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "*.*", "custom_fields.abc123", record, &t2, NULL),
                     0);
    assert_int_equal(pdw_router_count(r), 3);

    static const char *const moved[] = { "title", "stage_id" };
    static const char *const renamed[] = { "title" };
    static const char *const custom[] = { "custom_fields.abc123" };
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    set_changed(&ev, moved, 2);
    expect_run(r, &log, &ev, WANT(0, 1));
    set_changed(&ev, renamed, 1);
    expect_run(r, &log, &ev, WANT(1));
    set_changed(&ev, NULL, 0);
    expect_run(r, &log, &ev, WANT(1));
    set_changed(&ev, custom, 1);
    expect_run(r, &log, &ev, WANT(1, 2));
    /* the filter narrows its pattern, it does not widen it */
    make_event(&ev, PDW__ACT_CREATE, "deal", 0);
    set_changed(&ev, moved, 2);
    expect_run(r, &log, &ev, WANT_NONE);
    pdw_router_free(r);
}

/* The field is copied: the caller's buffer may change after registration. */
static void field_filter_copies_field(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 };
    char field[16];
    char pattern[16];
    snprintf(field, sizeof field, "stage_id");
    snprintf(pattern, sizeof pattern, "change.deal");
    assert_int_equal(pdw_router_on_change(r, pattern, field, record, &t0, NULL), 0);
    memset(field, 'x', sizeof field - 1);
    memset(pattern, 'x', sizeof pattern - 1);
    static const char *const moved[] = { "stage_id" };
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    set_changed(&ev, moved, 1);
    expect_run(r, &log, &ev, WANT(0));
    pdw_router_free(r);
}

/* pdw_event_changed() failing (ENOMEM) is a failure of that handler, and of dispatch. */
typedef struct err_log {
    char patterns[8][64];
    int rcs[8];
    const pdw_event *evs[8];
    void *users[8];
    size_t n;
} err_log;

static void on_err(const pdw_event *ev, const char *pattern, int rc, void *user)
{
    err_log *e = user;
    if (e->n < 8) {
        snprintf(e->patterns[e->n], sizeof e->patterns[e->n], "%s", pattern);
        e->rcs[e->n] = rc;
        e->evs[e->n] = ev;
        e->users[e->n] = user;
        e->n++;
    }
}

/* A v2 change of a deal's stage, as Pipedrive sends it (trimmed). */
static const char v2_stage_change[] =
    "{\"data\":{\"id\":8,\"stage_id\":2,\"title\":\"Big deal\"},"
    "\"previous\":{\"stage_id\":1},"
    "\"meta\":{\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
    "\"id\":\"df47d877-b58c-4886-91cd-1aa83e1d7366\","
    "\"timestamp\":\"2022-11-24T15:11:55.724Z\",\"version\":\"2.0\"}}";

static void field_filter_failure(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    err_log el;
    memset(&el, 0, sizeof el);
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 0 }, fb = { &log, 99, 0 };
    assert_int_equal(pdw_router_on_change(r, "updated.deal", "stage_id", record, &t0, NULL),
                     0);
    assert_int_equal(pdw_router_on(r, "change.deal", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on_unhandled(r, record, &fb), 0);
    assert_int_equal(pdw_router_on_error(r, on_err, &el), 0);

    /* A real parsed event whose allocator fails the first allocation after parsing: the
     * changed-field list cannot be built, pdw_event_changed() answers PDW_ENOMEM. */
    counting_alloc ca = { 0, 0, 0 };
    pdw_allocator al = { ca_malloc, ca_realloc, ca_free, &ca };
    pdw_event ev;
    assert_int_equal(pdw__event_init(&ev, v2_stage_change, sizeof v2_stage_change - 1, 0, &al,
                                     NULL),
                     0);
    assert_int_equal(ev.action, PDW__ACT_CHANGE);
    assert_string_equal(ev.object, "deal");
    ca.fail_at = ca.calls + 1;
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), PDW_ENOMEM);
    assert_int_equal(log.n, 1); /* the filtered handler did not run; the other did */
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(res.matched, 2); /* so the fallback did not run */
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.first_failure, PDW_ENOMEM);
    assert_int_equal(el.n, 1);
    assert_string_equal(el.patterns[0], "updated.deal");
    assert_int_equal(el.rcs[0], PDW_ENOMEM);

    /* memory is back: the same event now routes to both */
    log.n = 0;
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), 0);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 0);
    assert_int_equal(log.ids[1], 1);
    assert_int_equal(res.failed, 0);
    pdw__event_fini(&ev);
    pdw_router_free(r);
}

/* End to end with the parser: a v2 change carrying merged_from_id is a merge. */
static void parsed_events_route(void **state)
{
    (void)state;
    static const char merge[] =
        "{\"data\":{\"id\":8},\"previous\":{\"stage_id\":1},"
        "\"meta\":{\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
        "\"id\":\"0b7c3b7e-0000-4000-8000-000000000001\",\"merged_from_id\":\"9\","
        "\"timestamp\":\"2022-11-24T15:11:55.724Z\",\"version\":\"2.0\"}}";
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 0 }, t2 = { &log, 2, 0 }, t3 = { &log, 3, 0 };
    assert_int_equal(pdw_router_on(r, "merged.deal", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "updated.deal", "stage_id", record, &t1, NULL),
                     0);
    assert_int_equal(pdw_router_on_change(r, "change.*", "title", record, &t2, NULL), 0);
    assert_int_equal(pdw_router_on(r, "create.deal", record, &t3, NULL), 0);
    pdw_event ev;
    assert_int_equal(pdw__event_init(&ev, v2_stage_change, sizeof v2_stage_change - 1, 0, NULL,
                                     NULL),
                     0);
    expect_run(r, &log, &ev, WANT(1));
    pdw__event_fini(&ev);
    assert_int_equal(pdw__event_init(&ev, merge, sizeof merge - 1, 0, NULL, NULL), 0);
    assert_int_equal(ev.merge, 1);
    expect_run(r, &log, &ev, WANT(0, 1));
    pdw__event_fini(&ev);
    pdw_router_free(r);
}

/* ---- fallback, errors --------------------------------------------------------------- */

static void fallback_only_when_unmatched(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 0 }, fb = { &log, 99, 0 }, fb2 = { &log, 98, 0 };
    assert_int_equal(pdw_router_on(r, "change.deal", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on_change(r, "change.person", "name", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on(r, "merged.organization", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on_unhandled(r, record, &fb2), 0);
    assert_int_equal(pdw_router_on_unhandled(r, record, &fb), 0); /* replaces */
    assert_int_equal(pdw_router_count(r), 3); /* the fallback is not a pattern */

    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    expect_run(r, &log, &ev, WANT(0));
    make_event(&ev, PDW__ACT_CREATE, "deal", 0);
    expect_run(r, &log, &ev, WANT(99));
    /* a filter that does not pass leaves the event unhandled */
    make_event(&ev, PDW__ACT_CHANGE, "person", 0);
    expect_run(r, &log, &ev, WANT(99));
    static const char *const named[] = { "name" };
    set_changed(&ev, named, 1);
    expect_run(r, &log, &ev, WANT(1));
    /* so does merged.X for a plain change */
    make_event(&ev, PDW__ACT_CHANGE, "organization", 0);
    expect_run(r, &log, &ev, WANT(99));
    make_event(&ev, PDW__ACT_CHANGE, "organization", 1);
    expect_run(r, &log, &ev, WANT(1));
    pdw_router_free(r);
}

static void fallback_failure_reported(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    err_log el;
    memset(&el, 0, sizeof el);
    tag fb = { &log, 99, 7 };
    assert_int_equal(pdw_router_on_unhandled(r, record, &fb), 0);
    assert_int_equal(pdw_router_on_error(r, on_err, &el), 0);
    pdw_event ev;
    make_event(&ev, PDW__ACT_DELETE, "note", 0);
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), PDW_EHANDLER);
    assert_int_equal(res.matched, 1);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.first_failure, 7);
    assert_int_equal(el.n, 1);
    assert_string_equal(el.patterns[0], "(unhandled)");
    assert_int_equal(el.rcs[0], 7);
    assert_ptr_equal(el.evs[0], &ev);
    pdw_router_free(r);
}

/* Without handlers or fallback a dispatch is a successful no-op; result may be NULL. */
static void dispatch_nothing_registered(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    pdw_event ev;
    make_event(&ev, PDW__ACT_CREATE, "deal", 0);
    pdw_dispatch_result res = { 5, 5, 5 };
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), 0);
    assert_int_equal(res.matched, 0);
    assert_int_equal(res.failed, 0);
    assert_int_equal(res.first_failure, 0);
    assert_int_equal(pdw_router_dispatch(r, &ev, NULL), 0);
    pdw_router_free(r);
}

static void error_callback_gets_pattern_and_rc(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    err_log el;
    memset(&el, 0, sizeof el);
    tag t0 = { &log, 0, -5 }, t1 = { &log, 1, 0 }, t2 = { &log, 2, 42 };
    assert_int_equal(pdw_router_on(r, "updated.deal", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on(r, "*.*", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on(r, "merged.*", record, &t2, NULL), 0);
    assert_int_equal(pdw_router_on_error(r, on_err, &el), 0);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 1);
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), PDW_EHANDLER);
    assert_int_equal(el.n, 2);
    /* the pattern as registered, not its canonical form */
    assert_string_equal(el.patterns[0], "updated.deal");
    assert_int_equal(el.rcs[0], -5);
    assert_string_equal(el.patterns[1], "merged.*");
    assert_int_equal(el.rcs[1], 42);
    assert_ptr_equal(el.evs[0], &ev);
    assert_ptr_equal(el.users[0], &el);
    assert_int_equal(res.first_failure, -5);
    pdw_router_free(r);
}

static void failing_handler_does_not_stop_later(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 }, t1 = { &log, 1, 3 }, t2 = { &log, 2, 0 }, t3 = { &log, 3, -1 },
        t4 = { &log, 4, 0 };
    assert_int_equal(pdw_router_on(r, "create.activity", record, &t0, NULL), 0);
    assert_int_equal(pdw_router_on(r, "added.activity", record, &t1, NULL), 0);
    assert_int_equal(pdw_router_on(r, "*.activity", record, &t2, NULL), 0);
    assert_int_equal(pdw_router_on(r, "create.*", record, &t3, NULL), 0);
    assert_int_equal(pdw_router_on(r, "*.*", record, &t4, NULL), 0);
    tag fb = { &log, 99, 0 };
    assert_int_equal(pdw_router_on_unhandled(r, record, &fb), 0);
    /* no error callback set: failures are still counted */
    pdw_event ev;
    make_event(&ev, PDW__ACT_CREATE, "activity", 0);
    pdw_dispatch_result res;
    assert_int_equal(pdw_router_dispatch(r, &ev, &res), PDW_EHANDLER);
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.ids[i], i);
    assert_int_equal(res.matched, 5);
    assert_int_equal(res.failed, 2);
    assert_int_equal(res.first_failure, 3);
    /* failed handlers still matched: the fallback did not run (log.n above is 5) */
    pdw_router_free(r);
}

/* ---- freezing ----------------------------------------------------------------------- */

static void expect_frozen(pdw_router *r, tag *t)
{
    pdw_error err;
    pdw_error_clear(&err);
    size_t before = pdw_router_count(r);
    assert_int_equal(pdw_router_on(r, "*.*", record, t, &err), PDW_EFROZEN);
    assert_int_equal(err.code, PDW_EFROZEN);
    assert_true(err.message[0] != '\0');
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_on_change(r, "change.deal", "stage_id", record, t, &err),
                     PDW_EFROZEN);
    assert_int_equal(err.code, PDW_EFROZEN);
    assert_int_equal(pdw_router_on_unhandled(r, record, t), PDW_EFROZEN);
    assert_int_equal(pdw_router_on_error(r, on_err, t), PDW_EFROZEN);
    assert_int_equal(pdw_router_count(r), before);
}

static void frozen_after_dispatch(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 };
    assert_int_equal(pdw_router_on(r, "change.deal", record, &t0, NULL), 0);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    expect_run(r, &log, &ev, WANT(0));
    expect_frozen(r, &t0);
    /* still dispatches as before */
    expect_run(r, &log, &ev, WANT(0));
    pdw_router_free(r);
}

static void frozen_after_freeze(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t0 = { &log, 0, 0 };
    assert_int_equal(pdw_router_on(r, "delete.*", record, &t0, NULL), 0);
    pdw_router_freeze(r);
    expect_frozen(r, &t0);
    pdw_router_freeze(r); /* idempotent */
    expect_frozen(r, &t0);
    pdw_event ev;
    make_event(&ev, PDW__ACT_DELETE, "lead", 0);
    expect_run(r, &log, &ev, WANT(0));
    pdw_router_free(r);
}

/* ---- argument checking -------------------------------------------------------------- */

static void invalid_patterns(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "deal",
        "*",
        "foo.deal",
        "updated.",
        ".deal",
        ".",
        "..",
        "updated.deal.x",
        "updated..deal",
        " updated.deal",
        "updated.deal ",
        "updated .deal",
        "updated. deal",
        "change.de al",
        "change.de-al",
        "change.deal\n",
        "Updated.deal",
        "**.deal",
        "change.**",
        "merged",
        "*.",
        ".*",
        "update.deal",
        "changed.deal",
        "change.d\xc3\xa9" "al",
        /* 49 bytes of object: one over PDW_NAME_MAX */
        "change.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        /* far over */
        "change.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    pdw_router *r = new_router();
    tag t = { NULL, 0, 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw_router_on(r, bad[i], record, &t, &err);
        if (rc != PDW_EPATTERN)
            fprintf(stderr, "pattern \"%s\" gave %d\n", bad[i], rc);
        assert_int_equal(rc, PDW_EPATTERN);
        assert_int_equal(err.code, PDW_EPATTERN);
        assert_true(err.message[0] != '\0');
        assert_non_null(memchr(err.message, '\0', sizeof err.message));
        pdw_error_clear(&err);
        assert_int_equal(pdw_router_on_change(r, bad[i], "stage_id", record, &t, &err),
                         PDW_EPATTERN);
        assert_int_equal(err.code, PDW_EPATTERN);
        /* NULL err is fine */
        assert_int_equal(pdw_router_on(r, bad[i], record, &t, NULL), PDW_EPATTERN);
    }
    assert_int_equal(pdw_router_count(r), 0);
    /* still open for registration: a bad pattern does not freeze or break it */
    assert_int_equal(pdw_router_on(r, "*.*", record, &t, NULL), 0);
    pdw_router_free(r);
}

static void valid_patterns(void **state)
{
    (void)state;
    static const char *const good[] = {
        "create.deal", "added.deal",  "change.deal", "updated.deal", "delete.deal",
        "deleted.deal", "merged.deal", "*.deal",     "create.*",     "added.*",
        "change.*",    "updated.*",   "delete.*",   "deleted.*",    "merged.*",
        "*.*",         "change.Deal_Product_2",
        /* exactly PDW_NAME_MAX bytes of object */
        "updated.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag t = { &log, 0, 0 };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        pdw_error err;
        pdw_error_clear(&err);
        assert_int_equal(pdw_router_on(r, good[i], record, &t, &err), 0);
        assert_int_equal(err.code, PDW_OK);
    }
    assert_int_equal(pdw_router_count(r), sizeof good / sizeof good[0]);
    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0);
    log.n = 0;
    assert_int_equal(pdw_router_dispatch(r, &ev, NULL), 0);
    assert_int_equal(log.n, 4); /* change.*, updated.*, *.*, updated.aaa... */
    pdw_router_free(r);
}

static void null_arguments(void **state)
{
    (void)state;
    pdw_router *r = new_router();
    tag t = { NULL, 0, 0 };
    pdw_error err;

    pdw_error_clear(&err);
    assert_int_equal(pdw_router_new(NULL, NULL, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_on(NULL, "*.*", record, &t, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_on(r, NULL, record, &t, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_int_equal(pdw_router_on(r, "*.*", NULL, &t, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_change(NULL, "*.*", "x", record, &t, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_change(r, NULL, "x", record, &t, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_change(r, "*.*", "x", NULL, &t, NULL), PDW_EINVAL);
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_on_change(r, "*.*", NULL, record, &t, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_int_equal(pdw_router_on_change(r, "*.*", "", record, &t, NULL), PDW_EINVAL);
    assert_int_equal(pdw_router_on_unhandled(NULL, record, &t), PDW_EINVAL);
    assert_int_equal(pdw_router_on_unhandled(r, NULL, &t), PDW_EINVAL);
    assert_int_equal(pdw_router_on_error(NULL, on_err, &t), PDW_EINVAL);
    assert_int_equal(pdw_router_on_error(r, NULL, &t), PDW_EINVAL);
    /* a NULL user is fine */
    assert_int_equal(pdw_router_on_error(r, on_err, NULL), 0);
    assert_int_equal(pdw_router_count(r), 0);
    assert_int_equal(pdw_router_count(NULL), 0);
    pdw_router_free(NULL);
    pdw_router_freeze(NULL);

    pdw_event ev;
    make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
    pdw_dispatch_result res = { 9, 9, 9 };
    assert_int_equal(pdw_router_dispatch(NULL, &ev, &res), PDW_EINVAL);
    assert_int_equal(res.matched, 0);
    assert_int_equal(pdw_router_dispatch(r, NULL, &res), PDW_EINVAL);
    /* an action the parser never produces is refused, not used as an index */
    ev.action = 7;
    assert_int_equal(pdw_router_dispatch(r, &ev, NULL), PDW_EINVAL);
    ev.action = -1;
    assert_int_equal(pdw_router_dispatch(r, &ev, NULL), PDW_EINVAL);
    /* refused dispatches did not freeze the router */
    assert_int_equal(pdw_router_on(r, "*.*", record, &t, NULL), 0);
    pdw_router_free(r);
}

static void options_versions(void **state)
{
    (void)state;
    pdw_router_options opts;
    memset(&opts, 0xff, sizeof opts);
    assert_int_equal(pdw_router_options_init(&opts, PDW_ROUTER_OPTIONS_VERSION), 0);
    assert_int_equal(opts.version, PDW_ROUTER_OPTIONS_VERSION);
    assert_null(opts.allocator);
    assert_int_equal(pdw_router_options_init(&opts, 0), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_router_options_init(&opts, PDW_ROUTER_OPTIONS_VERSION + 1),
                     PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_router_options_init(NULL, PDW_ROUTER_OPTIONS_VERSION), PDW_EINVAL);

    pdw_router *r = (pdw_router *)&opts; /* must be overwritten with NULL on failure */
    pdw_router_options o2 = PDW_ROUTER_OPTIONS_INIT;
    o2.version = 2;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_new(&r, &o2, &err), PDW_EVERSIONSTRUCT);
    assert_int_equal(err.code, PDW_EVERSIONSTRUCT);
    assert_null(r);
    o2.version = 0;
    assert_int_equal(pdw_router_new(&r, &o2, NULL), PDW_EVERSIONSTRUCT);

    /* an incomplete allocator is an invalid argument */
    pdw_allocator half = { NULL, NULL, NULL, NULL };
    pdw_router_options o3 = PDW_ROUTER_OPTIONS_INIT;
    o3.allocator = &half;
    pdw_error_clear(&err);
    assert_int_equal(pdw_router_new(&r, &o3, &err), PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_null(r);

    pdw_router_options o4 = PDW_ROUTER_OPTIONS_INIT;
    assert_int_equal(pdw_router_new(&r, &o4, NULL), 0);
    assert_non_null(r);
    pdw_router_free(r);
}

/* ---- scale -------------------------------------------------------------------------- */

static int never_run(const pdw_event *ev, void *user)
{
    (void)ev;
    ++*(int *)user;
    return 1;
}

/* 1000 patterns on other objects change nothing about what runs for these events. */
static void many_patterns_other_objects(void **state)
{
    (void)state;
    matrix m;
    matrix_setup(&m); /* reference */

    pdw_router *big = new_router();
    int noise = 0; /* handlers on other objects: must never run */
    static const char *const acts[] = { "create", "updated", "*", "merged", "deleted" };
    char pat[80];
    for (int i = 0; i < 500; i++) {
        snprintf(pat, sizeof pat, "%s.obj%d", acts[i % 5], i);
        assert_int_equal(pdw_router_on(big, pat, never_run, &noise, NULL), 0);
    }
    for (size_t i = 0; i < MATRIX_N; i++)
        assert_int_equal(pdw_router_on(big, matrix_patterns[i], record, &m.tags[i], NULL), 0);
    for (int i = 500; i < 1000; i++) {
        snprintf(pat, sizeof pat, "%s.obj%d", acts[i % 5], i);
        if (i % 3 == 0)
            assert_int_equal(pdw_router_on_change(big, pat, "stage_id", never_run, &noise, NULL),
                             0);
        else
            assert_int_equal(pdw_router_on(big, pat, never_run, &noise, NULL), 0);
    }
    assert_int_equal(pdw_router_count(big), 1000 + MATRIX_N);

    static const char *const objects[] = { "deal", "person", "deal_product", "project",
                                           "obj", "obj1000", "" };
    static const char *const moved[] = { "stage_id" };
    for (size_t o = 0; o < sizeof objects / sizeof objects[0]; o++) {
        for (int a = 0; a < PDW__ACT_COUNT; a++) {
            for (int merge = 0; merge <= (a == PDW__ACT_CHANGE); merge++) {
                pdw_event ev;
                make_event(&ev, a, objects[o], merge);
                set_changed(&ev, moved, 1);
                m.log.n = 0;
                assert_int_equal(pdw_router_dispatch(m.r, &ev, NULL), 0);
                run_log want = m.log;
                m.log.n = 0;
                assert_int_equal(pdw_router_dispatch(big, &ev, NULL), 0);
                assert_int_equal(m.log.n, want.n);
                assert_memory_equal(m.log.ids, want.ids, want.n * sizeof want.ids[0]);
            }
        }
    }
    assert_int_equal(noise, 0);
    pdw_router_free(big);
    pdw_router_free(m.r);
}

/* Many distinct objects: the table grows and every object still finds its handler. */
static void many_objects_each_routed(void **state)
{
    (void)state;
    enum { N = 300 };
    pdw_router *r = new_router();
    run_log log = { { 0 }, 0 };
    tag *tags = calloc(N, sizeof *tags);
    assert_non_null(tags);
    char pat[80];
    for (int i = 0; i < N; i++) {
        tags[i] = (tag){ &log, i, 0 };
        snprintf(pat, sizeof pat, "change.o%d", i);
        assert_int_equal(pdw_router_on(r, pat, record, &tags[i], NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        pdw_event ev;
        snprintf(pat, sizeof pat, "o%d", i);
        make_event(&ev, PDW__ACT_CHANGE, pat, 0);
        expect_run(r, &log, &ev, &tags[i].id, 1);
        make_event(&ev, PDW__ACT_DELETE, pat, 0);
        expect_run(r, &log, &ev, WANT_NONE);
    }
    pdw_router_free(r);
    free(tags);
}

/* ---- concurrency -------------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 20000, CPATTERNS = 6 };

typedef struct ccounter {
    atomic_ulong hits;
} ccounter;

static int count_hit(const pdw_event *ev, void *user)
{
    (void)ev;
    atomic_fetch_add_explicit(&((ccounter *)user)->hits, 1, memory_order_relaxed);
    return 0;
}

static int count_fail(const pdw_event *ev, void *user)
{
    count_hit(ev, user);
    return 1;
}

typedef struct cshared {
    const pdw_router *r;
    atomic_ulong bad; /* dispatches whose result was not what the event implies */
} cshared;

/* Event i of a thread: cycles through change.deal, create.person, change.deal (merge),
 * delete.lead. */
static void *dispatch_many(void *arg)
{
    cshared *s = arg;
    static const char *const moved[] = { "stage_id" };
    for (int i = 0; i < PER_THREAD; i++) {
        pdw_event ev;
        switch (i % 4) {
        case 0:
            make_event(&ev, PDW__ACT_CHANGE, "deal", 0);
            set_changed(&ev, moved, 1);
            break;
        case 1:
            make_event(&ev, PDW__ACT_CREATE, "person", 0);
            break;
        case 2:
            make_event(&ev, PDW__ACT_CHANGE, "deal", 1);
            break;
        default:
            make_event(&ev, PDW__ACT_DELETE, "lead", 0);
            break;
        }
        pdw_dispatch_result res;
        int rc = pdw_router_dispatch(s->r, &ev, &res);
        /* delete.lead runs only the failing *.* handler... see concurrent_dispatch */
        static const unsigned want_matched[4] = { 4, 2, 4, 1 };
        if (rc != PDW_EHANDLER || res.matched != want_matched[i % 4] || res.failed != 1)
            atomic_fetch_add(&s->bad, 1);
    }
    return NULL;
}

static void concurrent_dispatch(void **state)
{
    (void)state;
    static const char *const pats[CPATTERNS] = { "*.*",      "change.deal", "merged.*",
                                                 "added.person", "*.deal", "updated.deal" };
    ccounter counters[CPATTERNS + 1];
    pdw_router *r = new_router();
    for (int i = 0; i <= CPATTERNS; i++)
        atomic_init(&counters[i].hits, 0);
    assert_int_equal(pdw_router_on(r, pats[0], count_fail, &counters[0], NULL), 0);
    for (int i = 1; i < CPATTERNS - 1; i++)
        assert_int_equal(pdw_router_on(r, pats[i], count_hit, &counters[i], NULL), 0);
    assert_int_equal(pdw_router_on_change(r, pats[CPATTERNS - 1], "stage_id", count_hit,
                                          &counters[CPATTERNS - 1], NULL),
                     0);
    assert_int_equal(pdw_router_on_unhandled(r, count_hit, &counters[CPATTERNS]), 0);
    pdw_router_freeze(r);

    cshared s;
    s.r = r;
    atomic_init(&s.bad, 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, dispatch_many, &s), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    const unsigned long per_kind = (unsigned long)THREADS * PER_THREAD / 4;
    assert_int_equal(atomic_load(&s.bad), 0);
    /* *.*: every event */
    assert_int_equal(atomic_load(&counters[0].hits), 4 * per_kind);
    /* change.deal: plain and merge changes of deals */
    assert_int_equal(atomic_load(&counters[1].hits), 2 * per_kind);
    /* merged.*: merges */
    assert_int_equal(atomic_load(&counters[2].hits), per_kind);
    /* added.person */
    assert_int_equal(atomic_load(&counters[3].hits), per_kind);
    /* *.deal: both kinds of deal change */
    assert_int_equal(atomic_load(&counters[4].hits), 2 * per_kind);
    /* updated.deal when stage_id changed: the plain changes only (merges have none) */
    assert_int_equal(atomic_load(&counters[5].hits), per_kind);
    /* the fallback never ran: *.* matches everything */
    assert_int_equal(atomic_load(&counters[6].hits), 0);
    pdw_router_free(r);
}

/* ---- allocation failure ------------------------------------------------------------- */

/* The registration script: pattern, field (or NULL). Enough distinct objects to grow the
 * object table past its first size, and every kind of bucket. */
#define SWEEP_OBJECTS 20
typedef struct step {
    const char *pattern;
    const char *field;
} step;

static const step base_steps[] = {
    { "*.*", NULL },          { "change.deal", NULL },  { "updated.deal", "stage_id" },
    { "*.deal", NULL },       { "merged.*", NULL },     { "added.person", NULL },
    { "create.*", NULL },     { "deleted.deal", NULL }, { "merged.deal", NULL },
    { "*.person", "name" },
};
#define BASE_STEPS (sizeof base_steps / sizeof base_steps[0])
#define ALL_STEPS (BASE_STEPS + 2 * SWEEP_OBJECTS)

static void step_at(size_t i, char *buf, size_t size, const char **pattern, const char **field)
{
    if (i < BASE_STEPS) {
        *pattern = base_steps[i].pattern;
        *field = base_steps[i].field;
        return;
    }
    i -= BASE_STEPS;
    /* each object twice: first creates its slot, second reuses it */
    snprintf(buf, size, "%s.thing%zu", i % 2 ? "*" : "delete", i / 2);
    *pattern = buf;
    *field = NULL;
}

static int register_step(pdw_router *r, size_t i, tag *t, pdw_error *err)
{
    char buf[64];
    const char *pattern, *field;
    step_at(i, buf, sizeof buf, &pattern, &field);
    if (field)
        return pdw_router_on_change(r, pattern, field, record, t, err);
    return pdw_router_on(r, pattern, record, t, err);
}

/* Dispatch a fixed set of events on r and append every id that ran to out. */
static size_t sweep_probe(const pdw_router *r, run_log *log, int *out, size_t cap)
{
    static const char *const moved[] = { "stage_id", "name" };
    static const char *const objs[] = { "deal", "person", "thing0", "thing7", "thing19",
                                        "lead" };
    size_t k = 0;
    for (size_t o = 0; o < sizeof objs / sizeof objs[0]; o++) {
        for (int a = 0; a < PDW__ACT_COUNT; a++) {
            for (int merge = 0; merge <= (a == PDW__ACT_CHANGE); merge++) {
                pdw_event ev;
                make_event(&ev, a, objs[o], merge);
                set_changed(&ev, moved, 2);
                log->n = 0;
                assert_int_equal(pdw_router_dispatch(r, &ev, NULL), 0);
                for (size_t i = 0; i < log->n && k < cap; i++)
                    out[k++] = log->ids[i];
                if (k < cap)
                    out[k++] = -1; /* event separator */
            }
        }
    }
    return k;
}

static void alloc_failure_sweep(void **state)
{
    (void)state;
    run_log log = { { 0 }, 0 };
    tag tags[ALL_STEPS];
    for (size_t i = 0; i < ALL_STEPS; i++)
        tags[i] = (tag){ &log, (int)i, 0 };
    static int got[4096], want[4096];

    int finished = 0;
    for (long n = 1; !finished && n < 100000; n++) {
        counting_alloc ca = { n, 0, 0 };
        pdw_allocator al = { ca_malloc, ca_realloc, ca_free, &ca };
        pdw_router_options opts = PDW_ROUTER_OPTIONS_INIT;
        opts.allocator = &al;
        pdw_router *r = NULL;
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw_router_new(&r, &opts, &err);
        if (rc != 0) {
            assert_int_equal(rc, PDW_ENOMEM);
            assert_int_equal(err.code, PDW_ENOMEM);
            assert_null(r);
            assert_int_equal(ca.live, 0);
            continue;
        }
        int failed_step = -1;
        for (size_t i = 0; i < ALL_STEPS; i++) {
            size_t before = pdw_router_count(r);
            pdw_error_clear(&err);
            rc = register_step(r, i, &tags[i], &err);
            if (rc != 0) {
                assert_int_equal(rc, PDW_ENOMEM);
                assert_int_equal(err.code, PDW_ENOMEM);
                assert_int_equal(pdw_router_count(r), before);
                assert_int_equal(failed_step, -1); /* only the Nth allocation fails */
                failed_step = (int)i;
            } else {
                assert_int_equal(pdw_router_count(r), before + 1);
            }
        }
        if (failed_step < 0 && ca.calls < n)
            finished = 1; /* the script needs fewer than n allocations: all covered */
        if (failed_step < 0 && !finished)
            fail_msg("allocation %ld failed without any call reporting it", n);

        /* The reference: the same script with the failed step left out. */
        pdw_router *ref = new_router();
        for (size_t i = 0; i < ALL_STEPS; i++)
            if ((int)i != failed_step)
                assert_int_equal(register_step(ref, i, &tags[i], NULL), 0);
        assert_int_equal(pdw_router_count(ref), pdw_router_count(r));

        size_t kg = sweep_probe(r, &log, got, sizeof got / sizeof got[0]);
        size_t kw = sweep_probe(ref, &log, want, sizeof want / sizeof want[0]);
        assert_int_equal(kg, kw);
        assert_memory_equal(got, want, kg * sizeof got[0]);
        pdw_router_free(ref);
        pdw_router_free(r);
        assert_int_equal(ca.live, 0);
    }
    assert_true(finished);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matrix_create),
        cmocka_unit_test(matrix_change),
        cmocka_unit_test(matrix_delete),
        cmocka_unit_test(matrix_merge),
        cmocka_unit_test(object_match_is_exact),
        cmocka_unit_test(order_across_buckets),
        cmocka_unit_test(several_handlers_one_pattern),
        cmocka_unit_test(field_filter),
        cmocka_unit_test(field_filter_copies_field),
        cmocka_unit_test(field_filter_failure),
        cmocka_unit_test(parsed_events_route),
        cmocka_unit_test(fallback_only_when_unmatched),
        cmocka_unit_test(fallback_failure_reported),
        cmocka_unit_test(dispatch_nothing_registered),
        cmocka_unit_test(error_callback_gets_pattern_and_rc),
        cmocka_unit_test(failing_handler_does_not_stop_later),
        cmocka_unit_test(frozen_after_dispatch),
        cmocka_unit_test(frozen_after_freeze),
        cmocka_unit_test(invalid_patterns),
        cmocka_unit_test(valid_patterns),
        cmocka_unit_test(null_arguments),
        cmocka_unit_test(options_versions),
        cmocka_unit_test(many_patterns_other_objects),
        cmocka_unit_test(many_objects_each_routed),
        cmocka_unit_test(concurrent_dispatch),
        cmocka_unit_test(alloc_failure_sweep),
    };
    PDW_RUN_GROUP(tests);
}
