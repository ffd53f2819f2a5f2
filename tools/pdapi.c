/* pdapi: GETs of Pipedrive's API for the reconciliation (pdapi.h). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pdapi.h"

#define RESPONSE_MAX (64u * 1024u * 1024u)
#define ATTEMPTS 6

typedef struct buf {
    char *p;
    size_t n, cap;
    int overflow;
    long retry_after; /* -1: none */
} buf;

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    buf *b = user;
    size_t n = size * nmemb;
    if (b->n + n + 1 > RESPONSE_MAX) {
        b->overflow = 1;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* Retry-After: seconds (the form Pipedrive sends; an HTTP date counts as absent). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    buf *b = user;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        long v = 0;
        int digits = 0;
        for (size_t i = sizeof name - 1; i < n; i++) {
            if (data[i] >= '0' && data[i] <= '9' && v < 100000) {
                v = v * 10 + (data[i] - '0');
                digits = 1;
            } else if (digits || (data[i] != ' ' && data[i] != '\t')) {
                break;
            }
        }
        if (digits)
            b->retry_after = v;
    }
    return n;
}

static int is_loopback_url(const char *u)
{
    const char *h = strstr(u, "://");
    h = h ? h + 3 : u;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

int pdapi_init(pdapi *c, const char *prog, const char *base_url, const char *api_token,
               const char *oauth_token)
{
    memset(c, 0, sizeof *c);
    c->prog = prog;
    c->timeout_s = 30;
    c->max_wait_s = 120;
    if (api_token && !*api_token)
        api_token = NULL;
    if (oauth_token && !*oauth_token)
        oauth_token = NULL;
    if (!api_token && !oauth_token) {
        fprintf(stderr, "%s: no Pipedrive token: set PIPEDRIVE_API_TOKEN (or --api-token), or "
                        "PIPEDRIVE_OAUTH_TOKEN (--oauth-token)\n", prog);
        return -1;
    }
    if (api_token && oauth_token) {
        fprintf(stderr, "%s: give an API token or an OAuth token, not both\n", prog);
        return -1;
    }
    if (!base_url || !*base_url)
        base_url = PDAPI_DEFAULT_BASE_URL;
    size_t bl = strlen(base_url);
    while (bl && base_url[bl - 1] == '/')
        bl--;
    if (bl == 0 || bl + 8 >= sizeof c->base ||
        (strncmp(base_url, "https://", 8) != 0 && strncmp(base_url, "http://", 7) != 0)) {
        fprintf(stderr, "%s: --base-url must be an http(s) URL such as "
                        "https://COMPANY.pipedrive.com/api/v1\n", prog);
        return -1;
    }
    memcpy(c->base, base_url, bl);
    c->base[bl] = '\0';
    /* the v2 endpoints: .../v1 -> .../api/v2, .../api/v1 -> .../api/v2 */
    size_t root = bl;
    if (root >= 3 && strcmp(c->base + root - 3, "/v1") == 0)
        root -= 3;
    int api = root >= 4 && strncmp(c->base + root - 4, "/api", 4) == 0;
    snprintf(c->base_v2, sizeof c->base_v2, "%.*s%s", (int)root, c->base,
             api ? "/v2" : "/api/v2");
    if (strncmp(c->base, "http://", 7) == 0 && !is_loopback_url(c->base))
        fprintf(stderr, "%s: warning: the base URL is plain http://: the token travels "
                        "unencrypted\n", prog);
    const char *tok = api_token ? api_token : oauth_token;
    for (const char *p = tok; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f) {
            fprintf(stderr, "%s: the token holds white space or control characters\n", prog);
            return -1;
        }
    int n = api_token ? snprintf(c->auth_header, sizeof c->auth_header, "x-api-token: %s", tok)
                      : snprintf(c->auth_header, sizeof c->auth_header,
                                 "Authorization: Bearer %s", tok);
    if (n < 0 || (size_t)n >= sizeof c->auth_header) {
        fprintf(stderr, "%s: the token is too long\n", prog);
        return -1;
    }
    return 0;
}

void pdapi_fini(pdapi *c)
{
    volatile char *p = c->auth_header;
    for (size_t i = 0; i < sizeof c->auth_header; i++)
        p[i] = 0;
}

int pdapi_url_add(char *url, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(url), orig = n;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
                    ch == '~' || ch == ',';
        if (n + (plain ? 1 : 3) >= cap) {
            url[orig] = '\0';
            return -1;
        }
        if (plain) {
            url[n++] = (char)ch;
        } else {
            url[n++] = '%';
            url[n++] = hex[ch >> 4];
            url[n++] = hex[ch & 15];
        }
    }
    url[n] = '\0';
    return 0;
}

int pdapi_url_raw(char *url, size_t cap, const char *s)
{
    size_t n = strlen(url), k = strlen(s);
    if (n + k >= cap)
        return -1;
    memcpy(url + n, s, k + 1);
    return 0;
}

/* One request (body: JSON, or NULL): 0 with *status (and the answer in b), or -1 (no
 * answer: err filled). */
static int req_once(pdapi *c, const char *method, const char *url, const char *body,
                    long *status, buf *b, char *err, size_t cap)
{
    char curlerr[CURL_ERROR_SIZE] = "";
    *status = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *t;
    int ok = h != NULL;
    ok = ok && (t = curl_slist_append(hdrs, c->auth_header)) != NULL && (hdrs = t);
    ok = ok && (t = curl_slist_append(hdrs, "Accept: application/json")) != NULL && (hdrs = t);
    if (body)
        ok = ok && (t = curl_slist_append(hdrs, "Content-Type: application/json")) != NULL &&
             (hdrs = t);
    if (!ok) {
        curl_slist_free_all(hdrs);
        if (h)
            curl_easy_cleanup(h);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pdwebhook-reconcile");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* never carry the token elsewhere */
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, b);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(err, cap, "%s", b->overflow ? "answer larger than 64 MiB"
                                 : curlerr[0] ? curlerr : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

static void sleep_s(pdapi *c, unsigned s)
{
    for (unsigned i = 0; i < s * 10 && !(c->stop && *c->stop); i++) {
        struct timespec t = { 0, 100000000L };
        nanosleep(&t, NULL);
    }
}

/* The path and query of url without the host, for messages (the token is never in it). */
static const char *path_of(const char *url)
{
    const char *h = strstr(url, "://");
    const char *p = h ? strchr(h + 3, '/') : NULL;
    return p ? p : url;
}

json_t *pdapi_get(pdapi *c, const char *url, char *err, size_t errcap)
{
    unsigned backoff = 1;
    if (c->stop && *c->stop) {
        snprintf(err, errcap, "GET %s: interrupted", path_of(url));
        return NULL;
    }
    for (int attempt = 1;; attempt++) {
        buf b = { NULL, 0, 0, 0, -1 };
        long status = 0;
        char neterr[CURL_ERROR_SIZE + 64] = "";
        req_once(c, "GET", url, NULL, &status, &b, neterr, sizeof neterr);
        if (status)
            c->requests++;
        if (status == 200) {
            json_t *j = b.p ? json_loads(b.p, 0, NULL) : NULL;
            free(b.p);
            if (!j || !json_is_object(j) || !json_is_true(json_object_get(j, "success"))) {
                json_decref(j);
                snprintf(err, errcap, "GET %s: the answer is not {\"success\":true,...}",
                         path_of(url));
                return NULL;
            }
            return j;
        }
        char reason[256] = "";
        json_t *e = b.p ? json_loads(b.p, 0, NULL) : NULL;
        const char *r = json_string_value(json_object_get(e, "error"));
        snprintf(reason, sizeof reason, "%s", r ? r : "");
        json_decref(e);
        long wait = b.retry_after;
        free(b.p);
        if (c->stop && *c->stop) {
            snprintf(err, errcap, "GET %s: interrupted", path_of(url));
            return NULL;
        }
        if (status == 429) { /* the rate limit: wait as told, and ask again */
            c->throttled++;
            unsigned w = wait < 0 ? 2u : wait > (long)c->max_wait_s ? c->max_wait_s : (unsigned)wait;
            fprintf(stderr, "%s: Pipedrive's rate limit (429): waiting %u s (Retry-After)\n",
                    c->prog, w);
            sleep_s(c, w ? w : 1);
            attempt = 0; /* a 429 is not a failure: no give-up count */
            continue;
        }
        int retry = status == 0 || status >= 500;
        if (!retry || attempt >= ATTEMPTS) {
            if (status == 0)
                snprintf(err, errcap, "GET %s: no answer: %s", path_of(url), neterr);
            else
                snprintf(err, errcap, "GET %s: HTTP %ld%s%s%s", path_of(url), status,
                         reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
            return NULL;
        }
        sleep_s(c, backoff);
        backoff = backoff < 16 ? backoff * 2 : 16;
    }
}

long pdapi_request(pdapi *c, const char *method, const char *url, const char *body,
                   json_t **doc, char *err, size_t errcap)
{
    buf b = { NULL, 0, 0, 0, -1 };
    long status = 0;
    char neterr[CURL_ERROR_SIZE + 64] = "";
    *doc = NULL;
    if (req_once(c, method, url, body, &status, &b, neterr, sizeof neterr) < 0) {
        snprintf(err, errcap, "%s %s: no answer: %s", method, path_of(url), neterr);
        free(b.p);
        return 0;
    }
    c->requests++;
    *doc = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    if (status < 200 || status > 299) {
        const char *r = json_string_value(json_object_get(*doc, "error"));
        snprintf(err, errcap, "%s %s: HTTP %ld%s%s%s", method, path_of(url), status,
                 r ? " (" : "", r ? r : "", r ? ")" : "");
    }
    return status;
}
