/* pdwebhook/redis.h without a Redis server: URL parsing (every part, and messages that name
 * the wrong part and never the password), option defaults, argument checks, and a
 * connection to a port nobody listens on (fails fast, backs off, says so in its stats). */
#include <string.h>

#include "pdw_test.h"
#include "pdwebhook/pdwebhook.h"

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
    if (!pdw_redis_available()) {
        assert_int_equal(rc, PDW_ENOTBUILT);
        assert_null(r);
        return;
    }
    assert_int_equal(rc, 0);
    pdw_error_clear(&e);
    assert_int_equal(pdw_redis_ping(r, &e), PDW_EREDIS);
    assert_non_null(strstr(e.message, "127.0.0.1:1"));
    assert_null(strstr(e.message, "TOPSECRET"));

    /* the dedup store: no fallback = an error (the receiver answers 503) */
    pdw_redis_dedup *d = NULL;
    assert_int_equal(pdw_redis_dedup_new(&d, r, NULL, NULL), 0);
    pdw_dedup_store st;
    pdw_redis_dedup_store(d, &st);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_EREDIS);
    pdw_redis_dedup_free(d);

    /* with the memory store as fallback: claims go on locally */
    pdw_dedup_memory *m = NULL;
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    pdw_dedup_store local;
    pdw_dedup_memory_store(m, &local);
    pdw_redis_dedup_options dopt = PDW_REDIS_DEDUP_OPTIONS_INIT;
    dopt.fallback = &local;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, NULL), 0);
    pdw_redis_dedup_store(d, &st);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_NEW);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_DUPLICATE);
    pdw_redis_dedup_stats ds;
    pdw_redis_dedup_get_stats(d, &ds);
    assert_int_equal(ds.fallbacks, 1);
    assert_int_equal(ds.duplicates, 1);
    pdw_redis_dedup_free(d);
    pdw_dedup_memory_free(m);

    /* version 2 over a version-2 fallback: in flight until confirmed (locally: Redis is
     * down), released = new again */
    assert_int_equal(pdw_dedup_memory_new(&m, NULL, NULL), 0);
    assert_int_equal(pdw_dedup_memory_store_init(m, &local, PDW_DEDUP_STORE_VERSION), 0);
    dopt.fallback = &local;
    assert_int_equal(pdw_redis_dedup_new(&d, r, &dopt, NULL), 0);
    assert_int_equal(pdw_redis_dedup_store_init(d, &st, 3), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_redis_dedup_store_init(d, &st, PDW_DEDUP_STORE_VERSION), 0);
    assert_int_equal(st.version, PDW_DEDUP_STORE_VERSION);
    assert_non_null(st.confirm);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_NEW);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_INFLIGHT);
    assert_int_equal(st.confirm(st.self, "k", 1), 0);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_DUPLICATE);
    assert_true(st.confirm(st.self, "x", 1) < 0); /* held nowhere */
    st.release(st.self, "k", 1);
    assert_int_equal(st.claim(st.self, "k", 1, 0, 1000), PDW_CLAIM_NEW);
    pdw_redis_dedup_free(d);
    pdw_dedup_memory_free(m);

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
    if (!pdw_redis_available())
        return;
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
    };
    PDW_RUN_GROUP(tests);
}
