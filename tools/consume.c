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

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pdwebhook consume --redis URL --group G --consumer NAME --exec CMD [options]\n"
        "  --redis URL            redis://[[user]:password@]host[:port][/db] (also PDWEBHOOK_REDIS)\n"
        "  --stream NAME          the stream serve --redis fills (default pdwebhook:events)\n"
        "  --group G              consumer group (created when missing, from the stream's start)\n"
        "  --consumer NAME        this consumer's name, unique in the group (keep it across\n"
        "                         restarts: what it had taken is handled first)\n"
        "  --exec CMD             run CMD (sh -c) per event, the event JSON line on stdin;\n"
        "                         exit 0 = handled (env: PDWEBHOOK_DELIVERY_KEY, _EVENT,\n"
        "                         _ATTEMPT, _STREAM_ID)\n"
        "  --exec-timeout SECONDS kill a command running longer (default 60)\n"
        "  --max-attempts N       tries per event before the dead letter (default 8)\n"
        "  --backoff-ms MS        first retry delay, doubled each time up to 60 s (default 1000)\n"
        "  --dead-letter FILE     given-up events as JSON lines (fsync'ed)\n"
        "  --claim-idle-ms MS     take over events another consumer left pending this long\n"
        "                         (XAUTOCLAIM; default: --exec-timeout + 10 s)\n"
        "  --state DIR            markers that keep a command from running twice when a\n"
        "                         consumer dies in the middle (share DIR on one host)\n"
        "  --count N              entries per read (default 16)\n"
        "  --block-ms MS          longest wait in one read (default 1000)\n"
        "  --quiet                log failures only\n"
        "SIGTERM/SIGINT: finish the command under way and exit 0.\n");
}

static int parse(cconfig *c, int argc, char **argv)
{
    c->redis = getenv("PDWEBHOOK_REDIS");
    c->exec_timeout = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                     \
    if (strcmp(a, name) == 0) {                                                              \
        if (!v) {                                                                            \
            fprintf(stderr, "pdwebhook consume: %s needs a value\n", name);                  \
            return -1;                                                                       \
        }                                                                                    \
        field = v;                                                                           \
        i++;                                                                                 \
        continue;                                                                            \
    }
        OPT("--redis", c->redis)
        OPT("--stream", c->stream)
        OPT("--group", c->group)
        OPT("--consumer", c->consumer)
        OPT("--exec", c->exec)
        OPT("--dead-letter", c->dead_letter)
        OPT("--state", c->state)
#undef OPT
#define NUM(name, field, lo, hi)                                                             \
    if (strcmp(a, name) == 0) {                                                              \
        char *end_;                                                                          \
        unsigned long long n_ = v ? strtoull(v, &end_, 10) : 0;                              \
        if (!v || *end_ || n_ < (lo) || n_ > (hi)) {                                         \
            fprintf(stderr, "pdwebhook consume: %s takes a number from %llu to %llu\n",     \
                    name, (unsigned long long)(lo), (unsigned long long)(hi));               \
            return -1;                                                                       \
        }                                                                                    \
        field = (__typeof__(field))n_;                                                       \
        i++;                                                                                 \
        continue;                                                                            \
    }
        NUM("--exec-timeout", c->exec_timeout, 1, 86400)
        NUM("--max-attempts", c->max_attempts, 1, 1000)
        NUM("--backoff-ms", c->backoff_ms, 1, 3600000)
        NUM("--claim-idle-ms", c->claim_idle_ms, 1, 86400000)
        NUM("--count", c->count, 1, 1000)
        NUM("--block-ms", c->block_ms, 1, 60000)
#undef NUM
        if (strcmp(a, "--quiet") == 0) {
            c->quiet = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "pdwebhook consume: unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    const char *missing = !c->redis      ? "--redis"
                          : !c->group    ? "--group"
                          : !c->consumer ? "--consumer"
                          : !c->exec     ? "--exec"
                                         : NULL;
    if (missing) {
        fprintf(stderr, "pdwebhook consume: %s is required\n", missing);
        usage(stderr);
        return -1;
    }
    if (!c->claim_idle_ms) /* longer than a command may run, so that none is taken over */
        c->claim_idle_ms = (c->exec_timeout + 10ull) * 1000;
    if (c->state && mkdir(c->state, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pdwebhook consume: cannot create %s: %s\n", c->state, strerror(errno));
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
