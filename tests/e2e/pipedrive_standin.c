/* pipedrive_standin: a small local STAND-IN for Pipedrive's webhook management API, used
 * only by pdwebhook's tests (tests/e2e/test_subscriptions.sh). It is not Pipedrive and
 * must never be presented as it.
 *
 *   pipedrive_standin [--port P] [--token T] [--oauth-token T] [--user-id N]
 *                     [--limit N] [--seed-foreign]
 *
 * Binds 127.0.0.1:P (0 = a free port), prints "listening on http://127.0.0.1:PORT/" as its
 * first stdout line, then one line per request: "METHOD PATH STATUS". Serves the three
 * documented endpoints under any prefix ending in /v1 (so a base URL of
 * http://127.0.0.1:PORT/api/v1 works):
 *
 *   GET    .../v1/webhooks        200 {"success":true,"data":[webhook...]}
 *   POST   .../v1/webhooks        201 {"success":true,"data":webhook}
 *   DELETE .../v1/webhooks/{id}   200 {"success":true,"status":"ok"}
 *
 * with the request and response shapes of Pipedrive's OpenAPI document (the webhook object:
 * id, company_id, owner_id, user_id, event_action, event_object, subscription_url, version,
 * is_active, add_time, remove_time, type, http_auth_user, http_auth_password,
 * additional_data, remove_reason, last_delivery_time, last_http_status, admin_id, name) and
 * its error bodies: 401 without the right x-api-token / Bearer token; 400 with
 * {"errors":{"subscription_url":["invalid or non-reachable URL"]}} for a URL that is not
 * http(s):// or whose host ends in .invalid (playing "not reachable"), and for a missing
 * field or an action/object the version does not have; 404
 * for an unknown id; 403 when deleting a webhook owned by another user (--seed-foreign
 * pre-seeds one: id 1, owner 999). The 40-per-user limit is enforced with a 400 whose
 * wording ("Webhooks limit reached") is this stand-in's guess: Pipedrive does not document
 * it. State lives in memory and dies with the process. Exits on SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <pdwebhook/pipedrive.h> /* the protocol's numbers (macros only) */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

#define MAX_BODY (1024u * 1024u)

/* Only the single polling thread touches the state: no locking needed. */
static json_t *hooks; /* array of webhook objects */
static long long next_id = 1;
static long long token_user = 100;
static long limit_per_user = PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER;
static const char *api_token = "standin-token";
static const char *oauth_token;

typedef struct {
    char *body;
    size_t len;
    int too_large;
} request;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pipedrive_standin [--port P] [--token T] [--oauth-token T] [--user-id N]\n"
            "                         [--limit N] [--seed-foreign]\n"
            "\n"
            "A local STAND-IN for Pipedrive's webhook management API (GET/POST /v1/webhooks,\n"
            "DELETE /v1/webhooks/{id}), for pdwebhook's tests only. It is not Pipedrive.\n"
            "  --port P         127.0.0.1 port (default 0: any free port)\n"
            "  --token T        the API token it accepts as x-api-token (default standin-token)\n"
            "  --oauth-token T  also accept Authorization: Bearer T\n"
            "  --user-id N      the user the token belongs to (default 100)\n"
            "  --limit N        webhooks per user (default 40, as Pipedrive)\n"
            "  --seed-foreign   start with webhook 1 owned by user 999 (deleting it is 403)\n");
}

static void now_text(char *out, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static json_t *new_hook(long long owner, long long user, const char *action, const char *object,
                        const char *url, const char *version, const char *auth_user,
                        const char *auth_password, const char *name)
{
    char now[32];
    now_text(now, sizeof now);
    json_t *w = json_object();
    json_object_set_new(w, "id", json_integer(next_id++));
    json_object_set_new(w, "company_id", json_integer(1));
    json_object_set_new(w, "owner_id", json_integer(owner));
    json_object_set_new(w, "user_id", json_integer(user));
    json_object_set_new(w, "event_action", json_string(action));
    json_object_set_new(w, "event_object", json_string(object));
    json_object_set_new(w, "subscription_url", json_string(url));
    json_object_set_new(w, "version", json_string(version));
    json_object_set_new(w, "is_active", json_integer(1));
    json_object_set_new(w, "add_time", json_string(now));
    json_object_set_new(w, "remove_time", json_null());
    json_object_set_new(w, "type", json_string("general"));
    json_object_set_new(w, "http_auth_user", auth_user ? json_string(auth_user) : json_null());
    json_object_set_new(w, "http_auth_password",
                        auth_password ? json_string(auth_password) : json_null());
    json_object_set_new(w, "additional_data", json_array());
    json_object_set_new(w, "remove_reason", json_null());
    json_object_set_new(w, "last_delivery_time", json_null());
    json_object_set_new(w, "last_http_status", json_null());
    json_object_set_new(w, "admin_id", json_integer(owner));
    json_object_set_new(w, "name", name ? json_string(name) : json_null());
    return w;
}

static mhd_result send_json(struct MHD_Connection *c, const char *method, const char *url,
                            unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    mhd_result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    printf("%s %s %u\n", method, url, status);
    fflush(stdout);
    return ret;
}

/* {"success":false,"error":E,"errorCode":S,"error_info":...} (401/403/404) */
static mhd_result send_error(struct MHD_Connection *c, const char *method, const char *url,
                             unsigned status, const char *error)
{
    json_t *j = json_object();
    json_object_set_new(j, "success", json_false());
    json_object_set_new(j, "error", json_string(error));
    json_object_set_new(j, "errorCode", json_integer(status));
    json_object_set_new(j, "error_info", json_string("Please check developers.pipedrive.com"));
    return send_json(c, method, url, status, j);
}

/* 400 {"success":false,"errors":{field:[message]}} (the validation shape) */
static mhd_result send_invalid(struct MHD_Connection *c, const char *method, const char *url,
                               const char *field, const char *message, const char *error)
{
    json_t *j = json_object(), *errors = json_object(), *list = json_array();
    json_array_append_new(list, json_string(message));
    json_object_set_new(errors, field, list);
    json_object_set_new(j, "success", json_false());
    if (error)
        json_object_set_new(j, "error", json_string(error));
    json_object_set_new(j, "errors", errors);
    return send_json(c, method, url, 400, j);
}

static int authorized(struct MHD_Connection *c)
{
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-token");
    if (t && strcmp(t, api_token) == 0)
        return 1;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return oauth_token && a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, oauth_token) == 0;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

/* Pipedrive checks that the URL is reachable; the stand-in plays "not reachable" for
 * hosts under .invalid (RFC 2606), so that the test can see that 400. */
static int unreachable(const char *surl)
{
    const char *h = strstr(surl, "://") + 3;
    size_t n = strcspn(h, ":/?#");
    return n >= 8 && strncmp(h + n - 8, ".invalid", 8) == 0;
}

static mhd_result do_create(struct MHD_Connection *c, const char *method, const char *url,
                            const request *r)
{
    json_error_t jerr;
    json_t *in = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
    if (!json_is_object(in)) {
        json_decref(in);
        return send_invalid(c, method, url, "body", "expected a JSON object", NULL);
    }
    const char *surl = json_string_value(json_object_get(in, "subscription_url"));
    const char *action = json_string_value(json_object_get(in, "event_action"));
    const char *object = json_string_value(json_object_get(in, "event_object"));
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *version = json_string_value(json_object_get(in, "version"));
    const char *au = json_string_value(json_object_get(in, "http_auth_user"));
    const char *ap = json_string_value(json_object_get(in, "http_auth_password"));
    json_t *uid = json_object_get(in, "user_id");
    long long user = json_is_integer(uid) ? (long long)json_integer_value(uid) : token_user;
    static const char *const v1_actions[] = { "added", "updated", "merged", "deleted", "*", NULL };
    static const char *const v2_actions[] = { "create", "change", "delete", "*", NULL };
    static const char *const v1_objects[] = { "activity", "activityType", "deal", "note",
                                              "organization", "person", "pipeline", "product",
                                              "stage", "user", "*", NULL };
    static const char *const v2_objects[] = { "activity", "deal", "lead", "note", "organization",
                                              "person", "pipeline", "product", "stage", "user",
                                              "deal_product", "deal_installment", "project",
                                              "task", "board", "phase", "*", NULL };
    mhd_result ret;
    if (!version)
        version = "2.0";
    int v1 = strcmp(version, "1.0") == 0;
    if (!surl || (strncmp(surl, "https://", 8) != 0 && strncmp(surl, "http://", 7) != 0) ||
        unreachable(surl))
        ret = send_invalid(c, method, url, "subscription_url", "invalid or non-reachable URL",
                           NULL);
    else if (!name || !*name)
        ret = send_invalid(c, method, url, "name", "required", NULL);
    else if (!v1 && strcmp(version, "2.0") != 0)
        ret = send_invalid(c, method, url, "version", "must be 1.0 or 2.0", NULL);
    else if (!action || !one_of(action, v1 ? v1_actions : v2_actions))
        ret = send_invalid(c, method, url, "event_action", "invalid value", NULL);
    else if (!object || !one_of(object, v1 ? v1_objects : v2_objects))
        ret = send_invalid(c, method, url, "event_object", "invalid value", NULL);
    else if (!au != !ap)
        ret = send_invalid(c, method, url, "http_auth_password", "required with http_auth_user",
                           NULL);
    else {
        long have = 0;
        size_t i;
        json_t *w;
        json_array_foreach(hooks, i, w) {
            if (json_integer_value(json_object_get(w, "user_id")) == user)
                have++;
        }
        if (have >= limit_per_user) {
            ret = send_invalid(c, method, url, "user_id",
                               "the user has reached the maximum number of webhooks",
                               "Webhooks limit reached");
        } else {
            w = new_hook(token_user, user, action, object, surl, version, au, ap, name);
            json_array_append(hooks, w);
            json_t *out = json_object();
            json_object_set_new(out, "success", json_true());
            json_object_set_new(out, "data", w);
            ret = send_json(c, method, url, 201, out);
        }
    }
    json_decref(in);
    return ret;
}

static mhd_result do_delete(struct MHD_Connection *c, const char *method, const char *url,
                            const char *id_text)
{
    char *end;
    errno = 0;
    long long id = strtoll(id_text, &end, 10);
    if (errno || end == id_text || *end)
        return send_error(c, method, url, 404, "Webhook not found");
    size_t i;
    json_t *w;
    json_array_foreach(hooks, i, w) {
        if (json_integer_value(json_object_get(w, "id")) != id)
            continue;
        if (json_integer_value(json_object_get(w, "owner_id")) != token_user)
            return send_error(c, method, url, 403,
                              "You do not have permission to delete this webhook");
        json_array_remove(hooks, i);
        json_t *out = json_object();
        json_object_set_new(out, "success", json_true());
        json_object_set_new(out, "status", json_string("ok"));
        return send_json(c, method, url, 200, out);
    }
    return send_error(c, method, url, 404, "Webhook not found");
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->len + *upload_size > MAX_BODY) {
            r->too_large = 1;
        } else {
            char *nb = realloc(r->body, r->len + *upload_size);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            memcpy(r->body + r->len, upload_data, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const char *p = strstr(url, "/v1/webhooks");
    if (!p)
        return send_error(c, method, url, 404, "Unknown path");
    const char *rest = p + strlen("/v1/webhooks");
    if (!authorized(c))
        return send_error(c, method, url, 401, "unauthorized access");
    if (r->too_large)
        return send_invalid(c, method, url, "body", "too large", NULL);
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(method, "GET") == 0) {
            json_t *out = json_object();
            json_object_set_new(out, "success", json_true());
            json_object_set_new(out, "data", json_deep_copy(hooks));
            return send_json(c, method, url, 200, out);
        }
        if (strcmp(method, "POST") == 0)
            return do_create(c, method, url, r);
    } else if (rest[0] == '/' && strcmp(method, "DELETE") == 0) {
        return do_delete(c, method, url, rest + 1);
    }
    return send_error(c, method, url, 404, "Unknown method or path");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long long port = 0, n;
    int seed_foreign = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && parse_num(v, 0, 65535, &port) == 0) {
            i++;
        } else if (strcmp(a, "--token") == 0 && v) {
            api_token = v;
            i++;
        } else if (strcmp(a, "--oauth-token") == 0 && v) {
            oauth_token = v;
            i++;
        } else if (strcmp(a, "--user-id") == 0 && parse_num(v, 1, 1LL << 53, &token_user) == 0) {
            i++;
        } else if (strcmp(a, "--limit") == 0 && parse_num(v, 0, 100000, &n) == 0) {
            limit_per_user = (long)n;
            i++;
        } else if (strcmp(a, "--seed-foreign") == 0) {
            seed_foreign = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    hooks = json_array();
    if (seed_foreign) {
        json_t *w = new_hook(999, 999, "*", "*", "https://foreign.example/hook", "1.0", NULL,
                             NULL, "someone else's");
        json_object_set_new(w, "last_delivery_time", json_string("2024-09-27 14:35:00"));
        json_object_set_new(w, "last_http_status", json_integer(200));
        json_array_append_new(hooks, w);
    }

    /* the daemon's thread inherits the mask: SIGTERM/SIGINT reach only sigwait below */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "pipedrive_standin: cannot listen on 127.0.0.1:%lld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "pipedrive_standin: cannot read the bound port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u/\n", (unsigned)ntohs(bound.sin_port));
    fflush(stdout);
    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    json_decref(hooks);
    return 0;
}
