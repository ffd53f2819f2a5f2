/* civetweb.c: pdwebhook behind CivetWeb.
 *
 *   PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD=s3cret ./pdwebhook-example-civetweb --port 8080
 *
 * CivetWeb calls a request handler as soon as the headers are parsed, on one of its
 * worker threads, and leaves reading the body to the handler (mg_read). So the handler
 * first runs pdw_receiver_check_head() on the headers and refuses without reading; only
 * then does it read the body, up to the limit plus one byte, and run pdw_receiver_handle().
 * The receiver is thread-safe, so all workers share one.
 *
 * With --spool DIR (durable): pdw_intake_begin() checks the head, pdw_intake_finish()
 * takes the body, and the worker thread waits for the intake's callback (on the intake's
 * committer thread once the delivery is on disk, or inside finish when it needs no flush)
 * before it answers. Handlers run after the answer. */
#define _POSIX_C_SOURCE 200809L

#include "example.h"

#include <civetweb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void send_verdict(struct mg_connection *conn, const pdw_verdict *v)
{
    mg_response_header_start(conn, v->status);
    for (size_t i = 0; i < v->num_headers; i++)
        mg_response_header_add(conn, v->headers[i].name, v->headers[i].value, -1);
    mg_response_header_add(conn, "Content-Type", v->content_type, -1);
    char length[24];
    snprintf(length, sizeof length, "%zu", v->body_len);
    mg_response_header_add(conn, "Content-Length", length, -1);
    mg_response_header_send(conn);
    mg_write(conn, v->body, v->body_len);
}

/* The receiver, or in the durable mode the intake. */
typedef struct app {
    pdw_receiver *rcv;
    pdw_intake *intake;
} app;

/* Durable: a worker thread waiting for its request's answer. */
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} waiter;

static void on_done(pdw_verdict *v, void *user)
{
    (void)v;
    waiter *w = user;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    app *a = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);

    /* CivetWeb's header array (at most MG_MAX_HEADERS) maps one to one onto pdw_header. */
    pdw_header headers[MG_MAX_HEADERS];
    size_t n = 0;
    for (int i = 0; i < ri->num_headers && n < MG_MAX_HEADERS; i++, n++) {
        headers[n].name = ri->http_headers[i].name;
        headers[n].name_len = strlen(ri->http_headers[i].name);
        headers[n].value = ri->http_headers[i].value ? ri->http_headers[i].value : "";
        headers[n].value_len = strlen(headers[n].value);
    }
    pdw_request req = PDW_REQUEST_INIT;
    req.method = ri->request_method;
    req.method_len = strlen(ri->request_method);
    req.headers = headers;
    req.num_headers = n;
    req.query = ri->query_string;
    req.query_len = ri->query_string ? strlen(ri->query_string) : 0;

    /* Headers only: refuse before reading a byte of the body. */
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_intake_pending *pending = NULL;
    if ((a->intake ? pdw_intake_begin(&pending, a->intake, &req, &v)
                   : pdw_receiver_check_head(a->rcv, &req, &v)) != 0) {
        send_verdict(conn, &v);
        return v.status;
    }

    /* The body. check_head() has checked a Content-Length against the limit; without one
     * (chunked), read up to the limit plus one byte, enough for the receiver to answer 413.
     * mg_read() returns 0 at the end of the body. */
    size_t cap = EXAMPLE_MAX_BODY + 1;
    if (ri->content_length >= 0 && (unsigned long long)ri->content_length < cap)
        cap = (size_t)ri->content_length;
    char *body = malloc(cap ? cap : 1);
    if (!body) {
        pdw_intake_pending_free(pending);
        mg_send_http_error(conn, 503, "%s", "out of memory");
        return 503;
    }
    size_t len = 0;
    while (len < cap) {
        int got = mg_read(conn, body + len, cap - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    if (a->intake) {
        /* durable: wait (this worker thread) until the delivery is on disk, or refused */
        waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
        if (pdw_intake_finish(pending, body, len, &v, on_done, &w) >= 0) {
            pthread_mutex_lock(&w.lock);
            while (!w.done)
                pthread_cond_wait(&w.cond, &w.lock);
            pthread_mutex_unlock(&w.lock);
        }
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.lock);
    } else {
        req.body = body;
        req.body_len = len;
        pdw_receiver_handle(a->rcv, &req, &v, NULL); /* handlers run here, on this worker */
    }
    free(body);
    send_verdict(conn, &v);
    return v.status; /* 1..999: handled; CivetWeb logs it as the status */
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

    /* Block SIGINT/SIGTERM before CivetWeb starts its threads (they inherit the mask), so
     * that only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port); /* loopback only */
    const char *options[] = {
        "listening_ports", listen,
        "num_threads", "4",
        "request_timeout_ms", "10000", /* Pipedrive gives up after 10 s */
        NULL,
    };
    mg_init_library(0);
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    struct mg_context *ctx = mg_start(&callbacks, NULL, options);
    if (!ctx) {
        fprintf(stderr, "cannot listen on %s\n", listen);
        mg_exit_library();
        example_intake_free(a.intake);
        pdw_receiver_free(a.rcv);
        return 1;
    }
    /* No document_root: only this handler answers, for every path. */
    mg_set_request_handler(ctx, "/", on_request, &a);

    struct mg_server_port ports[1];
    memset(ports, 0, sizeof ports);
    if (mg_get_server_ports(ctx, 1, ports) >= 1)
        port = (uint16_t)ports[0].port; /* the port the system picked for --port 0 */
    example_listening(port);

    int sig = 0;
    sigwait(&stop, &sig);
    pdw_intake_stop(a.intake); /* answers every worker waiting for a flush */
    mg_stop(ctx);              /* waits for the workers */
    mg_exit_library();
    example_intake_free(a.intake);
    pdw_receiver_free(a.rcv);
    return 0;
}
