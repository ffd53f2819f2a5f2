/* mhd_floor: the transport floor for pdwebhook serve's benchmark. A bare libmicrohttpd
 * server that reads each request's body and answers 200 with a small JSON body. Two
 * threadings, both measured by bench/http.sh (the faster one is the floor):
 *   default           a thread per connection, poll (pdwebhook serve --sync / --redis)
 *   --epoll-threads N an epoll thread pool of N threads (pdwebhook serve's default,
 *                     N = its --threads)
 *
 *   mhd_floor [--listen-port PORT] [--epoll-threads N]
 *
 * Prints "listening on http://127.0.0.1:PORT/" and serves until SIGINT/SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req {
    size_t len;
} req;

static const char ok[] = "{\"ok\":true}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        volatile char sink = upload_data[*upload_size - 1]; /* touch the body */
        (void)sink;
        r->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof ok - 1, (void *)(size_t)ok, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    unsigned port = 8091, pool = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen-port") == 0)
            port = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--epoll-threads") == 0)
            pool = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = pool ? MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
                          : MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_POLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, done,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_THREAD_POOL_SIZE, pool ? pool : 1u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_floor: cannot start on port %u\n", port);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u/ (%s)\n", port,
           pool ? "epoll thread pool" : "thread per connection");
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    return 0;
}
