/* pipedrive_data_standin: a small local STAND-IN for the parts of Pipedrive's data API
 * that reconciliation reads, used only by pdwebhook's tests (tests/e2e/test_reconcile.sh).
 * It is not Pipedrive and must never be presented as it; it plays the documented shapes.
 *
 *   pipedrive_data_standin --records FILE [--port P] [--token T] [--page N]
 *                          [--throttle-every N] [--retry-after S] [--delay-ms MS]
 *                          [--webhooks FILE]
 *
 * FILE is JSON, {"deal":[record...],"note":[...],...}, read again for every request (a
 * test edits it between runs). Binds 127.0.0.1:P (0: a free port), prints
 * "listening on http://127.0.0.1:PORT/" first, then one stdout line per request:
 * "GET PATH?QUERY STATUS". Endpoints (any prefix before /v1 or /api/v2):
 *
 *   GET .../v1/recents?since_timestamp=YYYY-MM-DD HH:MM:SS&items=a,b&start=&limit=
 *       {"success":true,"data":[{"item","id","data"}...],"additional_data":
 *        {"since_timestamp","last_timestamp_on_page","pagination":{"start","limit",
 *         "more_items_in_collection","next_start"}}}; records updated at or after since,
 *       oldest first
 *   GET .../api/v2/{deals,persons,organizations,activities,products}?updated_since=RFC3339
 *       &updated_until=RFC3339&limit=&cursor=   {"success":true,"data":[...],
 *       "additional_data":{"next_cursor":STRING|null}}; since inclusive, until exclusive
 *   GET .../v1/leads?sort=update_time DESC&start=&limit=   newest first, offset paging
 *
 * Auth: x-api-token or "Authorization: Bearer" equal to --token, else 401. Every Nth
 * request (--throttle-every) is answered 429 with "Retry-After: S" and Pipedrive's
 * documented error body, as its rate limiter does. --page caps a page (default 2, so
 * that tests page). --delay-ms answers every request this late (a slow API, so that a
 * test can kill a reader in the middle of a window).
 *
 * --webhooks FILE also plays the webhook management endpoints on the same port, for
 * serve --watch-subscriptions (tests/e2e/test_autoreconcile.sh): FILE is a JSON array of
 * webhook objects, read at every request and written back after a change (a test deletes
 * a webhook by DELETE or by rewriting the file, as Pipedrive deletes one after 3 days
 * without a successful delivery):
 *
 *   GET    .../v1/webhooks        {"success":true,"data":[webhook...]}
 *   POST   .../v1/webhooks        201 {"success":true,"data":webhook} (id: the highest + 1)
 *   DELETE .../v1/webhooks/{id}   {"success":true,"status":"ok"}, 404 when unknown
 *
 * pipedrive_standin.c plays the same endpoints with Pipedrive's validation; this one
 * keeps only the shapes. Exits on SIGTERM or SIGINT. */
#define _DEFAULT_SOURCE /* timegm */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

static const char *records_path;
static const char *token = "standin-token";
static long page_max = 2;
static long throttle_every;
static long retry_after = 1;
static long delay_ms;
static const char *webhooks_path;
static const char *cur_method = "GET"; /* of the request being answered (one thread) */
static atomic_long n_requests;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS[.fff]Z" to ms; -1 when neither. */
static long long parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (!s || strlen(s) < 19 ||
        sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    if (s[19] == '.')
        sscanf(s + 20, "%3d", &ms);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

static long long rec_time(json_t *rec)
{
    long long t = parse_time(json_string_value(json_object_get(rec, "update_time")));
    return t >= 0 ? t : parse_time(json_string_value(json_object_get(rec, "modified")));
}

static mhd_result send_json(struct MHD_Connection *c, const char *url, const char *query,
                            unsigned status, json_t *doc, int throttled)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return MHD_NO;
    pthread_mutex_lock(&out_lock);
    printf("%s %s?%s %u\n", cur_method, url, query, status);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (throttled) {
        char ra[24];
        snprintf(ra, sizeof ra, "%ld", retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    mhd_result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static json_t *error_doc(const char *msg)
{
    return json_pack("{s:b,s:s}", "success", 0, "error", msg);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static long num_arg(struct MHD_Connection *c, const char *name, long def)
{
    const char *v = arg(c, name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* Records of one object, filtered to [since, until) and sorted by update time. */
static json_t *select_records(json_t *all, const char *object, long long since,
                              long long until, int newest_first)
{
    json_t *out = json_array(), *rec;
    size_t i;
    json_array_foreach(json_object_get(all, object), i, rec) {
        long long t = rec_time(rec);
        if (t >= since && (until < 0 || t < until))
            json_array_append(out, rec);
    }
    /* insertion sort: the tests' sets are small */
    size_t n = json_array_size(out);
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0; b--) {
            long long x = rec_time(json_array_get(out, b - 1)), y = rec_time(json_array_get(out, b));
            if (newest_first ? x >= y : x <= y)
                break;
            json_t *tmp = json_incref(json_array_get(out, b));
            json_array_set(out, b, json_array_get(out, b - 1));
            json_array_set_new(out, b - 1, tmp);
        }
    return out;
}

static json_t *page_of(json_t *list, long start, long limit, int *more)
{
    json_t *out = json_array();
    size_t n = json_array_size(list);
    for (size_t i = (size_t)start; i < n && (long)(i - (size_t)start) < limit; i++)
        json_array_append(out, json_array_get(list, i));
    *more = (size_t)(start + limit) < n;
    return out;
}

static mhd_result do_recents(struct MHD_Connection *c, const char *url, const char *query,
                             json_t *all)
{
    const char *since_s = arg(c, "since_timestamp");
    long long since = parse_time(since_s);
    if (since < 0)
        return send_json(c, url, query, 400, error_doc("since_timestamp is required"), 0);
    const char *items = arg(c, "items");
    json_t *list = json_array();
    const char *obj;
    json_t *v;
    json_object_foreach(all, obj, v) {
        size_t ol = strlen(obj);
        int wanted = !items;
        for (const char *s = items; s && *s && !wanted;) {
            size_t k = strcspn(s, ",");
            wanted = k == ol && strncmp(s, obj, k) == 0;
            s += k + (s[k] == ',');
        }
        if (!wanted)
            continue;
        json_t *sel = select_records(all, obj, since, -1, 0), *rec;
        size_t i;
        json_array_foreach(sel, i, rec) {
            json_array_append_new(list, json_pack("{s:s,s:O,s:O}", "item", obj, "id",
                                                  json_object_get(rec, "id"), "data", rec));
        }
        json_decref(sel);
    }
    long start = num_arg(c, "start", 0), limit = num_arg(c, "limit", 100);
    if (limit > page_max)
        limit = page_max;
    int more;
    json_t *page = page_of(list, start, limit, &more);
    json_decref(list);
    json_t *pg = json_pack("{s:i,s:i,s:b}", "start", (json_int_t)start, "limit",
                           (json_int_t)limit, "more_items_in_collection", more);
    if (more)
        json_object_set_new(pg, "next_start", json_integer(start + limit));
    json_t *ad = json_pack("{s:s,s:o}", "since_timestamp", since_s, "pagination", pg);
    return send_json(c, url, query, 200,
                     json_pack("{s:b,s:o,s:o}", "success", 1, "data", page, "additional_data",
                               ad),
                     0);
}

static mhd_result do_v2(struct MHD_Connection *c, const char *url, const char *query,
                        json_t *all, const char *object)
{
    long long since = arg(c, "updated_since") ? parse_time(arg(c, "updated_since")) : 0;
    long long until = arg(c, "updated_until") ? parse_time(arg(c, "updated_until")) : -1;
    if (since < 0)
        return send_json(c, url, query, 400, error_doc("invalid updated_since"), 0);
    json_t *list = select_records(all, object, since, until, 0);
    long start = num_arg(c, "cursor", 0), limit = num_arg(c, "limit", 100);
    if (limit > page_max)
        limit = page_max;
    int more;
    json_t *page = page_of(list, start, limit, &more);
    json_decref(list);
    char next[32];
    snprintf(next, sizeof next, "%ld", start + limit);
    json_t *ad = json_pack("{s:o}", "next_cursor", more ? json_string(next) : json_null());
    return send_json(c, url, query, 200,
                     json_pack("{s:b,s:o,s:o}", "success", 1, "data", page, "additional_data",
                               ad),
                     0);
}

static mhd_result do_leads(struct MHD_Connection *c, const char *url, const char *query,
                           json_t *all)
{
    json_t *list = select_records(all, "lead", 0, -1, 1);
    long start = num_arg(c, "start", 0), limit = num_arg(c, "limit", 100);
    if (limit > page_max)
        limit = page_max;
    int more;
    json_t *page = page_of(list, start, limit, &more);
    json_decref(list);
    json_t *pg = json_pack("{s:i,s:i,s:b}", "start", (json_int_t)start, "limit",
                           (json_int_t)limit, "more_items_in_collection", more);
    if (more)
        json_object_set_new(pg, "next_start", json_integer(start + limit));
    return send_json(c, url, query, 200,
                     json_pack("{s:b,s:o,s:{s:o}}", "success", 1, "data", page,
                               "additional_data", "pagination", pg),
                     0);
}

typedef struct req {
    char *body;
    size_t len;
} req;

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void id_of(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* The webhook endpoints (--webhooks FILE); state in the file, one request at a time. */
static mhd_result do_webhooks(struct MHD_Connection *c, const char *method, const char *url,
                              const char *rest, const req *r)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    json_t *hooks = json_load_file(webhooks_path, 0, NULL);
    if (!json_is_array(hooks)) {
        json_decref(hooks);
        hooks = json_array();
    }
    mhd_result ret;
    int changed = 0;
    if (strcmp(method, "GET") == 0 && !*rest) {
        ret = send_json(c, url, "", 200,
                        json_pack("{s:b,s:O}", "success", 1, "data", hooks), 0);
    } else if (strcmp(method, "POST") == 0 && !*rest) {
        json_t *in = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
        if (!json_is_object(in) || !json_is_string(json_object_get(in, "subscription_url")) ||
            !json_is_string(json_object_get(in, "event_action")) ||
            !json_is_string(json_object_get(in, "event_object"))) {
            json_decref(in);
            ret = send_json(c, url, "", 400,
                            error_doc("subscription_url, event_action, event_object required"),
                            0);
        } else {
            json_int_t id = 99;
            size_t i;
            json_t *w;
            json_array_foreach(hooks, i, w) {
                json_int_t v = json_integer_value(json_object_get(w, "id"));
                id = v > id ? v : id;
            }
            json_object_set_new(in, "id", json_integer(id + 1));
            if (!json_object_get(in, "version"))
                json_object_set_new(in, "version", json_string("2.0"));
            json_object_set_new(in, "is_active", json_integer(1));
            json_object_set_new(in, "last_delivery_time", json_null());
            json_array_append(hooks, in);
            changed = 1;
            ret = send_json(c, url, "", 201,
                            json_pack("{s:b,s:o}", "success", 1, "data", in), 0);
        }
    } else if (strcmp(method, "DELETE") == 0 && rest[0] == '/') {
        size_t i, found = (size_t)-1;
        json_t *w;
        json_array_foreach(hooks, i, w) {
            char id[64];
            id_of(json_object_get(w, "id"), id, sizeof id);
            if (strcmp(id, rest + 1) == 0)
                found = i;
        }
        if (found != (size_t)-1) {
            json_array_remove(hooks, found);
            changed = 1;
            ret = send_json(c, url, "", 200,
                            json_pack("{s:b,s:s}", "success", 1, "status", "ok"), 0);
        } else {
            ret = send_json(c, url, "", 404, error_doc("Webhook not found"), 0);
        }
    } else {
        ret = send_json(c, url, "", 404, error_doc("Unknown method or path"), 0);
    }
    if (changed) { /* written whole, then renamed: a test reading it sees one or the other */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", webhooks_path);
        if (json_dump_file(hooks, tmp, JSON_INDENT(1)) == 0)
            rename(tmp, webhooks_path);
    }
    json_decref(hooks);
    pthread_mutex_unlock(&lock);
    return ret;
}

static mhd_result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char *q = cls;
    size_t n = strlen(q);
    snprintf(q + n, 2048 - n, "%s%s=%s", n ? "&" : "", key, value ? value : "");
    return MHD_YES;
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version;
    req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        *con_cls = rq;
        return rq ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = rq->len + *upload_size < (1u << 20) ? realloc(rq->body, rq->len + *upload_size)
                                                       : NULL;
        if (!nb)
            return MHD_NO;
        memcpy(nb + rq->len, upload_data, *upload_size);
        rq->body = nb;
        rq->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    cur_method = method;
    if (delay_ms > 0) {
        struct timespec d = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
        nanosleep(&d, NULL);
    }
    char query[2048] = "";
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_query, query);
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-token");
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int ok = (t && strcmp(t, token) == 0) ||
             (a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, token) == 0);
    if (!ok)
        return send_json(c, url, query, 401, error_doc("unauthorized access"), 0);
    long n = atomic_fetch_add(&n_requests, 1) + 1;
    if (throttle_every > 0 && n % throttle_every == 0)
        return send_json(c, url, query, 429, error_doc("Request over limit"), 1);
    const char *wh = strstr(url, "/v1/webhooks");
    if (webhooks_path && wh)
        return do_webhooks(c, method, url, wh + 12, rq);
    if (strcmp(method, "GET") != 0)
        return send_json(c, url, query, 404, error_doc("Unknown method"), 0);
    json_t *all = json_load_file(records_path, 0, NULL);
    if (!all)
        return send_json(c, url, query, 500, error_doc("cannot read the records file"), 0);
    static const char *const v2[][2] = { { "deals", "deal" },
                                         { "persons", "person" },
                                         { "organizations", "organization" },
                                         { "activities", "activity" },
                                         { "products", "product" } };
    mhd_result ret;
    const char *p;
    if ((p = strstr(url, "/v1/recents")) && p[11] == '\0') {
        ret = do_recents(c, url, query, all);
    } else if ((p = strstr(url, "/v1/leads")) && p[9] == '\0') {
        ret = do_leads(c, url, query, all);
    } else if ((p = strstr(url, "/api/v2/"))) {
        const char *obj = NULL;
        for (size_t i = 0; i < sizeof v2 / sizeof v2[0]; i++)
            if (strcmp(p + 8, v2[i][0]) == 0)
                obj = v2[i][1];
        ret = obj ? do_v2(c, url, query, all, obj)
                  : send_json(c, url, query, 404, error_doc("Unknown path"), 0);
    } else {
        ret = send_json(c, url, query, 404, error_doc("Unknown path"), 0);
    }
    json_decref(all);
    return ret;
}

int main(int argc, char **argv)
{
    long port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "--records") == 0)
            records_path = v;
        else if (strcmp(o, "--port") == 0)
            port = strtol(v, NULL, 10);
        else if (strcmp(o, "--token") == 0)
            token = v;
        else if (strcmp(o, "--page") == 0)
            page_max = strtol(v, NULL, 10);
        else if (strcmp(o, "--throttle-every") == 0)
            throttle_every = strtol(v, NULL, 10);
        else if (strcmp(o, "--retry-after") == 0)
            retry_after = strtol(v, NULL, 10);
        else if (strcmp(o, "--delay-ms") == 0)
            delay_ms = strtol(v, NULL, 10);
        else if (strcmp(o, "--webhooks") == 0)
            webhooks_path = v;
        else {
            fprintf(stderr, "pipedrive_data_standin: unknown option %s\n", o);
            return 2;
        }
    }
    if (!records_path || page_max < 1 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: pipedrive_data_standin --records FILE [--port P] [--token T] "
                        "[--page N] [--throttle-every N] [--retry-after S]\n"
                        "       [--delay-ms MS] [--webhooks FILE]\n");
        return 2;
    }
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
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            on_request, NULL, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&addr,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "pipedrive_data_standin: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        MHD_stop_daemon(d);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u/\n", (unsigned)ntohs(bound.sin_port));
    fflush(stdout);
    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    return 0;
}
