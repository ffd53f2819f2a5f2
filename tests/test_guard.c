/* Guard-page tests (picohttpparser's trick): every input is copied so that its last byte is
 * the last byte before a PROT_NONE page (or its first byte the first one after such a page),
 * so reading one byte too far faults right there, without ASan or valgrind. Every parser
 * that reads request bytes is covered: the scanner on every prefix of every fixture and of
 * the error catalogue's bodies, the event accessors, the Authorization and query-token
 * parsers, base64, router patterns and the whole receiver with every span at a guard. */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS */
#include "pdw_test.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

/* ---- guarded buffers ---------------------------------------------------------------- */

typedef struct guard {
    unsigned char *map;  /* [PROT_NONE page][data pages][PROT_NONE page] */
    size_t page, data;   /* page size, bytes of data pages */
} guard;

static void guard_init(guard *g, size_t max)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    g->data = (max + g->page - 1) / g->page * g->page;
    if (g->data == 0)
        g->data = g->page;
    g->map = mmap(NULL, g->data + 2 * g->page, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map, g->page, PROT_NONE), 0);
    assert_int_equal(mprotect(g->map + g->page + g->data, g->page, PROT_NONE), 0);
}

static void guard_fini(guard *g)
{
    munmap(g->map, g->data + 2 * g->page);
}

/* n bytes ending right before the trailing guard page. */
static const char *at_end(guard *g, const void *p, size_t n)
{
    assert_true(n <= g->data);
    unsigned char *dst = g->map + g->page + g->data - n;
    if (n)
        memcpy(dst, p, n);
    return (const char *)dst;
}

/* n bytes starting right after the leading guard page. */
static const char *at_start(guard *g, const void *p, size_t n)
{
    assert_true(n <= g->data);
    unsigned char *dst = g->map + g->page;
    if (n)
        memcpy(dst, p, n);
    return (const char *)dst;
}

/* A NUL-terminated copy of s whose NUL is the last byte before the guard. */
static const char *cstr_at_end(guard *g, const char *s)
{
    size_t n = strlen(s) + 1;
    return at_end(g, s, n);
}

/* ---- inputs ------------------------------------------------------------------------- */

typedef struct blob {
    char *data;
    size_t len;
} blob;

static blob inputs[128];
static size_t n_inputs;

static void add_input(const char *p, size_t n)
{
    assert_true(n_inputs < sizeof inputs / sizeof inputs[0]);
    inputs[n_inputs].data = malloc(n ? n : 1);
    assert_non_null(inputs[n_inputs].data);
    memcpy(inputs[n_inputs].data, p, n);
    inputs[n_inputs].len = n;
    n_inputs++;
}
#define ADD(lit) add_input(lit, sizeof lit - 1)

static int load_inputs(void **state)
{
    (void)state;
    DIR *d = opendir(PDW_FIXTURES);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != 'v')
            continue;
        size_t n;
        char *b = pdw_test_fixture(e->d_name, &n);
        if (!b)
            return -1;
        add_input(b, n);
        free(b);
    }
    closedir(d);
    /* the error catalogue's bodies, and the ends the scanner treats specially */
    ADD("{\"meta\":{},\"meta\":{}}");
    ADD("{\"a\":\"\\u0061\",\"\\u0061\":1}");
    ADD("{\"a\":\"\xc3\x28\"}");
    ADD("{\"a\":\"\xf0\x9f\x98\x80\"}");
    ADD("{\"a\":\"\\ud83d\\ude00\"}");
    ADD("{\"a\":1\0}");
    ADD("{\"a\":1e99999}");
    ADD("{\"a\":-0.5E+3,\"b\":true,\"c\":false,\"d\":null}");
    ADD("{\"a\":                                         1}");
    ADD("[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
    ADD("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
        "\"id\":\"e\",\"entity_id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\","
        "\"attempt\":2,\"merged_from_id\":\"3\"},\"data\":{\"a\":1},\"previous\":{\"a\":2}}");
    ADD("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"updated\",\"object\":\"user\",\"id\":5,"
        "\"timestamp_micro\":1492654463000000},\"current\":[{\"id\":5,\"n\":\"a\"}],"
        "\"previous\":[{\"id\":5,\"n\":\"b\"}]}");
    return 0;
}

static int free_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_inputs; i++)
        free(inputs[i].data);
    n_inputs = 0;
    return 0;
}

static size_t max_input(void)
{
    size_t m = 0;
    for (size_t i = 0; i < n_inputs; i++)
        if (inputs[i].len > m)
            m = inputs[i].len;
    return m;
}

/* ---- the scanner and the event ------------------------------------------------------ */

static void test_scan_every_prefix_at_guard(void **state)
{
    (void)state;
    guard g;
    guard_init(&g, max_input());
    for (size_t i = 0; i < n_inputs; i++) {
        for (size_t n = 0; n <= inputs[i].len; n++) {
            pdw__scan sc;
            const char *p = at_end(&g, inputs[i].data, n);
            (void)pdw__scan_body(&sc, p, n, 0, NULL, NULL);
        }
        pdw__scan sc;
        const char *p = at_start(&g, inputs[i].data, inputs[i].len);
        (void)pdw__scan_body(&sc, p, inputs[i].len, 0, NULL, NULL);
    }
    guard_fini(&g);
}

static void use_event(const pdw_event *ev)
{
    (void)pdw_event_name(ev);
    (void)pdw_event_delivery_key(ev);
    (void)pdw_event_timestamp_ms(ev);
    size_t n = pdw_event_changed_count(ev);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(pdw_event_changed(ev, pdw_event_changed_field(ev, k)), 1);
    (void)pdw_event_changed(ev, "custom_fields");
    assert_non_null(pdw_event_json(ev));
}

static void test_event_and_dispatch_at_guard(void **state)
{
    (void)state;
    guard g;
    guard_init(&g, max_input());
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.insecure_no_auth = 1;
    pdw_receiver *r;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    for (size_t i = 0; i < n_inputs; i++) {
        for (int where = 0; where < 2; where++) {
            const char *p = where ? at_start(&g, inputs[i].data, inputs[i].len)
                                  : at_end(&g, inputs[i].data, inputs[i].len);
            pdw_event *ev = NULL;
            if (pdw_event_parse(&ev, p, inputs[i].len, NULL, NULL) == 0) {
                use_event(ev);
                pdw_event_free(ev);
            }
            /* the borrowed-body path: the receiver parses in place */
            (void)pdw_receiver_dispatch_body(r, p, inputs[i].len, NULL, NULL);
        }
    }
    pdw_receiver_free(r);
    guard_fini(&g);
}

/* ---- authentication ----------------------------------------------------------------- */

static const char *const auth_values[] = {
    "Basic cGlwZWRyaXZlOnMzY3JldA==", "Basic cGlwZWRyaXZlOnMzY3JldA=", "Basic cGlwZWRyaXZl",
    "Basic ", "Basic", "Basi", "", " ", "basic   YTpi  ", "Basic YTpi\t", "Basic =", "Basic ==",
    "Basic A===", "Basic QQ==", "Basic QR==", "Basic QUI=", "Basic QUJD", "Bearer x",
    "Basic\tYTpi", "Basic YTpi, x=y",
};
static const char *const queries[] = {
    "", "token", "token=", "token=tok", "token=t%6fk", "token=%", "token=%6", "token=to%6",
    "a=1&token=tok", "token=tok&", "&", "token=tok&token=tok", "token=+", "x=%zz&token=tok",
};

static void test_auth_at_guard(void **state)
{
    (void)state;
    guard ga, gq;
    guard_init(&ga, 64);
    guard_init(&gq, 64);
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" }, { "a", "b" } };
    pdw__auth *auth;
    assert_int_equal(pdw__auth_new(&auth, creds, 2, "tok", NULL, NULL, NULL), 0);
    for (size_t i = 0; i < sizeof auth_values / sizeof auth_values[0]; i++) {
        const char *v = auth_values[i];
        size_t vn = strlen(v);
        for (size_t j = 0; j < sizeof queries / sizeof queries[0]; j++) {
            size_t qn = strlen(queries[j]);
            /* every prefix of the value, the whole query */
            for (size_t k = 0; k <= vn; k++) {
                int rc = pdw__auth_check(auth, at_end(&ga, v, k), k, at_end(&gq, queries[j], qn),
                                         qn);
                assert_true(rc == 0 || rc == PDW_EAUTHMISSING || rc == PDW_EAUTHMALFORMED ||
                            rc == PDW_EAUTHWRONG);
            }
            for (size_t k = 0; k <= qn; k++)
                (void)pdw__auth_check(auth, at_end(&ga, v, vn), vn, at_end(&gq, queries[j], k),
                                      k);
        }
    }
    pdw__auth_free(auth);
    guard_fini(&ga);
    guard_fini(&gq);
}

static void test_base64_at_guard(void **state)
{
    (void)state;
    static const char *const in[] = { "", "QQ==", "QUI=", "QUJD", "QR==", "====", "A===",
                                      "QUJDRA==", "QUJD*A==", "Q", "QU", "QUJ" };
    guard g;
    guard_init(&g, 64);
    unsigned char out[64];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        size_t n = strlen(in[i]);
        (void)pdw__base64_decode(at_end(&g, in[i], n), n, out);
        (void)pdw__base64_decode(at_start(&g, in[i], n), n, out);
    }
    guard_fini(&g);
}

/* ---- router patterns ---------------------------------------------------------------- */

static int nop(const pdw_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return 0;
}

static void test_router_patterns_at_guard(void **state)
{
    (void)state;
    char long_pattern[200];
    memset(long_pattern, 'x', sizeof long_pattern - 1);
    memcpy(long_pattern, "change.", 7);
    long_pattern[sizeof long_pattern - 1] = '\0';
    const char *const patterns[] = { "", ".", "*", "*.*", "change.deal", "merged.*",
                                     "change.", ".deal", "a.b.c", long_pattern };
    guard g, gf;
    guard_init(&g, 256);
    guard_init(&gf, 64);
    pdw_router *rt;
    assert_int_equal(pdw_router_new(&rt, NULL, NULL), 0);
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        (void)pdw_router_on(rt, cstr_at_end(&g, patterns[i]), nop, NULL, NULL);
        (void)pdw_router_on_change(rt, cstr_at_end(&g, patterns[i]), cstr_at_end(&gf, "stage_id"),
                                   nop, NULL, NULL);
    }
    pdw_router_free(rt);
    guard_fini(&g);
    guard_fini(&gf);
}

/* ---- the whole receiver ------------------------------------------------------------- */

static void test_receiver_spans_at_guard(void **state)
{
    (void)state;
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" } };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.credentials = creds;
    o.num_credentials = 1;
    o.query_token = "tok";
    o.disable_dedup = 1;
    pdw_receiver *r;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.*", nop, NULL, NULL), 0);

    enum { METHOD, CT_NAME, CT, AUTH_NAME, AUTH, CL_NAME, CL, QUERY, BODY, NSPANS };
    guard g[NSPANS];
    for (int k = 0; k < NSPANS; k++)
        guard_init(&g[k], k == BODY ? max_input() : 64);
    static const char *const methods[] = { "POST", "POS", "P", "", "POSTX" };
    static const char *const cts[] = { "application/json", "application/jso", "application/json;",
                                       " application/json ", "" };
    static const char *const cls[] = { "", "1", "12a", "  ", "123456789012345678901" };

    for (size_t i = 0; i < n_inputs; i++) {
        for (size_t m = 0; m < 5; m++) {
            char cl[32];
            snprintf(cl, sizeof cl, "%zu", inputs[i].len);
            const char *clv = m == 0 ? cl : cls[m];
            const char *av = auth_values[(i + m) % (sizeof auth_values / sizeof auth_values[0])];
            if (m == 0)
                av = auth_values[0];
            const char *qv = m == 0 ? "token=tok" : queries[(i + m) % 14];
            pdw_header h[3];
            h[0].name = at_end(&g[CT_NAME], "Content-Type", 12);
            h[0].name_len = 12;
            h[0].value = at_end(&g[CT], cts[m], strlen(cts[m]));
            h[0].value_len = strlen(cts[m]);
            h[1].name = at_end(&g[AUTH_NAME], "authorization", 13);
            h[1].name_len = 13;
            h[1].value = at_end(&g[AUTH], av, strlen(av));
            h[1].value_len = strlen(av);
            h[2].name = at_end(&g[CL_NAME], "Content-Length", 14);
            h[2].name_len = 14;
            h[2].value = at_end(&g[CL], clv, strlen(clv));
            h[2].value_len = strlen(clv);
            pdw_request req = PDW_REQUEST_INIT;
            req.method = at_end(&g[METHOD], methods[m], strlen(methods[m]));
            req.method_len = strlen(methods[m]);
            req.headers = h;
            req.num_headers = 3;
            req.query = at_end(&g[QUERY], qv, strlen(qv));
            req.query_len = strlen(qv);
            req.body = at_end(&g[BODY], inputs[i].data, inputs[i].len);
            req.body_len = inputs[i].len;
            pdw_verdict v = PDW_VERDICT_INIT;
            int rc = pdw_receiver_handle(r, &req, &v, NULL);
            assert_int_equal(rc, v.reason);
            (void)pdw_receiver_check_head(r, &req, &v);
        }
    }
    for (int k = 0; k < NSPANS; k++)
        guard_fini(&g[k]);
    pdw_receiver_free(r);
}

/* The guard really faults: a read past the end is caught (in a child process). */
static void test_guard_page_faults(void **state)
{
    (void)state;
    guard g;
    guard_init(&g, 16);
    const char *p = at_end(&g, "abc", 3);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler, nor a sanitizer's */
        volatile char c = p[3];
        (void)c;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* SIGSEGV natively; under ASan its handler reports and exits non-zero (or aborts) */
    assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
    guard_fini(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_page_faults),
        cmocka_unit_test_setup_teardown(test_scan_every_prefix_at_guard, load_inputs, free_inputs),
        cmocka_unit_test_setup_teardown(test_event_and_dispatch_at_guard, load_inputs, free_inputs),
        cmocka_unit_test(test_auth_at_guard),
        cmocka_unit_test(test_base64_at_guard),
        cmocka_unit_test(test_router_patterns_at_guard),
        cmocka_unit_test_setup_teardown(test_receiver_spans_at_guard, load_inputs, free_inputs),
    };
    PDW_RUN_GROUP(tests);
}
