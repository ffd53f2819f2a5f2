/* cgi.c: pdwebhook as a CGI program (RFC 3875), one process per delivery.
 *
 *   PDWEBHOOK_USER, PDWEBHOOK_PASSWORD   the Basic auth credentials (required)
 *   PDWEBHOOK_DEDUP_DIR                  a writable directory for the dedup claims
 *
 * The server describes the request in environment variables (REQUEST_METHOD,
 * CONTENT_TYPE, CONTENT_LENGTH, HTTP_AUTHORIZATION, QUERY_STRING) and hands the body on
 * stdin; the program writes "Status: ..." and the response headers and body on stdout.
 * Handlers print to stderr, which servers send to their error log.
 *
 * Two things differ from a long-running server:
 *  - The body is read only after pdw_receiver_check_head() accepted the headers, and
 *    never more than CONTENT_LENGTH bytes, so a 2 GiB upload is refused unread.
 *  - Each process starts empty, so the built-in in-memory dedup table would forget every
 *    delivery at exit. A small store below keeps claims as files in PDWEBHOOK_DEDUP_DIR
 *    (one file per delivery key, created with O_EXCL, which is atomic; "pending " while
 *    the first process is still handling it, "handled " once the receiver confirmed it,
 *    so that a retry arriving meanwhile is answered 503, not 200). Without that variable
 *    dedup is off and a retry is handled again. */
#define _POSIX_C_SOURCE 200809L

#include "example.h"

#include <pdwebhook/sys/dedup_store.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a dedup store that survives the process: one file per claimed key ---- */

typedef struct file_store {
    pdw_dedup_store parent; /* first: the store's functions get it back */
    const char *dir;
} file_store;

/* File name for a key: its 64-bit FNV-1a hash (delivery keys can be longer than a file
 * name may be, and may hold any byte). Two keys sharing a hash would make the second
 * event look like a retry; at 2^-64 per pair, that is accepted here. */
static int key_path(const file_store *s, const char *key, size_t len, char *out, size_t size)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211u;
    }
    int n = snprintf(out, size, "%s/%016llx", s->dir, (unsigned long long)h);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* A claim file holds "pending " or "handled " (the same length: confirm rewrites it in
 * place), then the key itself, for whoever looks. Files of older versions of this example
 * hold the key only: they count as handled. */
#define PENDING "pending "
#define HANDLED "handled "
#define MARK_LEN 8

/* Keys are never reused (they hold the event id and time), so the TTL only matters for
 * cleaning up: remove old files with e.g. `find DIR -type f -mmin +1440 -delete`. */
static int file_claim(pdw_dedup_store *self, const char *key, size_t key_len, uint64_t now_ms,
                      uint64_t ttl_ms)
{
    (void)now_ms;
    (void)ttl_ms;
    char path[4096];
    if (key_path((file_store *)self, key, key_len, path, sizeof path) != 0)
        return PDW_ESTORE;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno != EEXIST)
            return PDW_ESTORE; /* 503, retried */
        /* claimed before: by a process still handling it, or handled */
        char mark[MARK_LEN];
        fd = open(path, O_RDONLY);
        if (fd < 0)
            return errno == ENOENT ? PDW_CLAIM_INFLIGHT : PDW_ESTORE; /* released meanwhile */
        ssize_t n = read(fd, mark, MARK_LEN);
        close(fd);
        if (n < 0)
            return PDW_ESTORE;
        /* "pending " (or a part of it: the claiming process is still writing it) */
        if (memcmp(mark, PENDING, (size_t)n) == 0)
            return PDW_CLAIM_INFLIGHT;
        return PDW_CLAIM_DUPLICATE;
    }
    ssize_t w = write(fd, PENDING, MARK_LEN);
    ssize_t w2 = write(fd, key, key_len);
    (void)w2;
    close(fd);
    return w == MARK_LEN ? PDW_CLAIM_NEW : PDW_ESTORE;
}

static int file_confirm(pdw_dedup_store *self, const char *key, size_t key_len,
                        uint64_t now_ms, uint64_t ttl_ms)
{
    (void)now_ms;
    (void)ttl_ms;
    char path[4096];
    if (key_path((file_store *)self, key, key_len, path, sizeof path) != 0)
        return PDW_ESTORE;
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return errno == ENOENT ? PDW_ENOTFOUND : PDW_ESTORE;
    ssize_t w = pwrite(fd, HANDLED, MARK_LEN, 0);
    close(fd);
    return w == MARK_LEN ? 0 : PDW_ESTORE;
}

static int file_release(pdw_dedup_store *self, const char *key, size_t key_len)
{
    char path[4096];
    if (key_path((file_store *)self, key, key_len, path, sizeof path) != 0)
        return PDW_ESTORE;
    return unlink(path) == 0 || errno == ENOENT ? 0 : PDW_ESTORE;
}

/* ---- the CGI response ---- */

static void send_verdict(const pdw_verdict *v)
{
    printf("Status: %d %s\r\n", v->status, example_reason_phrase(v->status));
    for (size_t i = 0; i < v->num_headers; i++)
        printf("%s: %s\r\n", v->headers[i].name, v->headers[i].value);
    printf("Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", v->content_type, v->body_len);
    fwrite(v->body, 1, v->body_len, stdout);
    fflush(stdout);
}

static void add_env_header(pdw_header *h, size_t *n, const char *name, const char *value)
{
    if (!value)
        return;
    h[*n].name = name;
    h[*n].name_len = strlen(name);
    h[*n].value = value;
    h[*n].value_len = strlen(value);
    ++*n;
}

int main(void)
{
    /* These files never expire (the TTLs are ignored), so the in-flight lease has nothing
     * to shorten here. The store lives on the stack: no free function, nobody frees it. */
    file_store files = { PDW_DEDUP_STORE_INIT, getenv("PDWEBHOOK_DEDUP_DIR") };
    files.parent.claim = file_claim;
    files.parent.release = file_release;
    files.parent.confirm = file_confirm;
    pdw_receiver_options opts = PDW_RECEIVER_OPTIONS_INIT;
    if (files.dir && *files.dir)
        opts.dedup = &files.parent;
    else
        opts.disable_dedup = 1;

    pdw_receiver *rcv = example_receiver_new(stderr, &opts);
    if (!rcv) {
        fputs("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n"
              "pdwebhook: not configured\n", stdout);
        return 0;
    }

    /* The request as the server describes it. Only the headers the receiver reads are
     * rebuilt. Apache hides Authorization from CGI unless told (`CGIPassAuth On`), or
     * passes it as REDIRECT_HTTP_AUTHORIZATION after a rewrite; lighttpd passes it. */
    const char *method = getenv("REQUEST_METHOD");
    const char *auth = getenv("HTTP_AUTHORIZATION");
    if (!auth)
        auth = getenv("REDIRECT_HTTP_AUTHORIZATION");
    const char *length = getenv("CONTENT_LENGTH");
    if (length && !*length)
        length = NULL; /* RFC 3875: empty means no body */
    const char *query = getenv("QUERY_STRING");

    pdw_header headers[3];
    size_t n = 0;
    add_env_header(headers, &n, "Content-Type", getenv("CONTENT_TYPE"));
    add_env_header(headers, &n, "Content-Length", length);
    add_env_header(headers, &n, "Authorization", auth);

    pdw_request req = PDW_REQUEST_INIT;
    req.method = method ? method : "";
    req.method_len = strlen(req.method);
    req.headers = headers;
    req.num_headers = n;
    req.query = query;
    req.query_len = query ? strlen(query) : 0;

    /* Refuse on the headers alone: nothing is read from stdin. */
    pdw_verdict v = PDW_VERDICT_INIT;
    if (pdw_receiver_check_head(rcv, &req, &v) != 0) {
        send_verdict(&v);
        pdw_receiver_free(rcv);
        return 0;
    }

    /* check_head() has checked that CONTENT_LENGTH is a number within the limit. Read
     * that many bytes and no more (RFC 3875 4.2); a short body is answered 400. */
    size_t want = 0;
    if (length) {
        unsigned long long cl = strtoull(length, NULL, 10);
        want = cl < EXAMPLE_MAX_BODY ? (size_t)cl : EXAMPLE_MAX_BODY;
    }
    char *body = malloc(want ? want : 1);
    size_t len = 0;
    if (!body) {
        fputs("Status: 503 Service Unavailable\r\nRetry-After: 3\r\n\r\n", stdout);
        pdw_receiver_free(rcv);
        return 0;
    }
    while (len < want) {
        size_t got = fread(body + len, 1, want - len, stdin);
        if (got == 0)
            break;
        len += got;
    }
    req.body = body;
    req.body_len = len;
    pdw_receiver_handle(rcv, &req, &v, NULL);
    send_verdict(&v);
    free(body);
    pdw_receiver_free(rcv);
    return 0;
}
