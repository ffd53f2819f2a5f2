/* The pdwebhook program: shared declarations of its subcommands. Uses only the public API. */
#ifndef PDW_CLI_H
#define PDW_CLI_H

#include <jansson.h>
#include <pdwebhook/pdwebhook.h>

/* Each subcommand gets argv without the program name: argv[0] is the subcommand.
 * Returns the process exit status. */
int pdw_cmd_serve(int argc, char **argv);
int pdw_cmd_inspect(int argc, char **argv);
int pdw_cmd_send(int argc, char **argv);
int pdw_cmd_deadletter(int argc, char **argv);
int pdw_cmd_subscriptions(int argc, char **argv);
int pdw_cmd_consume(int argc, char **argv);
int pdw_cmd_reconcile(int argc, char **argv);

/* The canonical fields of an event as a new JSON object (the names `inspect` prints):
 * ok, version, event, delivered, action, object, merge, bulk, attempt, entity_id, event_id,
 * webhook_id, company_id, user_id, timestamp_ms, delivery_key, changed, merged_from_id,
 * merged_to_id (absent values as null). With with_body, the original body under "body"
 * (as JSON). NULL on out-of-memory. */
json_t *pdw_cli_event_json(const pdw_event *ev, int with_body);

/* A whole file ("-": stdin), NUL-terminated, malloc'd; *len_out its length. NULL with
 * errno set when it cannot be read. */
char *pdw_cli_read_file(const char *path, size_t *len_out);

/* The --credentials format: "user:password" lines, blank lines and # comments. Cuts text
 * in place and calls add() for each pair (user and password point into text). Returns the
 * number of pairs, or -1 after printing "PROG: PATH line N: ..." (never a secret). */
int pdw_cli_parse_credentials(char *text, const char *path, const char *prog,
                              int (*add)(char *user, char *password, void *ctx), void *ctx);

#endif
