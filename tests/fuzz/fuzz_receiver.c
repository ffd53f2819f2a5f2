/* fuzz_receiver: the whole request pipeline from raw bytes.
 *
 * Input layout (the first bytes split the rest):
 *   byte 0      option flags (see below)
 *   byte 1      method length (low 4 bits)
 *   bytes 2-3   header block length, big-endian
 *   then the method, the header block, and the body (everything left).
 * The header block is lines separated by '\n': "Name: value" (split at the first ':'),
 * or "?query" for the query string. At most 32 headers.
 * Flags: 0x01 allow_missing_content_type, 0x02 accept hook instead of dispatch, 0x04 the
 * hook or the handlers fail, 0x08 wrong credentials answer 403, 0x10 a query token is
 * required too, 0x20 body limit 256 bytes, 0x40 handler failures answer 500.
 *
 * Properties: the verdict is well formed (status from the table or the configured
 * override, reason a known code, body = the reason's JSON); pdw_receiver_check_head()
 * refuses exactly what handle() refuses before the body; an accepted body is an object for
 * jansson; a request accepted once is a duplicate the second time. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "core/core.h"

#define MAX_HEADERS 32

static unsigned g_flags;

static int handler(const pdw_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return (g_flags & 0x04) ? 7 : 0;
}

static int accept_hook(const pdw_event *ev, void *request_user, void *user)
{
    (void)request_user;
    (void)user;
    size_t n;
    FUZZ_CHECK(pdw_event_body(ev, &n) != NULL || n == 0);
    return (g_flags & 0x04) ? PDW_ENOSPC : 0;
}

static uint64_t fixed_clock(void *user)
{
    (void)user;
    return 1700000000000ull;
}

static int known_code(int c)
{
    return c <= 0 && c >= PDW__ERRNO_MIN;
}

static int head_code(int c)
{
    return c == PDW_EMETHOD || c == PDW_EMEDIATYPE || c == PDW_ETOOLARGE || c == PDW_EHEADER ||
           c == PDW_EAUTHMISSING || c == PDW_EAUTHMALFORMED || c == PDW_EAUTHWRONG ||
           c == PDW_EINVAL;
}

static void check_verdict(const pdw_verdict *v, int rc)
{
    FUZZ_CHECK(v->reason == rc);
    FUZZ_CHECK(known_code(rc));
    FUZZ_CHECK(v->body != NULL && v->body_len == strlen(v->body));
    FUZZ_CHECK(v->content_type && !strcmp(v->content_type, "application/json"));
    FUZZ_CHECK(v->num_headers <= PDW_VERDICT_MAX_HEADERS);
    for (size_t i = 0; i < v->num_headers; i++)
        FUZZ_CHECK(v->headers[i].name && v->headers[i].value &&
                   strlen(v->headers[i].value) == v->headers[i].value_len);
    FUZZ_CHECK(memchr(v->event, 0, sizeof v->event) != NULL);
    FUZZ_CHECK(memchr(v->delivery_key, 0, sizeof v->delivery_key) != NULL);
    FUZZ_CHECK(memchr(v->webhook_id, 0, sizeof v->webhook_id) != NULL);
    int expect = pdw_err_http_status(rc);
    if (rc == PDW_EAUTHWRONG && (g_flags & 0x08))
        expect = 403;
    if (rc == PDW_EHANDLER && (g_flags & 0x40))
        expect = 500;
    if ((g_flags & 0x02) && (g_flags & 0x04) && rc == PDW_ENOSPC)
        expect = 503;
    FUZZ_CHECK(v->status == expect);
    if (rc == 0 || rc == PDW_EDUPLICATE || rc == PDW_EHANDLER)
        FUZZ_CHECK(v->event[0] != '\0' && v->delivery_key[0] != '\0' && v->attempt >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    g_flags = data[0];
    size_t mlen = data[1] & 15u;
    size_t hlen = (size_t)data[2] << 8 | data[3];
    const uint8_t *p = data + 4;
    size_t n = size - 4;
    if (mlen > n)
        mlen = n;
    if (hlen > n - mlen)
        hlen = n - mlen;
    const char *method = (const char *)p;
    const char *hblock = (const char *)p + mlen;
    const char *body = hblock + hlen;
    size_t blen = n - mlen - hlen;

    pdw_header headers[MAX_HEADERS];
    size_t nh = 0;
    const char *query = NULL;
    size_t qlen = 0;
    size_t i = 0;
    while (i < hlen && nh < MAX_HEADERS) {
        const char *nl = memchr(hblock + i, '\n', hlen - i);
        size_t end = nl ? (size_t)(nl - hblock) : hlen;
        const char *line = hblock + i;
        size_t llen = end - i;
        if (llen && line[0] == '?') {
            query = line + 1;
            qlen = llen - 1;
        } else {
            const char *colon = memchr(line, ':', llen);
            pdw_header *h = &headers[nh++];
            h->name = line;
            h->name_len = colon ? (size_t)(colon - line) : llen;
            h->value = colon ? colon + 1 : line + llen;
            h->value_len = colon ? llen - h->name_len - 1 : 0;
        }
        i = end + 1;
    }

    static const pdw_credential creds[] = { { "pipedrive", "s3cret" }, { "old", "pw:x" } };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.credentials = creds;
    o.num_credentials = 2;
    o.query_token = (g_flags & 0x10) ? "tok" : NULL;
    o.allow_missing_content_type = (g_flags & 0x01) != 0;
    o.accept = (g_flags & 0x02) ? accept_hook : NULL;
    o.wrong_credentials_status = (g_flags & 0x08) ? 403 : 0;
    o.max_body = (g_flags & 0x20) ? 256 : 0;
    o.handler_error_status = (g_flags & 0x40) ? 500 : 0;
    o.dedup_capacity = 16;
    o.clock = fixed_clock;
    pdw_receiver *r = NULL;
    FUZZ_CHECK(pdw_receiver_new(&r, &o, NULL) == 0);
    pdw_router *rt = pdw_receiver_router(r);
    FUZZ_CHECK(pdw_router_on(rt, "*.*", handler, NULL, NULL) == 0);
    FUZZ_CHECK(pdw_router_on_change(rt, "change.deal", "stage_id", handler, NULL, NULL) == 0);
    FUZZ_CHECK(pdw_router_on(rt, "merged.*", handler, NULL, NULL) == 0);

    pdw_request req = PDW_REQUEST_INIT;
    req.method = mlen ? method : NULL;
    req.method_len = mlen;
    req.headers = nh ? headers : NULL;
    req.num_headers = nh;
    req.query = query;
    req.query_len = qlen;
    req.body = body;
    req.body_len = blen;

    pdw_verdict head = PDW_VERDICT_INIT;
    int hrc = pdw_receiver_check_head(r, &req, &head);
    FUZZ_CHECK(hrc == 0 || head_code(hrc));
    if (hrc < 0)
        check_verdict(&head, hrc);

    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_receiver_handle(r, &req, &v, &err);
    check_verdict(&v, rc);
    if (hrc < 0)
        FUZZ_CHECK(rc == hrc);
    if (rc < 0 && rc != PDW_EHANDLER)
        FUZZ_CHECK(err.code == rc);
    if (rc == 0 || rc == PDW_EHANDLER) {
        json_t *j = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(j != NULL && json_is_object(j));
        json_decref(j);
    }
    if (rc == 0) {
        pdw_verdict v2 = PDW_VERDICT_INIT;
        int rc2 = pdw_receiver_handle(r, &req, &v2, NULL);
        check_verdict(&v2, rc2);
        FUZZ_CHECK(rc2 == PDW_EDUPLICATE);
        FUZZ_CHECK(!strcmp(v2.delivery_key, v.delivery_key));
    }
    pdw_receiver_free(r);
    return 0;
}
