/* Run a handler command for one event: `sh -c CMD` with the event JSON line on stdin,
 * exit 0 = handled, killed (its whole process group) after a timeout.
 *
 * With a marker path M, it runs exactly once across crashes of the calling process: the
 * line goes to M.json first, and a small sh wrapper records M.pid when it starts and M.done
 * (synced) once CMD exited 0. A later call for the same M returns 0 at once when M.done
 * exists, and waits for a wrapper still running from before a crash instead of starting
 * CMD twice. (A crash of the wrapper itself between CMD's success and M.done, a few
 * microseconds, would repeat it.) */
#ifndef PDW_EXECRUN_H
#define PDW_EXECRUN_H

#include <stddef.h>

typedef struct pdw_cli_exec {
    const char *cmd;            /* the sh command */
    const char *marker;         /* NULL, or the path prefix M above */
    const char *argv0;          /* the wrapper's $0, how a restart recognises it in ps */
    unsigned timeout_s;         /* kill after this long */
    const char *const *env;     /* extra "NAME=value" strings, NULL-terminated, or NULL */
} pdw_cli_exec;

/* Where the commands' standard output and error go. Without a sink (the default) they
 * share our stderr. With one, through a pipe read while the command runs: sink(id, line,
 * len, user) for each line (without its '\n'; a longer line than 4 KiB comes in pieces),
 * on the thread that runs the command, at most cap bytes per run; the rest is dropped and
 * told once with line NULL and len the bytes dropped. id is the run's PDWEBHOOK_SPOOL_ID or
 * PDWEBHOOK_STREAM_ID ("-" without one). Set it before any command runs. */
typedef void (*pdw_cli_exec_sink)(const char *id, const char *line, size_t len, void *user);
void pdw_cli_exec_set_sink(pdw_cli_exec_sink sink, void *user, size_t cap);

/* 0 when handled; -1 with errbuf filled otherwise. Thread-safe. */
int pdw_cli_exec_run(const pdw_cli_exec *x, const char *line, size_t len, char *errbuf,
                     size_t cap);

#endif
