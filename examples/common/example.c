/* example.c: the parts the server examples share (see example.h). */
#define _POSIX_C_SOURCE 200809L /* fileno, fsync */

#include "example.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int example_parse_args(int argc, char **argv, uint16_t *port, const char **spool)
{
    *port = 8080;
    *spool = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spool") == 0 && i + 1 < argc) {
            *spool = argv[++i];
            continue;
        }
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
            fprintf(stderr, "usage: %s [--port N] [--spool DIR]   (N = 0 picks a free port;\n"
                            "  --spool: answer 200 once a delivery is on disk in DIR, hand it on\n"
                            "  after the answer)\n"
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

/* The receiver options from the environment (credentials copied by the receiver: the
 * caller's creds[1] needs to live only until it is made). 0, or -1 after a message. */
static int options_from_env(pdw_receiver_options *o, pdw_credential *creds)
{
    const char *user = getenv("PDWEBHOOK_USER");
    const char *password = getenv("PDWEBHOOK_PASSWORD");
    if (!user || !*user || !password || !*password) {
        fprintf(stderr, "set PDWEBHOOK_USER and PDWEBHOOK_PASSWORD (the Basic auth "
                        "credentials configured on the Pipedrive webhook)\n");
        return -1;
    }
    creds[0].user = user;
    creds[0].password = password;
    o->credentials = creds;
    o->num_credentials = 1;
    o->max_body = EXAMPLE_MAX_BODY;
    return 0;
}

/* Register before the first request: the first dispatch freezes the router. */
static int add_handlers(pdw_router *router, FILE *out)
{
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_router_on(router, "*.*", on_any, out, &err) != 0 ||
        pdw_router_on_change(router, "change.deal", "stage_id", on_stage_moved, out, &err) != 0) {
        fprintf(stderr, "pdw_router_on: %s\n", err.message);
        return -1;
    }
    return 0;
}

pdw_receiver *example_receiver_new(FILE *out, const pdw_receiver_options *opts)
{
    pdw_credential creds[1];
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (options_from_env(&o, creds) != 0)
        return NULL;

    pdw_receiver *rcv = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_receiver_new(&rcv, &o, &err) != 0) {
        fprintf(stderr, "pdw_receiver_new: %s\n", err.message);
        return NULL;
    }
    if (add_handlers(pdw_receiver_router(rcv), out) != 0) {
        pdw_receiver_free(rcv);
        return NULL;
    }
    return rcv;
}

/* The handlers' output in the durable mode (one intake per program). */
static FILE *handled_log;

/* The worker's sync: the lines are on disk before their deliveries are marked handled. */
static int sync_handled(void *user)
{
    (void)user;
    return fflush(handled_log) == 0 && fsync(fileno(handled_log)) == 0 ? 0 : -1;
}

pdw_intake *example_intake_new(const char *spool_dir)
{
    pdw_credential creds[1];
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    if (options_from_env(&o, creds) != 0)
        return NULL;
    /* the worker's default handler dispatches to the receiver's router */
    pdw_worker_options wo = PDW_WORKER_OPTIONS_INIT;
    wo.sync = sync_handled;
    pdw_intake_options io = PDW_INTAKE_OPTIONS_INIT;
    io.receiver = &o;
    io.spool_dir = spool_dir;
    io.worker = &wo;
    pdw_intake *in = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_intake_new(&in, &io, &err) != 0) {
        fprintf(stderr, "pdw_intake_new: %s\n", err.message);
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/handled.log", spool_dir);
    if (!(handled_log = fopen(path, "a"))) {
        fprintf(stderr, "cannot open %s\n", path);
        pdw_intake_free(in);
        return NULL;
    }
    long recovered = 0;
    if (add_handlers(pdw_receiver_router(pdw_intake_receiver(in)), handled_log) != 0 ||
        pdw_intake_start(in, &recovered, &err) != 0) {
        if (err.code)
            fprintf(stderr, "pdw_intake_start: %s\n", err.message);
        example_intake_free(in);
        return NULL;
    }
    if (recovered > 0)
        fprintf(stderr, "handing on %ld deliveries journaled before a restart\n", recovered);
    return in;
}

void example_intake_free(pdw_intake *in)
{
    pdw_intake_free(in); /* stops the worker first: no handler writes after this */
    if (handled_log)
        fclose(handled_log);
    handled_log = NULL;
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
