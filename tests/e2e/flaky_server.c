/* flaky_server: a scripted HTTP server for the end-to-end tests of `pdwebhook send`.
 *
 *   flaky_server --port P --script "500,500,200" [--delay-ms N] [--log FILE]
 *
 * Binds 127.0.0.1:P (0 = a free port) and prints "listening on http://127.0.0.1:PORT/" as
 * its first stdout line. Answers the n-th request with the n-th status of the script (the
 * last one repeats), after sleeping N ms if asked; a 3xx carries "Location: /redirected".
 * Appends one line per request to FILE, tab-separated: method, Authorization, User-Agent,
 * Content-Type ("-" when absent) and the body as received, with CR and LF turned into
 * spaces so that it stays one line. Exits on SIGTERM or SIGINT. Test use only. */
#include <arpa/inet.h>
#include <errno.h>
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

#define MAX_SCRIPT 256
#define MAX_BODY (16u * 1024u * 1024u)

static unsigned script[MAX_SCRIPT];
static size_t script_len;
static size_t next_request;
static long delay_ms;
static const char *log_path;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    char *body;
    size_t len, cap;
    int too_large;
} request;

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_script(const char *s)
{
    script_len = 0;
    while (*s) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || v < 100 || v > 599 || script_len == MAX_SCRIPT)
            return -1;
        script[script_len++] = (unsigned)v;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return -1;
        s = end;
    }
    return script_len > 0 ? 0 : -1;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "-";
}

static void log_request(struct MHD_Connection *c, const char *method, const request *r)
{
    if (!log_path)
        return;
    FILE *f = fopen(log_path, "a");
    if (!f)
        return;
    fprintf(f, "%s\t%s\t%s\t%s\t", method, header(c, MHD_HTTP_HEADER_AUTHORIZATION),
            header(c, MHD_HTTP_HEADER_USER_AGENT), header(c, MHD_HTTP_HEADER_CONTENT_TYPE));
    for (size_t i = 0; r && i < r->len; i++)
        fputc(r->body[i] == '\n' || r->body[i] == '\r' ? ' ' : r->body[i], f);
    if (r && r->too_large)
        fputs(" [truncated]", f);
    fputc('\n', f);
    fclose(f);
}

static void sleep_ms(long ms)
{
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        if (r->len + n > MAX_BODY) {
            r->too_large = 1;
            n = MAX_BODY - r->len;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        if (n)
            memcpy(r->body + r->len, upload, n);
        r->len += n;
        *upload_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&lock);
    size_t i = next_request++;
    log_request(c, method, r);
    pthread_mutex_unlock(&lock);
    unsigned status = script[i < script_len ? i : script_len - 1];

    if (delay_ms > 0)
        sleep_ms(delay_ms);

    static char answer[] = "{\"flaky\":true}\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof answer - 1, answer, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status >= 300 && status <= 399)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/redirected");
    mhd_result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: flaky_server --port P --script S1,S2,... [--delay-ms N] "
                    "[--log FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long port = -1;
    int have_script = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) {
            if (parse_long(v, 0, 65535, &port) != 0)
                return usage();
        } else if (strcmp(a, "--script") == 0) {
            if (parse_script(v) != 0)
                return usage();
            have_script = 1;
        } else if (strcmp(a, "--delay-ms") == 0) {
            if (parse_long(v, 0, 600000, &delay_ms) != 0)
                return usage();
        } else if (strcmp(a, "--log") == 0) {
            log_path = v;
        } else {
            return usage();
        }
    }
    if (port < 0 || !have_script)
        return usage();

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "flaky_server: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "flaky_server: cannot read the bound port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u/\n", (unsigned)ntohs(bound.sin_port));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    return 0;
}
