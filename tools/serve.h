/* pdwebhook serve: its configuration, from the command line, a configuration file and the
 * environment (tools/serve_config.c), shared with the server (tools/serve.c). */
#ifndef PDW_SERVE_H
#define PDW_SERVE_H

#include <pdwebhook/pdwebhook.h>

#define MAX_CREDENTIALS 64
#define MAX_THREADS 16 /* default pool: the online CPUs, at most this */

typedef struct config {
    const char *listen;
    const char *path;
    const char *output;
    const char *exec;
    const char *spool;       /* --spool, or the default state directory's spool */
    int spool_defaulted;     /* spool is the default one (printed at start) */
    int memory;              /* --memory: no spool, accepted deliveries in memory only */
    const char *dead_letter;
    const char *tls_cert, *tls_key;
    const char *token;
    const char *allow_from[16];    /* --allow-from FILE|CIDR (repeatable) */
    size_t nallow;
    const char *trusted_proxy[16]; /* --trusted-proxy FILE|CIDR (repeatable) */
    size_t ntrusted;
    const char *config_file; /* the configuration file read, or NULL */
    const char *admin_listen;/* --admin-listen HOST:PORT: /healthz and /metrics; NULL: off */
    const char *log_file;    /* --log-file: reopened on SIGHUP; NULL: stderr */
    int log_json;            /* --log-format json */
    int log_level;           /* LOG_* of log.h */
    size_t max_body;
    unsigned long long spool_max, segment_size, dedup_capacity;
    unsigned exec_timeout, workers, max_attempts, spool_retain_s;
    unsigned inflight_lease_s; /* --inflight-lease; 0: the library's default (60 s) */
    unsigned threads; /* HTTP thread pool size (epoll); 0 until parsed: online CPUs */
    unsigned long long backoff_ms;
    int insecure, sync_mode, sync_failure_status;
    const char *redis, *stream, *redis_prefix; /* --redis: scale-out (serve_redis.h) */
    unsigned long long stream_maxlen;
    unsigned per_ip, header_timeout_s, body_timeout_s; /* the connection guard (guard.h) */
    /* --reconcile, --watch-subscriptions (autoreconcile.h) */
    int reconcile, watch;
    int skip_stale; /* --skip-stale: the sinks skip a change older than one handed on */
    int dedup_versions; /* --dedup-versions: the intake's dedup_change */
    unsigned retry_horizon_s, watch_interval_s;
    const char *api_token, *oauth_token, *base_url, *reconcile_objects;
    const char *public_url, *watch_events, *webhook_version;
    pdw_credential creds[MAX_CREDENTIALS];
    size_t ncreds;
    char *cred_storage[MAX_CREDENTIALS]; /* lines read from --credentials, or generated */
    char spool_buf[4096];                /* the default spool's path */
} config;

/* Fill c from PDWEBHOOK_USER / PDWEBHOOK_PASSWORD, the configuration file (--config FILE,
 * else $PDWEBHOOK_CONFIG, else /etc/pdwebhook/pdwebhook.conf when present) and argv (which
 * overrides the file). 0, 1 (--help printed) or -1 (a usage error, printed: exit 2). */
int serve_config_load(config *c, int argc, char **argv);

/* Free what serve_config_load() allocated. */
void serve_config_free(config *c);

#endif
