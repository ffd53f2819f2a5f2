/* pdwebhook serve --redis (see serve_redis.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve_redis.h"

#ifndef PDW_HAVE_REDIS
/* Built without libpdwebhook-redis: --redis is refused at start with a clear message. */
int serve_redis_open(serve_redis **out, const serve_redis_config *c)
{
    pdw_dedup_store_free(c->fallback); /* taken whatever the result */
    *out = NULL;
    fprintf(stderr, "pdwebhook serve: --redis needs Redis support: install libhiredis-dev "
                    "and rebuild\n");
    return -1;
}
void serve_redis_set_sinks(serve_redis *r, sinks *s) { (void)r; (void)s; }
pdw_dedup_store *serve_redis_take_dedup(serve_redis *r) { (void)r; return NULL; }
int serve_redis_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                       size_t errcap, void *user)
{
    (void)rec; (void)attempt; (void)user;
    snprintf(errbuf, errcap, "built without Redis support");
    return -1;
}
void serve_redis_cancel(serve_redis *r) { (void)r; }
void serve_redis_close(serve_redis *r) { (void)r; }
int serve_redis_health(serve_redis *r, json_t *o, uint64_t spool_pending, int64_t now_ms)
{
    (void)r; (void)o; (void)spool_pending; (void)now_ms;
    return 0;
}
#else
#include <pdwebhook/redis.h>

struct serve_redis {
    pdw_redis *dedup_conn, *stream_conn; /* two, so that forwarding never delays a claim */
    pdw_dedup_store *dedup; /* the Redis store (its counters) */
    int dedup_taken;        /* handed to the caller: no longer ours to free */
    pdw_redis_stream *stream;
    sinks *sinks;
    char where[300];
    char stream_name[256];
};

static void say(const char *msg)
{
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ WARNING: %s; deliveries are deduplicated locally and wait in "
                    "the spool until Redis is back\n", ts, now.tv_nsec / 1000000, msg);
}

int serve_redis_open(serve_redis **out, const serve_redis_config *c)
{
    pdw_error err;
    pdw_error_clear(&err);
    serve_redis *r = calloc(1, sizeof *r);
    if (!r) {
        pdw_dedup_store_free(c->fallback); /* taken whatever the result */
        return -1;
    }
    r->sinks = c->sinks;
    pdw_redis_url u = PDW_REDIS_URL_INIT;
    if (pdw_redis_url_parse(c->url, &u, &err) == 0)
        snprintf(r->where, sizeof r->where, "%s:%u/%u", u.host, u.port, u.db);
    memset(&u, 0, sizeof u);
    snprintf(r->stream_name, sizeof r->stream_name, "%s",
             c->stream ? c->stream : PDW_REDIS_DEFAULT_STREAM);
    pdw_redis_options ro = PDW_REDIS_OPTIONS_INIT;
    ro.connect_timeout_ms = 1000;
    ro.reconnect_max_ms = 2000;
    char host[200] = "";
    gethostname(host, sizeof host - 1);
    pdw_redis_dedup_options dopt = PDW_REDIS_DEDUP_OPTIONS_INIT;
    dopt.prefix = c->prefix;
    dopt.fallback = c->fallback;
    pdw_redis_stream_options sopt = PDW_REDIS_STREAM_OPTIONS_INIT;
    sopt.stream = c->stream;
    sopt.prefix = c->prefix;
    sopt.maxlen = c->maxlen;
    sopt.source = host[0] ? host : NULL;
    if (pdw_redis_new(&r->dedup_conn, c->url, &ro, &err) != 0 ||
        pdw_redis_new(&r->stream_conn, c->url, &ro, &err) != 0 ||
        pdw_redis_stream_new(&r->stream, r->stream_conn, &sopt, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: --redis: %s\n", err.message);
        serve_redis_close(r);
        pdw_dedup_store_free(c->fallback); /* taken whatever the result */
        return -1;
    }
    int rc = pdw_redis_ping(r->dedup_conn, &err);
    if (rc == PDW_EREDIS) {
        say(err.message);
    } else if (rc != 0) {
        fprintf(stderr, "pdwebhook serve: --redis: %s\n", err.message);
        serve_redis_close(r);
        pdw_dedup_store_free(c->fallback); /* taken whatever the result */
        return -1;
    }
    /* it takes the fallback over, also when it fails */
    if (pdw_redis_dedup_new(&r->dedup, r->dedup_conn, &dopt, &err) != 0) {
        fprintf(stderr, "pdwebhook serve: --redis: %s\n", err.message);
        serve_redis_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void serve_redis_set_sinks(serve_redis *r, sinks *s)
{
    if (r)
        r->sinks = s;
}

pdw_dedup_store *serve_redis_take_dedup(serve_redis *r)
{
    r->dedup_taken = 1;
    return r->dedup;
}

int serve_redis_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                       size_t errcap, void *user)
{
    serve_redis *r = user;
    /* the stream first: it waits (in the spool) while Redis is down, and its guard makes a
     * repeat after a failing --exec harmless; the sinks keep their own exactly-once books */
    int rc = pdw_redis_stream_handle(rec, attempt, errbuf, errcap, r->stream);
    if (rc != 0)
        return rc;
    return sinks_handle(rec, attempt, errbuf, errcap, r->sinks);
}

void serve_redis_cancel(serve_redis *r)
{
    if (r)
        pdw_redis_stream_cancel(r->stream);
}

void serve_redis_close(serve_redis *r)
{
    if (!r)
        return;
    pdw_redis_stream_free(r->stream);
    if (!r->dedup_taken)
        pdw_dedup_store_free(r->dedup);
    pdw_redis_free(r->stream_conn);
    pdw_redis_free(r->dedup_conn);
    free(r);
}

int serve_redis_health(serve_redis *r, json_t *o, uint64_t spool_pending, int64_t now_ms)
{
#define N(x) json_integer((json_int_t)(x))
    pdw_redis_stats cs, ds;
    pdw_redis_stream_stats ss;
    pdw_redis_dedup_stats dd;
    pdw_redis_get_stats(r->stream_conn, &cs);
    pdw_redis_get_stats(r->dedup_conn, &ds);
    pdw_redis_stream_get_stats(r->stream, &ss);
    pdw_redis_dedup_get_stats(r->dedup, &dd);
    /* unreachable: the forwarder waits for it, or the last command on either failed */
    int down = ss.waiting > 0 || (cs.down_since_ms != 0) || (ds.down_since_ms != 0);
    json_t *j = json_object(), *d = json_object();
    json_object_set_new(j, "server", json_string(r->where));
    json_object_set_new(j, "stream", json_string(r->stream_name));
    json_object_set_new(j, "connected", json_boolean(!down));
    json_object_set_new(j, "forwarded", N(ss.added));
    json_object_set_new(j, "already_forwarded", N(ss.already));
    json_object_set_new(j, "lag", N(spool_pending));
    json_object_set_new(j, "waiting", N(ss.waiting));
    json_object_set_new(j, "lag_ms", N(ss.oldest_waiting_ms ? now_ms - ss.oldest_waiting_ms : 0));
    json_object_set_new(j, "last_lag_ms", N(ss.last_lag_ms));
    json_object_set_new(j, "failures", N(ss.failures));
    const char *last = cs.last_error[0] ? cs.last_error : ds.last_error;
    json_object_set_new(j, "last_error", json_string(last));
    json_object_set_new(d, "claims", N(dd.claims));
    json_object_set_new(d, "duplicates", N(dd.duplicates));
    json_object_set_new(d, "fallbacks", N(dd.fallbacks));
    json_object_set_new(d, "errors", N(dd.errors));
    json_object_set_new(j, "dedup", d);
    json_object_set_new(o, "redis", j);
#undef N
    return down;
}
#endif /* PDW_HAVE_REDIS */
