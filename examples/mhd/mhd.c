/* mhd.c: pdwebhook behind libmicrohttpd.
 *
 *   PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD=s3cret ./pdwebhook-example-mhd --port 8080
 *
 * libmicrohttpd calls the access handler several times per request: once when the headers
 * are in (no body yet), once per piece of body, and once more with no data at the end.
 * That first call is where pdw_receiver_check_head() refuses a request (wrong method,
 * media type, credentials, or a Content-Length over the limit) before a byte of the body
 * is read. The last call runs pdw_receiver_handle() and queues the verdict.
 *
 * With --spool DIR (durable): the first call is pdw_intake_begin(), the last one hands the
 * body to pdw_intake_finish(). A delivery that waits for its journal flush is suspended
 * (MHD_suspend_connection) and resumed by the intake's callback, which runs on another
 * thread and may come before finish has returned: the two exchange an atomic state, and
 * whichever comes second resumes the connection. Handlers run after the answer. */
#define _POSIX_C_SOURCE 200809L

#include "example.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The receiver, or in the durable mode the intake. */
typedef struct app {
    pdw_receiver *rcv;
    pdw_intake *intake;
} app;

/* One request in progress: the raw query and the body read so far; in the durable mode,
 * its place in the intake. */
typedef struct request_ctx {
    char *query;     /* the raw query string (without '?'), or NULL */
    int head_done;   /* the first call (headers only) is over */
    char *body;
    size_t len, cap; /* the body stops growing at EXAMPLE_MAX_BODY + 1 bytes */
    struct MHD_Connection *conn;
    pdw_intake_pending *pending; /* durable: the head passed */
    int submitted;               /* durable: the body went to the intake */
    pdw_verdict v;               /* durable: the answer, final once `state` is DONE */
    atomic_int state;            /* RUNNING, DONE (callback ran), PARKED (suspended) */
} request_ctx;

enum { RUNNING, DONE, PARKED };

/* MHD hands the access handler a URL without its query and only decoded arguments; the
 * URI log callback sees the raw URI first, so keep the query (for `?token=...` receivers)
 * here. Its return value becomes the request's context. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    request_ctx *ctx = calloc(1, sizeof *ctx);
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (ctx && q)
        ctx->query = strdup(q + 1);
    if (ctx)
        ctx->conn = conn;
    return ctx;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_ctx *ctx = *con_cls;
    if (ctx) {
        pdw_intake_pending_free(ctx->pending); /* the body never came */
        free(ctx->query);
        free(ctx->body);
        free(ctx);
    }
    *con_cls = NULL;
}

/* The request headers as pdw_header spans. MHD keeps the strings for the whole request. */
typedef struct header_list {
    pdw_header *items;
    size_t n, cap;
} header_list;

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                               size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    header_list *h = cls;
    if (h->n < h->cap) {
        pdw_header *x = &h->items[h->n++];
        x->name = key;
        x->name_len = key_size;
        x->value = value ? value : "";
        x->value_len = value ? value_size : 0;
    }
    return MHD_YES;
}

/* Send the verdict: status, its headers (WWW-Authenticate, Allow, Retry-After), the
 * content type and the small JSON body (static, so MHD need not copy it). */
static enum MHD_Result send_verdict(struct MHD_Connection *conn, const pdw_verdict *v)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(v->body_len, (void *)v->body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < v->num_headers; i++)
        MHD_add_response_header(resp, v->headers[i].name, v->headers[i].value);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, v->content_type);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)v->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Fill @p req from what MHD parsed. The header array is allocated (free it); MHD keeps
 * the strings themselves for the whole request. */
static int build_request(struct MHD_Connection *conn, const char *method,
                         const request_ctx *ctx, pdw_request *req, pdw_header **headers)
{
    int count = MHD_get_connection_values_n(conn, MHD_HEADER_KIND, NULL, NULL);
    header_list h = { NULL, 0, count > 0 ? (size_t)count : 0 };
    if (h.cap && !(h.items = calloc(h.cap, sizeof *h.items)))
        return -1;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, add_header, &h);
    req->method = method;
    req->method_len = strlen(method);
    req->headers = h.items;
    req->num_headers = h.n;
    req->query = ctx->query;
    req->query_len = ctx->query ? strlen(ctx->query) : 0;
    *headers = h.items;
    return 0;
}

/* Durable: the intake's answer is final (on its committer thread, or inside finish). */
static void on_done(pdw_verdict *v, void *user)
{
    (void)v; /* ctx->v */
    request_ctx *ctx = user;
    struct MHD_Connection *conn = ctx->conn;
    if (atomic_exchange(&ctx->state, DONE) == PARKED)
        MHD_resume_connection(conn); /* MHD calls on_request again: it sends ctx->v */
}

/* Durable: hand the body over; suspend the connection if the answer waits for a flush. */
static enum MHD_Result submit(struct MHD_Connection *conn, request_ctx *ctx)
{
    pdw_intake_pending *p = ctx->pending;
    ctx->pending = NULL; /* finish takes it over */
    ctx->submitted = 1;
    pdw_verdict init = PDW_VERDICT_INIT;
    ctx->v = init;
    int rc = pdw_intake_finish(p, ctx->body ? ctx->body : "", ctx->len, &ctx->v, on_done, ctx);
    if (rc < 0)
        return MHD_NO;
    if (rc == PDW_INTAKE_PENDING) {
        MHD_suspend_connection(conn);
        if (atomic_exchange(&ctx->state, PARKED) == DONE)
            MHD_resume_connection(conn); /* the callback came first */
        return MHD_YES;
    }
    return send_verdict(conn, &ctx->v); /* answered inside finish */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url;
    (void)version;
    app *a = cls;
    request_ctx *ctx = *con_cls;
    if (!ctx)
        return MHD_NO; /* out of memory in uri_log: drop the connection */
    if (ctx->submitted) /* durable, resumed: the answer is final */
        return send_verdict(conn, &ctx->v);

    if (*upload_data_size > 0) {
        /* A piece of body: keep up to the limit plus one byte, enough for the receiver to
         * answer 413 to a body sent without Content-Length (chunked). */
        size_t take = *upload_data_size;
        if (take > EXAMPLE_MAX_BODY + 1 - ctx->len)
            take = EXAMPLE_MAX_BODY + 1 - ctx->len;
        if (ctx->len + take > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap : 16384;
            while (cap < ctx->len + take)
                cap *= 2;
            char *nb = realloc(ctx->body, cap);
            if (!nb)
                return MHD_NO;
            ctx->body = nb;
            ctx->cap = cap;
        }
        if (take)
            memcpy(ctx->body + ctx->len, upload_data, take);
        ctx->len += take;
        *upload_data_size = 0; /* consumed (what was over the limit is dropped) */
        return MHD_YES;
    }

    pdw_request req = PDW_REQUEST_INIT;
    pdw_header *headers = NULL;
    if (build_request(conn, method, ctx, &req, &headers) != 0)
        return MHD_NO;
    pdw_verdict v = PDW_VERDICT_INIT;
    enum MHD_Result ret = MHD_YES;
    if (!ctx->head_done) {
        /* First call: headers only. Refuse now, and MHD never reads the body (nor sends
         * "100 Continue" to a client that asked for it). */
        ctx->head_done = 1;
        int rc = a->intake ? pdw_intake_begin(&ctx->pending, a->intake, &req, &v)
                           : pdw_receiver_check_head(a->rcv, &req, &v);
        if (rc != 0)
            ret = send_verdict(conn, &v);
    } else if (a->intake) {
        ret = ctx->pending ? submit(conn, ctx) : MHD_NO;
    } else {
        /* Last call: the whole body is in. Run the pipeline; handlers run right here. */
        req.body = ctx->body ? ctx->body : "";
        req.body_len = ctx->len;
        pdw_receiver_handle(a->rcv, &req, &v, NULL);
        ret = send_verdict(conn, &v);
    }
    free(headers);
    return ret;
}

int main(int argc, char **argv)
{
    uint16_t port;
    const char *spool;
    if (example_parse_args(argc, argv, &port, &spool) != 0)
        return 2;
    app a = { NULL, NULL };
    if (spool)
        a.intake = example_intake_new(spool);
    else
        a.rcv = example_receiver_new(stdout, NULL);
    if (!a.rcv && !a.intake)
        return 1;

    /* Block SIGINT/SIGTERM before MHD starts its thread (which inherits the mask), so that
     * only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */

    /* One internal thread polls and runs the handler; the receiver would also allow a
     * thread per connection (MHD_USE_THREAD_PER_CONNECTION): it is thread-safe. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (a.intake)
        flags |= MHD_ALLOW_SUSPEND_RESUME; /* requests wait for their flush suspended */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, &a,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, /* Pipedrive gives up after 10 s */
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%u\n", (unsigned)port);
        example_intake_free(a.intake);
        pdw_receiver_free(a.rcv);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    example_listening(info ? info->port : port);

    int sig = 0;
    sigwait(&stop, &sig);
    pdw_intake_stop(a.intake); /* answers (resumes) every request waiting for a flush */
    MHD_stop_daemon(d);        /* waits for the request in progress */
    example_intake_free(a.intake);
    pdw_receiver_free(a.rcv);
    return 0;
}
