/* example.h: what the server examples share, so that each of them shows only the glue
 * between its HTTP server and pdwebhook.
 *
 *  - the command line: PROGRAM --port N (0 lets the system pick a free port)
 *    [--spool DIR] (the durable mode: pdwebhook/intake.h);
 *  - the receiver: credentials from PDWEBHOOK_USER / PDWEBHOOK_PASSWORD, and two handlers,
 *    `*.*` ("handled <event> <entity_id> <delivery_key>") and `change.deal` when `stage_id`
 *    changed ("stage moved <entity_id>"), each printing one line and flushing;
 *  - the durable mode: an intake on the journal in DIR, the same handlers run by its worker
 *    after the answer, writing their lines to DIR/handled.log (synced before a delivery is
 *    marked handled; at least once: after a crash, a delivery handed on but not yet marked
 *    is handed on again);
 *  - the "listening on http://127.0.0.1:PORT/" line the tests wait for.
 *
 * Nothing in here knows about HTTP servers; see ../minimal.c for the same calls inline. */
#ifndef PDW_EXAMPLE_H
#define PDW_EXAMPLE_H

#include <pdwebhook/durable.h>
#include <stdint.h>
#include <stdio.h>

/* Parse "--port N" and "--spool DIR" (*spool NULL without it). Returns 0, or prints usage
 * to stderr and returns -1. */
int example_parse_args(int argc, char **argv, uint16_t *port, const char **spool);

/* Create a receiver from the environment, with the two handlers printing to @p out.
 * @p opts may be NULL or carry extra options (max_body, a dedup store, ...); its
 * credentials are replaced by the ones from the environment.
 * Returns NULL (after a message on stderr) when the credentials are missing or invalid. */
pdw_receiver *example_receiver_new(FILE *out, const pdw_receiver_options *opts);

/* The durable mode: an intake (receiver from the environment as above, journal in
 * @p spool_dir, the two handlers run by its worker, their lines appended to
 * spool_dir/handled.log) started, its pending deliveries handed on. Returns NULL (after a
 * message on stderr) on failure. Stop it with pdw_intake_stop() before the server (which
 * then has no request waiting), free it with example_intake_free() after. */
pdw_intake *example_intake_new(const char *spool_dir);
void example_intake_free(pdw_intake *in);

/* The body limit the examples use (the library's default, 1 MiB); adapters use it to
 * size their buffers and to stop reading at max + 1 bytes. */
#define EXAMPLE_MAX_BODY ((size_t)1 << 20)

/* Print "listening on http://127.0.0.1:PORT/" to stdout and flush. */
void example_listening(unsigned port);

/* "OK", "Unauthorized", ... for the statuses a verdict can carry ("" for others). */
const char *example_reason_phrase(int status);

#endif
