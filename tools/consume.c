/* pdwebhook consume: a worker on another machine. Reads the Redis stream that `serve
 * --redis` fills, in a consumer group, and runs --exec per event (the event JSON line on
 * stdin, exit 0 = handled); XACK on success, retries with backoff, dead letters, and takes
 * over entries a dead consumer left pending (XAUTOCLAIM after --claim-idle-ms). Uses the
 * library's consumer (pdwebhook/redis.h).
 *
 * With --state DIR the command runs under a small sh wrapper that writes DIR/<id>.pid when
 * it starts and DIR/<id>.done once it exited 0 (as serve's --exec does), so that a consumer
 * taking over an entry from a consumer killed in the middle waits for the command still
 * running and does not run it again when it succeeded. Consumers on one host share DIR;
 * across hosts a command may run twice after a crash: use PDWEBHOOK_DELIVERY_KEY. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pdwebhook/redis.h>

#include "cli.h"
#include "options.h"
#include "execrun.h"

typedef struct cconfig {
    const char *redis, *stream, *group, *consumer, *exec, *dead_letter, *state;
    unsigned exec_timeout, max_attempts, count;
    unsigned long long backoff_ms, claim_idle_ms, block_ms;
    int quiet;
} cconfig;

static pdw_redis_consumer *volatile g_consumer;

static void on_signal(int sig)
{
    (void)sig;
    pdw_redis_consumer *c = g_consumer;
    if (c)
        pdw_redis_consumer_cancel(c); /* async-signal-safe; run() then returns */
}

static void logc(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void logc(const char *fmt, ...)
{
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s.%03ldZ ", ts, now.tv_nsec / 1000000);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The event line: serve's --output line, with "stream_id". NULL on failure (errbuf). */
static char *event_line(const pdw_redis_entry *e, char *errbuf, size_t cap)
{
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_event_parse(&ev, e->body, e->body_len, NULL, &err) != 0) {
        snprintf(errbuf, cap, "the entry's body does not parse: %s", err.message);
        return NULL;
    }
    json_t *o = pdw_cli_event_json(ev, 1);
    pdw_event_free(ev);
    if (o)
        json_object_set_new(o, "stream_id", json_string(e->id));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line)
        snprintf(errbuf, cap, "out of memory");
    return line;
}

static int run_exec(const cconfig *c, const pdw_redis_entry *e, unsigned attempt,
                    char *errbuf, size_t cap)
{
    char marker[4096] = "", env[4][256];
    if (c->state)
        snprintf(marker, sizeof marker, "%s/%s", c->state, e->id);
    char *line = event_line(e, errbuf, cap);
    if (!line)
        return -1;
    size_t len = strlen(line);
    line[len++] = '\n'; /* replaces the NUL; the line goes by its length */
    snprintf(env[0], sizeof env[0], "PDWEBHOOK_DELIVERY_KEY=%s", e->delivery_key);
    snprintf(env[1], sizeof env[1], "PDWEBHOOK_EVENT=%s", e->event);
    snprintf(env[2], sizeof env[2], "PDWEBHOOK_ATTEMPT=%u", attempt);
    snprintf(env[3], sizeof env[3], "PDWEBHOOK_STREAM_ID=%s", e->id);
    const char *const extra[] = { env[0], env[1], env[2], env[3], NULL };
    pdw_cli_exec x = { c->exec, marker[0] ? marker : NULL, "pdwebhook-consume-exec",
                       c->exec_timeout, extra };
    int rc = pdw_cli_exec_run(&x, line, len, errbuf, cap);
    free(line);
    return rc;
}

static int handle(const pdw_redis_entry *e, unsigned attempt, char *errbuf, size_t cap,
                  void *user)
{
    const cconfig *c = user;
    int rc = run_exec(c, e, attempt, errbuf, cap);
    if (rc != 0)
        logc("entry %s (%s %s) attempt %u failed: %s", e->id, e->event, e->delivery_key,
             attempt, errbuf);
    else if (!c->quiet)
        logc("entry %s %s %s handled (attempt %u)", e->id, e->event, e->delivery_key, attempt);
    return rc;
}

static void on_acked(const pdw_redis_entry *e, void *user)
{
    const cconfig *c = user;
    if (!c->state)
        return;
    static const char *const ext[] = { ".done", ".pid", ".json" };
    char path[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s%s", c->state, e->id, ext[i]);
        unlink(path);
    }
}

static void on_dead(const pdw_redis_entry *e, unsigned attempts, const char *error, void *user)
{
    (void)user;
    logc("dead letter: entry %s key=%s after %u attempt(s): %s", e->id, e->delivery_key,
         attempts, error);
}

enum {
    C_REDIS = 1, C_REDIS_FILE, C_STREAM, C_GROUP, C_CONSUMER, C_EXEC, C_EXEC_TIMEOUT,
    C_MAX_ATTEMPTS, C_BACKOFF, C_DEAD_LETTER, C_CLAIM_IDLE, C_STATE, C_COUNT, C_BLOCK, C_QUIET,
};

static const pdw_opt consume_opts[] = {
    { C_REDIS, "redis", 0, "URL", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET,
      "redis://[[user]:password@]host[:port][/db] (also PDWEBHOOK_REDIS)", 0 },
    { C_REDIS_FILE, "redis-file", 0, "FILE", PDW_OPT_FILE_OF, 0, 0, 0, 0, 0,
      "the Redis URL, read from FILE (mode 0600 or stricter)", C_REDIS },
    { C_STREAM, "stream", 0, "NAME", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "the stream serve --redis fills (default pdwebhook:events)", 0 },
    { C_GROUP, "group", 0, "G", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "consumer group (created when missing, from the stream's start)", 0 },
    { C_CONSUMER, "consumer", 0, "NAME", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "this consumer's name, unique in the group (keep it across\nrestarts: what it had taken "
      "is handled first)", 0 },
    { C_EXEC, "exec", 0, "CMD", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "run CMD (sh -c) per event, the event JSON line on stdin;\nexit 0 = handled (env: "
      "PDWEBHOOK_DELIVERY_KEY, _EVENT,\n_ATTEMPT, _STREAM_ID)", 0 },
    { C_EXEC_TIMEOUT, "exec-timeout", 0, "SECONDS", PDW_OPT_SECONDS, 1, 86400, 0, 0, 0,
      "kill a command running longer (default 60)", 0 },
    { C_MAX_ATTEMPTS, "max-attempts", 0, "N", PDW_OPT_NUMBER, 1, 1000, 0, 0, 0,
      "tries per event before the dead letter (default 8)", 0 },
    { C_BACKOFF, "backoff-ms", 0, "MS", PDW_OPT_MILLIS, 1, 3600000, 0, 0, 0,
      "first retry delay, doubled each time up to 60 s (default 1000)", 0 },
    { C_DEAD_LETTER, "dead-letter", 0, "FILE", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "given-up events as JSON lines (fsync'ed)", 0 },
    { C_CLAIM_IDLE, "claim-idle-ms", 0, "MS", PDW_OPT_MILLIS, 1, 86400000, 0, 0, 0,
      "take over events another consumer left pending this long\n(XAUTOCLAIM; default: "
      "--exec-timeout + 10 s)", 0 },
    { C_STATE, "state", 0, "DIR", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "markers that keep a command from running twice when a\nconsumer dies in the middle "
      "(share DIR on one host)", 0 },
    { C_COUNT, "count", 0, "N", PDW_OPT_NUMBER, 1, 1000, 0, 0, 0,
      "entries per read (default 16)", 0 },
    { C_BLOCK, "block-ms", 0, "MS", PDW_OPT_MILLIS, 1, 60000, 0, 0, 0,
      "longest wait in one read (default 1000)", 0 },
    { C_QUIET, "quiet", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "log failures only", 0 },
};

static const pdw_opt_cmd consume_cmd = {
    "pdwebhook consume",
    "usage: pdwebhook consume --redis URL --group G --consumer NAME --exec CMD [options]\n",
    consume_opts, sizeof consume_opts / sizeof consume_opts[0],
    "SIGTERM/SIGINT: finish the command under way and exit 0.\n",
};

static int apply(const pdw_opt *o, const pdw_opt_value *v, void *user)
{
    cconfig *c = user;
    switch (o->id) {
    case C_REDIS: c->redis = v->text; break;
    case C_STREAM: c->stream = v->text; break;
    case C_GROUP: c->group = v->text; break;
    case C_CONSUMER: c->consumer = v->text; break;
    case C_EXEC: c->exec = v->text; break;
    case C_EXEC_TIMEOUT: c->exec_timeout = (unsigned)v->num; break;
    case C_MAX_ATTEMPTS: c->max_attempts = (unsigned)v->num; break;
    case C_BACKOFF: c->backoff_ms = v->num; break;
    case C_DEAD_LETTER: c->dead_letter = v->text; break;
    case C_CLAIM_IDLE: c->claim_idle_ms = v->num; break;
    case C_STATE: c->state = v->text; break;
    case C_COUNT: c->count = (unsigned)v->num; break;
    case C_BLOCK: c->block_ms = v->num; break;
    case C_QUIET: c->quiet = 1; break;
    default: return pdw_opt_error(&consume_cmd, o, v, "not handled");
    }
    return 0;
}

static int parse(cconfig *c, int argc, char **argv)
{
    c->redis = getenv("PDWEBHOOK_REDIS");
    c->exec_timeout = 60;
    int rc = pdw_opt_parse(&consume_cmd, argc, argv, 1, apply, c, NULL, NULL);
    if (rc != 0)
        return rc;
    const char *missing = !c->redis      ? "--redis"
                          : !c->group    ? "--group"
                          : !c->consumer ? "--consumer"
                          : !c->exec     ? "--exec"
                                         : NULL;
    if (missing) {
        fprintf(stderr, "pdwebhook consume: %s is required (pdwebhook consume --help)\n",
                missing);
        return -1;
    }
    if (!c->claim_idle_ms) /* longer than a command may run, so that none is taken over */
        c->claim_idle_ms = (c->exec_timeout + 10ull) * 1000;
    if (c->state && mkdir(c->state, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pdwebhook consume: --state %s: cannot create it: %s\n", c->state,
                strerror(errno));
        return -1;
    }
    return 0;
}

int pdw_cmd_consume(int argc, char **argv)
{
    cconfig c;
    memset(&c, 0, sizeof c);
    int rc = parse(&c, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    pdw_error err;
    pdw_error_clear(&err);
    pdw_redis *conn = NULL;
    pdw_redis_consumer *cons = NULL;
    pdw_redis_options ro = PDW_REDIS_OPTIONS_INIT;
    ro.reconnect_max_ms = 2000;
    if (pdw_redis_new(&conn, c.redis, &ro, &err) != 0) {
        fprintf(stderr, "pdwebhook consume: --redis: %s\n", err.message);
        return 2;
    }
    rc = pdw_redis_ping(conn, &err);
    if (rc == PDW_EREDIS) {
        logc("WARNING: %s; waiting for it", err.message);
    } else if (rc != 0) {
        fprintf(stderr, "pdwebhook consume: --redis: %s\n", err.message);
        pdw_redis_free(conn);
        return 2;
    }
    pdw_redis_consumer_options co = PDW_REDIS_CONSUMER_OPTIONS_INIT;
    co.stream = c.stream;
    co.group = c.group;
    co.consumer = c.consumer;
    co.handle = handle;
    co.handle_user = &c;
    co.max_attempts = c.max_attempts;
    co.backoff_base_ms = c.backoff_ms;
    co.dead_letter_path = c.dead_letter;
    co.on_dead_letter = on_dead;
    co.on_acked = on_acked;
    co.acked_user = &c;
    co.claim_idle_ms = c.claim_idle_ms;
    co.block_ms = c.block_ms;
    co.count = c.count;
    pdw_error_clear(&err);
    if (pdw_redis_consumer_new(&cons, conn, &co, &err) != 0) {
        fprintf(stderr, "pdwebhook consume: %s\n", err.message);
        pdw_redis_free(conn);
        return 2;
    }
    g_consumer = cons;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("consuming %s as %s in group %s\n", c.stream ? c.stream : PDW_REDIS_DEFAULT_STREAM,
           c.consumer, c.group);
    fflush(stdout);
    pdw_error_clear(&err);
    rc = pdw_redis_consumer_run(cons, &err);
    pdw_redis_consumer_stats st;
    pdw_redis_consumer_get_stats(cons, &st);
    g_consumer = NULL;
    pdw_redis_consumer_free(cons);
    pdw_redis_free(conn);
    if (rc != 0) {
        fprintf(stderr, "pdwebhook consume: %s\n", err.message);
        return 1;
    }
    logc("stopped: %llu handled, %llu retried, %llu dead letter(s), %llu taken over",
         (unsigned long long)st.handled, (unsigned long long)st.retries,
         (unsigned long long)st.dead_letters, (unsigned long long)st.claimed);
    return 0;
}
