/* pdwebhook serve's /metrics (Prometheus text format) and its request counters. */
#ifndef PDW_SERVE_METRICS_H
#define PDW_SERVE_METRICS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <pdwebhook/pdwebhook.h>

#define SERVE_NSTATUS 16
#define SERVE_NREASONS 64

/* Requests by status (the index of serve_status_index()) and reason (-code). */
typedef struct serve_requests {
    atomic_ullong count[SERVE_NSTATUS][SERVE_NREASONS];
} serve_requests;

/* The statuses counted one by one; the last index holds any other. */
static inline size_t serve_status_index(int status)
{
    static const int known[SERVE_NSTATUS - 1] = { 200, 202, 204, 400, 401, 403, 404, 405,
                                                  408, 413, 415, 429, 500, 503, 0 };
    for (size_t i = 0; i < SERVE_NSTATUS - 2; i++)
        if (known[i] == status)
            return i;
    return SERVE_NSTATUS - 1;
}

static inline unsigned serve_status_of(size_t i)
{
    static const unsigned known[SERVE_NSTATUS] = { 200, 202, 204, 400, 401, 403, 404, 405,
                                                   408, 413, 415, 429, 500, 503, 0, 599 };
    return known[i];
}

/* The metrics page from the /healthz object, the counters and the ban model: a malloc'd
 * text of *len bytes, or NULL. */
char *serve_metrics(json_t *health, const serve_requests *rq, pdw_health *ban, int64_t now_ms,
                    size_t *len);

#endif
