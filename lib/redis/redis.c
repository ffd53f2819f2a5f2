/* Scale-out on Redis (see pdwebhook/redis.h): URL parsing, a reconnecting connection, the
 * shared dedup store, the stream writer with its exactly-once guard, and the consumer.
 * This library (libpdwebhook-redis) is built only when hiredis is found.
 *
 * hiredis allocates its own buffers with malloc (0.14 has no allocator hook); everything
 * of ours goes through the allocator of the connection's options. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "durable/durable.h"
#include "pdwebhook/redis.h"
#include "pdwebhook/sys/dedup_store.h"

/* ---- options (always) ----------------------------------------------------------------- */

/* NOLINTBEGIN(bugprone-macro-parentheses): type is a type name, it cannot be parenthesised */
#define OPTIONS_INIT_FN(fn, type, VERSION)                                                    \
    int fn(type *opts, unsigned version)                                                      \
    {                                                                                         \
        return pdw__struct_init(opts, sizeof *opts, version, (VERSION));                      \
    }

OPTIONS_INIT_FN(pdw_redis_options_init, pdw_redis_options, PDW_REDIS_OPTIONS_VERSION)
OPTIONS_INIT_FN(pdw_redis_dedup_options_init, pdw_redis_dedup_options,
                PDW_REDIS_DEDUP_OPTIONS_VERSION)
OPTIONS_INIT_FN(pdw_redis_stream_options_init, pdw_redis_stream_options,
                PDW_REDIS_STREAM_OPTIONS_VERSION)
OPTIONS_INIT_FN(pdw_redis_consumer_options_init, pdw_redis_consumer_options,
                PDW_REDIS_CONSUMER_OPTIONS_VERSION)
/* NOLINTEND(bugprone-macro-parentheses) */

/* ---- URL (always) --------------------------------------------------------------------- */


/* Percent-decode s[0..n) into out (cap bytes with the NUL). -1: bad escape, NUL or control
 * byte; -2: too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = pdw__hex_value((unsigned char)s[i + 1]), lo = pdw__hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (k + 1 >= cap)
            return -2;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    long long v = n <= 10 ? pdw__decimal(s, n) : -1;
    if (v < 0 || (unsigned long long)v > max)
        return -1;
    *out = (unsigned long)v;
    return 0;
}

int pdw_redis_url_parse(const char *url, pdw_redis_url *out, pdw_error *err)
{
    pdw__error_reset(err);
    if (!url || !out)
        return pdw__error_set(err, PDW_EINVAL, -1, "url and out are required");
    if (out->version != PDW_REDIS_URL_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "redis url struct version %u",
                              out->version);
    memset(out, 0, sizeof *out);
    out->version = PDW_REDIS_URL_VERSION;
    out->port = 6379;

    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        if (strncmp(url, "rediss://", 9) == 0)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL scheme: rediss:// (TLS) is not supported; use "
                                  "redis:// (through a TLS tunnel if needed)");
        if (strncmp(url, "unix:", 5) == 0 || strncmp(url, "redis+unix:", 11) == 0)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL scheme: unix sockets are not supported; use "
                                  "redis://host:port");
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "Redis URL scheme: expected redis://[[user]:password@]host"
                              "[:port][/db]");
    }
    const char *p = url + sizeof scheme - 1;
    size_t rest = strlen(p);

    /* user info: up to the last '@' (a raw password may hold '@' or '/') */
    const char *at = NULL;
    for (const char *q = p + rest; q > p; q--)
        if (q[-1] == '@') {
            at = q - 1;
            break;
        }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL user: 'redis://user@host' has no password; write "
                                  "redis://user:password@host or redis://:password@host");
        int rc = pct_decode(p, (size_t)(colon - p), out->user, sizeof out->user);
        if (rc < 0)
            return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL user: %s",
                                  rc == -2 ? "too long" : "bad percent-escape or control byte");
        rc = pct_decode(colon + 1, (size_t)(at - colon - 1), out->password,
                        sizeof out->password);
        if (rc < 0) {
            pdw__wipe(out->password, sizeof out->password);
            return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL password: %s",
                                  rc == -2 ? "too long"
                                           : "bad percent-escape or control byte (write '%%' "
                                             "as %%25)");
        }
        if (!out->password[0])
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL password: empty (leave out the '@' for none)");
        p = at + 1;
    }

    /* host */
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL host: '[' without ']'");
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL host: missing");
    if (hl >= sizeof out->host)
        return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL host: too long");
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c == 0x7f || c == '@' || c == '[' || c == ']')
            return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL host: invalid character");
    }
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';

    /* port */
    if (*p == ':') {
        p++;
        size_t n = strcspn(p, "/?#");
        unsigned long v;
        if (parse_uint(p, n, 65535, &v) < 0 || v == 0)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL port: '%.*s' is not a number from 1 to 65535",
                                  (int)(n > 16 ? 16 : n), p);
        out->port = (unsigned)v;
        p += n;
    }

    /* database */
    if (*p == '/') {
        p++;
        size_t n = strcspn(p, "?#");
        unsigned long v = 0;
        if (n && parse_uint(p, n, 1000000, &v) < 0)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "Redis URL database: '/%.*s' is not a database number",
                                  (int)(n > 16 ? 16 : n), p);
        out->db = (unsigned)v;
        p += n;
    }
    if (*p == '?' || *p == '#')
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "Redis URL: options after '%c' are not supported", *p);
    if (*p)
        return pdw__error_set(err, PDW_EINVAL, -1, "Redis URL: unexpected text after the host");
    return 0;
}


#include <hiredis/hiredis.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PREFIX "pdwebhook:"

static struct timeval tv_of(uint64_t ms)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}


/* ---- connection --------------------------------------------------------------------- */

struct pdw_redis {
    pdw_allocator alloc;
    pdw_redis_url url;
    uint64_t connect_ms, command_ms, rmin, rmax;
    pthread_mutex_t lock; /* the context and the backoff */
    redisContext *ctx;
    uint64_t delay, next_try;
    pthread_mutex_t stats_lock; /* never held across I/O */
    pdw_redis_stats stats;
};

/* How a command failed: the connection (or Redis's state) or the command itself. */
enum { FAIL_NONE = 0, FAIL_DOWN = 1, FAIL_AUTH = 2, FAIL_REFUSED = 3 };

/* Copy a message, cut to fit (no format: long ones are cut on purpose). */
static void copy_msg(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void note_error(pdw_redis *r, const char *msg)
{
    pthread_mutex_lock(&r->stats_lock);
    copy_msg(r->stats.last_error, sizeof r->stats.last_error, msg);
    pthread_mutex_unlock(&r->stats_lock);
}

/* Drop the context and schedule the next try (lock held). */
static void mark_down(pdw_redis *r, const char *msg)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->delay = r->delay ? r->delay * 2 : r->rmin;
    if (r->delay > r->rmax)
        r->delay = r->rmax;
    r->next_try = pdw__mono_ms() + r->delay;
    pthread_mutex_lock(&r->stats_lock);
    r->stats.connected = 0;
    r->stats.failures++;
    if (!r->stats.down_since_ms)
        r->stats.down_since_ms = pdw__wall_ms();
    copy_msg(r->stats.last_error, sizeof r->stats.last_error, msg);
    pthread_mutex_unlock(&r->stats_lock);
}

static void mark_up(pdw_redis *r)
{
    r->delay = 0;
    pthread_mutex_lock(&r->stats_lock);
    r->stats.connected = 1;
    r->stats.down_since_ms = 0;
    pthread_mutex_unlock(&r->stats_lock);
}

/* Errors that say Redis cannot serve now, not that the command is wrong. */
static int transient_error(const char *s)
{
    static const char *const p[] = { "LOADING", "MASTERDOWN", "BUSY ", "TRYAGAIN",
                                     "CLUSTERDOWN", "READONLY", "OOM" };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (strncmp(s, p[i], strlen(p[i])) == 0)
            return 1;
    return 0;
}

static int auth_error(const char *s)
{
    return strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 ||
           strncmp(s, "NOPERM", 6) == 0 || strstr(s, "invalid password") != NULL ||
           strstr(s, "invalid username-password") != NULL;
}

/* Connect, AUTH, SELECT (lock held). */
static int do_connect(pdw_redis *r, int *fail, pdw_error *err)
{
    char msg[640];
    redisContext *c = redisConnectWithTimeout(r->url.host, (int)r->url.port,
                                              tv_of(r->connect_ms));
    if (!c) {
        *fail = FAIL_DOWN;
        mark_down(r, "out of memory connecting to Redis");
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (c->err) {
        snprintf(msg, sizeof msg, "cannot connect to Redis at %s:%u: %s", r->url.host,
                 r->url.port, c->errstr);
        redisFree(c);
        *fail = FAIL_DOWN;
        mark_down(r, msg);
        return pdw__error_set(err, PDW_EREDIS, -1, "%s", msg);
    }
    redisSetTimeout(c, tv_of(r->command_ms));
    if (r->url.password[0]) {
        const char *argv[3];
        size_t lens[3];
        int argc = 0;
        argv[argc] = "AUTH", lens[argc++] = 4;
        if (r->url.user[0])
            argv[argc] = r->url.user, lens[argc++] = strlen(r->url.user);
        argv[argc] = r->url.password, lens[argc++] = strlen(r->url.password);
        redisReply *rep = redisCommandArgv(c, argc, argv, lens);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            int down = !rep;
            if (rep)
                snprintf(msg, sizeof msg, "Redis at %s:%u refused the credentials%s%s: %.60s",
                         r->url.host, r->url.port, r->url.user[0] ? " of user " : "",
                         r->url.user, rep->str);
            else
                snprintf(msg, sizeof msg, "Redis at %s:%u: AUTH: %s", r->url.host, r->url.port,
                         c->errstr);
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            *fail = down ? FAIL_DOWN : FAIL_AUTH;
            mark_down(r, msg);
            return pdw__error_set(err, down ? PDW_EREDIS : PDW_EREDISAUTH, -1, "%s", msg);
        }
        freeReplyObject(rep);
    }
    if (r->url.db) {
        redisReply *rep = redisCommand(c, "SELECT %u", r->url.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            int auth = rep && auth_error(rep->str);
            if (auth)
                snprintf(msg, sizeof msg,
                         "Redis at %s:%u wants a password: give it in the URL "
                         "(redis://:PASSWORD@%s:%u)",
                         r->url.host, r->url.port, r->url.host, r->url.port);
            else
                snprintf(msg, sizeof msg, "Redis at %s:%u: SELECT %u: %.80s", r->url.host,
                         r->url.port, r->url.db, rep ? rep->str : c->errstr);
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            *fail = auth ? FAIL_AUTH : FAIL_DOWN;
            mark_down(r, msg);
            return pdw__error_set(err, auth ? PDW_EREDISAUTH : PDW_EREDIS, -1, "%s", msg);
        }
        freeReplyObject(rep);
    }
    r->ctx = c;
    pthread_mutex_lock(&r->stats_lock);
    r->stats.connects++;
    pthread_mutex_unlock(&r->stats_lock);
    return 0;
}

/* Run one command. Returns 0 with *out (not an error reply; free with freeReplyObject), or
 * a negative code with *fail telling why. extra_ms lengthens the timeout (blocking reads).
 * force: connect even during the backoff. */
static int rcmd(pdw_redis *r, redisReply **out, int argc, const char **argv,
                const size_t *lens, uint64_t extra_ms, int force, int *fail, pdw_error *err)
{
    char msg[640];
    int dummy;
    if (!fail)
        fail = &dummy;
    *fail = FAIL_NONE;
    *out = NULL;
    pthread_mutex_lock(&r->lock);
    if (!r->ctx) {
        uint64_t now = pdw__mono_ms();
        if (!force && now < r->next_try) {
            char last[PDW_ERROR_MESSAGE_MAX];
            pthread_mutex_lock(&r->stats_lock);
            copy_msg(last, sizeof last, r->stats.last_error);
            r->stats.failures++;
            pthread_mutex_unlock(&r->stats_lock);
            uint64_t wait = r->next_try - now;
            pthread_mutex_unlock(&r->lock);
            *fail = FAIL_DOWN;
            pdw__error_set(err, PDW_EREDIS, -1, "%.110s (next try in %llu ms)", last,
                           (unsigned long long)wait);
            return PDW_EREDIS; /* spelled out: *out stays NULL on every negative return */
        }
        int rc = do_connect(r, fail, err);
        if (rc < 0 || !r->ctx) {
            pthread_mutex_unlock(&r->lock);
            return rc < 0 ? rc : PDW_EREDIS;
        }
    }
    redisSetTimeout(r->ctx, tv_of(r->command_ms + extra_ms));
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
    if (!rep) {
        snprintf(msg, sizeof msg, "Redis at %s:%u: %s", r->url.host, r->url.port,
                 r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
        mark_down(r, msg);
        pthread_mutex_unlock(&r->lock);
        *fail = FAIL_DOWN;
        pdw__error_set(err, PDW_EREDIS, -1, "%s", msg);
        return PDW_EREDIS;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        int code = PDW_EREDIS;
        if (auth_error(rep->str)) {
            *fail = FAIL_AUTH;
            code = PDW_EREDISAUTH;
            if (strncmp(rep->str, "NOAUTH", 6) == 0)
                snprintf(msg, sizeof msg,
                         "Redis at %s:%u wants a password: give it in the URL "
                         "(redis://:PASSWORD@%s:%u)",
                         r->url.host, r->url.port, r->url.host, r->url.port);
            else
                snprintf(msg, sizeof msg, "Redis at %s:%u refused the credentials: %.60s",
                         r->url.host, r->url.port, rep->str);
        } else {
            *fail = transient_error(rep->str) ? FAIL_DOWN : FAIL_REFUSED;
            snprintf(msg, sizeof msg, "Redis %.*s: %.100s", (int)lens[0], argv[0], rep->str);
        }
        freeReplyObject(rep);
        mark_up(r); /* it answered */
        pthread_mutex_unlock(&r->lock);
        note_error(r, msg);
        pdw__error_set(err, code, -1, "%s", msg);
        return code;
    }
    mark_up(r);
    pthread_mutex_unlock(&r->lock);
    *out = rep;
    return 0;
}

int pdw_redis_new(pdw_redis **out, const char *url, const pdw_redis_options *opts,
                  pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out || !url)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and url are required");
    *out = NULL;
    if (opts && opts->version != PDW_REDIS_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "redis options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    pdw_redis_url u = PDW_REDIS_URL_INIT;
    int rc = pdw_redis_url_parse(url, &u, err);
    if (rc < 0)
        return rc;
    pdw_redis *r = pdw__calloc(&a, 1, sizeof *r);
    if (!r) {
        pdw__wipe(&u, sizeof u);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    r->alloc = a;
    r->url = u;
    pdw__wipe(&u, sizeof u);
    r->connect_ms = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : 2000;
    r->command_ms = opts && opts->command_timeout_ms ? opts->command_timeout_ms : 5000;
    r->rmin = opts && opts->reconnect_min_ms ? opts->reconnect_min_ms : 100;
    r->rmax = opts && opts->reconnect_max_ms ? opts->reconnect_max_ms : 5000;
    if (r->rmax < r->rmin)
        r->rmax = r->rmin;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        pdw__free(&a, r);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (pthread_mutex_init(&r->stats_lock, NULL) != 0) {
        pthread_mutex_destroy(&r->lock);
        pdw__free(&a, r);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    *out = r;
    return 0;
}

void pdw_redis_free(pdw_redis *r)
{
    if (!r)
        return;
    if (r->ctx)
        redisFree(r->ctx);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->stats_lock);
    pdw__wipe(&r->url, sizeof r->url);
    pdw_allocator a = r->alloc;
    pdw__free(&a, r);
}

int pdw_redis_ping(pdw_redis *r, pdw_error *err)
{
    pdw__error_reset(err);
    if (!r)
        return pdw__error_set(err, PDW_EINVAL, -1, "connection is NULL");
    const char *argv[] = { "PING" };
    size_t lens[] = { 4 };
    redisReply *rep;
    int rc = rcmd(r, &rep, 1, argv, lens, 0, 1, NULL, err);
    if (rc < 0)
        return rc;
    freeReplyObject(rep);
    return 0;
}

void pdw_redis_get_stats(pdw_redis *r, pdw_redis_stats *out)
{
    if (!out)
        return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&r->stats_lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->stats_lock);
}

/* prefix + part + key, in buf when it fits, else allocated (*heap set). */
static char *make_key(const pdw_allocator *a, char *buf, size_t cap, const char *prefix,
                      const char *part, const char *key, size_t key_len, size_t *len_out,
                      char **heap)
{
    size_t pl = strlen(prefix), ql = strlen(part), n = pl + ql + key_len;
    char *k = buf;
    *heap = NULL;
    if (n + 1 > cap) {
        k = *heap = pdw__malloc(a, n + 1);
        if (!k)
            return NULL;
    }
    memcpy(k, prefix, pl);
    memcpy(k + pl, part, ql);
    memcpy(k + pl + ql, key, key_len);
    k[n] = '\0';
    *len_out = n;
    return k;
}

/* ---- dedup store --------------------------------------------------------------------- */

typedef struct pdw_redis_dedup {
    pdw_dedup_store parent; /* first: the store's functions get it back */
    pdw_redis *conn;
    char *prefix;
    pdw_dedup_store *fallback; /* owned; NULL: none */
    pthread_mutex_t lock;
    pdw_redis_dedup_stats stats;
} pdw_redis_dedup;

static pdw_redis_dedup *rd_of(pdw_dedup_store *s)
{
    return (pdw_redis_dedup *)(void *)s;
}

static void dedup_count(pdw_redis_dedup *d, uint64_t *field)
{
    pthread_mutex_lock(&d->lock);
    (*field)++;
    pthread_mutex_unlock(&d->lock);
}

/* KEYS[1] the claim, ARGV[1] its TTL in ms. A claim is "0" while in flight, "1" once
 * confirmed; both states are read in the same atomic step as the SET NX.
 * Returns the claim result itself: 0 PDW_CLAIM_NEW (now "0"), 1 PDW_CLAIM_INFLIGHT,
 * 2 PDW_CLAIM_DUPLICATE (confirmed). */
static const char claim_script[] =
    "if redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[1]) then return 0 end\n"
    "if redis.call('GET', KEYS[1]) == '1' then return 2 end\n"
    "return 1\n";

/* KEYS[1] the claim, ARGV[1] the TTL in ms: confirmed ("1") and kept that long from now
 * (the claim held the key only for the in-flight lease). Returns 1, or 0 when the key is
 * not held (released, or expired: its lease ran out). */
static const char confirm_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])\n"
    "return 1\n";

/* The claim: the fallback first (it recognises retries to this receiver during an
 * outage), then Redis: three states (SET "0" NX, confirmed to "1"). */
static int rd_claim(pdw_dedup_store *store, const char *key, size_t len, uint64_t now_ms,
                    uint64_t ttl_ms)
{
    pdw_redis_dedup *d = rd_of(store);
    int local = PDW_CLAIM_NEW;
    if (d->fallback) {
        /* a retry to this receiver during an outage is still recognised */
        local = d->fallback->claim(d->fallback, key, len, now_ms, ttl_ms);
        if (local == PDW_CLAIM_DUPLICATE) {
            dedup_count(d, &d->stats.duplicates);
            return PDW_CLAIM_DUPLICATE;
        }
        if (local == PDW_CLAIM_INFLIGHT) /* in flight in this very receiver */
            return PDW_CLAIM_INFLIGHT;
    }
    char buf[512], *heap, ttl[24];
    size_t klen;
    char *k = make_key(&d->conn->alloc, buf, sizeof buf, d->prefix, "dedup:", key, len, &klen,
                       &heap);
    if (!k)
        return PDW_ENOMEM;
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)(ttl_ms ? ttl_ms : 1));
    redisReply *rep;
    const char *argv[] = { "EVAL", claim_script, "1", k, ttl };
    size_t lens[] = { 4, sizeof claim_script - 1, 1, klen, strlen(ttl) };
    int rc = rcmd(d->conn, &rep, 5, argv, lens, 0, 0, NULL, NULL);
    pdw__free(&d->conn->alloc, heap);
    if (rc < 0) {
        if (d->fallback && local == PDW_CLAIM_NEW) {
            dedup_count(d, &d->stats.fallbacks);
            return PDW_CLAIM_NEW;
        }
        dedup_count(d, &d->stats.errors);
        return rc;
    }
    int res;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= PDW_CLAIM_NEW &&
        rep->integer <= PDW_CLAIM_DUPLICATE)
        res = (int)rep->integer; /* the script answers with the claim result */
    else
        res = PDW_EREDIS;
    freeReplyObject(rep);
    if (d->fallback && local == PDW_CLAIM_NEW && res != PDW_CLAIM_NEW) {
        /* the local claim just made is not ours to keep in flight: another receiver has
         * the key. Confirmed there: confirmed here too (later retries end locally), for
         * the claim's own time (the same now and TTL: its expiry does not move); in flight
         * there (or a failure): forgotten, so that the next retry asks Redis. */
        if (res == PDW_CLAIM_DUPLICATE)
            d->fallback->confirm(d->fallback, key, len, now_ms, ttl_ms);
        else
            d->fallback->release(d->fallback, key, len);
    }
    if (res < 0) {
        dedup_count(d, &d->stats.errors);
        return res;
    }
    pthread_mutex_lock(&d->lock);
    d->stats.claims++;
    if (res == PDW_CLAIM_DUPLICATE)
        d->stats.duplicates++;
    pthread_mutex_unlock(&d->lock);
    return res;
}

/* The confirm, in the fallback (where the claim may have been made during an outage) and
 * in Redis: the key kept ttl_ms from now. */
static int rd_confirm(pdw_dedup_store *store, const char *key, size_t len, uint64_t now_ms,
                      uint64_t ttl_ms)
{
    pdw_redis_dedup *d = rd_of(store);
    int local = PDW_ENOTFOUND;
    if (d->fallback)
        local = d->fallback->confirm(d->fallback, key, len, now_ms, ttl_ms);
    char buf[512], *heap, ttl[24];
    size_t klen;
    char *k = make_key(&d->conn->alloc, buf, sizeof buf, d->prefix, "dedup:", key, len, &klen,
                       &heap);
    if (!k)
        return PDW_ENOMEM;
    redisReply *rep;
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)(ttl_ms ? ttl_ms : 1));
    const char *argv[] = { "EVAL", confirm_script, "1", k, ttl };
    size_t lens[] = { 4, sizeof confirm_script - 1, 1, klen, strlen(ttl) };
    int rc = rcmd(d->conn, &rep, 5, argv, lens, 0, 0, NULL, NULL);
    pdw__free(&d->conn->alloc, heap);
    if (rc < 0)
        return local == 0 ? 0 : rc; /* claimed in the fallback during an outage: confirmed */
    int held = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return held || local == 0 ? 0 : PDW_ENOTFOUND;
}

static int rd_release(pdw_dedup_store *store, const char *key, size_t len)
{
    pdw_redis_dedup *d = rd_of(store);
    if (d->fallback)
        d->fallback->release(d->fallback, key, len);
    char buf[512], *heap;
    size_t klen;
    char *k = make_key(&d->conn->alloc, buf, sizeof buf, d->prefix, "dedup:", key, len, &klen,
                       &heap);
    if (!k)
        return PDW_ENOMEM;
    const char *argv[] = { "DEL", k };
    size_t lens[] = { 3, klen };
    redisReply *rep;
    int rc = rcmd(d->conn, &rep, 2, argv, lens, 0, 0, NULL, NULL);
    pdw__free(&d->conn->alloc, heap);
    if (rc < 0)
        return rc;
    freeReplyObject(rep);
    return 0;
}

static void rd_free(pdw_dedup_store *store)
{
    pdw_redis_dedup *d = rd_of(store);
    pdw_dedup_store_free(d->fallback);
    pthread_mutex_destroy(&d->lock);
    pdw__free(&d->conn->alloc, d->prefix);
    pdw__free(&d->conn->alloc, d);
}

static int check_name(const char *what, const char *s, pdw_error *err)
{
    if (!s)
        return 0;
    if (!*s || strlen(s) > 200)
        return pdw__error_set(err, PDW_EINVAL, -1, "%s: empty or longer than 200 bytes", what);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pdw__error_set(err, PDW_EINVAL, -1, "%s: control character", what);
    return 0;
}

static int redis_dedup_new(pdw_dedup_store **out, pdw_redis *conn,
                           const pdw_redis_dedup_options *opts, pdw_error *err)
{
    if (!out || !conn)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and conn are required");
    *out = NULL;
    if (opts && opts->version != PDW_REDIS_DEDUP_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "redis dedup options version %u",
                              opts->version);
    const char *prefix = opts && opts->prefix ? opts->prefix : DEFAULT_PREFIX;
    if (check_name("key prefix", prefix, err) < 0)
        return PDW_EINVAL;
    pdw_dedup_store *fb = opts ? opts->fallback : NULL;
    if (fb && fb->version != PDW_DEDUP_STORE_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "fallback dedup store version %u",
                              fb->version);
    if (fb && (!fb->claim || !fb->release || !fb->confirm))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "fallback dedup store without claim, release or confirm");
    pdw_redis_dedup *d = pdw__calloc(&conn->alloc, 1, sizeof *d);
    if (!d || !(d->prefix = pdw__strdup(&conn->alloc, prefix)) ||
        pthread_mutex_init(&d->lock, NULL) != 0) {
        if (d)
            pdw__free(&conn->alloc, d->prefix);
        pdw__free(&conn->alloc, d);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    d->conn = conn;
    d->fallback = fb; /* ours (on failure pdw_redis_dedup_new() frees it) */
    pdw_dedup_store_init(&d->parent, PDW_DEDUP_STORE_VERSION);
    d->parent.claim = rd_claim;
    d->parent.release = rd_release;
    d->parent.confirm = rd_confirm;
    d->parent.free = rd_free;
    *out = &d->parent;
    return 0;
}

int pdw_redis_dedup_new(pdw_dedup_store **out, pdw_redis *conn,
                        const pdw_redis_dedup_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    int rc = redis_dedup_new(out, conn, opts, err);
    pdw_dedup_store *fb = opts && opts->version == PDW_REDIS_DEDUP_OPTIONS_VERSION
                              ? opts->fallback
                              : NULL;
    /* the fallback is the store's also when it fails (unless of another layout) */
    if (rc < 0 && fb && fb->version == PDW_DEDUP_STORE_VERSION)
        pdw_dedup_store_free(fb);
    return rc;
}

void pdw_redis_dedup_get_stats(const pdw_dedup_store *store, pdw_redis_dedup_stats *out)
{
    if (!out)
        return;
    if (!store || store->claim != rd_claim) { /* NULL, or another kind of store */
        memset(out, 0, sizeof *out);
        return;
    }
    pdw_redis_dedup *d = rd_of((pdw_dedup_store *)(uintptr_t)store);
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
}

/* ---- stream writer ----------------------------------------------------------------------- */

/* KEYS[1] guard, KEYS[2] stream; ARGV[1] guard TTL ms, ARGV[2] MAXLEN (0: none), then the
 * field/value pairs. The guard and the entry go in together or not at all. */
static const char forward_script[] =
    "local prev = redis.call('GET', KEYS[1])\n"
    "if prev then return {0, prev} end\n"
    "local id\n"
    "if tonumber(ARGV[2]) > 0 then\n"
    "  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))\n"
    "else\n"
    "  id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "end\n"
    "redis.call('SET', KEYS[1], id, 'PX', ARGV[1])\n"
    "return {1, id}\n";

typedef struct waiter {
    struct waiter *next;
    int64_t received_ms;
} waiter;

struct pdw_redis_stream {
    pdw_redis *conn;
    char *stream, *prefix, *source;
    uint64_t maxlen, guard_ttl_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cancelled;
    waiter *waiters;
    pdw_redis_stream_stats stats;
};

int pdw_redis_stream_new(pdw_redis_stream **out, pdw_redis *conn,
                         const pdw_redis_stream_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out || !conn)
        return pdw__error_set(err, PDW_EINVAL, -1, "out and conn are required");
    *out = NULL;
    if (opts && opts->version != PDW_REDIS_STREAM_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "redis stream options version %u",
                              opts->version);
    const char *stream = opts && opts->stream ? opts->stream : PDW_REDIS_DEFAULT_STREAM;
    const char *prefix = opts && opts->prefix ? opts->prefix : DEFAULT_PREFIX;
    const char *source = opts ? opts->source : NULL;
    if (check_name("stream name", stream, err) < 0 || check_name("key prefix", prefix, err) < 0 ||
        check_name("source", source, err) < 0)
        return PDW_EINVAL;
    const pdw_allocator *a = &conn->alloc;
    pdw_redis_stream *s = pdw__calloc(a, 1, sizeof *s);
    if (!s)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    s->conn = conn;
    s->stream = pdw__strdup(a, stream);
    s->prefix = pdw__strdup(a, prefix);
    s->source = source ? pdw__strdup(a, source) : NULL;
    s->maxlen = opts ? opts->maxlen : 0;
    s->guard_ttl_ms = opts && opts->guard_ttl_ms ? opts->guard_ttl_ms : 7ull * 86400 * 1000;
    if (!s->stream || !s->prefix || (source && !s->source) ||
        pthread_mutex_init(&s->lock, NULL) != 0) {
        pdw__free(a, s->stream);
        pdw__free(a, s->prefix);
        pdw__free(a, s->source);
        pdw__free(a, s);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    pdw__cond_init(&s->cond);
    *out = s;
    return 0;
}

void pdw_redis_stream_free(pdw_redis_stream *s)
{
    if (!s)
        return;
    const pdw_allocator *a = &s->conn->alloc;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    pdw__free(a, s->stream);
    pdw__free(a, s->prefix);
    pdw__free(a, s->source);
    pdw__free(a, s);
}

#define MAX_ARGS 48

typedef struct argv_builder {
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc;
    char nums[8][24];
    int nnums;
} argv_builder;

static void arg(argv_builder *b, const char *s, size_t n)
{
    if (b->argc < MAX_ARGS) {
        b->argv[b->argc] = s;
        b->lens[b->argc++] = n;
    }
}

static void arg_str(argv_builder *b, const char *name, const char *value)
{
    if (value) {
        arg(b, name, strlen(name));
        arg(b, value, strlen(value));
    }
}

static void arg_num(argv_builder *b, const char *name, long long v)
{
    if (b->nnums < 8) {
        char *t = b->nums[b->nnums++];
        snprintf(t, 24, "%lld", v);
        arg_str(b, name, t);
    }
}

static int stream_add(pdw_redis_stream *s, const pdw_spool_record *rec, char *id_out,
                      size_t id_cap, int *fail, pdw_error *err)
{
    *fail = FAIL_NONE;
    if (id_out && id_cap)
        id_out[0] = '\0';
    if (!s || !rec || (!rec->body && rec->body_len) || (!rec->key && rec->key_len))
        return pdw__error_set(err, PDW_EINVAL, -1, "stream and record are required");
    const pdw_allocator *a = &s->conn->alloc;
    pdw_event *ev = NULL;
    pdw_parse_options po = PDW_PARSE_OPTIONS_INIT;
    po.allocator = a;
    pdw_error pe = PDW_ERROR_INIT; /* the parse's detail, under this call's own code */
    int rc = pdw_event_parse(&ev, rec->body ? rec->body : "", rec->body_len, &po, &pe);
    if (rc == PDW_ENOMEM)
        return pdw__error_set(err, rc, -1, NULL);
    if (rc < 0) {
        *fail = FAIL_REFUSED;
        return pdw__error_set(err, PDW_EINVAL, -1, "the spooled body does not parse: %s",
                              pe.message);
    }
    char buf[512], *heap;
    size_t klen;
    const char *key = rec->key_len ? rec->key : pdw_event_delivery_key(ev);
    size_t key_len = rec->key_len ? rec->key_len : strlen(key);
    char *k = make_key(a, buf, sizeof buf, s->prefix, "fwd:", key, key_len, &klen, &heap);
    if (!k) {
        pdw_event_free(ev);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    argv_builder b;
    b.argc = 0;
    b.nnums = 0;
    char ttl[24], maxlen[24], version[4];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)s->guard_ttl_ms);
    snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)s->maxlen);
    snprintf(version, sizeof version, "%d", pdw_event_version(ev));
    arg(&b, "EVAL", 4);
    arg(&b, forward_script, sizeof forward_script - 1);
    arg(&b, "2", 1);
    arg(&b, k, klen);
    arg(&b, s->stream, strlen(s->stream));
    arg(&b, ttl, strlen(ttl));
    arg(&b, maxlen, strlen(maxlen));
    arg(&b, "delivery_key", 12);
    arg(&b, key, key_len);
    arg_str(&b, "event", pdw_event_name(ev));
    arg_str(&b, "delivered", pdw_event_delivered_name(ev));
    arg_str(&b, "action", pdw_event_action(ev));
    arg_str(&b, "object", pdw_event_object(ev));
    arg_str(&b, "version", version);
    arg_num(&b, "attempt", (long long)pdw_event_attempt(ev));
    arg_str(&b, "entity_id", pdw_event_entity_id(ev));
    arg_str(&b, "event_id", pdw_event_event_id(ev));
    arg_str(&b, "webhook_id", pdw_event_webhook_id(ev));
    arg_str(&b, "company_id", pdw_event_company_id(ev));
    arg_str(&b, "user_id", pdw_event_user_id(ev));
    if (pdw_event_timestamp_ms(ev) > 0)
        arg_num(&b, "timestamp_ms", pdw_event_timestamp_ms(ev));
    if (pdw_event_is_merge(ev))
        arg_str(&b, "merge", "1");
    arg_num(&b, "received_ms", (long long)rec->received_ms);
    arg_num(&b, "spool_id", (long long)rec->id);
    arg_str(&b, "source", s->source);
    arg(&b, "body", 4);
    arg(&b, rec->body ? rec->body : "", rec->body_len);

    redisReply *rep;
    rc = rcmd(s->conn, &rep, b.argc, b.argv, b.lens, 0, 0, fail, err);
    pdw__free(a, heap);
    pdw_event_free(ev);
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        *fail = FAIL_REFUSED;
        return pdw__error_set(err, PDW_EREDIS, -1, "Redis: unexpected answer to the forward script");
    }
    int added = rep->element[0]->integer == 1;
    if (id_out && id_cap)
        snprintf(id_out, id_cap, "%.*s", (int)rep->element[1]->len, rep->element[1]->str);
    freeReplyObject(rep);
    pthread_mutex_lock(&s->lock);
    if (added) {
        s->stats.added++;
        s->stats.last_added_ms = pdw__wall_ms();
        s->stats.last_lag_ms = rec->received_ms ? s->stats.last_added_ms - rec->received_ms : 0;
    } else {
        s->stats.already++;
    }
    pthread_mutex_unlock(&s->lock);
    return added;
}

int pdw_redis_stream_add(pdw_redis_stream *s, const pdw_spool_record *rec, char *id_out,
                         size_t id_cap, pdw_error *err)
{
    pdw__error_reset(err);
    int fail;
    int rc = stream_add(s, rec, id_out, id_cap, &fail, err);
    if (rc < 0 && s) {
        pthread_mutex_lock(&s->lock);
        s->stats.failures++;
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}


int pdw_redis_stream_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf,
                            size_t errcap, void *user)
{
    (void)attempt;
    pdw_redis_stream *s = user;
    waiter me = { NULL, rec ? rec->received_ms : 0 };
    int waiting = 0, rc;
    uint64_t delay = 0;
    for (;;) {
        pdw_error e;
        pdw_error_clear(&e);
        int fail;
        pthread_mutex_lock(&s->lock);
        int cancelled = s->cancelled;
        pthread_mutex_unlock(&s->lock);
        if (cancelled) {
            snprintf(errbuf, errcap, "stopped before Redis took it: it stays in the spool");
            rc = PDW_EREDIS;
            break;
        }
        rc = stream_add(s, rec, NULL, 0, &fail, &e);
        if (rc >= 0) {
            rc = 0;
            break;
        }
        pthread_mutex_lock(&s->lock);
        s->stats.failures++;
        pthread_mutex_unlock(&s->lock);
        snprintf(errbuf, errcap, "%s", e.message[0] ? e.message : pdw_strerror(rc));
        /* Only what is wrong with the delivery itself goes back to the worker (retried,
         * then dead-lettered); for Redis being down, refusing or misconfigured the
         * delivery waits here, pending in the spool. */
        if (fail == FAIL_NONE || (rc != PDW_EREDIS && rc != PDW_EREDISAUTH))
            break;
        pthread_mutex_lock(&s->lock);
        if (!waiting) {
            waiting = 1;
            me.next = s->waiters;
            s->waiters = &me;
            s->stats.waiting++;
        }
        delay = delay ? delay * 2 : s->conn->rmin;
        if (delay > s->conn->rmax)
            delay = s->conn->rmax;
        if (!s->cancelled)
            pdw__cond_wait_ms(&s->cond, &s->lock, delay);
        pthread_mutex_unlock(&s->lock);
    }
    if (waiting) {
        pthread_mutex_lock(&s->lock);
        for (waiter **w = &s->waiters; *w; w = &(*w)->next)
            if (*w == &me) {
                *w = me.next;
                break;
            }
        s->stats.waiting--;
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

void pdw_redis_stream_cancel(pdw_redis_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->cancelled = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void pdw_redis_stream_get_stats(pdw_redis_stream *s, pdw_redis_stream_stats *out)
{
    if (!out)
        return;
    if (!s) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    out->oldest_waiting_ms = 0;
    for (waiter *w = s->waiters; w; w = w->next)
        if (w->received_ms && (!out->oldest_waiting_ms || w->received_ms < out->oldest_waiting_ms))
            out->oldest_waiting_ms = w->received_ms;
    pthread_mutex_unlock(&s->lock);
}

/* ---- consumer ----------------------------------------------------------------------------- */

struct pdw_redis_consumer {
    pdw_redis *conn;
    char *stream, *group, *name;
    pdw_redis_consume_cb handle;
    void *handle_user;
    pdw__retry retry; /* attempts and backoff */
    uint64_t claim_idle_ms, block_ms;
    unsigned count;
    pdw_dead_letters *dl; /* NULL: no dead-letter file */
    pdw_redis_dead_letter_cb on_dead;
    void *dead_user;
    pdw_redis_acked_cb on_acked;
    void *acked_user;
    atomic_int stop;          /* asked to stop (pdw_redis_consumer_cancel()): sticky */
    pthread_mutex_t run_lock; /* active, runner: for pdw_redis_consumer_stop() */
    pthread_cond_t run_cond;  /* broadcast when active drops to 0 */
    int active;               /* calls of run() / poll() under way */
    pthread_t runner;         /* the thread of the latest of them */
    int group_ready, own_done;
    char cursor[64];
    uint64_t last_claim;
    pthread_mutex_t lock; /* stats */
    pdw_redis_consumer_stats stats;
};

enum { ENTRY_DONE = 1, ENTRY_STOPPED = 0 };

int pdw_redis_consumer_new(pdw_redis_consumer **out, pdw_redis *conn,
                           const pdw_redis_consumer_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out || !conn || !opts)
        return pdw__error_set(err, PDW_EINVAL, -1, "out, conn and opts are required");
    *out = NULL;
    if (opts->version != PDW_REDIS_CONSUMER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "redis consumer options version %u",
                              opts->version);
    if (!opts->group || !opts->consumer || !opts->handle)
        return pdw__error_set(err, PDW_EINVAL, -1, "a group, a consumer name and a handle "
                                                   "callback are required");
    const char *stream = opts->stream ? opts->stream : PDW_REDIS_DEFAULT_STREAM;
    if (check_name("stream name", stream, err) < 0 || check_name("group", opts->group, err) < 0 ||
        check_name("consumer name", opts->consumer, err) < 0)
        return PDW_EINVAL;
    const pdw_allocator *a = &conn->alloc;
    pdw_redis_consumer *c = pdw__calloc(a, 1, sizeof *c);
    if (!c)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    c->conn = conn;
    c->stream = pdw__strdup(a, stream);
    c->group = pdw__strdup(a, opts->group);
    c->name = pdw__strdup(a, opts->consumer);
    c->handle = opts->handle;
    c->handle_user = opts->handle_user;
    pdw__retry_init(&c->retry, opts->max_attempts, opts->backoff_base_ms, opts->backoff_max_ms,
                    0x9E3779B97F4A7C15ULL ^ (uint64_t)pdw__wall_ms() ^ (uint64_t)(uintptr_t)c);
    c->claim_idle_ms = opts->claim_idle_ms ? opts->claim_idle_ms : 30000;
    c->block_ms = opts->block_ms ? opts->block_ms : 1000;
    c->count = opts->count ? opts->count : 16;
    c->on_dead = opts->on_dead_letter;
    c->dead_user = opts->dead_letter_user;
    c->on_acked = opts->on_acked;
    c->acked_user = opts->acked_user;
    atomic_init(&c->stop, 0);
    snprintf(c->cursor, sizeof c->cursor, "0-0");
    int have_lock = c->stream && c->group && c->name && pthread_mutex_init(&c->lock, NULL) == 0;
    int have_run_lock = have_lock && pthread_mutex_init(&c->run_lock, NULL) == 0;
    int have_run_cond = have_run_lock && pthread_cond_init(&c->run_cond, NULL) == 0;
    if (!have_run_cond) {
        if (have_run_lock)
            pthread_mutex_destroy(&c->run_lock);
        if (have_lock)
            pthread_mutex_destroy(&c->lock);
        pdw__free(a, c->stream);
        pdw__free(a, c->group);
        pdw__free(a, c->name);
        pdw__free(a, c);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (opts->dead_letter_path) {
        int rc = pdw_dead_letters_open(&c->dl, opts->dead_letter_path, err);
        if (rc < 0) {
            pdw_redis_consumer_free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

void pdw_redis_consumer_free(pdw_redis_consumer *c)
{
    if (!c)
        return;
    pdw_redis_consumer_stop(c);
    const pdw_allocator *a = &c->conn->alloc;
    pdw_dead_letters_free(c->dl);
    pthread_cond_destroy(&c->run_cond);
    pthread_mutex_destroy(&c->run_lock);
    pthread_mutex_destroy(&c->lock);
    pdw__free(a, c->stream);
    pdw__free(a, c->group);
    pdw__free(a, c->name);
    pdw__free(a, c);
}

void pdw_redis_consumer_cancel(pdw_redis_consumer *c)
{
    if (c)
        atomic_store(&c->stop, 1); /* lock-free: async-signal-safe */
}

void pdw_redis_consumer_stop(pdw_redis_consumer *c)
{
    if (!c)
        return;
    pdw_redis_consumer_cancel(c);
    pthread_mutex_lock(&c->run_lock);
    /* From a callback of the consumer (the thread inside run() or poll()) there is nothing
     * to wait for: that call returns once the callback does. */
    if (!(c->active && pthread_equal(c->runner, pthread_self())))
        while (c->active)
            pthread_cond_wait(&c->run_cond, &c->run_lock);
    pthread_mutex_unlock(&c->run_lock);
}

/* run() and poll() are under way between these two (pdw_redis_consumer_stop() waits). */
static void run_enter(pdw_redis_consumer *c)
{
    pthread_mutex_lock(&c->run_lock);
    c->active++;
    c->runner = pthread_self();
    pthread_mutex_unlock(&c->run_lock);
}

static void run_leave(pdw_redis_consumer *c)
{
    pthread_mutex_lock(&c->run_lock);
    if (--c->active == 0)
        pthread_cond_broadcast(&c->run_cond);
    pthread_mutex_unlock(&c->run_lock);
}

void pdw_redis_consumer_get_stats(pdw_redis_consumer *c, pdw_redis_consumer_stats *out)
{
    if (!out)
        return;
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

static void count(pdw_redis_consumer *c, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&c->lock);
    *field += n;
    pthread_mutex_unlock(&c->lock);
}

/* Sleep ms, in slices, ending early on stop. 1 when stopped. */
static int nap(pdw_redis_consumer *c, uint64_t ms)
{
    uint64_t until = pdw__mono_ms() + ms;
    while (!atomic_load(&c->stop)) {
        uint64_t now = pdw__mono_ms();
        if (now >= until)
            return 0;
        pdw__sleep_ms(until - now < 20 ? until - now : 20);
    }
    return 1;
}


static int ensure_group(pdw_redis_consumer *c, pdw_error *err)
{
    if (c->group_ready)
        return 0;
    const char *argv[] = { "XGROUP", "CREATE", c->stream, c->group, "0", "MKSTREAM" };
    size_t lens[] = { 6, 6, strlen(c->stream), strlen(c->group), 1, 8 };
    redisReply *rep;
    pdw_error e;
    pdw_error_clear(&e);
    int fail;
    int rc = rcmd(c->conn, &rep, 6, argv, lens, 0, 0, &fail, &e);
    if (rc == 0)
        freeReplyObject(rep);
    else if (!(fail == FAIL_REFUSED && strstr(e.message, "BUSYGROUP")))
        return pdw__error_set(err, rc, -1, "%s", e.message);
    c->group_ready = 1;
    return 0;
}

/* Just before an entry is handled: is it still ours (a slow batch may have been taken over
 * by another consumer meanwhile)? If so reset its idle time, atomically, so that nobody
 * takes it over now, and return the times it was handed out. */
static const char touch_script[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end\n"
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')\n"
    "return p[1][4]\n";

/* >0 the deliveries (ours), 0 not ours any more, <0 Redis failed. */
static long touch_if_mine(pdw_redis_consumer *c, const char *id, size_t id_len)
{
    const char *argv[] = { "EVAL", touch_script, "1", c->stream, c->group, c->name, id };
    size_t lens[] = { 4, sizeof touch_script - 1, 1, strlen(c->stream), strlen(c->group),
                      strlen(c->name), id_len };
    redisReply *rep;
    int rc = rcmd(c->conn, &rep, 7, argv, lens, 0, 0, NULL, NULL);
    if (rc < 0)
        return rc;
    long n = rep->type == REDIS_REPLY_INTEGER
                 ? (long)(rep->integer > 1000000 ? 1000000 : rep->integer)
                 : 1;
    freeReplyObject(rep);
    return n;
}

/* XACK, waiting out outages; 0 acknowledged, 1 stopped first. */
static int ack(pdw_redis_consumer *c, const char *id)
{
    const char *argv[] = { "XACK", c->stream, c->group, id };
    size_t lens[] = { 4, strlen(c->stream), strlen(c->group), strlen(id) };
    uint64_t delay = c->conn->rmin;
    for (;;) {
        redisReply *rep;
        int fail;
        if (rcmd(c->conn, &rep, 4, argv, lens, 0, 0, &fail, NULL) == 0) {
            freeReplyObject(rep);
            return 0;
        }
        if (fail == FAIL_REFUSED) { /* the group or stream is gone: nothing left to ack */
            c->group_ready = 0;
            return 0;
        }
        if (nap(c, delay))
            return 1;
        delay = delay * 2 > c->conn->rmax ? c->conn->rmax : delay * 2;
    }
}

static void dead_letter(pdw_redis_consumer *c, const pdw_redis_entry *e, unsigned attempts,
                        const char *error)
{
    if (c->dl) {
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "stream_id", json_string(e->id));
            json_object_set_new(o, "delivery_key", json_string(e->delivery_key));
            json_object_set_new(o, "event", json_string(e->event));
            json_object_set_new(o, "received_ms", json_integer(e->received_ms));
            json_object_set_new(o, "consumer", json_string(c->name));
        }
        pdw_dead_letters_append(c->dl, o, e->body, e->body_len, attempts, error);
    }
    if (c->on_dead)
        c->on_dead(e, attempts, error, c->dead_user);
}

/* Handle one entry to its end. ENTRY_DONE (acknowledged) or ENTRY_STOPPED. */
static int handle_entry(pdw_redis_consumer *c, const pdw_redis_entry *e)
{
    char errbuf[256];
    unsigned attempt = e->deliveries ? e->deliveries : 1;
    int dead = 0;
    if (!e->body) {
        snprintf(errbuf, sizeof errbuf, "entry has no body field");
        dead = 1;
    } else if (attempt > c->retry.max_attempts) {
        snprintf(errbuf, sizeof errbuf,
                 "handed out %u times without being acknowledged (its consumers died?)",
                 attempt);
        attempt--;
        dead = 1;
    }
    while (!dead) {
        errbuf[0] = '\0';
        int rc = c->handle(e, attempt, errbuf, sizeof errbuf, c->handle_user);
        if (rc == 0)
            break;
        if (!errbuf[0])
            snprintf(errbuf, sizeof errbuf, "handler returned %d", rc);
        if (attempt >= c->retry.max_attempts) {
            dead = 1;
            break;
        }
        count(c, &c->stats.retries, 1);
        if (nap(c, pdw__retry_delay_ms(&c->retry, attempt)))
            return ENTRY_STOPPED;
        attempt++;
    }
    if (dead)
        dead_letter(c, e, attempt, errbuf);
    if (ack(c, e->id))
        return ENTRY_STOPPED;
    count(c, dead ? &c->stats.dead_letters : &c->stats.handled, 1);
    if (c->on_acked)
        c->on_acked(e, c->acked_user);
    return ENTRY_DONE;
}

static int64_t to_i64(const char *s, size_t n)
{
    long long v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9' && v < (1LL << 58); i++)
        v = v * 10 + (s[i] - '0');
    return (int64_t)v;
}

/* Handle an array of [id, [field, value, ...]] entries. Returns the number finished, or
 * -1 - finished when stopped / out of memory (the rest stay pending). */
static long handle_entries(pdw_redis_consumer *c, const redisReply *arr, int claimed)
{
    long done = 0;
    if (!arr || arr->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *en = arr->element[i];
        if (atomic_load(&c->stop))
            return -1 - done;
        if (!en || en->type != REDIS_REPLY_ARRAY || en->elements < 1 ||
            en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *id = en->element[0];
        const redisReply *fv = en->elements > 1 ? en->element[1] : NULL;
        if (!fv || fv->type != REDIS_REPLY_ARRAY) {
            /* deleted from the stream (trimmed) while pending: nothing left to hand on */
            ack(c, id->str);
            continue;
        }
        size_t nf = fv->elements / 2;
        pdw_redis_field *fields = pdw__calloc(&c->conn->alloc, nf ? nf : 1, sizeof *fields);
        if (!fields)
            return -1 - done;
        pdw_redis_entry e;
        memset(&e, 0, sizeof e);
        e.id = id->str;
        e.delivery_key = "";
        e.event = "";
        e.fields = fields;
        e.num_fields = nf;
        for (size_t f = 0; f < nf; f++) {
            const redisReply *n = fv->element[2 * f], *v = fv->element[2 * f + 1];
            if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
                fields[f] = (pdw_redis_field){ "", 0, "", 0 };
                continue;
            }
            fields[f] = (pdw_redis_field){ n->str, n->len, v->str, v->len };
            if (n->len == 12 && memcmp(n->str, "delivery_key", 12) == 0)
                e.delivery_key = v->str;
            else if (n->len == 5 && memcmp(n->str, "event", 5) == 0)
                e.event = v->str;
            else if (n->len == 4 && memcmp(n->str, "body", 4) == 0) {
                e.body = v->str;
                e.body_len = v->len;
            } else if (n->len == 11 && memcmp(n->str, "received_ms", 11) == 0)
                e.received_ms = to_i64(v->str, v->len);
        }
        long mine = touch_if_mine(c, id->str, id->len);
        if (mine <= 0) {
            pdw__free(&c->conn->alloc, fields);
            if (mine == 0)
                continue; /* taken over by another consumer while it waited here */
            c->own_done = 0; /* Redis failed: ours stay pending; read them again later */
            return -1 - done;
        }
        e.deliveries = (unsigned)mine;
        if (claimed)
            count(c, &c->stats.claimed, 1);
        int rc = handle_entry(c, &e);
        pdw__free(&c->conn->alloc, fields);
        if (rc == ENTRY_STOPPED)
            return -1 - done;
        done++;
    }
    return done;
}

static long consumer_poll(pdw_redis_consumer *c, pdw_error *err)
{
    int rc = ensure_group(c, err);
    if (rc < 0)
        return rc;
    long total = 0, n;
    char cnt[16], idle[24];
    snprintf(cnt, sizeof cnt, "%u", c->count);
    size_t ls = strlen(c->stream), lg = strlen(c->group), ln = strlen(c->name);
    redisReply *rep;
    pdw_error e;
    int fail;

    /* 1. after a (re)start: what this consumer had been handed and not acknowledged */
    while (!c->own_done && !atomic_load(&c->stop)) {
        const char *argv[] = { "XREADGROUP", "GROUP", c->group, c->name, "COUNT", cnt,
                               "STREAMS", c->stream, "0" };
        size_t lens[] = { 10, 5, lg, ln, 5, strlen(cnt), 7, ls, 1 };
        pdw_error_clear(&e);
        if ((rc = rcmd(c->conn, &rep, 9, argv, lens, 0, 0, &fail, &e)) < 0)
            goto failed;
        const redisReply *entries = rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
                                            rep->element[0]->elements == 2
                                        ? rep->element[0]->element[1]
                                        : NULL;
        if (!entries || entries->elements == 0) {
            c->own_done = 1;
            freeReplyObject(rep);
            break;
        }
        n = handle_entries(c, entries, 0);
        freeReplyObject(rep);
        if (n < 0)
            return total + (-1 - n);
        total += n;
    }

    /* 2. entries a dead consumer left pending longer than claim_idle_ms */
    uint64_t now = pdw__mono_ms();
    if (!atomic_load(&c->stop) &&
        (strcmp(c->cursor, "0-0") != 0 || now - c->last_claim >= c->claim_idle_ms / 2 ||
         !c->last_claim)) {
        snprintf(idle, sizeof idle, "%llu", (unsigned long long)c->claim_idle_ms);
        const char *argv[] = { "XAUTOCLAIM", c->stream, c->group, c->name, idle, c->cursor,
                               "COUNT", cnt };
        size_t lens[] = { 10, ls, lg, ln, strlen(idle), strlen(c->cursor), 5, strlen(cnt) };
        pdw_error_clear(&e);
        if ((rc = rcmd(c->conn, &rep, 8, argv, lens, 0, 0, &fail, &e)) < 0) {
            if (fail == FAIL_REFUSED && strstr(e.message, "NOGROUP"))
                c->group_ready = 0;
            goto failed;
        }
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
            rep->element[0]->type == REDIS_REPLY_STRING) {
            snprintf(c->cursor, sizeof c->cursor, "%.*s", (int)rep->element[0]->len,
                     rep->element[0]->str);
            if (strcmp(c->cursor, "0-0") == 0)
                c->last_claim = now ? now : 1;
            n = handle_entries(c, rep->element[1], 1);
        } else {
            snprintf(c->cursor, sizeof c->cursor, "0-0");
            c->last_claim = now ? now : 1;
            n = 0;
        }
        freeReplyObject(rep);
        if (n < 0)
            return total + (-1 - n);
        total += n;
    }

    /* 3. new entries */
    if (!atomic_load(&c->stop)) {
        char block[24];
        snprintf(block, sizeof block, "%llu", (unsigned long long)c->block_ms);
        const char *argv[] = { "XREADGROUP", "GROUP", c->group, c->name, "COUNT", cnt,
                               "BLOCK", block, "STREAMS", c->stream, ">" };
        size_t lens[] = { 10, 5, lg, ln, 5, strlen(cnt), 5, strlen(block), 7, ls, 1 };
        pdw_error_clear(&e);
        if ((rc = rcmd(c->conn, &rep, 11, argv, lens, c->block_ms, 0, &fail, &e)) < 0) {
            if (fail == FAIL_REFUSED && strstr(e.message, "NOGROUP"))
                c->group_ready = 0;
            goto failed;
        }
        n = 0;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
            rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2)
            n = handle_entries(c, rep->element[0]->element[1], 0);
        freeReplyObject(rep);
        if (n < 0)
            return total + (-1 - n);
        total += n;
    }
    return total;
failed:
    if (total > 0)
        return total;
    return pdw__error_set(err, rc, -1, "%s", e.message);
}

long pdw_redis_consumer_poll(pdw_redis_consumer *c, pdw_error *err)
{
    pdw__error_reset(err);
    if (!c)
        return pdw__error_set(err, PDW_EINVAL, -1, "consumer is NULL");
    run_enter(c);
    long n = consumer_poll(c, err);
    run_leave(c);
    return n;
}

int pdw_redis_consumer_run(pdw_redis_consumer *c, pdw_error *err)
{
    pdw__error_reset(err);
    if (!c)
        return pdw__error_set(err, PDW_EINVAL, -1, "consumer is NULL");
    uint64_t delay = 0;
    int rc = 0;
    run_enter(c);
    while (!atomic_load(&c->stop)) {
        pdw_error e = PDW_ERROR_INIT;
        long n = consumer_poll(c, &e);
        if (n >= 0) {
            delay = 0;
            continue;
        }
        if (n == PDW_EREDISAUTH || n == PDW_EINVAL) {
            rc = pdw__error_set(err, (int)n, -1, "%s", e.message);
            break;
        }
        delay = delay ? delay * 2 : c->conn->rmin;
        if (delay > c->conn->rmax)
            delay = c->conn->rmax;
        nap(c, delay);
    }
    run_leave(c);
    return rc;
}

