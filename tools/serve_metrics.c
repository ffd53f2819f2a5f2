/* pdwebhook serve's GET /metrics: the counters of /healthz in Prometheus's text format
 * (version 0.0.4), requests by status and reason, and the ban model per webhook. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_metrics.h"

/* One metric read from the /healthz object: "spool.bytes" is o["spool"]["bytes"]. */
typedef struct from_health {
    const char *path;
    const char *name;
    const char *type; /* counter or gauge */
    const char *help;
} from_health;

static const from_health table[] = {
    { "received", "pdwebhook_requests_received_total", "counter",
      "Delivery requests answered (not /healthz nor /metrics)." },
    { "accepted", "pdwebhook_deliveries_accepted_total", "counter",
      "Deliveries accepted (answered 2xx as new)." },
    { "duplicates", "pdwebhook_deliveries_duplicate_total", "counter",
      "Deliveries recognised as retries of accepted ones (answered 200, not handed on)." },
    { "rejected", "pdwebhook_requests_rejected_total", "counter",
      "Requests refused (4xx or 5xx)." },
    { "in_flight", "pdwebhook_requests_in_flight", "gauge",
      "Delivery requests being received or waiting for their flush." },
    { "handled", "pdwebhook_handled_total", "counter",
      "Deliveries handed on to the handlers (--output, --exec, Redis)." },
    { "queued", "pdwebhook_handler_queue", "gauge",
      "Deliveries waiting for or in a handler." },
    { "retries", "pdwebhook_handler_retries_total", "counter",
      "Handler attempts that failed and were retried." },
    { "handler_failures", "pdwebhook_handler_failures_total", "counter",
      "Handler attempts that failed." },
    { "dead_letters", "pdwebhook_dead_letters_total", "counter",
      "Deliveries given up after their last attempt (in the dead-letter file)." },
    { "spool.pending", "pdwebhook_spool_pending", "gauge",
      "Deliveries durable in the spool and not handed on yet (the lag)." },
    { "spool.bytes", "pdwebhook_spool_bytes", "gauge", "Bytes in the spool's segments." },
    { "spool.segments", "pdwebhook_spool_segments", "gauge", "Segment files of the spool." },
    { "spool.appended", "pdwebhook_spool_appended_total", "counter",
      "Deliveries appended to the spool since start." },
    { "spool.flushes", "pdwebhook_spool_flushes_total", "counter",
      "fdatasync calls of the spool since start (appended / flushes = the mean group-commit "
      "batch)." },
    { "spool.full", "pdwebhook_spool_full", "gauge",
      "1 while the spool is full (deliveries are answered 503)." },
    { "spool.full_errors", "pdwebhook_spool_full_errors_total", "counter",
      "Appends refused for space." },
    { "spool.io_errors", "pdwebhook_spool_io_errors_total", "counter",
      "Spool flushes that failed." },
    { "intake.awaiting_flush", "pdwebhook_intake_awaiting_flush", "gauge",
      "Requests appended and waiting for their flush." },
    { "intake.durable", "pdwebhook_intake_durable_total", "counter",
      "Deliveries answered 200 after their flush." },
    { "intake.failed", "pdwebhook_intake_failed_total", "counter",
      "Deliveries answered 503 because their append or flush failed." },
    { "output.write_errors", "pdwebhook_output_write_errors_total", "counter",
      "Failed --output writes (each retried)." },
    { "output.failing", "pdwebhook_output_failing", "gauge",
      "1 while the last --output write failed." },
    { "redis.connected", "pdwebhook_redis_connected", "gauge", "1 while Redis answers." },
    { "redis.forwarded", "pdwebhook_redis_forwarded_total", "counter",
      "Deliveries added to the Redis stream." },
    { "redis.lag", "pdwebhook_redis_lag", "gauge",
      "Deliveries in the spool not yet in the Redis stream." },
    { "redis.lag_ms", "pdwebhook_redis_lag_milliseconds", "gauge",
      "Age of the oldest delivery waiting for Redis." },
    { "redis.failures", "pdwebhook_redis_failures_total", "counter",
      "Failed attempts to forward to Redis." },
    { "redis.dedup.fallbacks", "pdwebhook_redis_dedup_fallbacks_total", "counter",
      "Dedup claims answered by the local store because Redis did not." },
};

static json_t *at(json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = json_object_get(o, key);
        path += n;
        if (*path == '.')
            path++;
    }
    return o;
}

/* A label value: printable ASCII, with \\, \" escaped; any other byte as '_'. */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == '"')
            fprintf(f, "\\%c", c);
        else
            fputc(c >= 0x20 && c < 0x7f ? c : '_', f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *serve_metrics(json_t *health, const serve_requests *rq, pdw_health *ban, int64_t now_ms,
                    size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    head(f, "pdwebhook_build_info", "gauge", "The library version.");
    fputs("pdwebhook_build_info{version=\"", f);
    label(f, pdw_version());
    fputs("\"} 1\n", f);

    head(f, "pdwebhook_requests_total", "counter",
         "Requests answered, by HTTP status and reason code.");
    for (size_t i = 0; i < SERVE_NSTATUS; i++)
        for (size_t k = 0; k < SERVE_NREASONS; k++) {
            unsigned long long v = atomic_load(&rq->count[i][k]);
            if (!v)
                continue;
            if (i == SERVE_NSTATUS - 1)
                fputs("pdwebhook_requests_total{status=\"other\",reason=\"", f);
            else
                fprintf(f, "pdwebhook_requests_total{status=\"%u\",reason=\"",
                        serve_status_of(i));
            label(f, pdw_err_name(-(int)k));
            fprintf(f, "\"} %llu\n", v);
        }

    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        json_t *v = at(health, table[i].path);
        if (!v || !(json_is_integer(v) || json_is_boolean(v)))
            continue;
        head(f, table[i].name, table[i].type, table[i].help);
        fprintf(f, "%s %lld\n", table[i].name,
                json_is_boolean(v) ? (long long)json_is_true(v)
                                   : (long long)json_integer_value(v));
    }

    size_t nw = pdw_health_count(ban);
    static const struct {
        const char *name, *type, *help;
    } per[] = {
        { "pdwebhook_webhook_failed_first_attempts", "gauge",
          "Failed first attempts counted as Pipedrive counts them (10 = a ban)." },
        { "pdwebhook_webhook_banned", "gauge", "1 while a predicted ban window is open." },
        { "pdwebhook_webhook_bans_total", "counter", "Bans predicted." },
        { "pdwebhook_webhook_stale", "gauge",
          "1 after 48 h without a successful delivery (Pipedrive deletes a webhook at 3 days)." },
        { "pdwebhook_webhook_last_success_timestamp_seconds", "gauge",
          "The last delivery answered 2xx in time (0: none)." },
        { "pdwebhook_webhook_deliveries_total", "counter", "Answers recorded." },
        { "pdwebhook_webhook_failures_total", "counter", "Answers that failed (non-2xx or late)." },
    };
    for (size_t m = 0; m < sizeof per / sizeof per[0] && nw; m++) {
        head(f, per[m].name, per[m].type, per[m].help);
        for (size_t i = 0; i < nw; i++) {
            pdw_health_webhook w;
            if (pdw_health_get(ban, i, now_ms, &w) != 0)
                continue;
            double val = m == 0   ? (double)w.failed_first_attempts
                         : m == 1 ? (double)w.banned
                         : m == 2 ? (double)w.bans
                         : m == 3 ? (double)w.stale
                         : m == 4 ? (double)w.last_success_ms / 1000.0
                         : m == 5 ? (double)w.deliveries
                                  : (double)w.failures;
            fprintf(f, "%s{webhook_id=\"", per[m].name);
            label(f, w.webhook_id);
            fprintf(f, "\"} %.17g\n", val);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
