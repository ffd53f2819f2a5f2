/* The request pipeline and its status policy: method, media type, size, auth, parse,
 * dedup, then the accept hook or a synchronous dispatch. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "pdwebhook/pipedrive.h"
#include "pdwebhook/sys/dedup_store.h"

#define DEFAULT_MAX_BODY (1024u * 1024u)
#define DEFAULT_TTL_MS (24ull * 3600ull * 1000ull)
/* The in-flight lease (receiver.h): longer than any sane accept path or synchronous
 * handler (Pipedrive waits 10 s for an answer), shorter than the 150 s to Pipedrive's last
 * retry, which a crash between claim and confirm then leaves free. */
#define DEFAULT_LEASE_MS (60ull * 1000ull)
/* Retry-After on a 503: when Pipedrive's first retry comes anyway */
#define DEFAULT_RETRY_AFTER (PDW_PIPEDRIVE_RETRY1_DELAY_MS / 1000)

struct pdw_receiver {
    pdw_allocator alloc;
    pdw__auth *auth;
    pdw_router *router;
    pdw_dedup_store *dedup; /* owned: the one given in the options, or the built-in one */
    int dedup_on;
    uint64_t ttl_ms;
    uint64_t claim_ms; /* what a claim holds a key for: the in-flight lease */
    size_t max_body;
    unsigned max_depth;
    int wrong_status;
    int handler_status;
    int retry_after;
    int allow_missing_ct;
    pdw_accept_cb accept;
    void *accept_user;
    pdw_clock_cb clock;
    void *clock_user;
    char *www_authenticate; /* Basic realm="...", charset="UTF-8" */
    const pdw_allowlist *allowlist, *trusted_proxies; /* borrowed */
};

static uint64_t realtime_ms(void *user)
{
    (void)user;
    return (uint64_t)pdw__wall_ms();
}

int pdw_receiver_options_init(pdw_receiver_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_RECEIVER_OPTIONS_VERSION);
}

static int realm_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (r[i] < 0x20 || r[i] > 0x7e || r[i] == '"' || r[i] == '\\')
            return 0;
    return 1;
}

static int receiver_new(pdw_receiver **out, const pdw_receiver_options *opts, pdw_error *err)
{
    pdw_allocator a;
    int rc;
    if (!out || !opts)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and opts are required");
    *out = NULL;
    if (opts->version != PDW_RECEIVER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "receiver options version %u",
                              opts->version);
    uint64_t lease_ms = opts->inflight_lease_ms;
    const pdw_dedup_store *given = opts->dedup;
    if (pdw__alloc_set(&a, opts->allocator) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    if (opts->num_credentials && !opts->credentials)
        return pdw__error_set(err, PDW_EINVAL, -1, "num_credentials without credentials");
    if (!opts->num_credentials && !opts->query_token && !opts->insecure_no_auth)
        return pdw__error_set(err, PDW_ENOAUTH, -1,
                              "no credentials: give Basic credentials or a query token, or "
                              "set insecure_no_auth");
    const char *realm = opts->realm ? opts->realm : "pdwebhook";
    if (!realm_valid(realm))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "realm must be 1-128 printable ASCII characters without quotes");
    if (opts->wrong_credentials_status && opts->wrong_credentials_status != 401 &&
        opts->wrong_credentials_status != 403)
        return pdw__error_set(err, PDW_EINVAL, -1, "wrong_credentials_status must be 401 or 403");
    if (opts->handler_error_status &&
        (opts->handler_error_status < 200 || opts->handler_error_status > 599))
        return pdw__error_set(err, PDW_EINVAL, -1, "handler_error_status must be 200-599");
    if (opts->retry_after_seconds < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "retry_after_seconds is negative");
    if (given && given->version != PDW_DEDUP_STORE_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "dedup store version %u",
                              given->version);
    if (given && (!given->claim || !given->release || !given->confirm))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "dedup store without claim, release or confirm");

    pdw_receiver *r = pdw__calloc(&a, 1, sizeof *r);
    if (!r)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    r->alloc = a;
    r->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    r->max_depth = opts->max_depth ? opts->max_depth : PDW_DEFAULT_MAX_DEPTH;
    r->wrong_status = opts->wrong_credentials_status ? opts->wrong_credentials_status : 401;
    r->handler_status = opts->handler_error_status ? opts->handler_error_status : 200;
    r->retry_after = opts->retry_after_seconds ? opts->retry_after_seconds : DEFAULT_RETRY_AFTER;
    r->allow_missing_ct = opts->allow_missing_content_type;
    r->allowlist = opts->allowlist;
    r->trusted_proxies = opts->trusted_proxies;
    r->ttl_ms = opts->dedup_ttl_ms ? opts->dedup_ttl_ms : DEFAULT_TTL_MS;
    r->accept = opts->accept;
    r->accept_user = opts->accept_user;
    r->clock = opts->clock ? opts->clock : realtime_ms;
    r->clock_user = opts->clock_user;

    rc = pdw__auth_new(&r->auth, opts->credentials, opts->num_credentials, opts->query_token,
                       opts->query_token_name, &a, err);
    if (rc < 0)
        goto fail;

    size_t wlen = strlen(realm) + 40;
    r->www_authenticate = pdw__malloc(&a, wlen);
    if (!r->www_authenticate) {
        rc = pdw__error_set(err, PDW_ENOMEM, -1, NULL);
        goto fail;
    }
    snprintf(r->www_authenticate, wlen, "Basic realm=\"%s\", charset=\"UTF-8\"", realm);

    pdw_router_options ro = PDW_ROUTER_OPTIONS_INIT;
    ro.allocator = &a;
    if ((rc = pdw_router_new(&r->router, &ro, err)) < 0)
        goto fail;

    r->dedup_on = !opts->disable_dedup;
    if (r->dedup_on && !given) {
        pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
        mo.capacity = opts->dedup_capacity;
        mo.allocator = &a;
        if ((rc = pdw_dedup_memory_new(&r->dedup, &mo, err)) < 0)
            goto fail;
    }
    if (!lease_ms)
        lease_ms = DEFAULT_LEASE_MS;
    r->claim_ms = lease_ms < r->ttl_ms ? lease_ms : r->ttl_ms;
    /* the given store is ours (on failure pdw_receiver_new() frees it), also with dedup
     * disabled */
    if (given)
        r->dedup = (pdw_dedup_store *)(uintptr_t)given;
    *out = r;
    return 0;
fail:
    pdw_receiver_free(r);
    return rc;
}

/* Free a store given to an owner that failed: it is taken whatever the result (as
 * jansson's json_object_set_new()), unless its layout is not this header's. */
static void drop_given(pdw_dedup_store *s)
{
    if (s && s->version == PDW_DEDUP_STORE_VERSION)
        pdw_dedup_store_free(s);
}

int pdw_receiver_new(pdw_receiver **out, const pdw_receiver_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    int rc = receiver_new(out, opts, err);
    if (rc < 0 && opts && opts->version >= 1 && opts->version <= PDW_RECEIVER_OPTIONS_VERSION)
        drop_given(opts->dedup); /* the store is the receiver's, also when it fails */
    return rc;
}

void pdw_receiver_free(pdw_receiver *r)
{
    if (!r)
        return;
    pdw__auth_free(r->auth);
    pdw_router_free(r->router);
    pdw_dedup_store_free(r->dedup);
    pdw__free(&r->alloc, r->www_authenticate);
    pdw_allocator a = r->alloc;
    pdw__free(&a, r);
}

pdw_router *pdw_receiver_router(pdw_receiver *r)
{
    return r->router;
}

/* ---- verdicts ---------------------------------------------------------------------- */

static void add_header(pdw_verdict *v, const char *name, const char *value)
{
    if (v->num_headers < PDW_VERDICT_MAX_HEADERS) {
        pdw_header *h = &v->headers[v->num_headers++];
        h->name = name;
        h->name_len = strlen(name);
        h->value = value;
        h->value_len = strlen(value);
    }
}

/* Fill the verdict for reason `code`; returns code. */
static int decide(const pdw_receiver *r, pdw_verdict *v, int code, int status)
{
    v->reason = code;
    v->status = status ? status : pdw_err_http_status(code);
    v->body = pdw__error_body(code, &v->body_len);
    v->content_type = "application/json";
    switch (code) {
    case PDW_EMETHOD:
        add_header(v, "Allow", "POST");
        break;
    case PDW_EAUTHMISSING:
    case PDW_EAUTHMALFORMED:
    case PDW_EAUTHWRONG:
        if (v->status == 401 && pdw__auth_has_basic(r->auth))
            add_header(v, "WWW-Authenticate", r->www_authenticate);
        break;
    default:
        if (v->status == 503) {
            snprintf(v->scratch_, sizeof v->scratch_, "%d", r->retry_after);
            add_header(v, "Retry-After", v->scratch_);
        }
        break;
    }
    return code;
}

static void verdict_reset(pdw_verdict *v)
{
    unsigned version = v->version;
    memset(v, 0, sizeof *v);
    v->version = version;
}

/* ---- request checks ---------------------------------------------------------------- */

static uint64_t word_at(const char *p)
{
    return pdw__load64((const unsigned char *)p);
}

/* The 8 bytes at p equal the lower-case word lw, ASCII case-insensitively: the letters of
 * lw get the case bit 0x20 set in p's word (only 'A' and 'a' become 'a' that way), every
 * other byte must be equal as it is. lw is a constant where this is called: the mask
 * folds to a constant too. */
static int word_ci_eq(const char *p, uint64_t lw)
{
    const uint64_t ones = 0x0101010101010101ull;
    /* bytes of lw (all below 0x80) from 'a' to 'z' get 0x80, then 0x20 */
    uint64_t ge_a = lw + ones * (0x80 - 'a'), gt_z = lw + ones * (0x80 - 'z' - 1);
    uint64_t case_bit = ((ge_a & ~gt_z) & ones * 0x80) >> 2;
    return (word_at(p) | case_bit) == lw;
}

/* name[0..n) equals the lower-case literal lit (n bytes, 8 <= n <= 16), ASCII
 * case-insensitively: its first and last 8 bytes (they overlap when n < 16). */
static int name_eq(const char *name, const char *lit, size_t n)
{
    return word_ci_eq(name, word_at(lit)) && word_ci_eq(name + n - 8, word_at(lit + n - 8));
}

typedef struct head {
    const pdw_header *content_type, *content_length, *authorization;
} head;

/* Collect the headers we read; a repeated one is refused (two Content-Lengths are a
 * request-smuggling classic, two Authorizations are ambiguous). */
static int read_head(const pdw_request *req, head *h)
{
    memset(h, 0, sizeof *h);
    if (req->num_headers && !req->headers)
        return PDW_EINVAL;
    for (size_t i = 0; i < req->num_headers; i++) {
        const pdw_header *x = &req->headers[i];
        const pdw_header **slot = NULL;
        /* the three names have three lengths: one comparison per header at most */
        switch (x->name_len) {
        case 12:
            if (name_eq(x->name, "content-type", 12))
                slot = &h->content_type;
            break;
        case 13:
            if (name_eq(x->name, "authorization", 13))
                slot = &h->authorization;
            break;
        case 14:
            if (name_eq(x->name, "content-length", 14))
                slot = &h->content_length;
            break;
        default:
            break;
        }
        if (!slot)
            continue;
        if (*slot)
            return slot == &h->authorization ? PDW_EAUTHMALFORMED : PDW_EHEADER;
        *slot = x;
    }
    return 0;
}
static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* application/json, any case, parameters (charset) allowed. */
static int is_json(const pdw_header *h)
{
    const char *p = h->value;
    size_t n = h->value_len;
    static const char want[] = "application/json";
    size_t i = sizeof want - 1;
    trim(&p, &n);
    if (n < i || !name_eq(p, want, i))
        return 0;
    return i == n || p[i] == ';' || p[i] == ' ' || p[i] == '\t';
}

/* Content-Length: digits only. -1 when malformed. */
static long long parse_length(const pdw_header *h)
{
    const char *p = h->value;
    size_t n = h->value_len;
    trim(&p, &n);
    return pdw__decimal(p, n);
}

/* The client's address: the peer, or, when the peer is a trusted proxy, the rightmost
 * entry of the last X-Forwarded-For header that is not a trusted proxy itself (entries to
 * its left are the sender's word). Sets *p, *n; 0, or -1 when there is none. */
static int client_address(const pdw_receiver *r, const pdw_request *req, const char **p,
                          size_t *n)
{
    if (!req->peer || !req->peer_len)
        return -1;
    *p = req->peer;
    *n = req->peer_len;
    if (!r->trusted_proxies || !pdw_allowlist_contains(r->trusted_proxies, *p, *n))
        return 0;
    const pdw_header *xff = NULL;
    for (size_t i = 0; i < req->num_headers; i++)
        if (req->headers[i].name_len == 15 &&
            name_eq(req->headers[i].name, "x-forwarded-for", 15))
            xff = &req->headers[i];
    if (!xff)
        return 0; /* the proxy itself asks */
    size_t end = xff->value_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff->value[start - 1] != ',')
            start--;
        const char *e = xff->value + start;
        size_t len = end - start;
        trim(&e, &len);
        end = start ? start - 1 : 0;
        if (!len)
            continue;
        *p = e;
        *n = len;
        if (!pdw_allowlist_contains(r->trusted_proxies, e, len))
            return 0;
    }
    return 0; /* every entry a trusted proxy: the leftmost */
}

/* Everything that needs no body. *declared gets Content-Length or -1. */
static int check_head(const pdw_receiver *r, const pdw_request *req, pdw_verdict *v,
                      long long *declared)
{
    head h;
    int rc;
    *declared = -1;
    if (r->allowlist) { /* first: an address that may not deliver learns nothing more */
        const char *a;
        size_t an;
        if (client_address(r, req, &a, &an) != 0 || !pdw_allowlist_contains(r->allowlist, a, an))
            return decide(r, v, PDW_EFORBIDDEN, 0);
    }
    if (!req->method || req->method_len != 4 || memcmp(req->method, "POST", 4) != 0)
        return decide(r, v, PDW_EMETHOD, 0);
    if ((rc = read_head(req, &h)) < 0)
        return decide(r, v, rc, 0);
    if (h.content_type ? !is_json(h.content_type) : !r->allow_missing_ct)
        return decide(r, v, PDW_EMEDIATYPE, 0);
    if (h.content_length) {
        *declared = parse_length(h.content_length);
        if (*declared < 0)
            return decide(r, v, PDW_EHEADER, 0);
        if ((unsigned long long)*declared > r->max_body)
            return decide(r, v, PDW_ETOOLARGE, 0);
    }
    rc = pdw__auth_check(r->auth, h.authorization ? h.authorization->value : NULL,
                         h.authorization ? h.authorization->value_len : 0, req->query,
                         req->query ? req->query_len : 0);
    if (rc < 0)
        return decide(r, v, rc, rc == PDW_EAUTHWRONG ? r->wrong_status : 0);
    return 0;
}

static int request_version_ok(const pdw_request *req)
{
    return req->version == PDW_REQUEST_VERSION;
}

static void *req_user(const pdw_request *req)
{
    return req->user;
}

int pdw_receiver_check_head(const pdw_receiver *r, const pdw_request *req, pdw_verdict *v)
{
    long long declared;
    if (!r || !req || !v)
        return PDW_EINVAL;
    verdict_reset(v);
    if (!request_version_ok(req))
        return decide(r, v, PDW_EVERSIONSTRUCT, 0);
    return check_head(r, req, v, &declared);
}

/* ---- the pipeline ------------------------------------------------------------------ */

/* snprintf(dst, cap, "%s", src) without the format interpreter (per request). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n > cap - 1)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Confirm a claim for the full TTL from now (the claim held the key for the lease only). */
static int dedup_confirm(pdw_receiver *r, const char *key, size_t key_len)
{
    return r->dedup->confirm(r->dedup, key, key_len, r->clock(r->clock_user), r->ttl_ms);
}

/* The claim's end. Confirmed exactly when the answer is 2xx and the claim is kept (a retry
 * is then a duplicate); released when the answer asks for a retry (then handed on again).
 * A failing confirm is ignored: the event was handed on already. */
static void claim_confirm(pdw_receiver *r, const pdw_event *ev)
{
    if (r->dedup_on)
        (void)dedup_confirm(r, ev->key, strlen(ev->key));
}

static void claim_release(pdw_receiver *r, const pdw_event *ev)
{
    if (r->dedup_on)
        (void)r->dedup->release(r->dedup, ev->key, strlen(ev->key));
}

static int hand_on(pdw_receiver *r, const pdw_event *ev, void *request_user, pdw_verdict *v)
{
    if (r->accept) {
        int rc = r->accept(ev, request_user, r->accept_user);
        if (rc >= 0) {
            if (rc != PDW_ACCEPT_DEFERRED) /* deferred: the caller confirms or releases */
                claim_confirm(r, ev);
            return decide(r, v, PDW_OK, 0);
        }
        claim_release(r, ev);
        /* the hook's own code when it is one of ours, else a store failure; always 503 */
        return decide(r, v, rc >= PDW__ERRNO_MIN ? rc : PDW_ESTORE, 503);
    }
    pdw_dispatch_result res = { 0, 0, 0 };
    int rc = pdw_router_dispatch(r->router, ev, &res);
    v->handlers_matched = res.matched;
    v->handlers_failed = res.failed;
    v->handler_rc = res.first_failure;
    if (rc == 0) {
        claim_confirm(r, ev);
        return decide(r, v, PDW_OK, 0);
    }
    /* A handler failed (or a field filter ran out of memory). The status is the user's
     * choice; a non-2xx asks for a retry, so the claim is given back for it. */
    if (r->handler_status < 200 || r->handler_status > 299)
        claim_release(r, ev);
    else
        claim_confirm(r, ev);
    return decide(r, v, PDW_EHANDLER, r->handler_status);
}

/* Everything after the head: size against the limit and the declared length, parse,
 * dedup, hand on. The head (method, media type, credentials) has passed. */
static int handle_body(pdw_receiver *r, const char *body, size_t body_len, long long declared,
                       void *request_user, pdw_verdict *v, pdw_error *err)
{
    int rc;
    if (body_len > r->max_body)
        return pdw__error_set(err, decide(r, v, PDW_ETOOLARGE, 0), -1,
                              "body of %zu bytes over the limit of %zu", body_len,
                              r->max_body);
    if (declared >= 0 && (unsigned long long)declared != body_len)
        return pdw__error_set(err, decide(r, v, PDW_ELENGTH, 0), -1,
                              "Content-Length %lld but %zu bytes", declared, body_len);
    if (!body && body_len)
        return pdw__error_set(err, decide(r, v, PDW_EINVAL, 0), -1, "body is NULL");

    pdw_event ev;
    rc = pdw__event_init(&ev, body ? body : "", body_len, r->max_depth, &r->alloc, err);
    if (rc < 0) {
        pdw__event_fini(&ev);
        return decide(r, v, rc, 0);
    }
    copy_str(v->event, sizeof v->event, ev.name);
    copy_str(v->delivery_key, sizeof v->delivery_key, ev.key);
    if (ev.has_webhook_id)
        copy_str(v->webhook_id, sizeof v->webhook_id, ev.webhook_id);
    v->attempt = ev.attempt;

    if (r->dedup_on) {
        rc = r->dedup->claim(r->dedup, ev.key, strlen(ev.key), r->clock(r->clock_user),
                            r->claim_ms);
        if (rc == PDW_CLAIM_DUPLICATE) {
            pdw__event_fini(&ev);
            return decide(r, v, PDW_EDUPLICATE, 0);
        }
        if (rc == PDW_CLAIM_INFLIGHT && ev.attempt >= 2) {
            /* A retry while an earlier attempt is still being accepted (slower than
             * Pipedrive's 10 s): that attempt may yet fail, and a 200 here would lose the
             * event; a 503 brings Pipedrive back once it is settled, and a failed retry
             * costs no ban point. */
            pdw__event_fini(&ev);
            return pdw__error_set(err, decide(r, v, PDW_EINFLIGHT, 0), -1,
                                  "the same delivery is being accepted by another request");
        }
        if (rc == PDW_CLAIM_INFLIGHT) {
            /* A first attempt: the same event sent by a second webhook (two subscriptions
             * cover it) while the first one's delivery runs. A 503 would add a point to
             * this webhook's ban counter for every such event; the 200 of a duplicate is
             * safe as long as the holder can still be retried by Pipedrive, which fails
             * only when the holder was its webhook's last retry. */
            pdw__event_fini(&ev);
            return decide(r, v, PDW_EDUPLICATE, 0);
        }
        if (rc != PDW_CLAIM_NEW) { /* a failure, or an answer no store may give */
            pdw__event_fini(&ev);
            return pdw__error_set(err, decide(r, v, PDW_ESTORE, 0), -1,
                                  "dedup store failed: %s (%d)", pdw_strerror(rc), rc);
        }
    }
    rc = hand_on(r, &ev, request_user, v);
    pdw__event_fini(&ev);
    if (rc < 0 && rc != PDW_EHANDLER)
        pdw__error_set(err, rc, -1, NULL);
    return rc;
}

int pdw_receiver_handle(pdw_receiver *r, const pdw_request *req, pdw_verdict *v,
                        pdw_error *err)
{
    pdw__error_reset(err);
    long long declared;
    int rc;
    if (!r || !req || !v)
        return pdw__error_set(err, PDW_EINVAL, -1, "receiver, request and verdict are required");
    verdict_reset(v);
    if (!request_version_ok(req) || v->version != PDW_VERDICT_VERSION)
        return pdw__error_set(err, decide(r, v, PDW_EVERSIONSTRUCT, 0), -1,
                              "request or verdict struct version");
    if ((rc = check_head(r, req, v, &declared)) < 0)
        return pdw__error_set(err, rc, -1, NULL);
    return handle_body(r, req->body, req->body_len, declared, req_user(req), v, err);
}

/* ---- in two steps: the head, then the body --------------------------------------------
 * The pending object is the proof that the head passed: only pdw_receiver_begin() makes
 * one, and only after the whole head check (credentials included); it is bound to its
 * receiver and good for one pdw_receiver_finish(). So the body step can skip the
 * credential check without any way to reach it unauthenticated. */

struct pdw_receiver_pending {
    pdw_receiver *r;
    void *request_user; /* the request's pdw_request::user, for the accept hook */
    long long declared; /* Content-Length, or -1 */
    int spent;          /* finish ran */
};

int pdw_receiver_begin(pdw_receiver_pending **out, pdw_receiver *r, const pdw_request *req,
                       pdw_verdict *v)
{
    long long declared;
    int rc;
    if (out)
        *out = NULL;
    if (!out || !r || !req || !v)
        return PDW_EINVAL;
    verdict_reset(v);
    if (!request_version_ok(req) || v->version != PDW_VERDICT_VERSION)
        return decide(r, v, PDW_EVERSIONSTRUCT, 0);
    if ((rc = check_head(r, req, v, &declared)) < 0)
        return rc;
    pdw_receiver_pending *p = pdw__malloc(&r->alloc, sizeof *p);
    if (!p)
        return decide(r, v, PDW_ENOMEM, 0);
    p->r = r;
    p->request_user = req_user(req);
    p->declared = declared;
    p->spent = 0;
    *out = p;
    return 0;
}

int pdw_receiver_finish(pdw_receiver_pending *p, const char *body, size_t len, pdw_verdict *v,
                        pdw_error *err)
{
    pdw__error_reset(err);
    if (!p || !v)
        return pdw__error_set(err, PDW_EINVAL, -1, "pending request and verdict are required");
    pdw_receiver *r = p->r;
    verdict_reset(v);
    if (v->version != PDW_VERDICT_VERSION)
        return pdw__error_set(err, decide(r, v, PDW_EVERSIONSTRUCT, 0), -1,
                              "verdict struct version");
    if (p->spent) /* a second body on one authenticated head: never */
        return pdw__error_set(err, decide(r, v, PDW_EINVAL, 0), -1,
                              "pending request already finished");
    p->spent = 1;
    return handle_body(r, body, len, p->declared, p->request_user, v, err);
}

void pdw_receiver_pending_free(pdw_receiver_pending *p)
{
    if (!p)
        return;
    pdw_allocator a = p->r->alloc;
    pdw__free(&a, p);
}

int pdw_receiver_confirm(pdw_receiver *r, const char *key, size_t key_len)
{
    if (!r || (!key && key_len))
        return PDW_EINVAL;
    if (!r->dedup_on)
        return 0;
    return dedup_confirm(r, key ? key : "", key_len);
}

int pdw_receiver_release(pdw_receiver *r, const char *key, size_t key_len)
{
    if (!r || (!key && key_len))
        return PDW_EINVAL;
    if (!r->dedup_on)
        return 0;
    return r->dedup->release(r->dedup, key ? key : "", key_len);
}

int pdw_receiver_settle(pdw_receiver *r, int outcome, pdw_verdict *v)
{
    if (!r || !v || outcome > 0)
        return PDW_EINVAL;
    size_t key_len = strnlen(v->delivery_key, sizeof v->delivery_key);
    if (key_len == sizeof v->delivery_key)
        return PDW_EINVAL; /* not a verdict the receiver filled */
    if (outcome == 0) {
        /* as claim_confirm(): a failing confirm is ignored, the delivery is kept */
        if (r->dedup_on)
            (void)dedup_confirm(r, v->delivery_key, key_len);
        return 0;
    }
    if (r->dedup_on && key_len) /* no key: refused before anything was claimed */
        (void)r->dedup->release(r->dedup, v->delivery_key, key_len);
    /* exactly the answer to an accept hook that failed with this code (hand_on()) */
    v->num_headers = 0;
    return decide(r, v, outcome >= PDW__ERRNO_MIN ? outcome : PDW_ESTORE, 503);
}

int pdw_receiver_remember(pdw_receiver *r, const char *key, size_t key_len,
                          int64_t received_ms)
{
    if (!r || (!key && key_len))
        return PDW_EINVAL;
    if (!r->dedup_on)
        return 0;
    if (!key)
        key = "";
    uint64_t at = received_ms > 0 ? (uint64_t)received_ms : 0;
    /* claimed and confirmed as if it had been accepted at received_ms: the key is kept
     * for the dedup TTL from then */
    int rc = r->dedup->claim(r->dedup, key, key_len, at, r->ttl_ms);
    if (rc < 0)
        return rc;
    if (rc == PDW_CLAIM_DUPLICATE)
        return 0; /* known and confirmed already */
    return r->dedup->confirm(r->dedup, key, key_len, at, r->ttl_ms);
}

int pdw_receiver_claim(pdw_receiver *r, const char *key, size_t key_len)
{
    if (!r || (!key && key_len))
        return PDW_EINVAL;
    if (!r->dedup_on)
        return PDW_CLAIM_NEW;
    return r->dedup->claim(r->dedup, key ? key : "", key_len, r->clock(r->clock_user),
                           r->claim_ms);
}

int pdw_receiver_dispatch_body(pdw_receiver *r, const char *body, size_t len,
                               pdw_dispatch_result *result, pdw_error *err)
{
    pdw__error_reset(err);
    if (!r || (!body && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "receiver and body are required");
    pdw_event ev;
    int rc = pdw__event_init(&ev, body ? body : "", len, r->max_depth, &r->alloc, err);
    if (rc == 0)
        rc = pdw_router_dispatch(r->router, &ev, result);
    pdw__event_fini(&ev);
    return rc;
}
