/* The error catalogue (docs/ERRORS.md): one case per entry, named test_<CODE>_<what>, each
 * sending the entry's example input and checking the reason code and the HTTP status the
 * catalogue gives. test_catalogue_lists_every_code checks that the catalogue has a section
 * for every code of PDW_ERRNO_MAP, so a new code cannot be added without its entry. */
#include "pdw_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/subscriptions.h"
#include "pdwebhook/sys/dedup_store.h"

#ifndef PDW_ERRORS_MD
#error "PDW_ERRORS_MD must name docs/ERRORS.md"
#endif

/* ---- helpers ------------------------------------------------------------------------ */

#define AUTH_OK "Basic cGlwZWRyaXZlOnMzY3JldA==" /* pipedrive:s3cret */

static const char V2[] =
    "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\",\"id\":\"e1\","
    "\"entity_id\":\"7\",\"attempt\":1,\"timestamp\":\"2024-01-01T00:00:00Z\"},"
    "\"data\":{\"stage_id\":2},\"previous\":{\"stage_id\":1}}";

typedef struct opts {
    size_t max_body;
    int wrong_status;
    int handler_status;
    int handler_rc;
    const pdw_dedup_store *dedup;
} opts;

static int handler_rc;
static int handler(const pdw_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return handler_rc;
}

static pdw_receiver *make(const opts *o)
{
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" } };
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    ro.credentials = creds;
    ro.num_credentials = 1;
    if (o) {
        ro.max_body = o->max_body;
        ro.wrong_credentials_status = o->wrong_status;
        ro.handler_error_status = o->handler_status;
        ro.dedup = (pdw_dedup_store *)o->dedup;
        handler_rc = o->handler_rc;
    } else {
        handler_rc = 0;
    }
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &ro, NULL), 0);
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.*", handler, NULL, NULL), 0);
    return r;
}

/* Send one request; headers as "Name: value" strings, NULL-terminated list. */
static int send_req(pdw_receiver *r, const char *method, const char *const *hdrs,
                    const char *body, size_t len, pdw_verdict *v)
{
    pdw_header h[16];
    size_t n = 0;
    for (; hdrs && hdrs[n]; n++) {
        const char *colon = strchr(hdrs[n], ':');
        assert_non_null(colon);
        h[n].name = hdrs[n];
        h[n].name_len = (size_t)(colon - hdrs[n]);
        h[n].value = colon + 1;
        h[n].value_len = strlen(colon + 1);
    }
    pdw_request req = PDW_REQUEST_INIT;
    req.method = method;
    req.method_len = method ? strlen(method) : 0;
    req.headers = n ? h : NULL;
    req.num_headers = n;
    req.body = body;
    req.body_len = len;
    pdw_verdict init = PDW_VERDICT_INIT;
    *v = init;
    return pdw_receiver_handle(r, &req, v, NULL);
}

static const char *header_of(const pdw_verdict *v, const char *name)
{
    for (size_t i = 0; i < v->num_headers; i++)
        if (strcmp(v->headers[i].name, name) == 0)
            return v->headers[i].value;
    return NULL;
}

/* POST body with valid Content-Type and credentials; expect code and status. */
static void expect_body(const char *body, size_t len, int code, int status)
{
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    int rc = send_req(r, "POST", h, body, len, &v);
    if (rc != code)
        fail_msg("want %s, got %s", pdw_err_name(code), pdw_err_name(rc));
    assert_int_equal(v.reason, code);
    assert_int_equal(v.status, status);
    assert_int_equal(pdw_err_http_status(code), status);
    /* the same verdict from the event parser alone, with a byte offset for JSON errors */
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_event_parse(&ev, body, len, NULL, &err), code);
    assert_null(ev);
    assert_int_equal(err.code, code);
    pdw_receiver_free(r);
}
#define EXPECT_BODY(lit, code, status) expect_body(lit, sizeof lit - 1, code, status)

static void expect_head(const char *method, const char *const *hdrs, const char *body,
                        int code, int status, const opts *o)
{
    pdw_receiver *r = make(o);
    pdw_verdict v;
    int rc = send_req(r, method, hdrs, body, body ? strlen(body) : 0, &v);
    if (rc != code)
        fail_msg("want %s, got %s", pdw_err_name(code), pdw_err_name(rc));
    assert_int_equal(v.status, status);
    pdw_receiver_free(r);
}

/* ---- the catalogue lists every code ------------------------------------------------- */

static void test_catalogue_lists_every_code(void **state)
{
    (void)state;
    size_t len;
    char *doc = pdw_test_read_file(PDW_ERRORS_MD, &len);
    assert_non_null(doc);
#define XX(name, value, status, msg)                                                          \
    {                                                                                         \
        char want[96];                                                                        \
        snprintf(want, sizeof want, "## `PDW_%s` (%d, HTTP %d)", #name, value, status);       \
        if (!strstr(doc, want))                                                               \
            fail_msg("docs/ERRORS.md has no heading \"%s\"", want);                           \
    }
    PDW_ERRNO_MAP(XX)
#undef XX
    free(doc);
}

/* ---- request head ------------------------------------------------------------------- */

static void test_OK_accepted(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_string_equal(v.body, "{\"ok\":true}");
    pdw_receiver_free(r);
}

static void test_EMETHOD_get(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "GET", h, NULL, 0, &v), PDW_EMETHOD);
    assert_int_equal(v.status, 405);
    assert_string_equal(header_of(&v, "Allow"), "POST");
    pdw_receiver_free(r);
}

static void test_EMEDIATYPE_text_plain(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: text/plain", "Authorization: " AUTH_OK, NULL };
    expect_head("POST", h, V2, PDW_EMEDIATYPE, 415, NULL);
    const char *none[] = { "Authorization: " AUTH_OK, NULL };
    expect_head("POST", none, V2, PDW_EMEDIATYPE, 415, NULL);
}

static void test_ETOOLARGE_declared(void **state)
{
    (void)state;
    opts o = { 1024, 0, 0, 0, NULL };
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 5000000", NULL };
    expect_head("POST", h, V2, PDW_ETOOLARGE, 413, &o);
}

static void test_ETOOLARGE_body_over_limit(void **state)
{
    (void)state;
    opts o = { 64, 0, 0, 0, NULL };
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    expect_head("POST", h, V2, PDW_ETOOLARGE, 413, &o);
}

static void test_ELENGTH_body_longer_than_declared(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 10", NULL };
    expect_head("POST", h, V2, PDW_ELENGTH, 400, NULL);
}

static void test_ELENGTH_body_shorter_than_declared(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 500", NULL };
    expect_head("POST", h, V2, PDW_ELENGTH, 400, NULL);
}

static void test_EHEADER_two_content_lengths(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 10", "content-length: 10", NULL };
    expect_head("POST", h, V2, PDW_EHEADER, 400, NULL);
}

static void test_EHEADER_content_length_not_digits(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 12abc", NULL };
    expect_head("POST", h, V2, PDW_EHEADER, 400, NULL);
}

static void test_EHEADER_oversized_content_length(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "Content-Length: 1234567890123456789012345", NULL };
    expect_head("POST", h, V2, PDW_EHEADER, 400, NULL);
}

static void test_EAUTHMISSING_no_header(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_EAUTHMISSING);
    assert_int_equal(v.status, 401);
    assert_non_null(strstr(header_of(&v, "WWW-Authenticate"), "Basic realm="));
    pdw_receiver_free(r);
}

static void test_EAUTHMALFORMED_bad_base64(void **state)
{
    (void)state;
    /* "pipedrive:s3cret" with one '=' missing: not canonical base64 */
    const char *h[] = { "Content-Type: application/json",
                        "Authorization: Basic cGlwZWRyaXZlOnMzY3JldA=", NULL };
    expect_head("POST", h, V2, PDW_EAUTHMALFORMED, 401, NULL);
}

static void test_EAUTHMALFORMED_no_colon(void **state)
{
    (void)state;
    /* base64("pipedrive") */
    const char *h[] = { "Content-Type: application/json",
                        "Authorization: Basic cGlwZWRyaXZl", NULL };
    expect_head("POST", h, V2, PDW_EAUTHMALFORMED, 401, NULL);
}

static void test_EAUTHMALFORMED_not_basic(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: Bearer abc", NULL };
    expect_head("POST", h, V2, PDW_EAUTHMALFORMED, 401, NULL);
}

static void test_EAUTHMALFORMED_two_headers(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK,
                        "authorization: " AUTH_OK, NULL };
    expect_head("POST", h, V2, PDW_EAUTHMALFORMED, 401, NULL);
}

static void test_EAUTHMALFORMED_oversized_header(void **state)
{
    (void)state;
    static char big[21 + 4996 + 1];
    memcpy(big, "Authorization: Basic ", 21);
    memset(big + 21, 'A', 4996);
    big[sizeof big - 1] = '\0';
    const char *h[] = { "Content-Type: application/json", big, NULL };
    expect_head("POST", h, V2, PDW_EAUTHMALFORMED, 401, NULL);
}

static void test_EAUTHWRONG_password(void **state)
{
    (void)state;
    /* base64("pipedrive:nope") */
    const char *h[] = { "Content-Type: application/json",
                        "Authorization: Basic cGlwZWRyaXZlOm5vcGU=", NULL };
    expect_head("POST", h, V2, PDW_EAUTHWRONG, 401, NULL);
    opts o = { 0, 403, 0, 0, NULL };
    expect_head("POST", h, V2, PDW_EAUTHWRONG, 403, &o);
}

/* ---- body: JSON --------------------------------------------------------------------- */

static void test_EJSON_truncated(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":", PDW_EJSON, 400);
}

static void test_EJSON_trailing_garbage(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{}} x", PDW_EJSON, 400);
    EXPECT_BODY("{\"meta\":{}}{}", PDW_EJSON, 400);
}

static void test_EJSON_nul_in_string(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"action\":\"chan\0ge\"}}", PDW_EJSON, 400);
}

static void test_EJSON_nul_escape_in_key(void **state)
{
    (void)state;
    /* jansson refuses \u0000 in object keys */
    EXPECT_BODY("{\"me\\u0000ta\":{}}", PDW_EJSON, 400);
}

static void test_EJSON_empty_body(void **state)
{
    (void)state;
    expect_body("", 0, PDW_EJSON, 400);
}

static void test_EJSON_huge_numbers(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{},\"n\":1e99999}", PDW_EJSON, 400);
    EXPECT_BODY("{\"meta\":{},\"n\":123456789012345678901234567890}", PDW_EJSON, 400);
    EXPECT_BODY("{\"meta\":{},\"n\":-99999999999999999999}", PDW_EJSON, 400);
}

static void test_EUTF8_invalid(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{},\"name\":\"\xc3\x28\"}", PDW_EUTF8, 400);
    EXPECT_BODY("{\"meta\":{},\"name\":\"\xc0\xaf\"}", PDW_EUTF8, 400);  /* overlong '/' */
    EXPECT_BODY("{\"meta\":{},\"name\":\"\xed\xa0\x80\"}", PDW_EUTF8, 400); /* surrogate */
}

static void test_EDEPTH_100k_deep(void **state)
{
    (void)state;
    size_t depth = 100000;
    size_t len = 2 * depth + 16;
    char *b = malloc(len);
    assert_non_null(b);
    size_t k = 0;
    memcpy(b, "{\"a\":", 5);
    k = 5;
    for (size_t i = 0; i < depth; i++)
        b[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        b[k++] = ']';
    b[k++] = '}';
    expect_body(b, k, PDW_EDEPTH, 400);
    free(b);
}

static void test_EDUPKEY_duplicate_keys(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{},\"meta\":{}}", PDW_EDUPKEY, 400);
    /* the same key spelt with an escape */
    EXPECT_BODY("{\"meta\":{\"id\":1,\"\\u0069d\":2}}", PDW_EDUPKEY, 400);
}

static void test_ENOTOBJECT_top_level(void **state)
{
    (void)state;
    EXPECT_BODY("[{\"meta\":{}}]", PDW_ENOTOBJECT, 400);
    EXPECT_BODY("\"meta\"", PDW_ENOTOBJECT, 400);
    EXPECT_BODY("null", PDW_ENOTOBJECT, 400);
}

/* ---- body: Pipedrive's fields ------------------------------------------------------- */

static void test_ENOMETA_missing(void **state)
{
    (void)state;
    EXPECT_BODY("{\"data\":{}}", PDW_ENOMETA, 400);
}

static void test_ENOMETA_not_object(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":[]}", PDW_ENOMETA, 400);
    EXPECT_BODY("{\"meta\":\"2.0\"}", PDW_ENOMETA, 400);
}

static void test_EVERSION_missing_or_unknown(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"action\":\"change\",\"entity\":\"deal\"}}", PDW_EVERSION, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"3.0\",\"action\":\"change\",\"entity\":\"deal\"}}",
                PDW_EVERSION, 400);
    EXPECT_BODY("{\"meta\":{\"version\":2,\"action\":\"change\",\"entity\":\"deal\"}}",
                PDW_EVERSION, 400);
}

static void test_EACTION_unknown_or_wrong_type(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"frobbed\",\"entity\":\"deal\"}}",
                PDW_EACTION, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":7,\"entity\":\"deal\"}}",
                PDW_EACTION, 400);
    /* a v1 word in a v2 body */
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"updated\",\"entity\":\"deal\"}}",
                PDW_EACTION, 400);
}

static void test_EOBJECT_missing_or_invalid(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\"}}", PDW_EOBJECT, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"de-al\"}}",
                PDW_EOBJECT, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":[]}}",
                PDW_EOBJECT, 400);
}

static void test_EFIELD_wrong_type_or_size(void **state)
{
    (void)state;
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                "\"entity_id\":{}}}",
                PDW_EFIELD, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                "\"entity_id\":\"12345678901234567890123456789012345678901234567890"
                "12345678901234567890\"}}",
                PDW_EFIELD, 400);
    EXPECT_BODY("{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                "\"attempt\":\"x\"}}",
                PDW_EFIELD, 400);
    EXPECT_BODY("{\"v\":1,\"meta\":{\"v\":1,\"action\":\"added\",\"object\":\"deal\"},"
                "\"retry\":-1}",
                PDW_EFIELD, 400);
}

/* ---- after parsing ------------------------------------------------------------------ */

static void test_EDUPLICATE_retry(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_OK);
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    pdw_receiver_free(r);
}

static void test_EHANDLER_handler_failed(void **state)
{
    (void)state;
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    opts o = { 0, 0, 0, 1, NULL };
    expect_head("POST", h, V2, PDW_EHANDLER, 200, &o);
    opts o500 = { 0, 0, 500, 1, NULL };
    expect_head("POST", h, V2, PDW_EHANDLER, 500, &o500);
}

/* A store of the test's own (pdwebhook/sys/dedup_store.h), counting its claims. */
typedef struct count_store {
    pdw_dedup_store parent;
    int claims;
} count_store;

static int failing_claim(pdw_dedup_store *self, const char *key, size_t len, uint64_t now,
                         uint64_t ttl)
{
    (void)self, (void)key, (void)len, (void)now, (void)ttl;
    return PDW_EIO;
}
static int noop_release(pdw_dedup_store *self, const char *key, size_t len)
{
    (void)self, (void)key, (void)len;
    return 0;
}
static int noop_confirm(pdw_dedup_store *self, const char *key, size_t len, uint64_t now,
                        uint64_t ttl)
{
    (void)self, (void)key, (void)len, (void)now, (void)ttl;
    return 0;
}

static void test_ESTORE_dedup_failed(void **state)
{
    (void)state;
    pdw_dedup_store st = PDW_DEDUP_STORE_INIT; /* on the stack: no free */
    st.claim = failing_claim;
    st.release = noop_release;
    st.confirm = noop_confirm;
    opts o = { 0, 0, 0, 0, &st };
    pdw_receiver *r = make(&o);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_ESTORE);
    assert_int_equal(v.status, 503);
    assert_non_null(header_of(&v, "Retry-After"));
    pdw_receiver_free(r);
}

static int inflight_claim(pdw_dedup_store *self, const char *k, size_t n, uint64_t now,
                          uint64_t ttl)
{
    (void)k, (void)n, (void)now, (void)ttl;
    ((count_store *)self)->claims++;
    return PDW_CLAIM_INFLIGHT;
}

static int handled;
static int counting_handler(const pdw_event *ev, void *user)
{
    (void)ev, (void)user;
    handled++;
    return 0;
}

static void test_EINFLIGHT_retry_while_first_in_flight(void **state)
{
    (void)state;
    count_store cs = { PDW_DEDUP_STORE_INIT, 0 }; /* on the stack: no free */
    cs.parent.claim = inflight_claim;
    cs.parent.release = noop_release;
    cs.parent.confirm = noop_confirm;
    opts o = { 0, 0, 0, 0, &cs.parent };
    pdw_receiver *r = make(&o);
    handled = 0;
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.*", counting_handler, NULL, NULL),
                     0);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    /* a retry (attempt 2) while an earlier attempt is being accepted */
    char retry[sizeof V2];
    snprintf(retry, sizeof retry, "%s", V2);
    strstr(retry, "\"attempt\":1")[10] = '2';
    assert_int_equal(send_req(r, "POST", h, retry, strlen(retry), &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_int_equal(pdw_err_http_status(PDW_EINFLIGHT), 503);
    assert_non_null(header_of(&v, "Retry-After"));
    assert_string_equal(v.body, "{\"ok\":false,\"error\":\"PDW_EINFLIGHT\"}");
    assert_int_equal(cs.claims, 1);
    assert_int_equal(handled, 0); /* never handed on */
    /* a first attempt (another webhook's copy) in flight: the 200 of a duplicate, since a
     * 503 would cost that webhook a ban point for every overlapping event */
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(cs.claims, 2);
    assert_int_equal(handled, 0);
    pdw_receiver_free(r);
}

/* ---- API errors --------------------------------------------------------------------- */

static void *null_malloc(size_t n, void *u) { (void)n, (void)u; return NULL; }
static void *null_realloc(void *p, size_t n, void *u) { (void)p, (void)n, (void)u; return NULL; }
static void null_free(void *p, void *u) { (void)p, (void)u; }

static void test_ENOMEM_allocator_fails(void **state)
{
    (void)state;
    pdw_allocator a = { null_malloc, null_realloc, null_free, NULL };
    pdw_parse_options po = PDW_PARSE_OPTIONS_INIT;
    po.allocator = &a;
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, V2, strlen(V2), &po, NULL), PDW_ENOMEM);
    assert_int_equal(pdw_err_http_status(PDW_ENOMEM), 500);
}

static void test_EINVAL_null_body(void **state)
{
    (void)state;
    pdw_event *ev = NULL;
    assert_int_equal(pdw_event_parse(&ev, NULL, 5, NULL, NULL), PDW_EINVAL);
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, NULL, 5, &v), PDW_EINVAL);
    assert_int_equal(v.status, 500);
    pdw_receiver_free(r);
}

static void test_EFROZEN_register_after_dispatch(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    const char *h[] = { "Content-Type: application/json", "Authorization: " AUTH_OK, NULL };
    pdw_verdict v;
    assert_int_equal(send_req(r, "POST", h, V2, strlen(V2), &v), PDW_OK);
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.deal", handler, NULL, NULL),
                     PDW_EFROZEN);
    pdw_receiver_free(r);
}

static void test_EPATTERN_bad_pattern(void **state)
{
    (void)state;
    pdw_router *rt;
    assert_int_equal(pdw_router_new(&rt, NULL, NULL), 0);
    assert_int_equal(pdw_router_on(rt, "frobbed.deal", handler, NULL, NULL), PDW_EPATTERN);
    assert_int_equal(pdw_router_on(rt, "change.deal.x", handler, NULL, NULL), PDW_EPATTERN);
    pdw_router_free(rt);
}

static void test_ENOAUTH_no_credentials(void **state)
{
    (void)state;
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &ro, NULL), PDW_ENOAUTH);
    assert_null(r);
}

static void test_EVERSIONSTRUCT_request_version(void **state)
{
    (void)state;
    pdw_receiver *r = make(NULL);
    pdw_request req = PDW_REQUEST_INIT;
    req.version = 99;
    pdw_verdict v = PDW_VERDICT_INIT;
    assert_int_equal(pdw_receiver_handle(r, &req, &v, NULL), PDW_EVERSIONSTRUCT);
    assert_int_equal(v.status, 500);
    pdw_receiver_free(r);
}

static char spool_dir[64];
static int spool_setup(void **state)
{
    (void)state;
    char *d = pdw_test_tmpdir("errors");
    snprintf(spool_dir, sizeof spool_dir, "%s", d);
    free(d);
    return 0;
}
static int spool_teardown(void **state)
{
    (void)state;
    pdw_test_rmtree(spool_dir);
    return 0;
}

static void test_ENOTFOUND_spool_unknown_id(void **state)
{
    (void)state;
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(&s, spool_dir, NULL, NULL, NULL), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 12345), PDW_ENOTFOUND);
    pdw_spool_close(s);
}

static void test_ELOCKED_spool_twice(void **state)
{
    (void)state;
    pdw_spool *a = NULL, *b = NULL;
    assert_int_equal(pdw_spool_open(&a, spool_dir, NULL, NULL, NULL), 0);
    assert_int_equal(pdw_spool_open(&b, spool_dir, NULL, NULL, NULL), PDW_ELOCKED);
    assert_null(b);
    pdw_spool_close(a);
}

static void test_ENOSPC_spool_over_max_bytes(void **state)
{
    (void)state;
    pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
    so.max_bytes = 64;
    so.no_sync = 1;
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(&s, spool_dir, &so, NULL, NULL), 0);
    uint64_t id;
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, V2, strlen(V2), &id, NULL), PDW_ENOSPC);
    assert_int_equal(pdw_err_http_status(PDW_ENOSPC), 503);
    pdw_spool_close(s);
}

static void test_EIO_spool_not_a_directory(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/file", spool_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(&s, path, NULL, NULL, NULL), PDW_EIO);
    assert_int_equal(pdw_err_http_status(PDW_EIO), 503);
}

static pdw_plan *plan(const char *version)
{
    pdw_plan_options po = PDW_PLAN_OPTIONS_INIT;
    po.webhook_version = version;
    po.subscription_url = "https://hooks.example.com/pipedrive";
    pdw_plan *p = NULL;
    assert_int_equal(pdw_plan_new(&p, &po, NULL), 0);
    return p;
}

static void test_ERANGE_plan_index(void **state)
{
    (void)state;
    pdw_plan *p = plan("2.0");
    assert_int_equal(pdw_plan_add(p, "change.deal", NULL), 0);
    char *body = NULL;
    assert_int_equal(pdw_plan_body_json(p, 5, &body, NULL), PDW_ERANGE);
    assert_null(body);
    pdw_plan_free(p);
}

static void test_ELIMIT_forty_webhooks(void **state)
{
    (void)state;
    pdw_plan *p = plan("2.0");
    assert_int_equal(pdw_plan_add(p, "change.deal", NULL), 0);
    assert_int_equal(pdw_plan_check(p, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER, NULL), PDW_ELIMIT);
    pdw_plan_free(p);
}

static void test_EUNSUPPORTED_merged_in_v2(void **state)
{
    (void)state;
    pdw_plan *p = plan("2.0");
    assert_int_equal(pdw_plan_add(p, "merged.deal", NULL), PDW_EUNSUPPORTED);
    pdw_plan_free(p);
}

/* A request from outside the allowlist: 403, before the credentials are looked at; a
 * trusted proxy's X-Forwarded-For names the client (its rightmost untrusted entry). */
static int send_from(pdw_receiver *r, const char *peer, const char *xff, const char *auth,
                     pdw_verdict *v)
{
    pdw_header h[3] = { { "Content-Type", 12, "application/json", 16 } };
    size_t n = 1;
    if (auth)
        h[n++] = (pdw_header){ "Authorization", 13, auth, strlen(auth) };
    if (xff)
        h[n++] = (pdw_header){ "X-Forwarded-For", 15, xff, strlen(xff) };
    pdw_request req = PDW_REQUEST_INIT;
    req.method = "POST";
    req.method_len = 4;
    req.headers = h;
    req.num_headers = n;
    req.body = V2;
    req.body_len = strlen(V2);
    req.peer = peer;
    req.peer_len = peer ? strlen(peer) : 0;
    *v = (pdw_verdict)PDW_VERDICT_INIT;
    return pdw_receiver_handle(r, &req, v, NULL);
}

static void test_EFORBIDDEN_outside_allowlist(void **state)
{
    (void)state;
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" } };
    pdw_allowlist *allow = NULL, *proxies = NULL;
    assert_int_equal(pdw_allowlist_new(&allow, NULL), 0);
    assert_int_equal(pdw_allowlist_add(allow, "192.0.2.0/24", 12, NULL), 0);
    assert_int_equal(pdw_allowlist_new(&proxies, NULL), 0);
    assert_int_equal(pdw_allowlist_add(proxies, "10.0.0.1", 8, NULL), 0);
    pdw_receiver_options ro = PDW_RECEIVER_OPTIONS_INIT;
    ro.credentials = creds;
    ro.num_credentials = 1;
    ro.allowlist = allow;
    ro.trusted_proxies = proxies;
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &ro, NULL), 0);
    pdw_verdict v;
    /* outside: 403 with its reason, also with wrong credentials (not looked at) */
    assert_int_equal(send_from(r, "198.51.100.7", NULL, AUTH_OK, &v), PDW_EFORBIDDEN);
    assert_int_equal(v.status, 403);
    assert_string_equal(v.body, "{\"ok\":false,\"error\":\"PDW_EFORBIDDEN\"}");
    assert_int_equal(send_from(r, "198.51.100.7", NULL, "Basic d3Jvbmc6d3Jvbmc=", &v),
                     PDW_EFORBIDDEN);
    assert_int_equal(send_from(r, NULL, NULL, AUTH_OK, &v), PDW_EFORBIDDEN); /* no peer */
    /* inside: on to the credentials and the body */
    assert_int_equal(send_from(r, "192.0.2.9", NULL, AUTH_OK, &v), PDW_OK);
    assert_int_equal(send_from(r, "::ffff:192.0.2.10", NULL, AUTH_OK, &v), PDW_EDUPLICATE);
    /* through the trusted proxy: the client is the rightmost untrusted entry; what the
     * sender put to its left does not count */
    assert_int_equal(send_from(r, "10.0.0.1", "192.0.2.50", AUTH_OK, &v), PDW_EDUPLICATE);
    assert_int_equal(send_from(r, "10.0.0.1", "192.0.2.1, 198.51.100.7", AUTH_OK, &v),
                     PDW_EFORBIDDEN);
    assert_int_equal(send_from(r, "10.0.0.1", "198.51.100.7, 192.0.2.3 , 10.0.0.1", AUTH_OK,
                               &v),
                     PDW_EDUPLICATE);
    /* a peer that is no trusted proxy: its X-Forwarded-For is ignored */
    assert_int_equal(send_from(r, "198.51.100.9", "192.0.2.1", AUTH_OK, &v), PDW_EFORBIDDEN);
    /* the proxy itself, without the header: the proxy's address decides */
    assert_int_equal(send_from(r, "10.0.0.1", NULL, AUTH_OK, &v), PDW_EFORBIDDEN);
    assert_int_equal(pdw_err_http_status(PDW_EFORBIDDEN), 403);
    pdw_receiver_free(r);
    pdw_allowlist_free(allow);
    pdw_allowlist_free(proxies);
}

/* Codes whose trigger needs a service these tests do not start: the table row only. */
static void test_table_rows_of_service_codes(void **state)
{
    (void)state;
    int seen = 0;
#define XX(name, value, status, msg)                                                          \
    if (strncmp(#name, "EREDIS", 6) == 0 || strcmp(#name, "ENOTBUILT") == 0) {                \
        assert_int_equal(pdw_err_http_status(value), status);                                 \
        assert_string_equal(pdw_err_name(value), "PDW_" #name);                               \
        assert_string_equal(pdw_strerror(value), msg);                                        \
        seen++;                                                                               \
    }
    PDW_ERRNO_MAP(XX)
#undef XX
    (void)seen;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_lists_every_code),
        cmocka_unit_test(test_OK_accepted),
        cmocka_unit_test(test_EMETHOD_get),
        cmocka_unit_test(test_EMEDIATYPE_text_plain),
        cmocka_unit_test(test_ETOOLARGE_declared),
        cmocka_unit_test(test_ETOOLARGE_body_over_limit),
        cmocka_unit_test(test_ELENGTH_body_longer_than_declared),
        cmocka_unit_test(test_ELENGTH_body_shorter_than_declared),
        cmocka_unit_test(test_EHEADER_two_content_lengths),
        cmocka_unit_test(test_EHEADER_content_length_not_digits),
        cmocka_unit_test(test_EHEADER_oversized_content_length),
        cmocka_unit_test(test_EAUTHMISSING_no_header),
        cmocka_unit_test(test_EAUTHMALFORMED_bad_base64),
        cmocka_unit_test(test_EAUTHMALFORMED_no_colon),
        cmocka_unit_test(test_EAUTHMALFORMED_not_basic),
        cmocka_unit_test(test_EAUTHMALFORMED_two_headers),
        cmocka_unit_test(test_EAUTHMALFORMED_oversized_header),
        cmocka_unit_test(test_EAUTHWRONG_password),
        cmocka_unit_test(test_EJSON_truncated),
        cmocka_unit_test(test_EJSON_trailing_garbage),
        cmocka_unit_test(test_EJSON_nul_in_string),
        cmocka_unit_test(test_EJSON_nul_escape_in_key),
        cmocka_unit_test(test_EJSON_empty_body),
        cmocka_unit_test(test_EJSON_huge_numbers),
        cmocka_unit_test(test_EUTF8_invalid),
        cmocka_unit_test(test_EDEPTH_100k_deep),
        cmocka_unit_test(test_EDUPKEY_duplicate_keys),
        cmocka_unit_test(test_ENOTOBJECT_top_level),
        cmocka_unit_test(test_ENOMETA_missing),
        cmocka_unit_test(test_ENOMETA_not_object),
        cmocka_unit_test(test_EVERSION_missing_or_unknown),
        cmocka_unit_test(test_EACTION_unknown_or_wrong_type),
        cmocka_unit_test(test_EOBJECT_missing_or_invalid),
        cmocka_unit_test(test_EFIELD_wrong_type_or_size),
        cmocka_unit_test(test_EDUPLICATE_retry),
        cmocka_unit_test(test_EHANDLER_handler_failed),
        cmocka_unit_test(test_ESTORE_dedup_failed),
        cmocka_unit_test(test_EINFLIGHT_retry_while_first_in_flight),
        cmocka_unit_test(test_EFORBIDDEN_outside_allowlist),
        cmocka_unit_test(test_ENOMEM_allocator_fails),
        cmocka_unit_test(test_EINVAL_null_body),
        cmocka_unit_test(test_EFROZEN_register_after_dispatch),
        cmocka_unit_test(test_EPATTERN_bad_pattern),
        cmocka_unit_test(test_ENOAUTH_no_credentials),
        cmocka_unit_test(test_EVERSIONSTRUCT_request_version),
        cmocka_unit_test_setup_teardown(test_ENOTFOUND_spool_unknown_id, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_ELOCKED_spool_twice, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_ENOSPC_spool_over_max_bytes, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_EIO_spool_not_a_directory, spool_setup, spool_teardown),
        cmocka_unit_test(test_ERANGE_plan_index),
        cmocka_unit_test(test_ELIMIT_forty_webhooks),
        cmocka_unit_test(test_EUNSUPPORTED_merged_in_v2),
        cmocka_unit_test(test_table_rows_of_service_codes),
    };
    PDW_RUN_GROUP(tests);
}
