/* pdwebhook subscriptions plan|list|sync|delete: manage the account's Pipedrive webhooks.
 *
 * The planning (translation, refusals, collapsing, warnings, the 40-per-user limit, the
 * POST bodies and the diff) is the library's (pdwebhook/subscriptions.h); this file talks
 * to Pipedrive's management API with libcurl: GET /webhooks, POST /webhooks,
 * DELETE /webhooks/{id}, with an API token (x-api-token) or an OAuth bearer token.
 * Credentials for the endpoint are read exactly as `serve` reads them, so that a webhook
 * created by `sync` always carries the pair `serve` accepts first.
 *
 * Exit status: 0 done, 1 Pipedrive (or the network) refused or failed, 2 usage error. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pdwebhook/subscriptions.h>

#include "cli.h"
#include "options.h"

#define DEFAULT_BASE_URL "https://api.pipedrive.com/v1"
#define PLACEHOLDER_URL "https://your-endpoint.example/pipedrive"
#define MAX_IDS 256
#define RESPONSE_MAX (16u * 1024u * 1024u)

typedef struct opts {
    const char *cmd;
    const char *api_token, *oauth_token, *base_url;
    const char *url, *events, *version, *user_id, *name;
    const char *user, *password, *cred_file;
    const char *health;
    const char *ids[MAX_IDS];
    size_t nids;
    long timeout_s;
    int json, dry_run, insecure_no_auth;
    char *cred_text; /* the --credentials file, owns user/password when they come from it */
    size_t cred_len;
} opts;

typedef struct buf {
    char *p;
    size_t n, cap;
    int overflow;
} buf;

typedef struct api {
    const opts *o;
    char base[2048];
    char auth_header[1024]; /* wiped at the end */
} api;

/* One listed webhook: the strings the library compares plus what we show. */
typedef struct listed {
    char id[32], user_id[32];
    const char *action, *object, *url, *version, *auth_user, *auth_password; /* in doc */
    const char *last_delivery_time, *name;
    long long last_http_status;
    int has_status, active;
} listed;

typedef struct listing {
    json_t *doc;
    listed *v;
    size_t n;
} listing;

static const char *prog = "pdwebhook subscriptions";

/* ---- usage and options ------------------------------------------------------------- */

enum {
    S_API_TOKEN = 1, S_API_TOKEN_FILE, S_OAUTH_TOKEN, S_OAUTH_TOKEN_FILE, S_BASE_URL,
    S_TIMEOUT, S_JSON, S_URL, S_EVENTS, S_VERSION, S_USER_ID, S_NAME, S_USER, S_PASSWORD,
    S_PASSWORD_FILE, S_CREDENTIALS, S_INSECURE, S_DRY_RUN, S_HEALTH, S_ID,
};

#define STR(id, name, arg, help) { id, name, 0, arg, PDW_OPT_STRING, 0, 0, 0, 0, 0, help, 0 }
#define SECRET(id, name, arg, help)                                                          \
    { id, name, 0, arg, PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET, help, 0 }
#define FILE_OF(id, name, of, help)                                                          \
    { id, name, 0, "FILE", PDW_OPT_FILE_OF, 0, 0, 0, 0, 0, help, of }
#define FLAG(id, name, help) { id, name, 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, help, 0 }

static const pdw_opt subs_opts[] = {
    SECRET(S_API_TOKEN, "api-token", "T",
           "API token, sent as x-api-token (default $PIPEDRIVE_API_TOKEN;\nprefer the "
           "variable: arguments are visible to other users)"),
    FILE_OF(S_API_TOKEN_FILE, "api-token-file", S_API_TOKEN,
            "the API token, read from FILE (mode 0600 or stricter)"),
    SECRET(S_OAUTH_TOKEN, "oauth-token", "T",
           "OAuth access token with the admin scope, sent as Bearer\n(default "
           "$PIPEDRIVE_OAUTH_TOKEN)"),
    FILE_OF(S_OAUTH_TOKEN_FILE, "oauth-token-file", S_OAUTH_TOKEN,
            "the OAuth token, read from FILE (mode 0600 or stricter)"),
    STR(S_BASE_URL, "base-url", "URL",
        "API base (default $PIPEDRIVE_BASE_URL, else " DEFAULT_BASE_URL ";\ne.g. "
        "https://COMPANY.pipedrive.com/api/v1)"),
    { S_TIMEOUT, "timeout", 0, "S", PDW_OPT_SECONDS, 1, 3600, 0, 0, 0,
      "seconds per request (default 30)", 0 },
    FLAG(S_JSON, "json", "machine-readable output"),
    STR(S_URL, "url", "URL",
        "where Pipedrive delivers: the public address of pdwebhook serve\n(list: only the "
        "webhooks for URL)"),
    STR(S_EVENTS, "events", "LIST",
        "triggers, comma-separated: updated.deal,*.person,change.lead\n(v1 or v2 words; * for "
        "any action or object)"),
    STR(S_VERSION, "version", "V", "webhooks version, 1.0 or 2.0 (default 2.0)"),
    STR(S_USER_ID, "user-id", "N", "Pipedrive user whose permissions the webhooks run under"),
    STR(S_NAME, "name", "PREFIX", "webhook names are \"PREFIX action.object\" (default pdwebhook)"),
    STR(S_USER, "user", "U",
        "HTTP Basic user Pipedrive sends (default $PDWEBHOOK_USER), as\nfor serve"),
    SECRET(S_PASSWORD, "password", "P", "its password (default $PDWEBHOOK_PASSWORD)"),
    FILE_OF(S_PASSWORD_FILE, "password-file", S_PASSWORD,
            "the password, read from FILE (mode 0600 or stricter)"),
    STR(S_CREDENTIALS, "credentials", "FILE",
        "the user:password file serve uses: its first pair is sent\n(--user/--password, when "
        "given, come first, as in serve)"),
    FLAG(S_INSECURE, "insecure-no-auth", "create webhooks without HTTP auth"),
    FLAG(S_DRY_RUN, "dry-run", "(sync) print what would change, change nothing"),
    STR(S_HEALTH, "health", "URL", "(list) also fetch /healthz of a running pdwebhook serve"),
    { S_ID, "id", 0, "ID", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_REPEAT,
      "(delete) the webhook to delete; repeatable", 0 },
};

static const pdw_opt_cmd subs_cmd = {
    "pdwebhook subscriptions",
    "usage: pdwebhook subscriptions COMMAND [options]\n"
    "\n"
    "  plan     print the Pipedrive webhooks --events needs (no network)\n"
    "  list     list the account's webhooks, with Pipedrive's last delivery and status\n"
    "  sync     make the webhooks for --url equal to the plan: create what is missing,\n"
    "           delete what is not planned, keep the rest (safe to run again)\n"
    "  delete   delete webhooks: --id ID (repeatable), or every one for --url URL\n"
    "\n"
    "options:\n",
    subs_opts, sizeof subs_opts / sizeof subs_opts[0], NULL,
};

static void usage(FILE *out)
{
    pdw_opt_help(&subs_cmd, out);
}

static int apply(const pdw_opt *opt, const pdw_opt_value *v, void *user)
{
    opts *o = user;
    const char *t = v->text;
    switch (opt->id) {
    case S_API_TOKEN: o->api_token = t; break;
    case S_OAUTH_TOKEN: o->oauth_token = t; break;
    case S_BASE_URL: o->base_url = t; break;
    case S_TIMEOUT: o->timeout_s = (long)v->num; break;
    case S_JSON: o->json = 1; break;
    case S_URL: o->url = t; break;
    case S_EVENTS: o->events = t; break;
    case S_VERSION: o->version = t; break;
    case S_USER_ID: o->user_id = t; break;
    case S_NAME: o->name = t; break;
    case S_USER: o->user = t; break;
    case S_PASSWORD: o->password = t; break;
    case S_CREDENTIALS: o->cred_file = t; break;
    case S_INSECURE: o->insecure_no_auth = 1; break;
    case S_DRY_RUN: o->dry_run = 1; break;
    case S_HEALTH: o->health = t; break;
    case S_ID:
        if (o->nids == MAX_IDS)
            return pdw_opt_error(&subs_cmd, opt, v, "at most %d --id options", MAX_IDS);
        o->ids[o->nids++] = t;
        break;
    default: return pdw_opt_error(&subs_cmd, opt, v, "not handled");
    }
    return 0;
}

static int parse_args(opts *o, int argc, char **argv)
{
    o->api_token = getenv("PIPEDRIVE_API_TOKEN");
    o->oauth_token = getenv("PIPEDRIVE_OAUTH_TOKEN");
    o->base_url = getenv("PIPEDRIVE_BASE_URL");
    o->user = getenv("PDWEBHOOK_USER");
    o->password = getenv("PDWEBHOOK_PASSWORD");
    o->timeout_s = 30;
    int rc = pdw_opt_parse(&subs_cmd, argc, argv, 2, apply, o, NULL, NULL);
    if (rc != 0)
        return rc;
    if (!o->base_url || !*o->base_url)
        o->base_url = DEFAULT_BASE_URL;
    if (o->api_token && !*o->api_token)
        o->api_token = NULL;
    if (o->oauth_token && !*o->oauth_token)
        o->oauth_token = NULL;
    return 0;
}

/* ---- credentials, exactly as serve reads them --------------------------------------- */

typedef struct first_pair {
    const char *user, *password;
} first_pair;

static int keep_first(char *user, char *password, void *ctx)
{
    first_pair *f = ctx;
    if (!f->user) {
        f->user = user;
        f->password = password;
    }
    return 0;
}

/* serve's list is: --user/--password (or the variables), then each line of --credentials.
 * Its first pair is the one Pipedrive is given. The file is checked the way serve checks
 * it, so that a file serve would refuse is refused here too. */
static int resolve_credentials(opts *o)
{
    if ((o->user && !o->password) || (!o->user && o->password)) {
        fprintf(stderr, "%s: --user and --password go together (PDWEBHOOK_USER and "
                        "PDWEBHOOK_PASSWORD too)\n", prog);
        return -1;
    }
    if (o->cred_file) {
        char *text = pdw_cli_read_file(o->cred_file, NULL);
        if (!text) {
            fprintf(stderr, "%s: cannot read %s: %s\n", prog, o->cred_file, strerror(errno));
            return -1;
        }
        o->cred_text = text;
        o->cred_len = strlen(text);
        first_pair fp1 = { NULL, NULL };
        if (pdw_cli_parse_credentials(text, o->cred_file, prog, keep_first, &fp1) < 0)
            return -1;
        const char *fu = fp1.user, *fp = fp1.password;
        if (!o->user) {
            o->user = fu;
            o->password = fp;
        }
    }
    if (!o->user && !o->insecure_no_auth && strcmp(o->cmd, "sync") == 0) {
        fprintf(stderr,
                "%s: no credentials for the endpoint: give the ones pdwebhook serve uses\n"
                "  (--user/--password, PDWEBHOOK_USER/PDWEBHOOK_PASSWORD, or --credentials "
                "FILE),\n  or --insecure-no-auth to create webhooks without HTTP auth\n", prog);
        return -1;
    }
    if (o->insecure_no_auth) {
        o->user = NULL;
        o->password = NULL;
    }
    return 0;
}

/* ---- output helpers ---------------------------------------------------------------- */

/* A URL for people to read: the values of query parameters that look secret are hidden
 * (a receiver often takes ?token=...). --json prints URLs unchanged. */
static void print_url(FILE *out, const char *url)
{
    const char *q = strchr(url, '?');
    if (!q) {
        fputs(url, out);
        return;
    }
    fwrite(url, 1, (size_t)(q - url) + 1, out);
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t klen = eq ? (size_t)(eq - p) : (size_t)(end - p);
        int secret = 0;
        static const char *const words[] = { "token", "key", "secret", "pass", "auth", "sig" };
        for (size_t w = 0; w < sizeof words / sizeof words[0] && !secret; w++) {
            size_t wl = strlen(words[w]);
            for (size_t k = 0; k + wl <= klen && !secret; k++)
                secret = strncasecmp(p + k, words[w], wl) == 0;
        }
        if (eq && secret) {
            fwrite(p, 1, klen + 1, out);
            fputs("***", out);
        } else {
            fwrite(p, 1, (size_t)(end - p), out);
        }
        if (!amp)
            break;
        fputc('&', out);
        p = amp + 1;
    }
}

static void print_json(json_t *j)
{
    if (!j) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return;
    }
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(j);
}

/* ---- the plan ---------------------------------------------------------------------- */

static pdw_plan *build_plan(const opts *o, int for_show)
{
    if (!o->events) {
        fprintf(stderr, "%s: --events is required (e.g. --events updated.deal,*.person)\n", prog);
        return NULL;
    }
    if (!o->url && !for_show) {
        fprintf(stderr, "%s: --url is required: the address Pipedrive delivers to\n", prog);
        return NULL;
    }
    pdw_plan_options po;
    pdw_plan_options_init(&po, PDW_PLAN_OPTIONS_VERSION);
    po.webhook_version = o->version;
    po.subscription_url = o->url ? o->url : PLACEHOLDER_URL;
    po.user_id = o->user_id;
    po.http_auth_user = o->user;
    po.http_auth_password = o->password;
    po.name_prefix = o->name;
    pdw_plan *plan = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_plan_new(&plan, &po, &err) != 0 || pdw_plan_add_list(plan, o->events, &err) != 0 ||
        pdw_plan_check(plan, 0, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        pdw_plan_free(plan);
        return NULL;
    }
    return plan;
}

static json_t *plan_warnings_json(const pdw_plan *plan)
{
    json_t *a = json_array();
    for (size_t i = 0; i < pdw_plan_warning_count(plan); i++)
        json_array_append_new(a, json_string(pdw_plan_warning(plan, i)));
    return a;
}

static void print_warnings(FILE *out, const pdw_plan *plan)
{
    for (size_t i = 0; i < pdw_plan_warning_count(plan); i++)
        fprintf(out, "warning: %s\n", pdw_plan_warning(plan, i));
}

static int cmd_plan(const opts *o)
{
    pdw_plan *plan = build_plan(o, 1);
    if (!plan)
        return 2;
    size_t n = pdw_plan_count(plan);
    if (o->json) {
        json_t *j = json_object(), *subs = json_array();
        json_object_set_new(j, "version", json_string(pdw_plan_version(plan)));
        json_object_set_new(j, "subscription_url", o->url ? json_string(o->url) : json_null());
        for (size_t i = 0; i < n; i++) {
            char *body = NULL;
            json_t *s = json_object();
            json_object_set_new(s, "event_action", json_string(pdw_plan_action(plan, i)));
            json_object_set_new(s, "event_object", json_string(pdw_plan_object(plan, i)));
            if (pdw_plan_body_json(plan, i, &body, NULL) == 0) {
                json_t *b = json_loads(body, 0, NULL);
                if (b && json_object_get(b, "http_auth_password"))
                    json_object_set_new(b, "http_auth_password", json_string("***"));
                if (b && !o->url)
                    json_object_set_new(b, "subscription_url", json_null());
                json_object_set_new(s, "body", b ? b : json_null());
                pdw_free(body);
            }
            json_array_append_new(subs, s);
        }
        json_object_set_new(j, "subscriptions", subs);
        json_object_set_new(j, "warnings", plan_warnings_json(plan));
        print_json(j);
    } else {
        printf("webhooks %s", pdw_plan_version(plan));
        if (o->url) {
            printf(" for ");
            print_url(stdout, o->url);
        }
        printf(": %zu subscription%s (Pipedrive allows %d per user)\n", n, n == 1 ? "" : "s",
               PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER);
        for (size_t i = 0; i < n; i++)
            printf("  %s.%s\n", pdw_plan_action(plan, i), pdw_plan_object(plan, i));
        print_warnings(stdout, plan);
    }
    pdw_plan_free(plan);
    return 0;
}

/* ---- HTTP --------------------------------------------------------------------------- */

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    buf *b = user;
    size_t n = size * nmemb;
    if (b->n + n + 1 > RESPONSE_MAX) {
        b->overflow = 1;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
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

static int is_loopback_url(const char *u)
{
    const char *h = strstr(u, "://");
    h = h ? h + 3 : u;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

static int api_init(api *c, const opts *o)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    if (!o->api_token && !o->oauth_token) {
        fprintf(stderr, "%s: no Pipedrive token: set PIPEDRIVE_API_TOKEN (or --api-token), or "
                        "PIPEDRIVE_OAUTH_TOKEN (--oauth-token)\n", prog);
        return -1;
    }
    if (o->api_token && o->oauth_token) {
        fprintf(stderr, "%s: give an API token or an OAuth token, not both\n", prog);
        return -1;
    }
    size_t bl = strlen(o->base_url);
    while (bl && o->base_url[bl - 1] == '/')
        bl--;
    if (bl == 0 || bl >= sizeof c->base ||
        (strncmp(o->base_url, "https://", 8) != 0 && strncmp(o->base_url, "http://", 7) != 0)) {
        fprintf(stderr, "%s: --base-url must be an http(s) URL such as "
                        "https://COMPANY.pipedrive.com/api/v1\n", prog);
        return -1;
    }
    memcpy(c->base, o->base_url, bl);
    c->base[bl] = '\0';
    if (strncmp(c->base, "http://", 7) == 0 && !is_loopback_url(c->base))
        fprintf(stderr, "%s: warning: the base URL is plain http://: the token travels "
                        "unencrypted\n", prog);
    const char *tok = o->api_token ? o->api_token : o->oauth_token;
    for (const char *p = tok; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f) {
            fprintf(stderr, "%s: the token holds white space or control characters\n", prog);
            return -1;
        }
    int n = o->api_token ? snprintf(c->auth_header, sizeof c->auth_header, "x-api-token: %s", tok)
                         : snprintf(c->auth_header, sizeof c->auth_header,
                                    "Authorization: Bearer %s", tok);
    if (n < 0 || (size_t)n >= sizeof c->auth_header) {
        fprintf(stderr, "%s: the token is too long\n", prog);
        return -1;
    }
    return 0;
}

static void api_fini(api *c)
{
    volatile char *p = c->auth_header;
    for (size_t i = 0; i < sizeof c->auth_header; i++)
        p[i] = 0;
}

/* One request. *status is the HTTP status (0: no answer, *err holds why); the body is in
 * *resp (NUL-terminated; free it). Never prints the token. */
static int request(const api *c, const char *method, const char *url, const char *body,
                   long *status, buf *resp, char *err, size_t errcap, int with_auth)
{
    char curlerr[CURL_ERROR_SIZE] = "";
    memset(resp, 0, sizeof *resp);
    *status = 0;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errcap, "cannot start libcurl");
        return -1;
    }
    struct curl_slist *hdrs = NULL, *t;
    int ok = 1;
    if (with_auth)
        ok = (t = curl_slist_append(hdrs, c->auth_header)) != NULL && (hdrs = t);
    ok = ok && (t = curl_slist_append(hdrs, "Accept: application/json")) != NULL && (hdrs = t);
    if (body)
        ok = ok && (t = curl_slist_append(hdrs, "Content-Type: application/json")) != NULL &&
             (hdrs = t);
    if (!ok) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pdwebhook-subscriptions");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* never carry the token elsewhere */
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->o->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(err, errcap, "%s", resp->overflow ? "answer larger than 16 MiB"
                                    : curlerr[0] ? curlerr : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

/* Pipedrive's own words from an error body: "error" (401/403/404), "errors" (400, a map
 * of field -> [messages]), or "error_info". */
static void pipedrive_reason(const buf *resp, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *j = resp->p ? json_loads(resp->p, 0, NULL) : NULL;
    if (!j)
        return;
    size_t off = 0;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e)
        off += (size_t)snprintf(out + off, cap - off, "%s", e);
    json_t *errors = json_object_get(j, "errors");
    const char *k;
    json_t *v;
    json_object_foreach(errors, k, v) {
        if (off >= cap)
            break;
        const char *msg = json_string_value(json_is_array(v) ? json_array_get(v, 0) : v);
        off += (size_t)snprintf(out + off, cap - off, "%s%s: %s", off ? "; " : "", k,
                                msg ? msg : "refused");
    }
    const char *info = json_string_value(json_object_get(j, "error_info"));
    if (info && off < cap)
        snprintf(out + off, cap - off, "%s(%s)", off ? " " : "", info);
    json_decref(j);
}

static int mentions_limit(const buf *resp)
{
    if (!resp->p)
        return 0;
    for (const char *p = resp->p; *p; p++)
        if (strncasecmp(p, "limit", 5) == 0 || strncasecmp(p, "maximum", 7) == 0)
            return 1;
    return 0;
}

/* Explain a failed call. what: "listing webhooks", "creating change.deal", "deleting 12". */
static void explain(const api *c, const char *what, long status, const buf *resp,
                    const char *neterr, const char *id)
{
    char reason[512];
    pipedrive_reason(resp, reason, sizeof reason);
    const char *r = reason[0] ? reason : "no details";
    if (status == 0) {
        fprintf(stderr, "%s: %s: no answer from %s: %s\n", prog, what, c->base, neterr);
        return;
    }
    switch (status) {
    case 400:
        if (mentions_limit(resp))
            fprintf(stderr, "%s: %s: Pipedrive refused (400): the user has reached the limit "
                            "of %d webhooks (%s); delete unused ones (pdwebhook subscriptions "
                            "list / delete)\n", prog, what, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER, r);
        else
            fprintf(stderr, "%s: %s: Pipedrive refused the request (400): %s\n%s", prog, what,
                    r, strstr(r, "subscription_url")
                           ? "  Pipedrive must reach the URL over HTTPS with a certificate it "
                             "trusts (not self-signed), and the URL must not redirect.\n"
                           : "");
        break;
    case 401:
        fprintf(stderr, "%s: %s: Pipedrive refused the token (401: %s): check "
                        "PIPEDRIVE_API_TOKEN / --api-token (an OAuth token may have expired) "
                        "and --base-url\n", prog, what, r);
        break;
    case 403:
        if (id)
            fprintf(stderr, "%s: %s: forbidden (403: %s): webhook %s belongs to another user; "
                            "only its owner or an admin can delete it\n", prog, what, r, id);
        else
            fprintf(stderr, "%s: %s: forbidden (403: %s): the token's user may not manage "
                            "webhooks (an OAuth app needs the admin scope)\n", prog, what, r);
        break;
    case 404:
        if (id)
            fprintf(stderr, "%s: %s: webhook %s does not exist (404: %s); already deleted?\n",
                    prog, what, id, r);
        else
            fprintf(stderr, "%s: %s: not found (404: %s): check --base-url (%s), which should "
                            "end in /v1, e.g. https://COMPANY.pipedrive.com/api/v1\n",
                    prog, what, r, c->base);
        break;
    case 429:
        fprintf(stderr, "%s: %s: Pipedrive's rate limit (429): try again in a moment\n", prog,
                what);
        break;
    default:
        fprintf(stderr, "%s: %s: unexpected HTTP status %ld from Pipedrive (%s)\n", prog, what,
                status, r);
    }
}

/* Parse a success body: {"success":true,"data":...}. Returns the document or NULL. */
static json_t *success_doc(const buf *resp)
{
    json_t *j = resp->p ? json_loads(resp->p, 0, NULL) : NULL;
    if (j && (!json_is_object(j) || json_is_false(json_object_get(j, "success")))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void id_text(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else
        out[0] = '\0';
}

static void listing_free(listing *l)
{
    json_decref(l->doc);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int fetch_list(const api *c, listing *l)
{
    memset(l, 0, sizeof *l);
    char url[2200], neterr[CURL_ERROR_SIZE + 64];
    snprintf(url, sizeof url, "%s/webhooks", c->base);
    long status;
    buf resp;
    request(c, "GET", url, NULL, &status, &resp, neterr, sizeof neterr, 1);
    if (status != 200) {
        explain(c, "listing webhooks", status, &resp, neterr, NULL);
        free(resp.p);
        return -1;
    }
    l->doc = success_doc(&resp);
    free(resp.p);
    json_t *data = l->doc ? json_object_get(l->doc, "data") : NULL;
    if (!l->doc || !(json_is_array(data) || json_is_null(data) || !data)) {
        fprintf(stderr, "%s: listing webhooks: the answer is not {\"success\":true,"
                        "\"data\":[...]}\n", prog);
        listing_free(l);
        return -1;
    }
    size_t n = json_is_array(data) ? json_array_size(data) : 0;
    l->v = calloc(n + 1, sizeof *l->v);
    if (!l->v) {
        listing_free(l);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_array_get(data, i);
        listed *e = &l->v[l->n];
        id_text(json_object_get(w, "id"), e->id, sizeof e->id);
        id_text(json_object_get(w, "user_id"), e->user_id, sizeof e->user_id);
        e->action = json_string_value(json_object_get(w, "event_action"));
        e->object = json_string_value(json_object_get(w, "event_object"));
        e->url = json_string_value(json_object_get(w, "subscription_url"));
        e->version = json_string_value(json_object_get(w, "version"));
        e->auth_user = json_string_value(json_object_get(w, "http_auth_user"));
        e->auth_password = json_string_value(json_object_get(w, "http_auth_password"));
        e->last_delivery_time = json_string_value(json_object_get(w, "last_delivery_time"));
        e->name = json_string_value(json_object_get(w, "name"));
        json_t *st = json_object_get(w, "last_http_status");
        e->has_status = json_is_integer(st);
        e->last_http_status = e->has_status ? (long long)json_integer_value(st) : 0;
        json_t *act = json_object_get(w, "is_active");
        e->active = !act || json_is_true(act) || (json_is_integer(act) && json_integer_value(act));
        if (!e->id[0] || !e->action || !e->object || !e->url)
            continue; /* not a webhook we can reason about */
        l->n++;
    }
    return 0;
}

static int delete_one(const api *c, const char *id)
{
    for (const char *p = id; *p; p++)
        if (*p < '0' || *p > '9') {
            fprintf(stderr, "%s: webhook id '%s' is not a number\n", prog, id);
            return -1;
        }
    char url[2200], neterr[CURL_ERROR_SIZE + 64], what[64];
    snprintf(url, sizeof url, "%s/webhooks/%s", c->base, id);
    snprintf(what, sizeof what, "deleting webhook %s", id);
    long status;
    buf resp;
    request(c, "DELETE", url, NULL, &status, &resp, neterr, sizeof neterr, 1);
    int rc = 0;
    if (status != 200 && status != 204) {
        explain(c, what, status, &resp, neterr, id);
        rc = -1;
    }
    free(resp.p);
    return rc;
}

/* POST the i-th planned subscription; the new id into id_out. */
static int create_one(const api *c, const pdw_plan *plan, size_t i, char *id_out, size_t cap)
{
    char *body = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_plan_body_json(plan, i, &body, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        return -1;
    }
    char url[2200], neterr[CURL_ERROR_SIZE + 64], what[128];
    snprintf(url, sizeof url, "%s/webhooks", c->base);
    snprintf(what, sizeof what, "creating %s.%s", pdw_plan_action(plan, i),
             pdw_plan_object(plan, i));
    long status;
    buf resp;
    request(c, "POST", url, body, &status, &resp, neterr, sizeof neterr, 1);
    volatile char *vb = body; /* holds the password */
    for (size_t k = 0; body[k]; k++)
        vb[k] = 0;
    pdw_free(body);
    int rc = -1;
    if (status == 201 || status == 200) {
        json_t *doc = success_doc(&resp);
        id_text(json_object_get(json_object_get(doc, "data"), "id"), id_out, cap);
        if (id_out[0])
            rc = 0;
        else
            fprintf(stderr, "%s: %s: the answer carries no data.id\n", prog, what);
        json_decref(doc);
    } else {
        explain(c, what, status, &resp, neterr, NULL);
    }
    free(resp.p);
    return rc;
}

/* ---- list --------------------------------------------------------------------------- */

static json_t *fetch_health(const api *c, const char *health, char *err, size_t cap)
{
    char url[2200];
    size_t n = strlen(health);
    const char *sfx = "/healthz";
    if (n >= 8 && strcmp(health + n - 8, sfx) == 0) {
        snprintf(url, sizeof url, "%s", health);
    } else {
        /* the origin of the serve URL, then /healthz */
        const char *h = strstr(health, "://");
        const char *slash = h ? strchr(h + 3, '/') : NULL;
        int origin = slash ? (int)(slash - health) : (int)n;
        snprintf(url, sizeof url, "%.*s/healthz", origin, health);
    }
    long status;
    buf resp;
    request(c, "GET", url, NULL, &status, &resp, err, cap, 0);
    json_t *j = NULL;
    if (status == 200) {
        j = resp.p ? json_loads(resp.p, 0, NULL) : NULL;
        if (!json_is_object(j)) {
            json_decref(j);
            j = NULL;
            snprintf(err, cap, "the answer is not a JSON object");
        }
    } else if (status) {
        snprintf(err, cap, "HTTP status %ld", status);
    }
    free(resp.p);
    return j;
}

static int cmd_list(const api *c, const opts *o)
{
    listing l;
    if (fetch_list(c, &l) != 0)
        return 1;
    json_t *health = NULL;
    char herr[CURL_ERROR_SIZE + 64] = "";
    if (o->health)
        health = fetch_health(c, o->health, herr, sizeof herr);
    if (o->json) {
        json_t *j = json_object(), *a = json_array();
        for (size_t i = 0; i < l.n; i++) {
            const listed *e = &l.v[i];
            if (o->url && strcmp(e->url, o->url) != 0)
                continue;
            json_t *w = json_object();
            json_object_set_new(w, "id", json_string(e->id));
            json_object_set_new(w, "version", json_string(e->version ? e->version : "1.0"));
            json_object_set_new(w, "event_action", json_string(e->action));
            json_object_set_new(w, "event_object", json_string(e->object));
            json_object_set_new(w, "subscription_url", json_string(e->url));
            json_object_set_new(w, "user_id", e->user_id[0] ? json_string(e->user_id) : json_null());
            json_object_set_new(w, "name", e->name ? json_string(e->name) : json_null());
            json_object_set_new(w, "is_active", json_boolean(e->active));
            json_object_set_new(w, "http_auth_user",
                                e->auth_user ? json_string(e->auth_user) : json_null());
            json_object_set_new(w, "last_delivery_time",
                                e->last_delivery_time ? json_string(e->last_delivery_time)
                                                      : json_null());
            json_object_set_new(w, "last_http_status",
                                e->has_status ? json_integer(e->last_http_status) : json_null());
            json_array_append_new(a, w);
        }
        json_object_set_new(j, "webhooks", a);
        if (o->health) {
            json_object_set_new(j, "health", health ? json_incref(health) : json_null());
            if (!health)
                json_object_set_new(j, "health_error", json_string(herr));
        }
        print_json(j);
    } else {
        size_t shown = 0;
        printf("%-10s %-4s %-24s %-6s %-20s %-6s %s\n", "ID", "VER", "TRIGGER", "ACTIVE",
               "LAST DELIVERY", "STATUS", "URL");
        for (size_t i = 0; i < l.n; i++) {
            const listed *e = &l.v[i];
            if (o->url && strcmp(e->url, o->url) != 0)
                continue;
            char trig[128], st[16];
            snprintf(trig, sizeof trig, "%s.%s", e->action, e->object);
            if (e->has_status)
                snprintf(st, sizeof st, "%lld", e->last_http_status);
            else
                snprintf(st, sizeof st, "-");
            printf("%-10s %-4s %-24s %-6s %-20s %-6s ", e->id, e->version ? e->version : "1.0",
                   trig, e->active ? "yes" : "NO",
                   e->last_delivery_time ? e->last_delivery_time : "never", st);
            print_url(stdout, e->url);
            putchar('\n');
            shown++;
        }
        printf("%zu webhook%s%s\n", shown, shown == 1 ? "" : "s",
               o->url ? " for this URL" : "");
        if (o->health) {
            printf("\nreceiver health (");
            print_url(stdout, o->health);
            printf("):");
            if (!health) {
                printf(" unavailable: %s\n", herr);
            } else {
                const char *k;
                json_t *v;
                json_object_foreach(health, k, v) {
                    if (json_is_object(v) || json_is_array(v)) {
                        char *s = json_dumps(v, JSON_COMPACT);
                        printf("\n  %-22s %s", k, s ? s : "?");
                        free(s);
                    } else if (json_is_string(v)) {
                        printf("\n  %-22s %s", k, json_string_value(v));
                    } else if (json_is_integer(v)) {
                        printf("\n  %-22s %lld", k, (long long)json_integer_value(v));
                    } else if (json_is_real(v)) {
                        printf("\n  %-22s %g", k, json_real_value(v));
                    } else {
                        printf("\n  %-22s %s", k,
                               json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
                    }
                }
                printf("\n");
            }
            printf("Pipedrive's LAST DELIVERY / STATUS above are what it last sent and got "
                   "back; the receiver's counters are what arrived.\n");
        }
    }
    json_decref(health);
    listing_free(&l);
    return 0;
}

/* ---- sync --------------------------------------------------------------------------- */

static json_t *entry_json(const char *id, const char *action, const char *object)
{
    json_t *w = json_object();
    json_object_set_new(w, "id", id ? json_string(id) : json_null());
    json_object_set_new(w, "event_action", json_string(action));
    json_object_set_new(w, "event_object", json_string(object));
    return w;
}

static int cmd_sync(const api *c, const opts *o)
{
    pdw_plan *plan = build_plan(o, 0);
    if (!plan)
        return 2;
    listing l;
    if (fetch_list(c, &l) != 0) {
        pdw_plan_free(plan);
        return 1;
    }
    pdw_subscription *ex = calloc(l.n + 1, sizeof *ex);
    if (!ex) {
        listing_free(&l);
        pdw_plan_free(plan);
        return 1;
    }
    for (size_t i = 0; i < l.n; i++) {
        ex[i].id = l.v[i].id;
        ex[i].event_action = l.v[i].action;
        ex[i].event_object = l.v[i].object;
        ex[i].subscription_url = l.v[i].url;
        ex[i].webhook_version = l.v[i].version;
        ex[i].user_id = l.v[i].user_id[0] ? l.v[i].user_id : NULL;
        ex[i].http_auth_user = l.v[i].auth_user;
        ex[i].http_auth_password = l.v[i].auth_password;
    }
    pdw_diff *d = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = 0;
    if (pdw_plan_diff(&d, plan, ex, l.n, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        rc = 1;
        goto out;
    }
    print_warnings(stderr, plan);

    json_t *jc = json_array(), *jk = json_array(), *jd = json_array();
    /* Create first, so that a replaced webhook (say, a new password: serve accepts both
     * while rotating) never leaves a gap; delete first only when creating first would
     * pass the limit. */
    size_t user_now = 0;
    for (size_t i = 0; i < l.n; i++)
        if (o->user_id ? strcmp(l.v[i].user_id, o->user_id) == 0 : strcmp(l.v[i].url, o->url) == 0)
            user_now++;
    int delete_first = user_now + pdw_diff_create_count(d) > PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER;
    const char *verb_c = o->dry_run ? "would create" : "created";
    const char *verb_d = o->dry_run ? "would delete" : "deleted";

    for (size_t i = 0; i < pdw_diff_keep_count(d); i++) {
        const listed *e = &l.v[pdw_diff_keep(d, i)];
        size_t k = pdw_diff_keep_plan_index(d, i);
        json_array_append_new(jk, entry_json(e->id, pdw_plan_action(plan, k),
                                             pdw_plan_object(plan, k)));
        if (!o->json)
            printf("kept          %-10s %s.%s\n", e->id, pdw_plan_action(plan, k),
                   pdw_plan_object(plan, k));
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        int deleting = (pass == 0) == delete_first;
        if (deleting) {
            for (size_t i = 0; i < pdw_diff_delete_count(d) && rc == 0; i++) {
                const listed *e = &l.v[pdw_diff_delete(d, i)];
                if (!o->dry_run && delete_one(c, e->id) != 0) {
                    rc = 1;
                    break;
                }
                json_array_append_new(jd, entry_json(e->id, e->action, e->object));
                if (!o->json)
                    printf("%-13s %-10s %s.%s%s\n", verb_d, e->id, e->action, e->object,
                           e->version && strcmp(e->version, pdw_plan_version(plan)) != 0
                               ? " (other version)" : "");
            }
        } else {
            for (size_t i = 0; i < pdw_diff_create_count(d) && rc == 0; i++) {
                size_t k = pdw_diff_create(d, i);
                char id[64] = "";
                if (!o->dry_run && create_one(c, plan, k, id, sizeof id) != 0) {
                    rc = 1;
                    break;
                }
                json_array_append_new(jc, entry_json(o->dry_run ? NULL : id,
                                                     pdw_plan_action(plan, k),
                                                     pdw_plan_object(plan, k)));
                if (!o->json)
                    printf("%-13s %-10s %s.%s\n", verb_c, o->dry_run ? "-" : id,
                           pdw_plan_action(plan, k), pdw_plan_object(plan, k));
            }
        }
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_boolean(rc == 0));
        json_object_set_new(j, "dry_run", json_boolean(o->dry_run));
        json_object_set_new(j, "version", json_string(pdw_plan_version(plan)));
        json_object_set_new(j, "subscription_url", json_string(o->url));
        json_object_set_new(j, "created", jc);
        json_object_set_new(j, "kept", jk);
        json_object_set_new(j, "deleted", jd);
        json_object_set_new(j, "warnings", plan_warnings_json(plan));
        print_json(j);
    } else {
        printf("%s: %zu created, %zu kept, %zu deleted (webhooks %s)\n",
               rc ? "sync stopped" : o->dry_run ? "dry run" : "in sync", json_array_size(jc),
               json_array_size(jk), json_array_size(jd), pdw_plan_version(plan));
        json_decref(jc);
        json_decref(jk);
        json_decref(jd);
    }
    if (rc)
        fprintf(stderr, "%s: what was done stays done; run sync again once the cause is "
                        "fixed\n", prog);
out:
    pdw_diff_free(d);
    free(ex);
    listing_free(&l);
    pdw_plan_free(plan);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------- */

static int cmd_delete(const api *c, const opts *o)
{
    if (!o->nids == !o->url) {
        fprintf(stderr, "%s: delete takes --id ID (repeatable) or --url URL (all its "
                        "webhooks), not both\n", prog);
        return 2;
    }
    const char *ids[MAX_IDS];
    size_t n = 0;
    listing l;
    memset(&l, 0, sizeof l);
    if (o->url) {
        if (fetch_list(c, &l) != 0)
            return 1;
        for (size_t i = 0; i < l.n && n < MAX_IDS; i++)
            if (strcmp(l.v[i].url, o->url) == 0)
                ids[n++] = l.v[i].id;
    } else {
        memcpy(ids, o->ids, o->nids * sizeof *ids);
        n = o->nids;
    }
    int rc = 0;
    json_t *done = json_array();
    for (size_t i = 0; i < n; i++) {
        if (delete_one(c, ids[i]) != 0) {
            rc = 1;
            continue; /* try the others */
        }
        json_array_append_new(done, json_string(ids[i]));
        if (!o->json)
            printf("deleted %s\n", ids[i]);
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_boolean(rc == 0));
        json_object_set_new(j, "deleted", done);
        print_json(j);
    } else {
        if (n == 0)
            printf("no webhook for this URL\n");
        json_decref(done);
    }
    listing_free(&l);
    return rc;
}

/* ---- entry -------------------------------------------------------------------------- */

int pdw_cmd_subscriptions(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    o.cmd = argv[1];
    if (strcmp(o.cmd, "plan") != 0 && strcmp(o.cmd, "list") != 0 &&
        strcmp(o.cmd, "sync") != 0 && strcmp(o.cmd, "delete") != 0) {
        fprintf(stderr, "%s: unknown command '%s' (plan, list, sync or delete)\n", prog, o.cmd);
        return 2;
    }
    int prc = parse_args(&o, argc, argv);
    if (prc)
        return prc > 0 ? 0 : 2;
    if (resolve_credentials(&o) != 0) {
        free(o.cred_text);
        return 2;
    }
    int rc;
    if (strcmp(o.cmd, "plan") == 0) {
        rc = cmd_plan(&o);
    } else {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "%s: curl_global_init failed\n", prog);
            free(o.cred_text);
            return 1;
        }
        api c;
        if (api_init(&c, &o) != 0) {
            rc = 2;
        } else if (strcmp(o.cmd, "list") == 0) {
            rc = cmd_list(&c, &o);
        } else if (strcmp(o.cmd, "sync") == 0) {
            rc = cmd_sync(&c, &o);
        } else {
            rc = cmd_delete(&c, &o);
        }
        api_fini(&c);
        curl_global_cleanup();
    }
    if (o.cred_text) {
        volatile char *p = o.cred_text;
        for (size_t i = 0; i < o.cred_len; i++)
            p[i] = 0;
        free(o.cred_text);
    }
    return rc;
}
