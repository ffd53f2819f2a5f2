/* The built-in sinks of pdwebhook serve: --output (JSON lines) and --exec (a command per
 * event), each seeing every spooled event exactly once, also across kill -9:
 *
 * - --output: each line carries "spool_id". At start the tail of the file is read back, so
 *   that an event written but not yet marked handled in the spool is not written again.
 *   The file is fsync'ed before the spool's handled markers are (sinks_sync()). Each line
 *   is one record: a failed write (a full disk) is cut back, so no half line is left for
 *   the retry to be glued to. The file is created 0600 (it holds whole bodies).
 * - --exec: the command runs under a small sh wrapper that writes MARKERS/<id>.pid when it
 *   starts and MARKERS/<id>.done (synced) once the command exited 0. A restarted server
 *   skips events with a .done marker, and waits for a command still running from before
 *   the crash instead of starting it twice. (A crash of the command itself between its
 *   success and the marker, microseconds, would repeat it.)
 * - an event given up (dead-lettered) after --output wrote it but --exec kept failing
 *   leaves MARKERS/<id>.output (synced) before the dead letter is written;
 *   `pdwebhook deadletter replay` renames it to the replayed delivery's new id, so that a
 *   replay hands the event to --exec again but not to --output a second time. */
#ifndef PDW_SINKS_H
#define PDW_SINKS_H

#include <pdwebhook/durable.h>

typedef struct sinks sinks;

typedef struct sinks_config {
    const char *output;       /* NULL, "-" (stdout) or a file (appended) */
    const char *exec;         /* NULL or a sh command */
    unsigned exec_timeout_s;  /* kill the command's process group after this long */
    const char *marker_dir;   /* NULL: no exactly-once bookkeeping (no spool) */
    unsigned max_attempts;    /* the worker's: the attempt after which an event is given up */
    int skip_stale;           /* skip (and count) a change older than one handed on for the
                                 same entity (pdw_recency) */
} sinks_config;

/* Open the sinks; with a marker_dir, read back the output file's tail. 0 or -1 (message
 * printed). */
int sinks_open(sinks **out, const sinks_config *c);
void sinks_close(sinks *s);

/* Forget output ids and remove exec markers of events that are no longer pending
 * (is_pending(id, user) == 0). */
void sinks_clean_markers(sinks *s, int (*is_pending)(uint64_t id, void *user), void *user);

/* Hand one event to the sinks (id 0 when there is no spool). 0, or non-zero with errbuf. */
int sinks_event(sinks *s, const pdw_event *ev, uint64_t id, unsigned attempt, char *errbuf,
                size_t errcap);

/* pdw_worker_handle_cb: parse the record and call sinks_event(); 0 at once without sinks. */
int sinks_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
                 void *user);

/* Open the --output file again at its path (logrotate moved it: SIGHUP). A file deleted
 * under the sinks is noticed at the next write and reopened the same way. 0 or -1. */
int sinks_reopen(sinks *s);

/* pdw_worker_sync_cb: fsync the output file. */
int sinks_sync(void *user);

/* Changes skipped as stale (--skip-stale). */
unsigned long long sinks_stale_skipped(sinks *s);

/* Add "output" (write errors, the last one, unfinished ids) to a /healthz object; 1 when
 * the last write failed (events wait in the spool until it works again). */
int sinks_health(sinks *s, json_t *o);

#endif
