/* evhttp.c: pdwebhook behind libevent's evhttp.
 *
 *   PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD=s3cret ./pdwebhook-example-evhttp --port 8080
 *
 * evhttp reads the whole request, body included, before it calls the request callback,
 * and libevent 2.1 has no server-side hook between headers and body. So the size limit is
 * given to evhttp itself (evhttp_set_max_body_size): a body whose Content-Length is over
 * it is refused with 413 before it is read, and a chunked one as soon as it grows past it.
 * Everything else (method, media type, credentials, JSON, dedup) is decided by
 * pdw_receiver_handle() in the callback, from evhttp's header list and input evbuffer.
 *
 * With --spool DIR (durable): the request goes to pdw_intake_submit(), and its answer
 * comes back through a callback, on the intake's committer thread once the delivery is
 * on disk (or inside submit when it needs no flush). evhttp is single-threaded, so the
 * callback only writes the request's address into a pipe; the event loop reads it and
 * sends the reply. Handlers run after the answer. */
#define _POSIX_C_SOURCE 200809L

#include "example.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "UNKNOWN";
    }
}

/* The receiver, or in the durable mode the intake and the pipe its answers come back by. */
typedef struct app {
    pdw_receiver *rcv;
    pdw_intake *intake;
    int answers[2]; /* [1] written by the intake's callback, [0] read by the event loop */
} app;

/* Durable: a request waiting for its answer (the body copied: the intake reads it until
 * its callback). */
typedef struct waiting {
    struct evhttp_request *r;
    app *a;
    char *body;
    pdw_verdict v;
} waiting;

static void send_verdict(struct evhttp_request *r, const pdw_verdict *v)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r);
    for (size_t k = 0; k < v->num_headers; k++)
        evhttp_add_header(out, v->headers[k].name, v->headers[k].value);
    evhttp_add_header(out, "Content-Type", v->content_type);
    struct evbuffer *reply = evbuffer_new();
    if (reply)
        evbuffer_add_reference(reply, v->body, v->body_len, NULL, NULL); /* static: no copy */
    evhttp_send_reply(r, v->status, example_reason_phrase(v->status), reply);
    if (reply)
        evbuffer_free(reply);
}

/* Durable, any thread: the answer is final; hand it to the event loop. */
static void on_done(pdw_verdict *v, void *user)
{
    (void)v; /* w->v */
    waiting *w = user;
    /* a pipe write of a pointer is atomic; it fails only when the loop is gone */
    if (write(w->a->answers[1], &w, sizeof w) != (ssize_t)sizeof w)
        fprintf(stderr, "an answer could not be handed to the event loop\n");
}

/* Durable, on the event loop: send the answers that came back. */
static void on_answers(evutil_socket_t fd, short events, void *arg)
{
    (void)events;
    (void)arg;
    waiting *w;
    while (read(fd, &w, sizeof w) == (ssize_t)sizeof w) {
        send_verdict(w->r, &w->v);
        free(w->body);
        free(w);
    }
}

static void on_request(struct evhttp_request *r, void *arg)
{
    app *a = arg;

    /* The headers: evhttp keeps them in a TAILQ of key/value strings. */
    struct evkeyvalq *in = evhttp_request_get_input_headers(r);
    size_t n = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    pdw_header *headers = n ? calloc(n, sizeof *headers) : NULL;
    if (n && !headers) {
        evhttp_send_error(r, 500, NULL);
        return;
    }
    size_t i = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next, i++) {
        headers[i].name = kv->key;
        headers[i].name_len = strlen(kv->key);
        headers[i].value = kv->value;
        headers[i].value_len = strlen(kv->value);
    }

    /* The body: make the evbuffer contiguous (it is at most the limit, see main). */
    struct evbuffer *body = evhttp_request_get_input_buffer(r);
    size_t body_len = evbuffer_get_length(body);
    const char *body_bytes = body_len ? (const char *)evbuffer_pullup(body, -1) : "";
    if (!body_bytes) {
        free(headers);
        evhttp_send_error(r, 503, NULL); /* out of memory: Pipedrive retries */
        return;
    }

    const char *method = method_name(evhttp_request_get_command(r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;

    pdw_request req = PDW_REQUEST_INIT;
    req.method = method;
    req.method_len = strlen(method);
    req.headers = headers;
    req.num_headers = n;
    req.query = query;
    req.query_len = query ? strlen(query) : 0;
    req.body = body_bytes;
    req.body_len = body_len;

    if (a->intake) {
        /* Durable: the answer comes back through on_done() and the pipe. */
        waiting *w = calloc(1, sizeof *w);
        if (!w || !(w->body = malloc(body_len ? body_len : 1))) {
            free(w);
            free(headers);
            evhttp_send_error(r, 503, NULL); /* out of memory: Pipedrive retries */
            return;
        }
        memcpy(w->body, body_bytes, body_len);
        w->r = r;
        w->a = a;
        pdw_verdict init = PDW_VERDICT_INIT;
        w->v = init;
        req.body = w->body;
        pdw_intake_submit(a->intake, &req, &w->v, on_done, w);
        free(headers);
        return;
    }

    /* Run the pipeline (handlers run here, on the event loop), then answer. */
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_receiver_handle(a->rcv, &req, &v, NULL);
    free(headers);
    send_verdict(r, &v);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)sig;
    (void)events;
    event_base_loopbreak(arg); /* leave event_base_dispatch() */
}

int main(int argc, char **argv)
{
    uint16_t port;
    const char *spool;
    if (example_parse_args(argc, argv, &port, &spool) != 0)
        return 2;
    app a = { NULL, NULL, { -1, -1 } };
    if (spool)
        a.intake = example_intake_new(spool);
    else
        a.rcv = example_receiver_new(stdout, NULL);
    if (!a.rcv && !a.intake)
        return 1;

    int rc = 1;
    struct event *answers = NULL;
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct event *sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    struct event *sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    if (!http || !sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL)) {
        fprintf(stderr, "libevent setup failed\n");
        goto done;
    }
    if (a.intake && (pipe(a.answers) != 0 || evutil_make_socket_nonblocking(a.answers[0]) != 0 ||
                     !(answers = event_new(base, a.answers[0], EV_READ | EV_PERSIST, on_answers,
                                           NULL)) ||
                     event_add(answers, NULL) != 0)) {
        fprintf(stderr, "cannot set up the answer pipe\n");
        goto done;
    }

    /* Same limit as the receiver: evhttp refuses a bigger body with 413 without reading
     * it; LINGERING_CLOSE drains what the client already sent, so that it sees the 413
     * rather than a reset connection. */
    evhttp_set_max_body_size(http, (ev_ssize_t)EXAMPLE_MAX_BODY);
    evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(http, 10); /* Pipedrive gives up after 10 s */
    evhttp_set_gencb(http, on_request, &a);

    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", port);
    if (!sock) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%u\n", (unsigned)port);
        goto done;
    }
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port); /* the port the system picked for --port 0 */
    example_listening(port);

    event_base_dispatch(base);
    rc = 0;
    if (a.intake) {
        pdw_intake_stop(a.intake);       /* every waiting request gets its answer... */
        event_base_loop(base, EVLOOP_NONBLOCK); /* ...sent from the pipe */
    }

done:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (http)
        evhttp_free(http);
    if (answers)
        event_free(answers);
    if (base)
        event_base_free(base);
    example_intake_free(a.intake);
    pdw_receiver_free(a.rcv);
    if (a.answers[0] >= 0) {
        close(a.answers[0]);
        close(a.answers[1]);
    }
    return rc;
}
