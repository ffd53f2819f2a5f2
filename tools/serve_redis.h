/* pdwebhook serve --redis: the Redis dedup store and the stream writer, wired between the
 * receiver, the local spool and the worker (see pdwebhook/redis.h and the README's "More
 * than one machine").
 *
 * - dedup: Redis's SET NX PX (in flight "0", confirmed "1"), with the local memory store
 *   as fallback while Redis cannot be reached (the delivery is still answered 200 once
 *   spooled: no 503 that would feed Pipedrive's ban counter; the stream's guard keeps the
 *   stream free of twins).
 * - worker: each spooled delivery goes to the stream first (waiting in the spool while
 *   Redis is down), then to --output / --exec when given. */
#ifndef PDW_SERVE_REDIS_H
#define PDW_SERVE_REDIS_H

#include <jansson.h>
#include <pdwebhook/durable.h>

#include "sinks.h"

typedef struct serve_redis serve_redis;

typedef struct serve_redis_config {
    const char *url;
    const char *stream;   /* NULL: default */
    const char *prefix;   /* NULL: default */
    uint64_t maxlen;      /* 0: no trimming */
    pdw_dedup_store *fallback; /* the local store, used while Redis is down; taken over by
                                  serve_redis_open() whatever it returns */
    sinks *sinks;         /* handed on after the stream */
} serve_redis_config;

/* Connect and check the URL and the credentials. 0, or -1 with a message printed (a bad
 * URL or refused credentials stop the server; an unreachable Redis only warns). */
int serve_redis_open(serve_redis **out, const serve_redis_config *c);
/* The sinks to hand on to after the stream (may come after serve_redis_open()). r may be
 * NULL (no --redis). */
void serve_redis_set_sinks(serve_redis *r, sinks *s);
/* The dedup store to give the receiver: the caller owns it from here on (serve_redis keeps
 * a borrowed pointer for its counters, so it must live as long as health is asked). */
pdw_dedup_store *serve_redis_take_dedup(serve_redis *r);
/* pdw_worker_handle_cb (user: the serve_redis). */
int serve_redis_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                       size_t errcap, void *user);
/* Before pdw_worker_stop(): stop waiting for Redis. */
void serve_redis_cancel(serve_redis *r);
void serve_redis_close(serve_redis *r);
/* Add "redis" to the /healthz object; spool_pending: deliveries not yet handed on.
 * Returns 1 when Redis is unreachable (for the status line). */
int serve_redis_health(serve_redis *r, json_t *o, uint64_t spool_pending, int64_t now_ms);

#endif
