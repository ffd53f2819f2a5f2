/* pdwebhook/redis.h without a Redis server: URL parsing (every part, and messages that name
 * the wrong part and never the password), option defaults, argument checks, and a
 * connection to a port nobody listens on (fails fast, backs off, says so in its stats).
 *
 * With a real redis-server (PDW_TEST_REDIS_SERVER, set by CMake when the library has
 * Redis support and redis-server is installed; skipped otherwise): the dedup store's
 * in-flight lease, each case with its own server on a free loopback port. */
#include <string.h>

#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/redis.h"
#include "pdwebhook/sys/dedup_store.h"

#ifdef PDW_TEST_REDIS_SERVER
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif

static int parse(const char *url, pdw_redis_url *u, pdw_error *e)
{
    pdw_redis_url init = PDW_REDIS_URL_INIT;
    *u = init;
    pdw_error_clear(e);
    return pdw_redis_url_parse(url, u, e);
}

static void test_url_host_only(void **state)
{
    (void)state;
    pdw_redis_url u;
    pdw_error e;
    assert_int_equal(parse("redis://localhost", &u, &e), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    assert_int_equal(parse("redis://10.0.0.5/", &u, &e), 0);
    assert_string_equal(u.host, "10.0.0.5");
}

static void test_url_port_db(void **state)
{
    (void)state;
    pdw_redis_url u;
    pdw_error e;
    assert_int_equal(parse("redis://redis.internal:6380/3", &u, &e), 0);
    assert_string_equal(u.host, "redis.internal");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_int_equal(parse("redis://[::1]:7000/15", &u, &e), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 15);
    assert_int_equal(parse("redis://[fe80::1]", &u, &e), 0);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 6379);
}

static void test_url_password(void **state)
{
    (void)state;
    pdw_redis_url u;
    pdw_error e;
    assert_int_equal(parse("redis://:s3cret@h:1/2", &u, &e), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 2);
    /* ACL user, percent-escapes, a raw '@' and '/' in the password */
    assert_int_equal(parse("redis://app%2Dworker:p%40ss%3Aw@h", &u, &e), 0);
    assert_string_equal(u.user, "app-worker");
    assert_string_equal(u.password, "p@ss:w");
    assert_int_equal(parse("redis://:a@b/c@host:6390", &u, &e), 0);
    assert_string_equal(u.password, "a@b/c");
    assert_string_equal(u.host, "host");
    assert_int_equal(u.port, 6390);
}

/* The message names the part; the password never appears in it. */
static void expect_bad(const char *url, const char *part)
{
    pdw_redis_url u;
    pdw_error e;
    assert_int_equal(parse(url, &u, &e), PDW_EINVAL);
    assert_int_equal(e.code, PDW_EINVAL);
    if (!strstr(e.message, part))
        fail_msg("'%s': message '%s' does not name '%s'", url, e.message, part);
    assert_null(strstr(e.message, "TOPSECRET"));
}

static void test_url_errors_name_the_part(void **state)
{
    (void)state;
    expect_bad("http://h:6379", "scheme");
    expect_bad("localhost:6379", "scheme");
    expect_bad("rediss://h", "TLS");
    expect_bad("unix:///tmp/redis.sock", "unix");
    expect_bad("redis://", "host");
    expect_bad("redis://:TOPSECRET@", "host");
    expect_bad("redis://:TOPSECRET@:6379", "host");
    expect_bad("redis://h:0", "port");
    expect_bad("redis://h:65536", "port");
    expect_bad("redis://h:63x9", "port");
    expect_bad("redis://:TOPSECRET@h:port", "port");
    expect_bad("redis://h:", "port");
    expect_bad("redis://h/x", "database");
    expect_bad("redis://:TOPSECRET@h/-1", "database");
    expect_bad("redis://user@h", "password");
    expect_bad("redis://user:@h", "password");
    expect_bad("redis://:TOP%zzSECRET@h", "password");
    expect_bad("redis://:TOPSECRET%00@h", "password");
    expect_bad("redis://h?db=1", "options");
    expect_bad("redis://[::1", "host");
    expect_bad("redis://h h", "host");
}

static void test_url_struct_version(void **state)
{
    (void)state;
    pdw_redis_url u = PDW_REDIS_URL_INIT;
    u.version = 99;
    assert_int_equal(pdw_redis_url_parse("redis://h", &u, NULL), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_redis_url_parse(NULL, &u, NULL), PDW_EINVAL);
}

static void test_options_init(void **state)
{
    (void)state;
    pdw_redis_options o;
    memset(&o, 0xff, sizeof o);
    assert_int_equal(pdw_redis_options_init(&o, PDW_REDIS_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, PDW_REDIS_OPTIONS_VERSION);
    assert_int_equal(o.connect_timeout_ms, 0);
    assert_int_equal(pdw_redis_options_init(&o, 7), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_redis_options_init(NULL, PDW_REDIS_OPTIONS_VERSION), PDW_EINVAL);
    pdw_redis_dedup_options d;
    assert_int_equal(pdw_redis_dedup_options_init(&d, PDW_REDIS_DEDUP_OPTIONS_VERSION), 0);
    assert_null(d.prefix);
    pdw_redis_stream_options s;
    assert_int_equal(pdw_redis_stream_options_init(&s, PDW_REDIS_STREAM_OPTIONS_VERSION), 0);
    assert_null(s.stream);
    pdw_redis_consumer_options c;
    assert_int_equal(pdw_redis_consumer_options_init(&c, PDW_REDIS_CONSUMER_OPTIONS_VERSION), 0);
    assert_null(c.handle);
}

static void test_error_codes(void **state)
{
    (void)state;
    assert_string_equal(pdw_err_name(PDW_EREDIS), "PDW_EREDIS");
    assert_int_equal(pdw_err_http_status(PDW_EREDIS), 503);
    assert_string_equal(pdw_err_name(PDW_EREDISAUTH), "PDW_EREDISAUTH");
    assert_string_equal(pdw_err_name(PDW_ENOTBUILT), "PDW_ENOTBUILT");
}

/* Nothing listens on port 1: the first command fails with PDW_EREDIS and a message naming
 * the server, the next ones fail at once during the backoff, and the stats say so. */
static void test_unreachable_fails_fast(void **state)
{
    (void)state;
    pdw_redis *r = NULL;
    pdw_error e;
    pdw_error_clear(&e);
    pdw_redis_options o = PDW_REDIS_OPTIONS_INIT;
    o.connect_timeout_ms = 500;
    o.reconnect_min_ms = 60000;
    int rc = pdw_redis_new(&r, "redis://:TOPSECRET@127.0.0.1:1", &o, &e);
    assert_int_equal(rc, 0);
    pdw_error_clear(&e);
    assert_int_equal(pdw_redis_ping(r, &e), PDW_EREDIS);
    assert_non_null(strstr(e.message, "127.0.0.1:1"));
    assert_null(strstr(e.message, "TOPSECRET"));

    /* the dedup store: no fallback = an error (the receiver answers 503) */
    pdw_dedup_store *d = NULL;
    assert_int_equal(pdw_redis_dedup_new(&d, r, NULL, NULL), 0);
    assert_int_equal(d->version, PDW_DEDUP_STORE_VERSION);
    assert_int_equal(pdw_dedup_store_claim(d, "k", 1, 0, 1000), PDW_EREDIS);
    pdw_dedup_store_free(d);

    /* with the memory store as fallback (owned by the Redis store): claims go on locally,
     * in flight until confirmed (locally: Redis is down), then duplicates */
    pdw_dedup_store *m = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    pdw_redis_dedup_options dopt = PDW_REDIS_DEDUP_OPTIONS_INIT;
    dopt.fallback = m;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, NULL), 0);
    assert_int_equal(pdw_dedup_store_claim(d, "k", 1, 0, 1000), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_store_claim(d, "k", 1, 0, 1000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_store_confirm(d, "k", 1, 0, 1000), 0);
    assert_int_equal(pdw_dedup_store_claim(d, "k", 1, 0, 1000), PDW_CLAIM_DUPLICATE);
    pdw_redis_dedup_stats ds;
    pdw_redis_dedup_get_stats(d, &ds);
    assert_int_equal(ds.fallbacks, 1);
    assert_int_equal(ds.duplicates, 1);
    pdw_redis_dedup_get_stats(m, &ds); /* not a Redis store: zeros */
    assert_int_equal(ds.fallbacks, 0);
    assert_int_equal(ds.duplicates, 0);
    assert_true(pdw_dedup_store_confirm(d, "x", 1, 0, 1000) < 0); /* held nowhere */
    pdw_dedup_store_release(d, "k", 1);
    assert_int_equal(pdw_dedup_store_claim(d, "k", 1, 0, 1000), PDW_CLAIM_NEW);
    /* a claim for the lease, confirmed for the TTL locally (Redis is down); an
     * unconfirmed one is free after its lease */
    assert_int_equal(pdw_dedup_store_claim(d, "l", 1, 100, 50), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_store_confirm(d, "l", 1, 120, 100000), 0);
    assert_int_equal(pdw_dedup_store_claim(d, "l", 1, 5000, 50), PDW_CLAIM_DUPLICATE);
    assert_int_equal(pdw_dedup_store_claim(d, "u", 1, 100, 50), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_store_claim(d, "u", 1, 149, 50), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_store_claim(d, "u", 1, 150, 50), PDW_CLAIM_NEW);
    assert_int_equal(pdw_dedup_store_confirm(d, "u", 1, 200, 100000), PDW_EREDIS); /* expired */
    pdw_dedup_store_free(d); /* and the fallback with it (no leak under ASan / valgrind) */

    /* a fallback of another vtable version is refused (and left alone: its layout is
     * unknown), an incomplete one too; any fallback passed is taken over whatever
     * pdw_redis_dedup_new() returns (freed at once when it fails: no leak and no double
     * free under ASan / valgrind) */
    pdw_dedup_store bad;
    assert_int_equal(pdw_dedup_store_init(&bad, PDW_DEDUP_STORE_VERSION), 0);
    dopt.fallback = &bad; /* no free function: nothing to free */
    pdw_error ee;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, &ee), PDW_EINVAL);
    assert_null(d);
    bad.version = PDW_DEDUP_STORE_VERSION + 1;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, &ee), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    dopt.fallback = m;
    dopt.prefix = "";
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, &ee), PDW_EINVAL); /* m freed */
    dopt.prefix = NULL;

    pdw_redis_stats rs;
    pdw_redis_get_stats(r, &rs);
    assert_int_equal(rs.connected, 0);
    assert_true(rs.failures >= 2);
    assert_true(rs.down_since_ms > 0);
    assert_non_null(strstr(rs.last_error, "127.0.0.1:1"));

    /* the stream writer: one attempt fails; a body that does not parse is EINVAL */
    pdw_redis_stream *s = NULL;
    assert_int_equal(pdw_redis_stream_new(&s, r, NULL, NULL), 0);
    static const char body[] = "{\"meta\":{\"version\":\"2.0\",\"action\":\"create\","
                               "\"entity\":\"deal\",\"entity_id\":\"1\",\"id\":\"x\"},"
                               "\"data\":{}}";
    pdw_spool_record rec = { 1, 1, "k", 1, body, sizeof body - 1 };
    assert_int_equal(pdw_redis_stream_add(s, &rec, NULL, 0, NULL), PDW_EREDIS);
    rec.body = "nope";
    rec.body_len = 4;
    assert_int_equal(pdw_redis_stream_add(s, &rec, NULL, 0, NULL), PDW_EINVAL);
    /* cancelled: the worker callback gives up at once instead of waiting */
    pdw_redis_stream_cancel(s);
    rec.body = body;
    rec.body_len = sizeof body - 1;
    char errbuf[128];
    assert_int_not_equal(pdw_redis_stream_handle(&rec, 1, errbuf, sizeof errbuf, s), 0);
    pdw_redis_stream_free(s);
    pdw_redis_free(r);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pdw_redis *r = NULL;
    pdw_error e;
    pdw_error_clear(&e);
    assert_int_equal(pdw_redis_new(&r, "redis://h:99999", NULL, &e), PDW_EINVAL);
    assert_non_null(strstr(e.message, "port"));
    assert_null(r);
    assert_int_equal(pdw_redis_new(&r, "redis://127.0.0.1:1", NULL, NULL), 0);
    pdw_redis_consumer *c = NULL;
    pdw_redis_consumer_options co = PDW_REDIS_CONSUMER_OPTIONS_INIT;
    assert_int_equal(pdw_redis_consumer_new(&c, r, &co, NULL), PDW_EINVAL); /* no group */
    pdw_redis_stream_options so = PDW_REDIS_STREAM_OPTIONS_INIT;
    so.stream = "";
    pdw_redis_stream *s = NULL;
    assert_int_equal(pdw_redis_stream_new(&s, r, &so, NULL), PDW_EINVAL);
    pdw_redis_free(r);
}

static int never_handle(const pdw_redis_entry *e, unsigned attempt, char *errbuf, size_t cap,
                        void *user)
{
    (void)e, (void)attempt, (void)errbuf, (void)cap, (void)user;
    return 0;
}

/* Every call that takes a pdw_error resets it at entry: failure, success (no stale
 * message), another failure with its own message. (Those that need a server to succeed:
 * test_redis_error_reset.) */
static void test_error_reset_no_server(void **state)
{
    (void)state;
    pdw_error e = PDW_ERROR_INIT;
    pdw_redis_url u = PDW_REDIS_URL_INIT;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_url_parse("http://h", &u, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_redis_url_parse("redis://h:1/2", &u, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_redis_url_parse("redis://h:99999", &u, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_non_null(strstr(e.message, "port"));

    pdw_redis *r = NULL;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_new(&r, "redis://", NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_redis_new(&r, "redis://127.0.0.1:1", NULL, &e), 0);
    assert_error_reset(e);

    pdw_dedup_store *d = NULL;
    pdw_redis_dedup_options dopt = PDW_REDIS_DEDUP_OPTIONS_INIT;
    dopt.prefix = "";
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    dopt.prefix = NULL;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, &e), 0);
    assert_error_reset(e);
    pdw_dedup_store_free(d);

    pdw_redis_stream *s = NULL;
    pdw_redis_stream_options so = PDW_REDIS_STREAM_OPTIONS_INIT;
    so.stream = "";
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_stream_new(&s, r, &so, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    so.stream = NULL;
    assert_int_equal(pdw_redis_stream_new(&s, r, &so, &e), 0);
    assert_error_reset(e);
    pdw_redis_stream_free(s);

    pdw_redis_consumer *c = NULL;
    pdw_redis_consumer_options co = PDW_REDIS_CONSUMER_OPTIONS_INIT;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_consumer_new(&c, r, &co, &e), PDW_EINVAL); /* no group */
    assert_error_own(e, PDW_EINVAL);
    co.group = "g";
    co.consumer = "c";
    co.handle = never_handle;
    assert_int_equal(pdw_redis_consumer_new(&c, r, &co, &e), 0);
    assert_error_reset(e);
    /* pdw_redis_consumer_run: Redis unreachable is waited out; refused arguments are not */
    assert_int_equal(pdw_redis_consumer_run(NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    pdw_redis_consumer_free(c);
    pdw_redis_free(r);
}

/* ---- with a real redis-server: the in-flight lease ------------------------------------ */

#ifdef PDW_TEST_REDIS_SERVER

/* A private redis-server on a free loopback port (below the ephemeral range, where clients'
 * ports come from), no persistence; ours when INFO says our child's pid (another test's
 * server may hold the port). */
typedef struct rserver {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
    redisContext *c; /* the test's own connection, to look at keys */
} rserver;

static unsigned time_scale(void)
{
    const char *s = getenv("PDW_TIME_SCALE"); /* scripts/run: slower under sanitizers */
    long v = s ? strtol(s, NULL, 10) : 1;
    return v >= 1 && v <= 100 ? (unsigned)v : 1;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int rserver_ours(rserver *s)
{
    redisReply *rep = redisCommand(s->c, "INFO server");
    char want[32];
    snprintf(want, sizeof want, "process_id:%ld\r", (long)s->pid);
    int ours = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, want) != NULL;
    if (rep)
        freeReplyObject(rep);
    return ours;
}

static void rserver_start(rserver *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/pdw-test-redis.XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned seed = (unsigned)getpid() ^ (unsigned)now.tv_nsec;
    for (int tries = 0; tries < 10; tries++) {
        seed = seed * 1103515245u + 12345u;
        s->port = 20000 + (int)((seed >> 8) % 12000u);
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) {
                dup2(null, 1);
                dup2(null, 2);
            }
            execl(PDW_TEST_REDIS_SERVER, "redis-server", "--port", port, "--bind",
                  "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
                  "--dir", s->dir, (char *)NULL);
            _exit(127);
        }
        for (int k = 0; k < 250; k++) { /* up to 5 s for it to listen */
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid) { /* exited: port taken */
                s->pid = 0;
                break;
            }
            struct timeval tv = { 0, 200000 };
            s->c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
            if (s->c && !s->c->err) {
                if (rserver_ours(s)) {
                    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
                    return;
                }
                redisFree(s->c);
                s->c = NULL;
                break; /* another server on the port */
            }
            if (s->c)
                redisFree(s->c);
            s->c = NULL;
            nap_ms(20);
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
    }
    rmdir(s->dir);
    fail_msg("redis-server (%s) does not start", PDW_TEST_REDIS_SERVER);
}

static void rserver_stop(rserver *s)
{
    if (s->c)
        redisFree(s->c);
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    rmdir(s->dir);
}

/* PTTL of a key: ms left, -1 no expiry, -2 no such key. */
static long long rs_pttl(rserver *s, const char *key)
{
    redisReply *rep = redisCommand(s->c, "PTTL %s", key);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* GET of a key into out ("" when absent). */
static void rs_get(rserver *s, const char *key, char *out, size_t cap)
{
    redisReply *rep = redisCommand(s->c, "GET %s", key);
    assert_non_null(rep);
    snprintf(out, cap, "%s", rep->type == REDIS_REPLY_STRING ? rep->str : "");
    freeReplyObject(rep);
}

/* Wait (bounded) until the key is gone, e.g. its lease ran out. */
static void rs_wait_gone(rserver *s, const char *key, unsigned max_ms)
{
    uint64_t end = mono_ms() + max_ms;
    while (rs_pttl(s, key) != -2) {
        if (mono_ms() > end)
            fail_msg("%s still there after %u ms", key, max_ms);
        nap_ms(20);
    }
}

/* One Redis dedup store on its own connection (a receiver process's). */
typedef struct node {
    pdw_redis *conn;
    pdw_dedup_store *store; /* ours until a receiver takes it (then NULL) */
} node;

static void node_open(node *n, const char *url, int with_fallback)
{
    memset(n, 0, sizeof *n);
    assert_int_equal(pdw_redis_new(&n->conn, url, NULL, NULL), 0);
    pdw_redis_dedup_options o = PDW_REDIS_DEDUP_OPTIONS_INIT;
    if (with_fallback) /* owned by the Redis store */
        assert_int_equal(pdw_dedup_memory_new(&o.fallback, NULL, NULL), 0);
    assert_int_equal(pdw_redis_dedup_new(&n->store, n->conn, &o, NULL), 0);
}

/* After the receiver that took the store (if any) was freed: the connection last. */
static void node_close(node *n)
{
    pdw_dedup_store_free(n->store);
    pdw_redis_free(n->conn);
}

typedef struct rhook {
    int rc; /* what the accept hook returns */
    int calls;
    char key[PDW_DELIVERY_KEY_MAX];
} rhook;

static int rhook_accept(const pdw_event *ev, void *request_user, void *user)
{
    (void)request_user;
    rhook *h = user;
    h->calls++;
    snprintf(h->key, sizeof h->key, "%s", pdw_event_delivery_key(ev));
    return h->rc;
}

/* A receiver on the node's store, which it takes over. */
static pdw_receiver *rreceiver(node *n, rhook *h, uint64_t lease_ms)
{
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.insecure_no_auth = 1;
    o.dedup = n->store;
    o.dedup_ttl_ms = 600000;
    o.inflight_lease_ms = lease_ms;
    o.accept = rhook_accept;
    o.accept_user = h;
    pdw_receiver *r = NULL;
    assert_int_equal(pdw_receiver_new(&r, &o, NULL), 0);
    n->store = NULL; /* the receiver's now */
    return r;
}

/* A v2 delivery of one event, attempt 1 (the first) or later (Pipedrive's retries). */
static int deliver(pdw_receiver *r, unsigned attempt, pdw_verdict *v)
{
    char body[400];
    snprintf(body, sizeof body,
             "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
             "\"entity_id\":\"8\",\"id\":\"lease-1\",\"timestamp\":\"2026-11-24T15:11:55."
             "724Z\",\"attempt\":%u},\"data\":{\"stage_id\":2},\"previous\":{\"stage_id\":1}}",
             attempt);
    pdw_header h[] = { { "Content-Type", 12, "application/json", 16 } };
    pdw_request q = PDW_REQUEST_INIT;
    q.method = "POST";
    q.method_len = 4;
    q.headers = h;
    q.num_headers = 1;
    q.body = body;
    q.body_len = strlen(body);
    pdw_verdict init = PDW_VERDICT_INIT;
    *v = init;
    int rc = pdw_receiver_handle(r, &q, v, NULL);
    assert_int_equal(rc, v->reason);
    return rc;
}

/* Receiver A claims a delivery (its accept hook defers and never settles) and dies: the
 * claim stays in Redis, in flight. Receiver B on the same Redis answers a retry within the
 * lease 503 PDW_EINFLIGHT, and hands on the retry after the lease; its confirm keeps the
 * key for the whole dedup TTL. */
static void test_redis_lease_after_crash(void **state)
{
    (void)state;
    rserver rs;
    rserver_start(&rs);
    const uint64_t lease = 2000ull * time_scale();

    node a;
    node_open(&a, rs.url, 0);
    rhook ha = { PDW_ACCEPT_DEFERRED, 0, "" };
    pdw_receiver *ra = rreceiver(&a, &ha, lease);
    pdw_verdict v;
    assert_int_equal(deliver(ra, 1, &v), PDW_OK);
    assert_int_equal(v.status, 200);
    assert_int_equal(ha.calls, 1);
    char key[PDW_DELIVERY_KEY_MAX + 32], val[8];
    snprintf(key, sizeof key, "pdwebhook:dedup:%s", v.delivery_key);
    rs_get(&rs, key, val, sizeof val);
    assert_string_equal(val, "0"); /* in flight */
    long long ttl = rs_pttl(&rs, key);
    assert_true(ttl > 0 && ttl <= (long long)lease); /* held for the lease, not 600 s */
    /* the crash: nothing confirmed, nothing released */
    pdw_receiver_free(ra);
    node_close(&a);

    node b;
    node_open(&b, rs.url, 1);
    rhook hb = { 0, 0, "" };
    pdw_receiver *rb = rreceiver(&b, &hb, lease);
    ttl = rs_pttl(&rs, key);
    if (ttl < 300) /* the retry below must come within the lease */
        fail_msg("only %lld ms of the %llu ms lease left: too slow a machine", ttl,
                 (unsigned long long)lease);
    assert_int_equal(deliver(rb, 2, &v), PDW_EINFLIGHT);
    assert_int_equal(v.status, 503);
    assert_int_equal(hb.calls, 0);
    /* a first attempt (another webhook's copy) meanwhile: a duplicate, not handed on */
    assert_int_equal(deliver(rb, 1, &v), PDW_EDUPLICATE);
    assert_int_equal(hb.calls, 0);

    rs_wait_gone(&rs, key, (unsigned)lease + 5000u * time_scale()); /* the lease runs out */
    assert_int_equal(deliver(rb, 3, &v), PDW_OK); /* taken as new, handed on */
    assert_int_equal(v.status, 200);
    assert_int_equal(hb.calls, 1);
    rs_get(&rs, key, val, sizeof val);
    assert_string_equal(val, "1"); /* confirmed by B (its hook returned 0) */
    ttl = rs_pttl(&rs, key);
    assert_true(ttl > 590000 && ttl <= 600000); /* for the dedup TTL now */
    assert_int_equal(deliver(rb, 4, &v), PDW_EDUPLICATE);
    assert_int_equal(hb.calls, 1);
    pdw_receiver_free(rb);
    node_close(&b);

    /* another receiver without a local memory: Redis says duplicate */
    node c;
    node_open(&c, rs.url, 0);
    rhook hc = { 0, 0, "" };
    pdw_receiver *rc = rreceiver(&c, &hc, lease);
    assert_int_equal(deliver(rc, 4, &v), PDW_EDUPLICATE);
    assert_int_equal(hc.calls, 0);
    pdw_receiver_free(rc);
    node_close(&c);
    rserver_stop(&rs);
}

/* The store itself: a claim for a TTL, confirm (atomic SET "1" PX ttl if the key exists,
 * else PDW_ENOTFOUND). */
static void test_redis_confirm_ttl(void **state)
{
    (void)state;
    rserver rs;
    rserver_start(&rs);
    node n;
    node_open(&n, rs.url, 0);
    pdw_dedup_store *st = n.store;
    char val[8];
    assert_int_equal(pdw_dedup_store_claim(st, "k", 1, 0, 5000), PDW_CLAIM_NEW);
    rs_get(&rs, "pdwebhook:dedup:k", val, sizeof val);
    assert_string_equal(val, "0");
    long long ttl = rs_pttl(&rs, "pdwebhook:dedup:k");
    assert_true(ttl > 0 && ttl <= 5000);
    assert_int_equal(pdw_dedup_store_claim(st, "k", 1, 0, 5000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(pdw_dedup_store_confirm(st, "k", 1, 0, 100000), 0);
    rs_get(&rs, "pdwebhook:dedup:k", val, sizeof val);
    assert_string_equal(val, "1");
    ttl = rs_pttl(&rs, "pdwebhook:dedup:k");
    assert_true(ttl > 90000 && ttl <= 100000);
    assert_int_equal(pdw_dedup_store_claim(st, "k", 1, 0, 5000), PDW_CLAIM_DUPLICATE);
    /* confirmed again: the TTL moves */
    assert_int_equal(pdw_dedup_store_confirm(st, "k", 1, 0, 300000), 0);
    assert_true(rs_pttl(&rs, "pdwebhook:dedup:k") > 290000);
    /* not held: never claimed (and not created), released */
    assert_int_equal(pdw_dedup_store_confirm(st, "absent", 6, 0, 100000), PDW_ENOTFOUND);
    assert_int_equal(rs_pttl(&rs, "pdwebhook:dedup:absent"), -2);
    assert_int_equal(pdw_dedup_store_release(st, "k", 1), 0);
    assert_int_equal(rs_pttl(&rs, "pdwebhook:dedup:k"), -2);
    assert_int_equal(pdw_dedup_store_confirm(st, "k", 1, 0, 100000), PDW_ENOTFOUND);
    /* expired: the lease ran out before the confirm */
    assert_int_equal(pdw_dedup_store_claim(st, "e", 1, 0, 200), PDW_CLAIM_NEW);
    rs_wait_gone(&rs, "pdwebhook:dedup:e", 5000u * time_scale());
    assert_int_equal(pdw_dedup_store_confirm(st, "e", 1, 0, 100000), PDW_ENOTFOUND);
    assert_int_equal(rs_pttl(&rs, "pdwebhook:dedup:e"), -2);
    assert_int_equal(pdw_dedup_store_claim(st, "e", 1, 0, 200), PDW_CLAIM_NEW);
    node_close(&n);

    rserver_stop(&rs);
}

static int poll_handle(const pdw_redis_entry *e, unsigned attempt, char *errbuf, size_t cap,
                       void *user)
{
    (void)e, (void)attempt, (void)errbuf, (void)cap;
    ++*(int *)user;
    return 0;
}

/* The calls that need a server to succeed reset a reused pdw_error too. */
static void test_redis_error_reset(void **state)
{
    (void)state;
    rserver rs;
    rserver_start(&rs);
    pdw_error e = PDW_ERROR_INIT;
    pdw_redis *down = NULL, *r = NULL, *rc = NULL;
    assert_int_equal(pdw_redis_new(&down, "redis://127.0.0.1:1", NULL, NULL), 0);
    assert_int_equal(pdw_redis_new(&r, rs.url, NULL, NULL), 0);
    assert_int_equal(pdw_redis_new(&rc, rs.url, NULL, NULL), 0);

    /* pdw_redis_ping */
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_ping(down, &e), PDW_EREDIS);
    assert_error_own(e, PDW_EREDIS);
    assert_int_equal(pdw_redis_ping(r, &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_redis_ping(NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);

    /* pdw_redis_stream_add */
    pdw_redis_stream *s = NULL;
    assert_int_equal(pdw_redis_stream_new(&s, r, NULL, NULL), 0);
    static const char body[] =
        "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\","
        "\"entity_id\":\"8\",\"id\":\"reset-1\",\"timestamp\":\"2026-11-24T15:11:55."
        "724Z\"},\"data\":{\"id\":8}}";
    pdw_spool_record rec = { 1, 1, "k", 1, "nope", 4 };
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_stream_add(s, &rec, NULL, 0, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    rec.body = body;
    rec.body_len = sizeof body - 1;
    assert_int_equal(pdw_redis_stream_add(s, &rec, NULL, 0, &e), 1);
    assert_error_reset(e);
    assert_int_equal(pdw_redis_stream_add(NULL, &rec, NULL, 0, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);

    /* pdw_redis_consumer_poll */
    int handled = 0;
    pdw_redis_consumer *c = NULL;
    pdw_redis_consumer_options co = PDW_REDIS_CONSUMER_OPTIONS_INIT;
    co.group = "g";
    co.consumer = "c1";
    co.handle = poll_handle;
    co.handle_user = &handled;
    co.block_ms = 10;
    assert_int_equal(pdw_redis_consumer_new(&c, rc, &co, NULL), 0);
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_redis_consumer_poll(NULL, &e), PDW_EINVAL);
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_redis_consumer_poll(c, &e), 1);
    assert_error_reset(e);
    assert_int_equal(handled, 1);
    pdw_redis_consumer_free(c);

    pdw_redis_stream_free(s);
    pdw_redis_free(rc);
    pdw_redis_free(r);
    pdw_redis_free(down);
    rserver_stop(&rs);
}

typedef struct runner {
    pdw_redis_consumer *c;
    int rc;
} runner;

static void *run_thread(void *arg)
{
    runner *r = arg;
    r->rc = pdw_redis_consumer_run(r->c, NULL);
    return NULL;
}

static int cancel_handle(const pdw_redis_entry *e, unsigned attempt, char *errbuf, size_t cap,
                         void *user)
{
    (void)e, (void)attempt, (void)errbuf, (void)cap;
    pdw_redis_consumer *c = *(pdw_redis_consumer **)user;
    pdw_redis_consumer_stop(c); /* from its own callback: only asks, does not wait */
    return 0;
}

typedef struct slow {
    atomic_int entered, finished;
} slow;

static int slow_handle(const pdw_redis_entry *e, unsigned attempt, char *errbuf, size_t cap,
                       void *user)
{
    (void)e, (void)attempt, (void)errbuf, (void)cap;
    slow *sl = user;
    atomic_store(&sl->entered, 1);
    nap_ms(300);
    atomic_store(&sl->finished, 1);
    return 0;
}

static void xadd(rserver *rs)
{
    redisReply *rep = redisCommand(rs->c, "XADD pdwebhook:events * body {}");
    assert_non_null(rep);
    freeReplyObject(rep);
}

/* Stop and free are separate: pdw_redis_consumer_stop() from another thread returns only
 * once run() is over (the entry being handled finished); it is idempotent; run() after a
 * stop returns at once; from a callback stop only asks; pdw_redis_consumer_free() of a
 * running consumer stops it. */
static void test_redis_consumer_stop_then_free(void **state)
{
    (void)state;
    rserver rs;
    rserver_start(&rs);
    pdw_redis *conn = NULL;
    assert_int_equal(pdw_redis_new(&conn, rs.url, NULL, NULL), 0);
    pdw_redis_consumer *c = NULL;
    slow sl = { 0, 0 };
    pdw_redis_consumer_options co = PDW_REDIS_CONSUMER_OPTIONS_INIT;
    co.group = "g";
    co.consumer = "c1";
    co.handle = slow_handle;
    co.handle_user = &sl;
    co.block_ms = 50;
    assert_int_equal(pdw_redis_consumer_new(&c, conn, &co, NULL), 0);
    runner r = { c, -1 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
    xadd(&rs);
    for (int i = 0; i < 500 && !atomic_load(&sl.entered); i++)
        nap_ms(10);
    assert_int_equal(atomic_load(&sl.entered), 1);
    pdw_redis_consumer_stop(c); /* waits for the handler, then for run() */
    assert_int_equal(atomic_load(&sl.finished), 1);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, 0);
    pdw_redis_consumer_stop(c); /* idempotent */
    assert_int_equal(pdw_redis_consumer_run(c, NULL), 0); /* stopped: returns at once */
    pdw_redis_consumer_stats st;
    pdw_redis_consumer_get_stats(c, &st);
    assert_int_equal(st.handled, 1);
    pdw_redis_consumer_free(c);

    /* a stop from the consumer's own handler asks; run() returns after the entry */
    co.handle = cancel_handle;
    co.handle_user = &c;
    co.consumer = "c2";
    assert_int_equal(pdw_redis_consumer_new(&c, conn, &co, NULL), 0);
    xadd(&rs);
    assert_int_equal(pdw_redis_consumer_run(c, NULL), 0);
    pdw_redis_consumer_get_stats(c, &st);
    assert_int_equal(st.handled, 1);
    pdw_redis_consumer_free(c);

    /* cancel (the signal handler's call) ends run() in its thread */
    co.handle = poll_handle;
    int handled = 0;
    co.handle_user = &handled;
    co.consumer = "c3";
    assert_int_equal(pdw_redis_consumer_new(&c, conn, &co, NULL), 0);
    runner r2 = { c, -1 };
    assert_int_equal(pthread_create(&t, NULL, run_thread, &r2), 0);
    nap_ms(100);
    pdw_redis_consumer_cancel(c); /* asks only: the thread ends on its own */
    pthread_join(t, NULL);
    assert_int_equal(r2.rc, 0);
    pdw_redis_consumer_free(c);
    /* free while run() runs in another thread: it stops it first, then frees */
    co.consumer = "c4";
    slow sl2 = { 0, 0 };
    co.handle = slow_handle;
    co.handle_user = &sl2;
    assert_int_equal(pdw_redis_consumer_new(&c, conn, &co, NULL), 0);
    runner r3 = { c, -1 };
    assert_int_equal(pthread_create(&t, NULL, run_thread, &r3), 0);
    xadd(&rs);
    for (int i = 0; i < 500 && !atomic_load(&sl2.entered); i++) /* run() is under way */
        nap_ms(10);
    assert_int_equal(atomic_load(&sl2.entered), 1);
    pdw_redis_consumer_free(c);
    assert_int_equal(atomic_load(&sl2.finished), 1);
    pthread_join(t, NULL);
    assert_int_equal(r3.rc, 0);
    pdw_redis_consumer_cancel(NULL);
    pdw_redis_consumer_stop(NULL);
    pdw_redis_consumer_free(NULL);
    pdw_redis_free(conn);
    rserver_stop(&rs);
}

#else /* no redis-server, or no Redis support: skipped */

static void test_redis_lease_after_crash(void **state)
{
    (void)state;
    skip();
}

static void test_redis_confirm_ttl(void **state)
{
    (void)state;
    skip();
}


static void test_redis_error_reset(void **state)
{
    (void)state;
    skip();
}

static void test_redis_consumer_stop_then_free(void **state)
{
    (void)state;
    skip();
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_host_only),
        cmocka_unit_test(test_url_port_db),
        cmocka_unit_test(test_url_password),
        cmocka_unit_test(test_url_errors_name_the_part),
        cmocka_unit_test(test_url_struct_version),
        cmocka_unit_test(test_options_init),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_unreachable_fails_fast),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_redis_lease_after_crash),
        cmocka_unit_test(test_redis_confirm_ttl),
        cmocka_unit_test(test_error_reset_no_server),
        cmocka_unit_test(test_redis_error_reset),
        cmocka_unit_test(test_redis_consumer_stop_then_free),
    };
    PDW_RUN_GROUP(tests);
}
