/* pdwebhook serve's options: the table (tools/options.h), the configuration file, the
 * credentials, the default spool in the state directory, the checks that span options. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoreconcile.h"
#include "cli.h"
#include "log.h"
#include "options.h"
#include "serve.h"

#define DEFAULT_CONFIG "/etc/pdwebhook/pdwebhook.conf"

enum {
    SV_LISTEN = 1, SV_PATH, SV_USER, SV_PASSWORD, SV_PASSWORD_FILE, SV_CREDENTIALS, SV_TOKEN,
    SV_TOKEN_FILE, SV_INSECURE, SV_MAX_BODY, SV_OUTPUT, SV_EXEC, SV_EXEC_TIMEOUT, SV_SPOOL, SV_MEMORY,
    SV_NO_SPOOL, SV_SPOOL_MAX, SV_SPOOL_RETAIN, SV_SEGMENT_SIZE, SV_DEDUP_CAPACITY,
    SV_INFLIGHT_LEASE, SV_DEAD_LETTER, SV_WORKERS, SV_THREADS, SV_MAX_ATTEMPTS, SV_BACKOFF, SV_SYNC,
    SV_SYNC_STATUS, SV_REDIS, SV_REDIS_FILE, SV_STREAM, SV_REDIS_PREFIX, SV_STREAM_MAXLEN,
    SV_TLS_CERT, SV_TLS_KEY, SV_ADMIN_LISTEN, SV_LOG_FORMAT, SV_LOG_LEVEL, SV_LOG_FILE, SV_CONFIG,
    SV_PER_IP, SV_HEADER_TIMEOUT, SV_BODY_TIMEOUT, SV_RECONCILE, SV_API_TOKEN,
    SV_API_TOKEN_FILE, SV_OAUTH_TOKEN, SV_OAUTH_TOKEN_FILE, SV_BASE_URL, SV_RECONCILE_OBJECTS,
    SV_RETRY_HORIZON, SV_WATCH, SV_WATCH_INTERVAL, SV_PUBLIC_URL, SV_WATCH_EVENTS,
    SV_WEBHOOK_VERSION, SV_ALLOW_FROM, SV_TRUSTED_PROXY, SV_SKIP_STALE, SV_DEDUP_VERSIONS,
};

#define STR(id, name, arg, help) { id, name, 0, arg, PDW_OPT_STRING, 0, 0, 0, 0, 0, help, 0 }
#define SECRET(id, name, arg, help)                                                          \
    { id, name, 0, arg, PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_SECRET, help, 0 }
#define FILE_OF(id, name, of, help)                                                          \
    { id, name, 0, "FILE", PDW_OPT_FILE_OF, 0, 0, 0, 0, 0, help, of }
#define FLAG(id, name, help) { id, name, 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, help, 0 }
#define NUM(id, name, arg, type, lo, hi, help) { id, name, 0, arg, type, lo, hi, 0, 0, 0, help, 0 }

static const pdw_opt serve_opts[] = {
    STR(SV_CONFIG, "config", "FILE",
        "read options from FILE: 'key = value' lines, the keys are these\n"
        "long options (default $PDWEBHOOK_CONFIG, else " DEFAULT_CONFIG "\n"
        "when present); options given here override it"),
    STR(SV_LISTEN, "listen", "HOST:PORT",
        "where to listen (default 127.0.0.1:8080; port 0 = any free)"),
    STR(SV_PATH, "path", "PATH", "accept deliveries only on PATH, starting with / (default: any\npath)"),
    STR(SV_USER, "user", "U", "the Basic auth user (also PDWEBHOOK_USER)"),
    SECRET(SV_PASSWORD, "password", "P",
           "its password (also PDWEBHOOK_PASSWORD; on the command line\nevery user sees it: "
           "prefer the variable or --password-file)"),
    FILE_OF(SV_PASSWORD_FILE, "password-file", SV_PASSWORD,
            "the password, read from FILE (mode 0600 or stricter)"),
    STR(SV_CREDENTIALS, "credentials", "FILE", "several user:password lines (rotation); # comments"),
    SECRET(SV_TOKEN, "token", "T", "require ?token=T in the URL"),
    FILE_OF(SV_TOKEN_FILE, "token-file", SV_TOKEN, "the token, read from FILE (mode 0600 or stricter)"),
    FLAG(SV_INSECURE, "insecure-no-auth", "accept deliveries without any credentials"),
    NUM(SV_MAX_BODY, "max-body", "BYTES", PDW_OPT_SIZE, 1, 1ull << 32,
        "body limit (default 1M), refused early on Content-Length"),
    STR(SV_OUTPUT, "output", "FILE", "one JSON line per accepted event (- = stdout); reopened on\nSIGHUP"),
    STR(SV_EXEC, "exec", "CMD",
        "run CMD (sh -c) per event, the event JSON line on stdin;\nexit 0 = handled (env: "
        "PDWEBHOOK_DELIVERY_KEY, _EVENT, _ATTEMPT);\nits output goes to the log, prefixed, at "
        "most 64k per event"),
    NUM(SV_EXEC_TIMEOUT, "exec-timeout", "SECONDS", PDW_OPT_SECONDS, 1, 86400,
        "kill a handler running longer (default 60)"),
    STR(SV_SPOOL, "spool", "DIR",
        "journal each delivery durably before answering 200; hand it\non afterwards, exactly "
        "once, across crashes and restarts\n(default: STATE/spool, STATE being $STATE_DIRECTORY,"
        "\n$XDG_STATE_HOME/pdwebhook or ~/.local/state/pdwebhook)"),
    FLAG(SV_MEMORY, "memory",
         "no spool: keep accepted deliveries in memory only (a crash\nor kill -9 loses those not "
         "yet handed on)"),
    { SV_NO_SPOOL, "no-spool", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, PDW_OPT_HIDDEN, "same as --memory", 0 },
    NUM(SV_SPOOL_MAX, "spool-max", "BYTES", PDW_OPT_SIZE, 4096, 1ull << 50,
        "answer 503 + Retry-After past this journal size (default: disk)"),
    NUM(SV_SPOOL_RETAIN, "spool-retain", "SECONDS", PDW_OPT_SECONDS, 0, 7 * 86400,
        "keep handled deliveries this long, so that retries are still\nrecognised after a "
        "restart (default 900)"),
    NUM(SV_SEGMENT_SIZE, "segment-size", "BYTES", PDW_OPT_SIZE, 65536, 1ull << 32,
        "rotate the journal's segment files past this size (default 64M)"),
    NUM(SV_DEDUP_CAPACITY, "dedup-capacity", "N", PDW_OPT_NUMBER, 1024, 1ull << 26,
        "delivery keys the dedup store remembers (default 65536;\nabout 200 bytes each)"),
    NUM(SV_INFLIGHT_LEASE, "inflight-lease", "SECONDS", PDW_OPT_SECONDS, 0, 86400,
        "how long a delivery being accepted holds its dedup key\nbefore it is confirmed "
        "(default 60; 0 = default): after a\ncrash in between, a retry is taken as new once it "
        "is over"),
    STR(SV_DEAD_LETTER, "dead-letter", "FILE",
        "where given-up events go (default DIR/deadletter.jsonl);\nreopened on SIGHUP"),
    NUM(SV_WORKERS, "workers", "N", PDW_OPT_NUMBER, 1, 256,
        "handler threads; one entity stays in order (default 4)"),
    NUM(SV_THREADS, "threads", "N", PDW_OPT_NUMBER, 1, 256,
        "HTTP threads (epoll; default: the online CPUs, at most 16);\nwith --sync or --redis, a "
        "thread per connection instead"),
    NUM(SV_MAX_ATTEMPTS, "max-attempts", "N", PDW_OPT_NUMBER, 1, 1000,
        "tries per event before the dead letter (default 8)"),
    NUM(SV_BACKOFF, "backoff-ms", "MS", PDW_OPT_MILLIS, 1, 3600000,
        "first retry delay, doubled each time up to 60 s (default 1000)"),
    FLAG(SV_SYNC, "sync",
         "run the handlers inside the request and answer their result;\na failing or slow "
         "handler then feeds Pipedrive's ban counter"),
    NUM(SV_SYNC_STATUS, "sync-failure-status", "N", PDW_OPT_NUMBER, 200, 599,
        "the status of a failed handler with --sync (default 500)"),
    SECRET(SV_REDIS, "redis", "URL",
           "share dedup with other receivers and forward each spooled\nevent to a Redis stream "
           "(redis://[[user]:password@]host[:port][/db]);\nsee pdwebhook consume"),
    FILE_OF(SV_REDIS_FILE, "redis-file", SV_REDIS, "the Redis URL, read from FILE (it may hold a password)"),
    STR(SV_STREAM, "stream", "NAME", "the stream (default pdwebhook:events)"),
    STR(SV_REDIS_PREFIX, "redis-prefix", "P", "prefix of pdwebhook's Redis keys (default pdwebhook:)"),
    NUM(SV_STREAM_MAXLEN, "stream-maxlen", "N", PDW_OPT_NUMBER, 1, 1ull << 62,
        "trim the stream to about N entries (default: no trimming)"),
    STR(SV_TLS_CERT, "tls-cert", "FILE", "serve HTTPS with this certificate (PEM)"),
    STR(SV_TLS_KEY, "tls-key", "FILE", "and this key (PEM)"),
    { SV_ALLOW_FROM, "allow-from", 0, "FILE|CIDR", PDW_OPT_STRING, 0, 0, 0, 0, PDW_OPT_REPEAT,
      "only these source addresses may deliver (403 for others;\nrepeatable; a file of CIDRs, "
      "# comments: Pipedrive's list\nis dist/pipedrive-ip-ranges.txt)", 0 },
    { SV_TRUSTED_PROXY, "trusted-proxy", 0, "FILE|CIDR", PDW_OPT_STRING, 0, 0, 0, 0,
      PDW_OPT_REPEAT, "a reverse proxy whose X-Forwarded-For names the client", 0 },
    NUM(SV_PER_IP, "max-connections-per-ip", "N", PDW_OPT_NUMBER, 0, 100000,
        "connections one client address may hold (default 128;\n0 = no limit, e.g. behind a "
        "reverse proxy that limits)"),
    NUM(SV_HEADER_TIMEOUT, "header-timeout", "SECONDS", PDW_OPT_SECONDS, 0, 3600,
        "a request's whole head must arrive within this (default\n10; 0 = none): a client "
        "trickling bytes cannot hold a slot"),
    NUM(SV_BODY_TIMEOUT, "body-timeout", "SECONDS", PDW_OPT_SECONDS, 0, 3600,
        "the body must be complete this long after the head\n(default 20; 0 = none)"),
    FLAG(SV_DEDUP_VERSIONS, "dedup-versions",
         "hand one change on once when it comes in both payload\nversions (a v1 -> v2 "
         "migration runs both webhooks)"),
    FLAG(SV_SKIP_STALE, "skip-stale",
         "do not hand on a change older than one already handed on\nfor the same entity "
         "(Pipedrive's retries can arrive after a\nnewer change): skipped, counted, logged"),
    FLAG(SV_RECONCILE, "reconcile",
         "read what Pipedrive dropped from its API by itself: predicted\nban windows once over, "
         "and this receiver's downtime when\nlonger than --retry-horizon (needs a spool and a "
         "token)"),
    SECRET(SV_API_TOKEN, "api-token", "T", "Pipedrive API token (default $PIPEDRIVE_API_TOKEN)"),
    FILE_OF(SV_API_TOKEN_FILE, "api-token-file", SV_API_TOKEN,
            "the API token, read from FILE (mode 0600 or stricter)"),
    SECRET(SV_OAUTH_TOKEN, "oauth-token", "T", "or an OAuth token (default $PIPEDRIVE_OAUTH_TOKEN)"),
    FILE_OF(SV_OAUTH_TOKEN_FILE, "oauth-token-file", SV_OAUTH_TOKEN,
            "the OAuth token, read from FILE (mode 0600 or stricter)"),
    STR(SV_BASE_URL, "base-url", "URL", "API base (default $PIPEDRIVE_BASE_URL, else Pipedrive's)"),
    STR(SV_RECONCILE_OBJECTS, "reconcile-objects", "L",
        "objects reconciled (default: the plan's, else all)"),
    NUM(SV_RETRY_HORIZON, "retry-horizon", "SECONDS", PDW_OPT_SECONDS, 1, 86400,
        "downtime Pipedrive's retries cover (default 200)"),
    FLAG(SV_WATCH, "watch-subscriptions",
         "list the account's webhooks every --watch-interval; re-create\na missing one of "
         "--public-url and reconcile its gap"),
    NUM(SV_WATCH_INTERVAL, "watch-interval", "SECONDS", PDW_OPT_SECONDS, 1, 86400,
        "(default 300)"),
    STR(SV_PUBLIC_URL, "public-url", "URL",
        "the URL Pipedrive delivers to (as subscriptions --url)"),
    STR(SV_WATCH_EVENTS, "watch-events", "LIST",
        "the webhooks that must exist (as subscriptions --events)"),
    STR(SV_WEBHOOK_VERSION, "webhook-version", "V", "their version, 1.0 or 2.0 (default 2.0)"),
    STR(SV_ADMIN_LISTEN, "admin-listen", "HOST:PORT",
        "serve GET /healthz and /metrics (Prometheus) there instead of\non the delivery port "
        "(default: off, /healthz on the delivery port)"),
    STR(SV_LOG_FORMAT, "log-format", "FORMAT", "text (default) or json: one JSON object per line"),
    STR(SV_LOG_LEVEL, "log-level", "LEVEL", "error, warn, info (default) or debug"),
    STR(SV_LOG_FILE, "log-file", "FILE", "log there instead of to stderr; reopened on SIGHUP"),
};

static const pdw_opt_cmd serve_cmd = {
    "pdwebhook serve",
    "usage: pdwebhook serve [options]   (option VALUE or option=VALUE)\n",
    serve_opts, sizeof serve_opts / sizeof serve_opts[0],
    "Numbers take units: sizes k, M, G; durations ms, s, m, h.\n"
    "GET /healthz answers counters, the spool and the ban model as JSON.\n"
    "SIGTERM/SIGINT: finish in-flight requests and handlers, flush, exit 0.\n"
    "SIGHUP: reopen --log-file, --output and the dead-letter file (logrotate).\n"
    "Without credentials a random pair is generated and printed once at start.\n",
};

typedef struct parse_ctx {
    config *c;
    const char *user, *password, *cred_file;
} parse_ctx;

static int apply(const pdw_opt *o, const pdw_opt_value *v, void *user)
{
    parse_ctx *p = user;
    config *c = p->c;
    const char *t = v->text;
    switch (o->id) {
    case SV_CONFIG: break; /* read before the rest */
    case SV_LISTEN: {
        char host[256];
        unsigned port;
        const char *why;
        if (pdw_opt_hostport(t, host, sizeof host, &port, &why) != 0)
            return pdw_opt_error(&serve_cmd, o, v, "%s", why);
        c->listen = t;
        break;
    }
    case SV_ADMIN_LISTEN: {
        char host[256];
        unsigned port;
        const char *why;
        if (pdw_opt_hostport(t, host, sizeof host, &port, &why) != 0)
            return pdw_opt_error(&serve_cmd, o, v, "%s", why);
        c->admin_listen = t;
        break;
    }
    case SV_PATH:
        if (t[0] != '/')
            return pdw_opt_error(&serve_cmd, o, v,
                                 "a path starts with '/' (as in --path /pipedrive); no delivery "
                                 "could ever reach this one");
        if (strchr(t, '?') || strchr(t, '#'))
            return pdw_opt_error(&serve_cmd, o, v, "a path has no query or fragment");
        c->path = t;
        break;
    case SV_USER: p->user = t; break;
    case SV_PASSWORD: p->password = t; break;
    case SV_CREDENTIALS: p->cred_file = t; break;
    case SV_TOKEN: c->token = t; break;
    case SV_INSECURE: c->insecure = 1; break;
    case SV_MAX_BODY: c->max_body = (size_t)v->num; break;
    case SV_OUTPUT: c->output = t; break;
    case SV_EXEC: c->exec = t; break;
    case SV_EXEC_TIMEOUT: c->exec_timeout = (unsigned)v->num; break;
    case SV_SPOOL:
        if (!*t)
            return pdw_opt_error(&serve_cmd, o, v, "an empty directory name");
        c->spool = t;
        break;
    case SV_MEMORY:
    case SV_NO_SPOOL: c->memory = 1; break;
    case SV_SPOOL_MAX: c->spool_max = v->num; break;
    case SV_SPOOL_RETAIN: c->spool_retain_s = (unsigned)v->num; break;
    case SV_SEGMENT_SIZE: c->segment_size = v->num; break;
    case SV_DEDUP_CAPACITY: c->dedup_capacity = v->num; break;
    case SV_INFLIGHT_LEASE: c->inflight_lease_s = (unsigned)v->num; break;
    case SV_DEAD_LETTER: c->dead_letter = t; break;
    case SV_WORKERS: c->workers = (unsigned)v->num; break;
    case SV_THREADS: c->threads = (unsigned)v->num; break;
    case SV_MAX_ATTEMPTS: c->max_attempts = (unsigned)v->num; break;
    case SV_BACKOFF: c->backoff_ms = v->num; break;
    case SV_SYNC: c->sync_mode = 1; break;
    case SV_SYNC_STATUS: c->sync_failure_status = (int)v->num; break;
    case SV_REDIS: c->redis = t; break;
    case SV_STREAM: c->stream = t; break;
    case SV_REDIS_PREFIX: c->redis_prefix = t; break;
    case SV_STREAM_MAXLEN: c->stream_maxlen = v->num; break;
    case SV_TLS_CERT: c->tls_cert = t; break;
    case SV_TLS_KEY: c->tls_key = t; break;
    case SV_LOG_FORMAT:
        if (strcmp(t, "text") == 0)
            c->log_json = 0;
        else if (strcmp(t, "json") == 0)
            c->log_json = 1;
        else
            return pdw_opt_error(&serve_cmd, o, v, "text or json");
        break;
    case SV_LOG_LEVEL: {
        int l = log_level_parse(t);
        if (l < 0)
            return pdw_opt_error(&serve_cmd, o, v, "error, warn, info or debug");
        c->log_level = l;
        break;
    }
    case SV_LOG_FILE: c->log_file = t; break;
    case SV_ALLOW_FROM:
    case SV_TRUSTED_PROXY: {
        int allow = o->id == SV_ALLOW_FROM;
        size_t *n = allow ? &c->nallow : &c->ntrusted;
        if (*n == 16)
            return pdw_opt_error(&serve_cmd, o, v, "at most 16 (use a file)");
        (allow ? c->allow_from : c->trusted_proxy)[(*n)++] = t;
        break;
    }
    case SV_RECONCILE: c->reconcile = 1; break;
    case SV_SKIP_STALE: c->skip_stale = 1; break;
    case SV_DEDUP_VERSIONS: c->dedup_versions = 1; break;
    case SV_API_TOKEN: c->api_token = t; break;
    case SV_OAUTH_TOKEN: c->oauth_token = t; break;
    case SV_BASE_URL: c->base_url = t; break;
    case SV_RECONCILE_OBJECTS: c->reconcile_objects = t; break;
    case SV_RETRY_HORIZON: c->retry_horizon_s = (unsigned)v->num; break;
    case SV_WATCH: c->watch = 1; break;
    case SV_WATCH_INTERVAL: c->watch_interval_s = (unsigned)v->num; break;
    case SV_PUBLIC_URL: c->public_url = t; break;
    case SV_WATCH_EVENTS: c->watch_events = t; break;
    case SV_WEBHOOK_VERSION: c->webhook_version = t; break;
    case SV_PER_IP: c->per_ip = (unsigned)v->num; break;
    case SV_HEADER_TIMEOUT: c->header_timeout_s = (unsigned)v->num; break;
    case SV_BODY_TIMEOUT: c->body_timeout_s = (unsigned)v->num; break;
    default: return pdw_opt_error(&serve_cmd, o, v, "not handled");
    }
    return 0;
}

static int add_credential(config *c, char *user, char *password)
{
    if (c->ncreds == MAX_CREDENTIALS) {
        fprintf(stderr, "pdwebhook serve: at most %d credential pairs\n", MAX_CREDENTIALS);
        return -1;
    }
    c->creds[c->ncreds].user = user;
    c->creds[c->ncreds].password = password;
    c->ncreds++;
    return 0;
}

static int add_pair(char *user, char *password, void *ctx)
{
    return add_credential(ctx, user, password);
}

static int load_credentials(config *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr,
                "pdwebhook serve: warning: --credentials %s is readable by group or others "
                "(mode %04o): chmod 600 %s\n",
                path, (unsigned)(st.st_mode & 07777), path);
    char *text = pdw_cli_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "pdwebhook serve: --credentials %s: cannot read it: %s\n", path,
                strerror(errno));
        return -1;
    }
    c->cred_storage[c->ncreds] = text; /* owned by the first pair from this file */
    return pdw_cli_parse_credentials(text, path, "pdwebhook serve", add_pair, c) < 0 ? -1 : 0;
}

static int random_text(char *out, size_t n)
{
    static const char al[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char raw[64];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || n > sizeof raw || read(fd, raw, n) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    for (size_t i = 0; i < n; i++)
        out[i] = al[raw[i] % (sizeof al - 1)];
    out[n] = '\0';
    return 0;
}

/* mkdir -p, the new directories 0700. 0 or -1 (errno). */
static int make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char was = *p;
        *p = '\0';
        int rc = mkdir(path, 0700);
        int e = errno;
        *p = was;
        if (rc != 0 && e != EEXIST) {
            errno = e;
            return -1;
        }
        if (!was)
            return 0;
    }
}

/* The default spool: STATE/spool, STATE from systemd's $STATE_DIRECTORY (its first
 * entry), else $XDG_STATE_HOME/pdwebhook, else ~/.local/state/pdwebhook. */
static int default_spool(config *c)
{
    char base[3800];
    const char *sd = getenv("STATE_DIRECTORY"), *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (sd && *sd) {
        size_t n = strcspn(sd, ":");
        snprintf(base, sizeof base, "%.*s", (int)n, sd);
    } else if (xdg && xdg[0] == '/') {
        snprintf(base, sizeof base, "%s/pdwebhook", xdg);
    } else if (home && home[0] == '/') {
        snprintf(base, sizeof base, "%s/.local/state/pdwebhook", home);
    } else {
        fprintf(stderr, "pdwebhook serve: no state directory for the spool ($STATE_DIRECTORY, "
                        "$XDG_STATE_HOME and $HOME are unset): give --spool DIR, or --memory "
                        "to keep deliveries in memory only\n");
        return -1;
    }
    snprintf(c->spool_buf, sizeof c->spool_buf, "%s/spool", base);
    if (make_dirs(base) != 0) {
        fprintf(stderr, "pdwebhook serve: cannot create the state directory %s: %s (give "
                        "--spool DIR, or --memory)\n", base, strerror(errno));
        return -1;
    }
    c->spool = c->spool_buf;
    c->spool_defaulted = 1;
    return 0;
}

int serve_config_load(config *c, int argc, char **argv)
{
    parse_ctx p = { c, getenv("PDWEBHOOK_USER"), getenv("PDWEBHOOK_PASSWORD"), NULL };
    c->listen = "127.0.0.1:8080";
    c->max_body = 1024 * 1024;
    c->exec_timeout = 60;
    c->spool_retain_s = 900;
    c->sync_failure_status = 500;
    c->log_level = LL_INFO;
    c->per_ip = 128;
    c->header_timeout_s = 10;
    c->body_timeout_s = 20;

    /* the configuration file first: the command line overrides it */
    const char *cf = pdw_opt_find(argc, argv, 1, "config");
    int missing_ok = 0;
    if (!cf)
        cf = getenv("PDWEBHOOK_CONFIG");
    if (!cf || !*cf) {
        cf = DEFAULT_CONFIG;
        missing_ok = 1;
    }
    if (pdw_opt_config(&serve_cmd, cf, missing_ok, apply, &p) != 0)
        return -1;
    if (access(cf, F_OK) == 0)
        c->config_file = cf;
    int rc = pdw_opt_parse(&serve_cmd, argc, argv, 1, apply, &p, NULL, NULL);
    if (rc != 0)
        return rc;

    if (!c->threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
    }
    if (c->memory && c->spool) {
        fprintf(stderr, "pdwebhook serve: --memory keeps deliveries in memory only; it does "
                        "not go with --spool\n");
        return -1;
    }
    if (c->sync_mode && c->spool) {
        fprintf(stderr, "pdwebhook serve: --sync hands events on inside the request; it does "
                        "not go with --spool\n");
        return -1;
    }
    if (c->redis && !c->spool && c->memory) {
        fprintf(stderr, "pdwebhook serve: --redis needs --spool DIR: deliveries are journaled "
                        "locally before the answer and forwarded to Redis from there\n");
        return -1;
    }
    if ((c->stream || c->redis_prefix || c->stream_maxlen) && !c->redis) {
        fprintf(stderr, "pdwebhook serve: --stream, --redis-prefix and --stream-maxlen go "
                        "with --redis\n");
        return -1;
    }
    if (!!c->tls_cert != !!c->tls_key) {
        fprintf(stderr, "pdwebhook serve: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if ((p.user && !p.password) || (!p.user && p.password)) {
        fprintf(stderr, "pdwebhook serve: --user and --password go together\n");
        return -1;
    }
    if (c->segment_size && c->spool_max && c->segment_size > c->spool_max) {
        fprintf(stderr, "pdwebhook serve: --segment-size %llu is over --spool-max %llu\n",
                c->segment_size, c->spool_max);
        return -1;
    }
    if (!c->spool && !c->memory && !c->sync_mode && default_spool(c) != 0)
        return -1;
    if (c->spool && mkdir(c->spool, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pdwebhook serve: --spool %s: cannot create it: %s\n", c->spool,
                strerror(errno));
        return -1;
    }
    if (p.user && add_credential(c, (char *)(uintptr_t)p.user, (char *)(uintptr_t)p.password) < 0)
        return -1;
    if (p.cred_file && load_credentials(c, p.cred_file) < 0)
        return -1;
    if (!c->ncreds && !c->token && !c->insecure) {
        char *u = strdup("pipedrive"), *pw = malloc(25);
        if (!u || !pw || random_text(pw, 24) < 0) {
            free(u);
            free(pw);
            fprintf(stderr, "pdwebhook serve: cannot generate credentials\n");
            return -1;
        }
        c->cred_storage[0] = u;
        c->cred_storage[1] = pw;
        add_credential(c, u, pw);
        /* printed once, on purpose: to be pasted into Pipedrive's webhook form */
        fprintf(stderr,
                "pdwebhook serve: no credentials given; generated a pair for this run:\n"
                "  HTTP auth username: %s\n  HTTP auth password: %s\n"
                "Enter them in Pipedrive (Settings > Tools and apps > Webhooks), or start\n"
                "with --user/--password (or PDWEBHOOK_USER/PDWEBHOOK_PASSWORD) to keep them.\n",
                u, pw);
    }
    return 0;
}

void serve_config_free(config *c)
{
    for (size_t i = 0; i < MAX_CREDENTIALS; i++) {
        free(c->cred_storage[i]);
        c->cred_storage[i] = NULL;
    }
}
