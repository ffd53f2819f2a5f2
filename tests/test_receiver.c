/* The request pipeline: every row of the status table, dedup, the accept hook, handler
 * failures, options, real fixtures and concurrent use. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"
#include "pdwebhook/sys/dedup_store.h"

static const char V2[] = "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
                         "\"entity_id\":\"8\",\"id\":\"ev-1\",\"timestamp\":\"2022-11-24T15:11:55"
                         ".724Z\",\"attempt\":1},\"data\":{\"stage_id\":2},\"previous\":"
                         "{\"stage_id\":1}}";

static void b64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

typedef struct req {
    pdw_request r;
    pdw_header h[6];
    char auth[256];
    char clen[32];
} req;

/* A request as Pipedrive sends it, with Basic credentials user:pass (NULL: none). */
static void make_req(req *q, const char *method, const char *ctype, const char *userpass,
                     const char *body, size_t len)
{
    memset(q, 0, sizeof *q);
    pdw_request init = PDW_REQUEST_INIT;
    q->r = init;
    q->r.method = method;
    q->r.method_len = strlen(method);
    size_t n = 0;
    if (ctype)
        q->h[n++] = (pdw_header){ "Content-Type", 12, ctype, strlen(ctype) };
    q->h[n++] = (pdw_header){ "User-Agent", 10, "Pipedrive Webhooks", 18 };
    if (userpass) {
        char enc[200];
        b64(userpass, enc);
        snprintf(q->auth, sizeof q->auth, "Basic %s", enc);
        q->h[n++] = (pdw_header){ "authorization", 13, q->auth, strlen(q->auth) };
    }
    snprintf(q->clen, sizeof q->clen, "%zu", len);
    q->h[n++] = (pdw_header){ "Content-Length", 14, q->clen, strlen(q->clen) };
    q->r.headers = q->h;
    q->r.num_headers = n;
    q->r.body = body;
    q->r.body_len = len;
}

typedef struct counts {
    atomic_int calls;
    int fail;
} counts;

static int count_cb(const pdw_event *ev, void *user)
{
    (void)ev;
    counts *c = user;
    atomic_fetch_add(&c->calls, 1);
    return c->fail;
}

static pdw_receiver *make_receiver(pdw_receiver_options *o, counts *c)
{
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" }, { "new", "rotated" } };
    if (!o->credentials && !o->insecure_no_auth && !o->query_token) {
        o->credentials = creds;
        o->num_credentials = 2;
    }
    pdw_receiver *r = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_receiver_new(&r, o, &err);
    if (rc != 0)
        fail_msg("receiver_new: %s %s", pdw_err_name(rc), err.message);
    if (c)
        assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.*", count_cb, c, NULL), 0);
    return r;
}

static const char *header_of(const pdw_verdict *v, const char *name)
{
    for (size_t i = 0; i < v->num_headers; i++)
        if (strcmp(v->headers[i].name, name) == 0)
            return v->headers[i].value;
    return NULL;
}

static int run(pdw_receiver *r, req *q, pdw_verdict *v)
{
    pdw_verdict init = PDW_VERDICT_INIT;
    *v = init;
    int rc = pdw_receiver_handle(r, &q->r, v, NULL);
    assert_int_equal(rc, v->reason);
    assert_non_null(v->body);
    assert_int_equal(strlen(v->body), v->body_len);
    return rc;
}

static void test_accepted_then_duplicate(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_int_equal(v.handlers_matched, 1);
    assert_string_equal(v.event, "change.deal");
    assert_true(strlen(v.delivery_key) > 0);
    assert_string_equal(v.body, "{\"ok\":true}");
    /* the retry (attempt 2) of the same event: 200, not handed on again */
    char retry[sizeof V2 + 8];
    snprintf(retry, sizeof retry, "%s", V2);
    char *at = strstr(retry, "\"attempt\":1");
    at[10] = '2';
    make_req(&q, "POST", "application/json", "new:rotated", retry, strlen(retry));
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&c.calls), 1);
    pdw_receiver_free(r);
}

static void test_method_405(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    pdw_receiver *r = make_receiver(&o, NULL);
    req q;
    pdw_verdict v;
    const char *methods[] = { "GET", "PUT", "post", "HEAD", "POSTX" };
    for (size_t i = 0; i < 5; i++) {
        make_req(&q, methods[i], "application/json", "pipedrive:s3cret", V2, strlen(V2));
        assert_int_equal(run(r, &q, &v), PDW_EMETHOD);
        assert_int_equal(v.status, 405);
        assert_string_equal(header_of(&v, "Allow"), "POST");
    }
    pdw_receiver_free(r);
}

static void test_media_type_415(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    /* "\x0f" | 0x20 is '/': only letters compare case-insensitively */
    const char *bad[] = { "text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                          "", "json", "application\x0fjson", "applicatio/json",
                          "application/jso" };
    for (size_t i = 0; i < 8; i++) {
        make_req(&q, "POST", bad[i], "pipedrive:s3cret", V2, strlen(V2));
        assert_int_equal(run(r, &q, &v), PDW_EMEDIATYPE);
        assert_int_equal(v.status, 415);
    }
    make_req(&q, "POST", NULL, "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EMEDIATYPE);
    const char *good[] = { "application/json", "Application/JSON; charset=utf-8",
                           " application/json ", "application/json;charset=UTF-8",
                           "APPLICATION/JSON" };
    assert_int_equal(atomic_load(&c.calls), 0);
    for (size_t i = 0; i < 5; i++) {
        make_req(&q, "POST", good[i], "pipedrive:s3cret", V2, strlen(V2));
        int rc = run(r, &q, &v);
        assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
    }
    assert_int_equal(atomic_load(&c.calls), 1);
    /* Header names: any case, but a byte that is not a letter is compared as it is
     * ("\r" | 0x20 is '-'): "Content\rType" is not Content-Type, so the request has none */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[0].name = "CONTENT-TYPE";
    int rc = run(r, &q, &v);
    assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
    q.h[0].name = "Content\rType";
    assert_int_equal(run(r, &q, &v), PDW_EMEDIATYPE);
    q.h[0].name = "content-typE";
    rc = run(r, &q, &v);
    assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
    /* Every byte value at every position of "Content-Type": recognised exactly when the
     * byte is the literal's byte in either ASCII case. */
    static const char lit[] = "content-type";
    char name[sizeof lit];
    q.h[0].name = name;
    for (size_t i = 0; i < sizeof lit - 1; i++)
        for (unsigned b = 0; b < 256; b++) {
            memcpy(name, lit, sizeof lit);
            name[i] = (char)b;
            unsigned lower = b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b;
            rc = run(r, &q, &v);
            if (lower == (unsigned char)lit[i])
                assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
            else
                assert_int_equal(rc, PDW_EMEDIATYPE);
        }
    /* the same for Authorization (13 bytes) and Content-Length (14) */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[2].name = "AUTHORIZATION";
    rc = run(r, &q, &v);
    assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
    q.h[2].name = "Authorizatio\x0e"; /* 0x0e | 0x20 is '.', not 'n': not the header */
    assert_int_equal(run(r, &q, &v), PDW_EAUTHMISSING);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[3].name = "CONTENT-LENGTH";
    snprintf(q.clen, sizeof q.clen, "%zu", strlen(V2) + 1); /* a wrong length is seen */
    assert_int_equal(run(r, &q, &v), PDW_ELENGTH);
    q.h[3].name = "Content\x0dLength"; /* not Content-Length: no length to disagree */
    rc = run(r, &q, &v);
    assert_true(rc == PDW_OK || rc == PDW_EDUPLICATE);
    pdw_receiver_free(r);
    /* the leniency is an option */
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.allow_missing_content_type = 1;
    r = make_receiver(&o2, NULL);
    make_req(&q, "POST", NULL, "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_OK);
    make_req(&q, "POST", "text/plain", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EMEDIATYPE);
    pdw_receiver_free(r);
}

static void test_size_413_and_length(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.max_body = 100;
    pdw_receiver *r = make_receiver(&o, NULL);
    req q;
    pdw_verdict v = PDW_VERDICT_INIT;
    char big[300];
    memset(big, ' ', sizeof big);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", big, sizeof big);
    assert_int_equal(run(r, &q, &v), PDW_ETOOLARGE);
    assert_int_equal(v.status, 413);
    /* refused on Content-Length alone, before the body is read */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", NULL, 0);
    snprintf(q.clen, sizeof q.clen, "2097152");
    q.h[3].value_len = strlen(q.clen);
    assert_int_equal(pdw_receiver_check_head(r, &q.r, &v), PDW_ETOOLARGE);
    assert_int_equal(v.status, 413);
    snprintf(q.clen, sizeof q.clen, "50");
    q.h[3].value_len = 2;
    assert_int_equal(pdw_receiver_check_head(r, &q.r, &v), 0);
    /* the default limit is 1 MiB */
    pdw_receiver_free(r);
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    r = make_receiver(&o2, NULL);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", NULL, 0);
    snprintf(q.clen, sizeof q.clen, "%d", 1024 * 1024 + 1);
    q.h[3].value_len = strlen(q.clen);
    assert_int_equal(pdw_receiver_check_head(r, &q.r, &v), PDW_ETOOLARGE);
    snprintf(q.clen, sizeof q.clen, "%d", 1024 * 1024);
    assert_int_equal(pdw_receiver_check_head(r, &q.r, &v), 0);
    /* body larger or smaller than declared */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    snprintf(q.clen, sizeof q.clen, "%zu", strlen(V2) - 1);
    assert_int_equal(run(r, &q, &v), PDW_ELENGTH);
    assert_int_equal(v.status, 400);
    snprintf(q.clen, sizeof q.clen, "12x");
    q.h[3].value_len = 3;
    assert_int_equal(run(r, &q, &v), PDW_EHEADER);
    /* two Content-Length headers */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[q.r.num_headers++] = q.h[3];
    assert_int_equal(run(r, &q, &v), PDW_EHEADER);
    assert_int_equal(v.status, 400);
    pdw_receiver_free(r);
}

static void test_auth_401_403(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.realm = "crm hooks";
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", NULL, V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EAUTHMISSING);
    assert_int_equal(v.status, 401);
    assert_string_equal(header_of(&v, "WWW-Authenticate"),
                        "Basic realm=\"crm hooks\", charset=\"UTF-8\"");
    make_req(&q, "POST", "application/json", "pipedrive:wrong", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EAUTHWRONG);
    assert_int_equal(v.status, 401);
    assert_null(strstr(v.body, "s3cret"));
    make_req(&q, "POST", "application/json", "pipedrive:rotated", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EAUTHWRONG); /* pairs do not mix */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    snprintf(q.auth, sizeof q.auth, "Basic !!!!");
    q.h[2].value_len = strlen(q.auth);
    assert_int_equal(run(r, &q, &v), PDW_EAUTHMALFORMED);
    assert_int_equal(v.status, 401);
    /* two Authorization headers are ambiguous */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[q.r.num_headers++] = q.h[2];
    assert_int_equal(run(r, &q, &v), PDW_EAUTHMALFORMED);
    assert_int_equal(atomic_load(&c.calls), 0);
    pdw_receiver_free(r);
    /* 403 for wrong credentials, an option; missing ones stay 401 */
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.wrong_credentials_status = 403;
    r = make_receiver(&o2, NULL);
    make_req(&q, "POST", "application/json", "pipedrive:nope", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EAUTHWRONG);
    assert_int_equal(v.status, 403);
    assert_null(header_of(&v, "WWW-Authenticate"));
    make_req(&q, "POST", "application/json", NULL, V2, strlen(V2));
    run(r, &q, &v);
    assert_int_equal(v.status, 401);
    pdw_receiver_free(r);
}

static void test_query_token(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.query_token = "t0k3n";
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", NULL, V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EAUTHMISSING);
    q.r.query = "a=1&token=t0k3n";
    q.r.query_len = strlen(q.r.query);
    assert_int_equal(run(r, &q, &v), PDW_OK);
    q.r.query = "token=t0k3x";
    q.r.query_len = strlen(q.r.query);
    assert_int_equal(run(r, &q, &v), PDW_EAUTHWRONG);
    assert_int_equal(v.status, 401);
    assert_int_equal(atomic_load(&c.calls), 1);
    pdw_receiver_free(r);
}

static void test_bad_body_400(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    struct {
        const char *body;
        int code;
    } cases[] = {
        { "{\"meta\":{\"version\":\"2.0\"", PDW_EJSON },
        { "{\"meta\":{}},", PDW_EJSON },
        { "{\"a\":\"\xff\"}", PDW_EUTF8 },
        { "[1,2]", PDW_ENOTOBJECT },
        { "{\"data\":{}}", PDW_ENOMETA },
        { "{\"meta\":{\"action\":\"create\",\"entity\":\"deal\"}}", PDW_EVERSION },
        { "{\"meta\":{\"version\":\"2.0\",\"entity\":\"deal\"}}", PDW_EACTION },
        { "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\"}}", PDW_EOBJECT },
        { "{\"a\":1,\"a\":2}", PDW_EDUPKEY },
        { "", PDW_EJSON },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_req(&q, "POST", "application/json", "pipedrive:s3cret", cases[i].body,
                 strlen(cases[i].body));
        assert_int_equal(run(r, &q, &v), cases[i].code);
        assert_int_equal(v.status, 400);
        assert_non_null(strstr(v.body, pdw_err_name(cases[i].code)));
        assert_string_equal(v.event, "");
    }
    /* the real trailing-comma body */
    size_t len = 0;
    char *body = pdw_test_fixture("v2-create.deal-pipedream.txt", &len);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", body, len);
    assert_int_equal(run(r, &q, &v), PDW_EJSON);
    free(body);
    assert_int_equal(atomic_load(&c.calls), 0);
    pdw_receiver_free(r);
}

static void test_handler_failure_policy(void **state)
{
    (void)state;
    req q;
    pdw_verdict v;
    /* default: 200, failure reported in the verdict */
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 7 };
    pdw_receiver *r = make_receiver(&o, &c);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_EHANDLER);
    assert_int_equal(v.status, 200);
    assert_int_equal(v.handlers_failed, 1);
    assert_int_equal(v.handler_rc, 7);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE); /* 2xx: the retry is a duplicate */
    pdw_receiver_free(r);
    /* 500 chosen: the claim is released so that the retry runs the handler again */
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.handler_error_status = 500;
    counts c2 = { 0, -1 };
    r = make_receiver(&o2, &c2);
    assert_int_equal(run(r, &q, &v), PDW_EHANDLER);
    assert_int_equal(v.status, 500);
    assert_int_equal(run(r, &q, &v), PDW_EHANDLER);
    assert_int_equal(atomic_load(&c2.calls), 2);
    c2.fail = 0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(atomic_load(&c2.calls), 3);
    pdw_receiver_free(r);
}

typedef struct hook {
    int rc;
    int calls;
    char key[PDW_DELIVERY_KEY_MAX];
    size_t body_len;
    void *request_user; /* what the last call was handed */
} hook;

static int accept_hook(const pdw_event *ev, void *request_user, void *user)
{
    hook *h = user;
    h->calls++;
    h->request_user = request_user;
    snprintf(h->key, sizeof h->key, "%s", pdw_event_delivery_key(ev));
    pdw_event_body(ev, &h->body_len);
    return h->rc;
}

static void test_accept_hook(void **state)
{
    (void)state;
    hook h = { PDW_ESTORE, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.accept = accept_hook;
    o.accept_user = &h;
    o.retry_after_seconds = 30;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    /* the hook cannot store it: 503 + Retry-After, and the claim is given back */
    assert_int_equal(run(r, &q, &v), PDW_ESTORE);
    assert_int_equal(v.status, 503);
    assert_string_equal(header_of(&v, "Retry-After"), "30");
    h.rc = 0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.body_len, strlen(V2));
    assert_string_equal(h.key, v.delivery_key);
    assert_int_equal(atomic_load(&c.calls), 0); /* not dispatched in-line */
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(h.calls, 2);
    /* later, a worker dispatches the stored body */
    pdw_dispatch_result res;
    assert_int_equal(pdw_receiver_dispatch_body(r, V2, strlen(V2), &res, NULL), 0);
    assert_int_equal(res.matched, 1);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_int_equal(pdw_receiver_dispatch_body(r, "{", 1, &res, NULL), PDW_EJSON);
    pdw_receiver_free(r);
}

/* A store of the test's own: counts its calls and whether it was freed. */
typedef struct test_store {
    pdw_dedup_store parent;
    int calls; /* claims */
    int freed;
} test_store;

static int broken_claim(pdw_dedup_store *self, const char *k, size_t n, uint64_t now,
                        uint64_t ttl)
{
    (void)k, (void)n, (void)now, (void)ttl;
    ((test_store *)self)->calls++;
    return PDW_ENOMEM;
}

static int odd_claim(pdw_dedup_store *self, const char *k, size_t n, uint64_t now, uint64_t ttl)
{
    (void)k, (void)n, (void)now, (void)ttl;
    ((test_store *)self)->calls++;
    return PDW_CLAIM_DUPLICATE + 1;
}

static int broken_release(pdw_dedup_store *self, const char *k, size_t n)
{
    (void)self, (void)k, (void)n;
    return 0;
}

static int broken_confirm(pdw_dedup_store *self, const char *k, size_t n, uint64_t now,
                          uint64_t ttl)
{
    (void)self, (void)k, (void)n, (void)now, (void)ttl;
    return 0;
}

static void test_store_free(pdw_dedup_store *self)
{
    ((test_store *)self)->freed++;
}

static void test_store_init(test_store *t)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(pdw_dedup_store_init(&t->parent, PDW_DEDUP_STORE_VERSION), 0);
    t->parent.claim = broken_claim;
    t->parent.release = broken_release;
    t->parent.confirm = broken_confirm;
    t->parent.free = test_store_free;
}

static void test_custom_dedup_store_failure_503(void **state)
{
    (void)state;
    test_store ts;
    test_store_init(&ts);
    ts.parent.free = NULL; /* on the stack: nobody frees it */
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.dedup = &ts.parent;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_ESTORE);
    assert_int_equal(v.status, 503);
    assert_non_null(header_of(&v, "Retry-After"));
    assert_int_equal(ts.calls, 1);
    assert_int_equal(atomic_load(&c.calls), 0);
    pdw_receiver_free(r);
    /* a claim result no store may give (above PDW_CLAIM_DUPLICATE) is a store failure too,
     * never taken as new */
    ts.parent.claim = odd_claim;
    ts.calls = 0;
    r = make_receiver(&o, &c);
    assert_int_equal(run(r, &q, &v), PDW_ESTORE);
    assert_int_equal(v.status, 503);
    assert_int_equal(ts.calls, 1);
    assert_int_equal(atomic_load(&c.calls), 0);
    pdw_receiver_free(r);
    /* dedup off: every delivery is handed on */
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.disable_dedup = 1;
    counts c2 = { 0, 0 };
    r = make_receiver(&o2, &c2);
    run(r, &q, &v);
    run(r, &q, &v);
    assert_int_equal(atomic_load(&c2.calls), 2);
    pdw_receiver_free(r);
}


/* ---- in flight: a retry while the first attempt is still being accepted --------------
 * The first attempt's handler blocks (a gate); meanwhile the retry must get 503
 * PDW_EINFLIGHT + Retry-After, never the 200 of a duplicate: if the first attempt then
 * fails, Pipedrive must still have a retry to come back with. */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int block;   /* the next call waits until open */
    int entered; /* a call is waiting */
    int open;
    int fail;    /* what the handler returns */
    atomic_int calls;
} gate;

static void gate_init(gate *g, int fail)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->block = 1;
    g->entered = 0;
    g->open = 0;
    g->fail = fail;
    atomic_init(&g->calls, 0);
}

static void gate_fini(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static int gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->block) {
        g->block = 0;
        g->entered = 1;
        pthread_cond_broadcast(&g->cv);
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    int rc = g->fail;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static void gate_wait_entered(gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g, int fail)
{
    pthread_mutex_lock(&g->mu);
    g->fail = fail;
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gate_handler(const pdw_event *ev, void *user)
{
    (void)ev;
    gate *g = user;
    atomic_fetch_add(&g->calls, 1);
    return gate_wait(g);
}

typedef struct first_attempt {
    pdw_receiver *r;
    req q;
    pdw_verdict v;
    int rc;
} first_attempt;

static void *first_attempt_main(void *p)
{
    first_attempt *f = p; /* no cmocka assertion off the main thread */
    f->rc = pdw_receiver_handle(f->r, &f->q.r, &f->v, NULL);
    return NULL;
}

static void start_first(first_attempt *f, pdw_receiver *r, pthread_t *t)
{
    f->r = r;
    make_req(&f->q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    pdw_verdict init = PDW_VERDICT_INIT;
    f->v = init;
    f->rc = 1;
    assert_int_equal(pthread_create(t, NULL, first_attempt_main, f), 0);
}

/* Pipedrive's retry of V2: attempt 2, the same event (the same delivery key). */
static void make_retry(req *q, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", V2);
    char *at = strstr(buf, "\"attempt\":1");
    at[10] = '2';
    make_req(q, "POST", "application/json", "pipedrive:s3cret", buf, strlen(buf));
}

static pdw_receiver *gated_receiver(gate *g, int handler_status, pdw_dedup_store *store)
{
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.handler_error_status = handler_status;
    o.retry_after_seconds = 7;
    o.dedup = store;
    pdw_receiver *r = make_receiver(&o, NULL);
    assert_int_equal(pdw_router_on(pdw_receiver_router(r), "*.*", gate_handler, g, NULL), 0);
    return r;
}

static void test_inflight_retry_then_first_fails(void **state)
{
    (void)state;
    gate g;
    gate_init(&g, 0);
    pdw_receiver *r = gated_receiver(&g, 500, NULL);
    first_attempt f;
    pthread_t t;
    start_first(&f, r, &t);
    gate_wait_entered(&g);

    /* the retry while the first attempt runs: 503 + Retry-After, not handed on */
    char buf[sizeof V2 + 8];
    req q;
    pdw_verdict v;
    make_retry(&q, buf, sizeof buf);
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_string_equal(header_of(&v, "Retry-After"), "7");
    assert_string_equal(v.body, "{\"ok\":false,\"error\":\"PDW_EINFLIGHT\"}");
    assert_int_equal(atomic_load(&g.calls), 1);

    /* the same event's first attempt from a second webhook (two subscriptions cover it):
     * 200 as a duplicate, no ban point; the holder's own retries cover a failure */
    req q1;
    make_req(&q1, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q1, &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&g.calls), 1);

    /* the first attempt fails (500): its claim is released */
    gate_open(&g, 1);
    pthread_join(t, NULL);
    assert_int_equal(f.rc, PDW_EHANDLER);
    assert_int_equal(f.v.status, 500);

    /* the next retry is new and handed on; it succeeds, and the one after is a duplicate */
    g.fail = 0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&g.calls), 2);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&g.calls), 2);
    pdw_receiver_free(r);
    gate_fini(&g);
}

static void test_inflight_retry_then_first_succeeds(void **state)
{
    (void)state;
    gate g;
    gate_init(&g, 0);
    pdw_receiver *r = gated_receiver(&g, 500, NULL);
    first_attempt f;
    pthread_t t;
    start_first(&f, r, &t);
    gate_wait_entered(&g);
    char buf[sizeof V2 + 8];
    req q;
    pdw_verdict v;
    make_retry(&q, buf, sizeof buf);
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_non_null(header_of(&v, "Retry-After"));
    gate_open(&g, 0);
    pthread_join(t, NULL);
    assert_int_equal(f.rc, PDW_OK);
    assert_int_equal(f.v.status, 200);
    /* confirmed: the next retry is a duplicate, not handed on again */
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(atomic_load(&g.calls), 1);
    pdw_receiver_free(r);
    gate_fini(&g);

    /* a handler failure answered 2xx (the default policy) keeps the claim: confirmed too */
    gate_init(&g, 0);
    r = gated_receiver(&g, 0, NULL);
    start_first(&f, r, &t);
    gate_wait_entered(&g);
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    gate_open(&g, 3);
    pthread_join(t, NULL);
    assert_int_equal(f.rc, PDW_EHANDLER);
    assert_int_equal(f.v.status, 200);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(atomic_load(&g.calls), 1);
    pdw_receiver_free(r);
    gate_fini(&g);
}

/* The accept hook defers: answered 200, the claim stays in flight until the caller settles
 * it with pdw_receiver_confirm() or pdw_receiver_release(). */
static void test_accept_deferred(void **state)
{
    (void)state;
    hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.accept = accept_hook;
    o.accept_user = &h;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(h.calls, 1);
    char key[PDW_DELIVERY_KEY_MAX];
    snprintf(key, sizeof key, "%s", v.delivery_key);
    /* not settled yet: a retry (attempt 2) finds it in flight, 503 */
    char buf[sizeof V2 + 8];
    make_retry(&q, buf, sizeof buf);
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_non_null(header_of(&v, "Retry-After"));
    assert_int_equal(h.calls, 1);
    /* the caller's commit failed: released, the next retry is handed on again */
    assert_int_equal(pdw_receiver_release(r, key, strlen(key)), 0);
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(h.calls, 2);
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    /* now it is durable: confirmed, the next retry is a duplicate */
    assert_int_equal(pdw_receiver_confirm(r, key, strlen(key)), 0);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    assert_int_equal(h.calls, 2);
    assert_int_equal(atomic_load(&c.calls), 0);
    /* a key the store does not hold; bad arguments */
    assert_int_equal(pdw_receiver_confirm(r, "nope", 4), PDW_ENOTFOUND);
    assert_int_equal(pdw_receiver_confirm(NULL, key, strlen(key)), PDW_EINVAL);
    assert_int_equal(pdw_receiver_release(r, NULL, 3), PDW_EINVAL);
    pdw_receiver_free(r);

    /* any other value >= 0: accepted and confirmed at once */
    hook h2 = { 5, 0, "", 0, NULL };
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.accept = accept_hook;
    o2.accept_user = &h2;
    r = make_receiver(&o2, NULL);
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(h2.calls, 1);
    pdw_receiver_free(r);

    /* dedup off: nothing to settle */
    pdw_receiver_options o3 = PDW_RECEIVER_OPTIONS_INIT;
    o3.disable_dedup = 1;
    r = make_receiver(&o3, NULL);
    assert_int_equal(pdw_receiver_confirm(r, key, strlen(key)), 0);
    assert_int_equal(pdw_receiver_release(r, key, strlen(key)), 0);
    pdw_receiver_free(r);
}

/* The receiver takes a store of another version for an error (and leaves it alone: its
 * layout is unknown), an incomplete one too; it takes over the store it is given whatever
 * pdw_receiver_new() returns: freed with the receiver (also with dedup disabled), or at
 * once when the creation fails. */
static void test_dedup_store_version_and_ownership(void **state)
{
    (void)state;
    test_store ts;
    test_store_init(&ts);
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.dedup = &ts.parent;
    o.insecure_no_auth = 1;
    pdw_receiver *r = NULL;
    pdw_error e;
    ts.parent.version = PDW_DEDUP_STORE_VERSION + 1; /* not this header's vtable */
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EVERSIONSTRUCT);
    assert_null(r);
    ts.parent.version = 0;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EVERSIONSTRUCT);
    assert_int_equal(ts.freed, 0); /* another layout: not touched */
    ts.parent.version = PDW_DEDUP_STORE_VERSION;
    ts.parent.confirm = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EINVAL);
    assert_int_equal(ts.freed, 1); /* taken, and freed with the failure */
    ts.parent.confirm = broken_confirm;
    ts.parent.release = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EINVAL);
    ts.parent.release = broken_release;
    ts.parent.claim = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EINVAL);
    ts.parent.claim = broken_claim;
    assert_int_equal(ts.freed, 3);
    /* a failure that has nothing to do with the store frees it too */
    o.insecure_no_auth = 0;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_ENOAUTH);
    assert_int_equal(ts.freed, 4);
    o.realm = "bad\"realm";
    o.insecure_no_auth = 1;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_EINVAL);
    o.realm = NULL;
    assert_int_equal(ts.freed, 5);
    /* created: the receiver owns it, and frees it once, with itself */
    assert_int_equal(pdw_receiver_new(&r, &o, &e), 0);
    assert_int_equal(ts.freed, 5);
    pdw_receiver_free(r);
    assert_int_equal(ts.freed, 6);
    /* with dedup disabled as well */
    o.disable_dedup = 1;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), 0);
    pdw_receiver_free(r);
    assert_int_equal(ts.freed, 7);
    /* a built-in memory store freed by a failing creation (no leak, no double free under
     * ASan / valgrind) */
    pdw_dedup_store *m0 = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m0, NULL, NULL), 0);
    o.disable_dedup = 0;
    o.dedup = m0;
    o.insecure_no_auth = 0;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), PDW_ENOAUTH);
    o.insecure_no_auth = 1;
    /* a built-in memory store given explicitly is freed with the receiver (no leak under
     * ASan / valgrind) */
    pdw_dedup_store *m = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    o.disable_dedup = 0;
    o.dedup = m;
    assert_int_equal(pdw_receiver_new(&r, &o, &e), 0);
    pdw_receiver_free(r);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *user)
{
    (void)user;
    return fake_now;
}

static void test_dedup_ttl_via_clock(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.clock = fake_clock;
    o.dedup_ttl_ms = 1000;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    fake_now = 10000;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = 10999;
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    fake_now = 11000;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(atomic_load(&c.calls), 2);
    pdw_receiver_free(r);
}

/* ---- the in-flight lease -------------------------------------------------------------
 * A claim in flight holds its key for the lease (default 60 s), not the dedup TTL; the
 * confirm keeps it for the TTL. The accept hook below defers and never settles: the
 * process "crashed" between the claim and its confirm. */

#define LEASE_MS 60000ull
#define TTL_MS (24ull * 3600ull * 1000ull)
#define T0 1700000000000ull

static pdw_receiver *deferring_receiver(pdw_receiver_options *o, hook *h)
{
    o->accept = accept_hook;
    o->accept_user = h;
    o->clock = fake_clock;
    return make_receiver(o, NULL);
}

/* A retry within the lease is 503 in flight; after it, taken as new and handed on. */
static void test_lease_crash_retry_after_lease(void **state)
{
    (void)state;
    hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    assert_int_equal(o.version, PDW_RECEIVER_OPTIONS_VERSION);
    assert_int_equal(o.inflight_lease_ms, 0); /* the default: 60 s */
    pdw_receiver *r = deferring_receiver(&o, &h);
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK); /* answered; its claim is never settled */
    assert_int_equal(h.calls, 1);
    char buf[sizeof V2 + 8];
    make_retry(&q, buf, sizeof buf);
    fake_now = T0 + 3000; /* Pipedrive's retries within the lease: 503 in flight */
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_non_null(header_of(&v, "Retry-After"));
    fake_now = T0 + LEASE_MS - 1;
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    assert_int_equal(h.calls, 1);
    fake_now = T0 + LEASE_MS; /* the lease is over: the retry is new, handed on */
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(h.calls, 2);
    /* this one settles: a later retry is a duplicate */
    assert_int_equal(pdw_receiver_confirm(r, h.key, strlen(h.key)), 0);
    fake_now = T0 + PDW_PIPEDRIVE_RETRY_HORIZON_MS; /* Pipedrive's last retry */
    assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
    assert_int_equal(h.calls, 2);
    pdw_receiver_free(r);

    /* a lease of one's own */
    hook h2 = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.inflight_lease_ms = 5000;
    r = deferring_receiver(&o2, &h2);
    fake_now = T0;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(run(r, &q, &v), PDW_OK);
    make_retry(&q, buf, sizeof buf);
    fake_now = T0 + 4999;
    assert_int_equal(run(r, &q, &v), PDW_EINFLIGHT);
    fake_now = T0 + 5000;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(h2.calls, 2);
    pdw_receiver_free(r);
}

/* The accept hook gets the request's own context (pdw_request::user): through
 * pdw_receiver_handle(), and through pdw_receiver_begin() / pdw_receiver_finish(); a
 * request of another version is refused. */
static void test_accept_hook_request_user(void **state)
{
    (void)state;
    hook h = { 0, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.accept = accept_hook;
    o.accept_user = &h;
    pdw_receiver *r = make_receiver(&o, NULL);
    int ctx1 = 1, ctx2 = 2;
    req q;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(q.r.version, PDW_REQUEST_VERSION);
    q.r.user = &ctx1;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(h.calls, 1);
    assert_ptr_equal(h.request_user, &ctx1);

    /* two steps: the user given to begin reaches the hook run by finish */
    char other[sizeof V2 + 8];
    snprintf(other, sizeof other, "%s", V2);
    memcpy(strstr(other, "ev-1"), "ev-2", 4);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", other, strlen(other));
    q.r.user = &ctx2;
    pdw_receiver_pending *p = NULL;
    pdw_verdict init = PDW_VERDICT_INIT;
    v = init;
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    q.r.user = NULL; /* kept by begin: the request struct may be gone by the body */
    assert_int_equal(pdw_receiver_finish(p, other, strlen(other), &v, NULL), PDW_OK);
    pdw_receiver_pending_free(p);
    assert_int_equal(h.calls, 2);
    assert_ptr_equal(h.request_user, &ctx2);

    /* a request of another version is refused before anything runs */
    memcpy(strstr(other, "ev-2"), "ev-3", 4);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", other, strlen(other));
    q.r.version = PDW_REQUEST_VERSION + 1;
    assert_int_equal(run(r, &q, &v), PDW_EVERSIONSTRUCT);
    q.r.version = 0;
    assert_int_equal(run(r, &q, &v), PDW_EVERSIONSTRUCT);
    assert_int_equal(h.calls, 2);
    pdw_receiver_free(r);
}

/* pdw_receiver_settle(): 0 confirms a deferred claim (a retry is a duplicate) and leaves
 * the verdict; a failure releases it (the retry is new) and answers what an accept hook
 * failing with that code gets: 503 + the receiver's Retry-After. */
static void test_settle_deferred(void **state)
{
    (void)state;
    hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.retry_after_seconds = 17;
    pdw_receiver *r = deferring_receiver(&o, &h);
    fake_now = T0;
    char buf[sizeof V2 + 8];
    req q, retry;
    pdw_verdict v, vr;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    make_retry(&retry, buf, sizeof buf);
    assert_int_equal(run(r, &q, &v), PDW_OK);
    assert_int_equal(run(r, &retry, &vr), PDW_EINFLIGHT);
    /* the flush failed */
    assert_int_equal(pdw_receiver_settle(r, PDW_EIO, &v), PDW_EIO);
    assert_int_equal(v.status, 503);
    assert_int_equal(v.reason, PDW_EIO);
    assert_string_equal(header_of(&v, "Retry-After"), "17");
    assert_int_equal(v.num_headers, 1);
    assert_string_equal(v.body, "{\"ok\":false,\"error\":\"PDW_EIO\"}");
    assert_int_equal(strlen(v.body), v.body_len);
    assert_string_equal(v.event, "change.deal"); /* kept */
    assert_string_equal(v.delivery_key, h.key);
    /* released: Pipedrive's retry is new, deferred again, and confirmed this time */
    assert_int_equal(run(r, &retry, &vr), PDW_OK);
    assert_int_equal(h.calls, 2);
    assert_int_equal(pdw_receiver_settle(r, 0, &vr), 0);
    assert_int_equal(vr.status, 200);
    assert_int_equal(vr.reason, PDW_OK);
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    assert_int_equal(h.calls, 2);
    /* a code that is not one of ours is a store failure, as for the hook */
    assert_int_equal(pdw_receiver_settle(r, -1000, &vr), PDW_ESTORE);
    assert_int_equal(vr.status, 503);
    /* refused: a positive outcome, NULLs, a verdict without a terminated key */
    assert_int_equal(pdw_receiver_settle(r, 1, &vr), PDW_EINVAL);
    assert_int_equal(pdw_receiver_settle(NULL, 0, &vr), PDW_EINVAL);
    assert_int_equal(pdw_receiver_settle(r, 0, NULL), PDW_EINVAL);
    memset(vr.delivery_key, 'k', sizeof vr.delivery_key);
    assert_int_equal(pdw_receiver_settle(r, 0, &vr), PDW_EINVAL);
    pdw_receiver_free(r);
}

/* pdw_receiver_remember(): a delivery found in a journal is a duplicate until the dedup
 * TTL after its arrival (not after the call), whatever the lease. */
static void test_remember(void **state)
{
    (void)state;
    hook h = { 0, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.dedup_ttl_ms = 3600000; /* one hour */
    pdw_receiver *r = deferring_receiver(&o, &h);
    char buf[sizeof V2 + 8];
    req q, retry;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    make_retry(&retry, buf, sizeof buf);
    /* learn the key the receiver makes for V2 */
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    char key[PDW_DELIVERY_KEY_MAX];
    snprintf(key, sizeof key, "%s", v.delivery_key);
    pdw_receiver_free(r);

    h.calls = 0;
    r = deferring_receiver(&o, &h); /* a restart: an empty store */
    fake_now = T0 + 1000;
    assert_int_equal(pdw_receiver_remember(r, key, strlen(key), (int64_t)T0), 0);
    assert_int_equal(pdw_receiver_remember(r, key, strlen(key), (int64_t)T0), 0); /* again */
    fake_now = T0 + 2000;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    fake_now = T0 + 3599999;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    assert_int_equal(h.calls, 0);
    fake_now = T0 + 3600000; /* one hour after it arrived */
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    assert_int_equal(h.calls, 1);
    assert_int_equal(pdw_receiver_remember(NULL, key, 1, 0), PDW_EINVAL);
    assert_int_equal(pdw_receiver_remember(r, NULL, 1, 0), PDW_EINVAL);
    pdw_receiver_free(r);

    /* dedup disabled: nothing to remember */
    pdw_receiver_options od = PDW_RECEIVER_OPTIONS_INIT;
    od.disable_dedup = 1;
    r = make_receiver(&od, NULL);
    assert_int_equal(pdw_receiver_remember(r, key, strlen(key), (int64_t)T0), 0);
    pdw_receiver_free(r);
}

/* A confirmed delivery stays a duplicate for the full TTL from its confirm, long after the
 * lease: when the receiver confirms itself, and through pdw_receiver_confirm(). */
static void test_lease_confirmed_duplicate_for_ttl(void **state)
{
    (void)state;
    char buf[sizeof V2 + 8];
    req q, retry;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    make_retry(&retry, buf, sizeof buf);

    /* synchronous dispatch: confirmed by the receiver */
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.clock = fake_clock;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + LEASE_MS;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    fake_now = T0 + 23ull * 3600ull * 1000ull;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    fake_now = T0 + TTL_MS - 1;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    assert_int_equal(atomic_load(&c.calls), 1);
    fake_now = T0 + TTL_MS; /* the TTL is over: a (very late) copy is new again */
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    assert_int_equal(atomic_load(&c.calls), 2);
    pdw_receiver_free(r);

    /* an accept hook that returns 0: confirmed by the receiver too */
    hook h0 = { 0, 0, "", 0, NULL };
    pdw_receiver_options o0 = PDW_RECEIVER_OPTIONS_INIT;
    r = deferring_receiver(&o0, &h0);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + 10 * LEASE_MS;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    assert_int_equal(h0.calls, 1);
    pdw_receiver_free(r);

    /* deferred, confirmed 20 s later: kept for the TTL from the confirm */
    hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    r = deferring_receiver(&o2, &h);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + 20000;
    assert_int_equal(pdw_receiver_confirm(r, h.key, strlen(h.key)), 0);
    fake_now = T0 + 3 * LEASE_MS;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    fake_now = T0 + 20000 + TTL_MS - 1;
    assert_int_equal(run(r, &retry, &v), PDW_EDUPLICATE);
    fake_now = T0 + 20000 + TTL_MS;
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    assert_int_equal(h.calls, 2);
    pdw_receiver_free(r);

    /* confirmed after its lease ran out: not held any more, said so; a retry is new */
    hook h3 = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o3 = PDW_RECEIVER_OPTIONS_INIT;
    r = deferring_receiver(&o3, &h3);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + LEASE_MS;
    assert_int_equal(pdw_receiver_confirm(r, h3.key, strlen(h3.key)), PDW_ENOTFOUND);
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    assert_int_equal(h3.calls, 2);
    pdw_receiver_free(r);
}

/* inflight_lease_ms at or above the dedup TTL: no lease, a claim holds the full TTL. */
static void test_lease_disabled_at_ttl(void **state)
{
    (void)state;
    const uint64_t leases[] = { 10000, 20000, UINT64_MAX };
    char buf[sizeof V2 + 8];
    req q, retry;
    pdw_verdict v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    make_retry(&retry, buf, sizeof buf);
    for (size_t i = 0; i < sizeof leases / sizeof *leases; i++) {
        hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
        pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
        o.dedup_ttl_ms = 10000;
        o.inflight_lease_ms = leases[i];
        pdw_receiver *r = deferring_receiver(&o, &h);
        fake_now = T0;
        assert_int_equal(run(r, &q, &v), PDW_OK);
        fake_now = T0 + 9999;
        assert_int_equal(run(r, &retry, &v), PDW_EINFLIGHT);
        fake_now = T0 + 10000;
        assert_int_equal(run(r, &retry, &v), PDW_OK);
        assert_int_equal(h.calls, 2);
        pdw_receiver_free(r);
    }
    /* just below the TTL: a lease */
    hook h = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.dedup_ttl_ms = 10000;
    o.inflight_lease_ms = 9999;
    pdw_receiver *r = deferring_receiver(&o, &h);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + 9999;
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    pdw_receiver_free(r);
    /* a TTL shorter than the default lease: the default lease is off too */
    hook h2 = { PDW_ACCEPT_DEFERRED, 0, "", 0, NULL };
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.dedup_ttl_ms = 30000;
    r = deferring_receiver(&o2, &h2);
    fake_now = T0;
    assert_int_equal(run(r, &q, &v), PDW_OK);
    fake_now = T0 + 29999;
    assert_int_equal(run(r, &retry, &v), PDW_EINFLIGHT);
    fake_now = T0 + 30000;
    assert_int_equal(run(r, &retry, &v), PDW_OK);
    pdw_receiver_free(r);
}

static void test_new_refuses_bad_options(void **state)
{
    (void)state;
    pdw_receiver *r = NULL;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_receiver_new(&r, &o, &err), PDW_ENOAUTH);
    assert_null(r);
    assert_int_equal(err.code, PDW_ENOAUTH);
    o.insecure_no_auth = 1;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    pdw_receiver_free(r);
    pdw_credential bad[] = { { "us:er", "pw" } };
    pdw_receiver_options o2 = PDW_RECEIVER_OPTIONS_INIT;
    o2.credentials = bad;
    o2.num_credentials = 1;
    pdw_error_clear(&err);
    assert_int_equal(pdw_receiver_new(&r, &o2, &err), PDW_EINVAL);
    pdw_credential secret[] = { { "user", "" } };
    o2.credentials = secret;
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EINVAL);
    pdw_credential ok[] = { { "user", "hunter2" } };
    o2.credentials = ok;
    o2.realm = "bad\"realm";
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EINVAL);
    o2.realm = NULL;
    o2.wrong_credentials_status = 404;
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EINVAL);
    o2.wrong_credentials_status = 0;
    o2.handler_error_status = 99;
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EINVAL);
    o2.handler_error_status = 0;
    o2.version = 3;
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EVERSIONSTRUCT);
    o2.version = 0;
    assert_int_equal(pdw_receiver_new(&r, &o2, NULL), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_receiver_options_init(&o2, 3), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_receiver_options_init(&o2, 0), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_receiver_options_init(&o2, PDW_RECEIVER_OPTIONS_VERSION), 0);
    assert_int_equal(o2.version, PDW_RECEIVER_OPTIONS_VERSION);
    assert_null(o2.credentials);
    assert_int_equal(pdw_receiver_new(NULL, &o2, NULL), PDW_EINVAL);
    pdw_receiver_free(NULL);
}

/* Every real fixture: valid ones accepted once and dispatched once, then duplicates;
 * invalid ones 400. */
static void test_all_fixtures(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    DIR *d = opendir(PDW_FIXTURES);
    assert_non_null(d);
    struct dirent *e;
    int accepted = 0, refused = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        int is_json = n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
        int is_txt = n > 4 && strcmp(e->d_name + n - 4, ".txt") == 0;
        if (!is_json && !is_txt)
            continue;
        size_t len = 0;
        char *body = pdw_test_fixture(e->d_name, &len);
        req q;
        pdw_verdict v;
        make_req(&q, "POST", "application/json", "pipedrive:s3cret", body, len);
        int rc = run(r, &q, &v);
        if (is_json) {
            if (rc != PDW_OK)
                fail_msg("%s: %s", e->d_name, pdw_err_name(rc));
            assert_int_equal(run(r, &q, &v), PDW_EDUPLICATE);
            accepted++;
        } else {
            assert_int_equal(v.status, 400);
            refused++;
        }
        free(body);
    }
    closedir(d);
    assert_int_equal(accepted, 48);
    assert_int_equal(refused, 3);
    assert_int_equal(atomic_load(&c.calls), 48);
    pdw_receiver_free(r);
}

typedef struct worker_arg {
    pdw_receiver *r;
    int base;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\",\"entity\":\"deal\","
                 "\"id\":\"%d\",\"entity_id\":\"%d\"},\"data\":{},\"previous\":null}",
                 (a->base + i) % 3000, i);
        req q;
        make_req(&q, "POST", "application/json", "pipedrive:s3cret", body, strlen(body));
        pdw_verdict v = PDW_VERDICT_INIT;
        int rc = pdw_receiver_handle(a->r, &q.r, &v, NULL);
        if (rc == PDW_OK)
            a->ok++;
        else if (rc != PDW_EDUPLICATE && rc != PDW_EINFLIGHT) /* in flight: another thread */
            a->ok = -100000;
    }
    return NULL;
}

/* ---- two steps: pdw_receiver_begin() (head, credentials once), pdw_receiver_finish() -- */

/* begin refuses exactly what handle refuses at the head, with the same verdict, and makes
 * no pending request then; nothing is dispatched. */
static void expect_refused_like_handle(pdw_receiver *r, req *q, int reason)
{
    pdw_verdict vh, vb = PDW_VERDICT_INIT;
    assert_int_equal(run(r, q, &vh), reason);
    pdw_receiver_pending *p = (pdw_receiver_pending *)&vb; /* must be overwritten */
    assert_int_equal(pdw_receiver_begin(&p, r, &q->r, &vb), reason);
    assert_null(p);
    assert_int_equal(vb.reason, reason);
    assert_int_equal(vb.status, vh.status);
    assert_int_equal(vb.num_headers, vh.num_headers);
    for (size_t i = 0; i < vh.num_headers; i++) {
        assert_string_equal(vb.headers[i].name, vh.headers[i].name);
        assert_string_equal(vb.headers[i].value, vh.headers[i].value);
    }
    assert_string_equal(vb.body, vh.body);
}

static void test_begin_refuses_like_handle(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.max_body = 4096;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    make_req(&q, "POST", "application/json", NULL, V2, strlen(V2));
    expect_refused_like_handle(r, &q, PDW_EAUTHMISSING);
    make_req(&q, "POST", "application/json", "pipedrive:wrong", V2, strlen(V2));
    expect_refused_like_handle(r, &q, PDW_EAUTHWRONG);
    make_req(&q, "POST", "application/json", "new:s3cret", V2, strlen(V2));
    expect_refused_like_handle(r, &q, PDW_EAUTHWRONG); /* pairs do not mix */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    snprintf(q.auth, sizeof q.auth, "Basic !!!!");
    q.h[2].value_len = strlen(q.auth);
    expect_refused_like_handle(r, &q, PDW_EAUTHMALFORMED);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.h[q.r.num_headers++] = q.h[2]; /* two Authorization headers */
    expect_refused_like_handle(r, &q, PDW_EAUTHMALFORMED);
    make_req(&q, "GET", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    expect_refused_like_handle(r, &q, PDW_EMETHOD);
    make_req(&q, "POST", "text/plain", "pipedrive:s3cret", V2, strlen(V2));
    expect_refused_like_handle(r, &q, PDW_EMEDIATYPE);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, 5000);
    q.r.body_len = strlen(V2); /* declared over the limit: refused before the body */
    expect_refused_like_handle(r, &q, PDW_ETOOLARGE);
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.r.version = 99;
    expect_refused_like_handle(r, &q, PDW_EVERSIONSTRUCT);
    assert_int_equal(atomic_load(&c.calls), 0);
    pdw_receiver_free(r);
}

static void test_begin_finish(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.max_body = 4096;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    req q;
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_receiver_pending *p = NULL;

    /* accepted: the head once, then the body; the verdict as handle gives it */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.r.body = NULL; /* begin never looks at the body */
    q.r.body_len = 0;
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    assert_non_null(p);
    memset(&q, 0xA5, sizeof q); /* the request is not kept */
    pdw_verdict init = PDW_VERDICT_INIT;
    v = init;
    assert_int_equal(pdw_receiver_finish(p, V2, strlen(V2), &v, NULL), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_string_equal(v.event, "change.deal");
    assert_true(strlen(v.delivery_key) > 0);
    assert_int_equal(atomic_load(&c.calls), 1);
    /* one authenticated head carries one body, never two */
    v = init;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_receiver_finish(p, V2, strlen(V2), &v, &err), PDW_EINVAL);
    assert_int_equal(v.status, 500);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_string_equal(v.event, "");
    assert_int_equal(atomic_load(&c.calls), 1);
    pdw_receiver_pending_free(p);

    /* the same event again: a duplicate, as with handle */
    make_req(&q, "POST", "application/json", "new:rotated", V2, strlen(V2));
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    v = init;
    assert_int_equal(pdw_receiver_finish(p, V2, strlen(V2), &v, NULL), PDW_EDUPLICATE);
    assert_int_equal(v.status, 200);
    pdw_receiver_pending_free(p);

    /* the body must match the Content-Length of the head */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    v = init;
    assert_int_equal(pdw_receiver_finish(p, V2, strlen(V2) - 1, &v, NULL), PDW_ELENGTH);
    assert_int_equal(v.status, 400);
    pdw_receiver_pending_free(p);

    /* without a Content-Length, the limit applies to the body itself */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    q.r.num_headers--; /* Content-Length is the last header */
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, ' ', 5000);
    v = init;
    assert_int_equal(pdw_receiver_finish(p, big, 5000, &v, NULL), PDW_ETOOLARGE);
    assert_int_equal(v.status, 413);
    free(big);
    pdw_receiver_pending_free(p);

    /* a bad body after a good head: 400, nothing dispatched */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", "{", 1);
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), 0);
    v = init;
    assert_int_equal(pdw_receiver_finish(p, "{", 1, &v, NULL), PDW_EJSON);
    assert_int_equal(v.status, 400);
    pdw_receiver_pending_free(p);

    /* misuse fails closed */
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    assert_int_equal(pdw_receiver_begin(NULL, r, &q.r, &v), PDW_EINVAL);
    p = (pdw_receiver_pending *)&v;
    assert_int_equal(pdw_receiver_begin(&p, NULL, &q.r, &v), PDW_EINVAL);
    assert_null(p);
    assert_int_equal(pdw_receiver_begin(&p, r, NULL, &v), PDW_EINVAL);
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, NULL), PDW_EINVAL);
    v = init;
    assert_int_equal(pdw_receiver_finish(NULL, V2, strlen(V2), &v, NULL), PDW_EINVAL);
    assert_int_equal(v.status, 0); /* no receiver to decide with: untouched */
    v.version = 99;
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), PDW_EVERSIONSTRUCT);
    assert_null(p);
    pdw_receiver_pending_free(NULL);
    assert_int_equal(atomic_load(&c.calls), 1);
    pdw_receiver_free(r);
}

typedef struct fail_alloc {
    int fail;
} fail_alloc;

static void *fa_malloc(size_t n, void *user)
{
    return ((fail_alloc *)user)->fail ? NULL : malloc(n);
}

static void *fa_realloc(void *p, size_t n, void *user)
{
    return ((fail_alloc *)user)->fail ? NULL : realloc(p, n);
}

static void fa_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static void test_begin_out_of_memory(void **state)
{
    (void)state;
    fail_alloc fa = { 0 };
    pdw_allocator al = { fa_malloc, fa_realloc, fa_free, &fa };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.allocator = &al;
    pdw_receiver *r = make_receiver(&o, NULL);
    req q;
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_receiver_pending *p = (pdw_receiver_pending *)&v;
    make_req(&q, "POST", "application/json", "pipedrive:s3cret", V2, strlen(V2));
    fa.fail = 1;
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), PDW_ENOMEM);
    assert_null(p);
    assert_int_equal(v.reason, PDW_ENOMEM);
    assert_true(v.status >= 500);
    fa.fail = 0;
    /* wrong credentials are refused before any allocation */
    make_req(&q, "POST", "application/json", "pipedrive:nope", V2, strlen(V2));
    fa.fail = 1;
    assert_int_equal(pdw_receiver_begin(&p, r, &q.r, &v), PDW_EAUTHWRONG);
    fa.fail = 0;
    pdw_receiver_free(r);
}

static void test_concurrent_handle(void **state)
{
    (void)state;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    counts c = { 0, 0 };
    pdw_receiver *r = make_receiver(&o, &c);
    pthread_t t[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){ r, i * 500, 0 };
        pthread_create(&t[i], NULL, worker, &a[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    /* 4 x 2000 deliveries over 3000 distinct event ids: each id accepted exactly once */
    assert_int_equal(ok, 3000);
    assert_int_equal(atomic_load(&c.calls), 3000);
    pdw_receiver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_then_duplicate),
        cmocka_unit_test(test_method_405),
        cmocka_unit_test(test_media_type_415),
        cmocka_unit_test(test_size_413_and_length),
        cmocka_unit_test(test_auth_401_403),
        cmocka_unit_test(test_query_token),
        cmocka_unit_test(test_bad_body_400),
        cmocka_unit_test(test_handler_failure_policy),
        cmocka_unit_test(test_accept_hook),
        cmocka_unit_test(test_custom_dedup_store_failure_503),
        cmocka_unit_test(test_inflight_retry_then_first_fails),
        cmocka_unit_test(test_inflight_retry_then_first_succeeds),
        cmocka_unit_test(test_accept_deferred),
        cmocka_unit_test(test_dedup_store_version_and_ownership),
        cmocka_unit_test(test_dedup_ttl_via_clock),
        cmocka_unit_test(test_lease_crash_retry_after_lease),
        cmocka_unit_test(test_lease_confirmed_duplicate_for_ttl),
        cmocka_unit_test(test_accept_hook_request_user),
        cmocka_unit_test(test_settle_deferred),
        cmocka_unit_test(test_remember),
        cmocka_unit_test(test_lease_disabled_at_ttl),
        cmocka_unit_test(test_new_refuses_bad_options),
        cmocka_unit_test(test_all_fixtures),
        cmocka_unit_test(test_begin_refuses_like_handle),
        cmocka_unit_test(test_begin_finish),
        cmocka_unit_test(test_begin_out_of_memory),
        cmocka_unit_test(test_concurrent_handle),
    };
    PDW_RUN_GROUP(tests);
}
