/* example.c: the parts the server examples share (see example.h). */
#include "example.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int example_parse_port(int argc, char **argv, uint16_t *port)
{
    *port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            char *end = NULL;
            errno = 0;
            unsigned long n = strtoul(s, &end, 10);
            if (errno != 0 || end == s || *end != '\0' || *s == '-' || n > 65535) {
                fprintf(stderr, "%s: bad port '%s'\n", argv[0], s);
                return -1;
            }
            *port = (uint16_t)n;
        } else {
            fprintf(stderr, "usage: %s [--port N]   (N = 0 picks a free port)\n"
                            "credentials: PDWEBHOOK_USER and PDWEBHOOK_PASSWORD\n",
                    argv[0]);
            return -1;
        }
    }
    return 0;
}

/* `*.*`: every accepted event, once (retries of it are dropped by the receiver). */
static int on_any(const pdw_event *ev, void *user)
{
    FILE *out = user;
    const char *id = pdw_event_entity_id(ev);
    fprintf(out, "handled %s %s %s\n", pdw_event_name(ev), id ? id : "-",
            pdw_event_delivery_key(ev));
    fflush(out);
    return 0;
}

/* `change.deal` narrowed to changes of `stage_id`: a deal moved to another stage. */
static int on_stage_moved(const pdw_event *ev, void *user)
{
    FILE *out = user;
    const char *id = pdw_event_entity_id(ev);
    fprintf(out, "stage moved %s\n", id ? id : "-");
    fflush(out);
    return 0;
}

pdw_receiver *example_receiver_new(FILE *out, const pdw_receiver_options *opts)
{
    const char *user = getenv("PDWEBHOOK_USER");
    const char *password = getenv("PDWEBHOOK_PASSWORD");
    if (!user || !*user || !password || !*password) {
        fprintf(stderr, "set PDWEBHOOK_USER and PDWEBHOOK_PASSWORD (the Basic auth "
                        "credentials configured on the Pipedrive webhook)\n");
        return NULL;
    }

    /* The receiver copies the credentials, so a local array is enough. */
    pdw_credential creds[1] = { { user, password } };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    if (opts)
        o = *opts;
    o.credentials = creds;
    o.num_credentials = 1;
    o.max_body = EXAMPLE_MAX_BODY;

    pdw_receiver *rcv = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_receiver_new(&rcv, &o, &err) != 0) {
        fprintf(stderr, "pdw_receiver_new: %s\n", err.message);
        return NULL;
    }

    /* Register before the first request: the first dispatch freezes the router. */
    pdw_router *router = pdw_receiver_router(rcv);
    pdw_error_clear(&err);
    if (pdw_router_on(router, "*.*", on_any, out, &err) != 0 ||
        pdw_router_on_change(router, "change.deal", "stage_id", on_stage_moved, out, &err) != 0) {
        fprintf(stderr, "pdw_router_on: %s\n", err.message);
        pdw_receiver_free(rcv);
        return NULL;
    }
    return rcv;
}

void example_listening(unsigned port)
{
    printf("listening on http://127.0.0.1:%u/\n", port);
    fflush(stdout);
}

const char *example_reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}
