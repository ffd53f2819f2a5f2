/* The log of pdwebhook serve: text or JSON lines, a level, a file reopened on SIGHUP.
 *
 * Each line is one write(2) to fd 2 (--log-file is opened onto fd 2, so that a handler's
 * stray output and the library's messages land in the same file). Bytes a client chose
 * (the request line, a parse error quoting the body) are escaped: anything outside
 * printable ASCII, and the backslash, become \xNN, in both formats, so that nobody can
 * forge a log line. Refusals (4xx/5xx access lines) are rate-limited per status and reason:
 * at most LOG_REFUSALS_PER_S a second, then one "suppressed N similar lines" line. */
#ifndef PDW_LOG_H
#define PDW_LOG_H

#include <stddef.h>

enum { LL_ERROR = 0, LL_WARN = 1, LL_INFO = 2, LL_DEBUG = 3 };

#define LOG_REFUSALS_PER_S 10 /* per status and reason */
#define LOG_EXEC_CAP (64u * 1024u) /* bytes of one handler run's output that are logged */

/* "error", "warn", "info", "debug" -> LL_*, or -1. */
int log_level_parse(const char *s);

/* Before any thread starts. With a file, open it (0600, appended) onto fd 2. 0, or -1
 * after printing why. */
int log_setup(int json, int level, const char *file);

/* Reopen the log file (SIGHUP). 0 (also without a file), or -1 (logged; the old file
 * stays in use). */
int log_reopen(void);

int log_enabled(int level);

/* One line: the message (printf format; the result is escaped). */
void log_msg(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* One access line. Strings may be NULL (absent) and hold any bytes; offset < 0: none. */
typedef struct log_access {
    const char *method;
    const char *path;
    size_t path_len;
    int status;
    const char *reason;      /* PDW_OK, PDW_EAUTHMISSING, ... */
    const char *event, *delivery_key, *webhook_id;
    double duration_ms;
    const char *peer;
    const char *error;       /* the refusal's message (a 400's parse error) */
    long long offset;        /* its byte offset */
} log_access;

void log_access_line(const log_access *a);

/* Once a second or so: write the "suppressed" lines of refusals that stopped coming (all:
 * of every kind, at exit, so that no count is lost). */
void log_tick(int all);

/* A handler's output line (execrun's sink): "exec spool_id=ID: LINE"; line NULL: len bytes
 * dropped over the cap. */
void log_exec_output(const char *id, const char *line, size_t len, void *user);

#endif
