/* minimal.c: the whole pdwebhook pipeline on one body read from a file.
 *
 *   cc -std=c11 -Wall -Wextra -Werror examples/minimal.c $(pkg-config --cflags --libs pdwebhook)
 *   ./a.out tests/fixtures/v2-change.deal-pipedrive-docs.json
 *
 * It plays both sides: it builds the request Pipedrive would send (POST, JSON, Basic auth
 * pipedrive:s3cret unless a second argument "user:password" says otherwise) and hands it to
 * a receiver configured with pipedrive:s3cret, then prints the verdict and what fired. */
#include <pdwebhook/pdwebhook.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_deal_change(const pdw_event *ev, void *user)
{
    (void)user;
    printf("fired: %s  deal %s changed %zu field(s)\n", "updated.deal", pdw_event_entity_id(ev),
           pdw_event_changed_count(ev));
    return 0;
}

static int on_stage_move(const pdw_event *ev, void *user)
{
    (void)user;
    printf("fired: change.deal [stage_id]  deal %s moved stage\n", pdw_event_entity_id(ev));
    return 0;
}

static int on_anything(const pdw_event *ev, void *user)
{
    int *count = user;
    ++*count;
    printf("fired: *.*  %s (delivered as %s, v%d, attempt %u, key %s)\n", pdw_event_name(ev),
           pdw_event_delivered_name(ev), pdw_event_version(ev), pdw_event_attempt(ev),
           pdw_event_delivery_key(ev));
    return 0;
}

static int on_person(const pdw_event *ev, void *user)
{
    (void)user;
    printf("fired: *.person  person %s\n", pdw_event_entity_id(ev));
    return 0;
}

/* Base64 for the Authorization header we send ourselves. */
static void base64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s BODY.json [user:password]\n", argv[0]);
        return 2;
    }
    size_t len;
    char *body = read_file(argv[1], &len);
    if (!body) {
        perror(argv[1]);
        return 2;
    }

    /* 1. a receiver that accepts one credential pair */
    static const pdw_credential creds[] = { { "pipedrive", "s3cret" } };
    pdw_receiver_options opts = PDW_RECEIVER_OPTIONS_INIT;
    opts.credentials = creds;
    opts.num_credentials = 1;
    pdw_receiver *rcv = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_receiver_new(&rcv, &opts, &err) != 0) {
        fprintf(stderr, "receiver: %s\n", err.message);
        free(body);
        return 1;
    }

    /* 2. handlers: v1 and v2 names are one vocabulary; "*" per segment; field filters */
    int total = 0;
    pdw_router *router = pdw_receiver_router(rcv);
    pdw_router_on(router, "updated.deal", on_deal_change, NULL, NULL);
    pdw_router_on_change(router, "change.deal", "stage_id", on_stage_move, NULL, NULL);
    pdw_router_on(router, "*.person", on_person, NULL, NULL);
    pdw_router_on(router, "*.*", on_anything, &total, NULL);

    /* 3. the request, as a server adapter would hand it over */
    char userpass[256], encoded[400], authorization[420], length[32];
    snprintf(userpass, sizeof userpass, "%s", argc == 3 ? argv[2] : "pipedrive:s3cret");
    base64(userpass, encoded);
    snprintf(authorization, sizeof authorization, "Basic %s", encoded);
    snprintf(length, sizeof length, "%zu", len);
    pdw_header headers[] = {
        { "Content-Type", 12, "application/json", 16 },
        { "User-Agent", 10, "Pipedrive Webhooks", 18 },
        { "Authorization", 13, authorization, strlen(authorization) },
        { "Content-Length", 14, length, strlen(length) },
    };
    pdw_request req = PDW_REQUEST_INIT;
    req.method = "POST";
    req.method_len = 4;
    req.headers = headers;
    req.num_headers = 4;
    req.body = body;
    req.body_len = len;

    /* 4. run the pipeline and print the answer to send */
    pdw_verdict verdict = PDW_VERDICT_INIT;
    pdw_error_clear(&err);
    pdw_receiver_handle(rcv, &req, &verdict, &err);
    printf("status: %d %s\n", verdict.status, pdw_err_name(verdict.reason));
    for (size_t i = 0; i < verdict.num_headers; i++)
        printf("header: %s: %s\n", verdict.headers[i].name, verdict.headers[i].value);
    printf("body: %.*s\n", (int)verdict.body_len, verdict.body);
    if (verdict.event[0])
        printf("event: %s  delivery key: %s  handlers: %u ran, %u failed\n", verdict.event,
               verdict.delivery_key, verdict.handlers_matched, verdict.handlers_failed);
    if (err.code)
        printf("detail: %s (byte %lld)\n", err.message, err.offset);

    pdw_receiver_free(rcv);
    free(body);
    return verdict.status >= 200 && verdict.status < 300 ? 0 : 1;
}
