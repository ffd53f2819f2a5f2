/* mhd.c: pdwebhook behind libmicrohttpd.
 *
 *   PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD=s3cret ./pdwebhook-example-mhd --port 8080
 *
 * libmicrohttpd calls the access handler several times per request: once when the headers
 * are in (no body yet), once per piece of body, and once more with no data at the end.
 * That first call is where pdw_receiver_check_head() refuses a request (wrong method,
 * media type, credentials, or a Content-Length over the limit) before a byte of the body
 * is read. The last call runs pdw_receiver_handle() and queues the verdict. */
#define _POSIX_C_SOURCE 200809L

#include "example.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* One request in progress: the raw query and the body read so far. */
typedef struct request_ctx {
    char *query;     /* the raw query string (without '?'), or NULL */
    int head_done;   /* the first call (headers only) is over */
    char *body;
    size_t len, cap; /* the body stops growing at EXAMPLE_MAX_BODY + 1 bytes */
} request_ctx;

/* MHD hands the access handler a URL without its query and only decoded arguments; the
 * URI log callback sees the raw URI first, so keep the query (for `?token=...` receivers)
 * here. Its return value becomes the request's context. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    request_ctx *ctx = calloc(1, sizeof *ctx);
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (ctx && q)
        ctx->query = strdup(q + 1);
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url;
    (void)version;
    pdw_receiver *rcv = cls;
    request_ctx *ctx = *con_cls;
    if (!ctx)
        return MHD_NO; /* out of memory in uri_log: drop the connection */

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
        if (pdw_receiver_check_head(rcv, &req, &v) != 0)
            ret = send_verdict(conn, &v);
    } else {
        /* Last call: the whole body is in. Run the pipeline; handlers run right here. */
        req.body = ctx->body ? ctx->body : "";
        req.body_len = ctx->len;
        pdw_receiver_handle(rcv, &req, &v, NULL);
        ret = send_verdict(conn, &v);
    }
    free(headers);
    return ret;
}

int main(int argc, char **argv)
{
    uint16_t port;
    if (example_parse_port(argc, argv, &port) != 0)
        return 2;
    pdw_receiver *rcv = example_receiver_new(stdout, NULL);
    if (!rcv)
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
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, rcv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, /* Pipedrive gives up after 10 s */
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%u\n", (unsigned)port);
        pdw_receiver_free(rcv);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    example_listening(info ? info->port : port);

    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d); /* waits for the request in progress */
    pdw_receiver_free(rcv);
    return 0;
}
