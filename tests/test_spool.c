/* The durable spool: CRC, round trips, recovery (torn tails, corruption), group commit,
 * rotation and deletion order, space limits, injected I/O faults, reused segment files
 * (crash images of each step), locking, allocation failures. Every test works in its own
 * mkdtemp directory under /tmp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "durable/crc32c.h"
#include "pdw_test.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/spool.h"

/* ---- helpers ------------------------------------------------------------------------ */

typedef struct tmp {
    char root[64];  /* the mkdtemp directory */
    char dir[96];   /* root/spool: created by pdw_spool_open */
} tmp;

static void tmp_make(tmp *t)
{
    snprintf(t->root, sizeof t->root, "/tmp/pdw-spool-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->dir, sizeof t->dir, "%s/spool", t->root);
}

static void rm_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void tmp_clean(tmp *t)
{
    char p[128];
    rm_files(t->dir);
    rmdir(t->dir);
    snprintf(p, sizeof p, "%s/copy", t->root);
    rm_files(p);
    rmdir(p);
    rmdir(t->root);
}

/* Sorted journal file names of dir (up to max); returns the count. */
static int list_journal(const char *dir, char names[][32], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "journal-", 8) == 0 && strlen(e->d_name) < 32 && n < max)
            memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
    closedir(d);
    qsort(names, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
    return n;
}

static long file_size(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void write_file(const char *dir, const char *name, const char *data, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static char *read_journal(const char *dir, const char *name, size_t *n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *b = pdw_test_read_file(p, n);
    assert_non_null(b);
    return b;
}

static pdw_spool *open_ok(const char *dir, const pdw_spool_options *o, pdw_spool_recovery *r)
{
    pdw_spool *s = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_spool_open(&s, dir, o, r, &err);
    if (rc != 0)
        fail_msg("pdw_spool_open: %d %s", rc, err.message);
    return s;
}

static uint64_t append_str(pdw_spool *s, const char *key, const char *body)
{
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(s, key, strlen(key), 1700000000000, body, strlen(body),
                                      &id, NULL),
                     0);
    return id;
}

/* What pdw_spool_foreach_pending() hands out, copied. */
typedef struct seen {
    size_t n, stop_at;
    uint64_t ids[20000];
    int64_t ms[64];
    char *keys[64], *bodies[64];
    size_t key_lens[64], body_lens[64];
} seen;

static int collect(const pdw_spool_record *r, void *user)
{
    seen *v = user;
    if (v->n < 64) {
        v->ms[v->n] = r->received_ms;
        v->key_lens[v->n] = r->key_len;
        v->body_lens[v->n] = r->body_len;
        v->keys[v->n] = malloc(r->key_len + 1);
        v->bodies[v->n] = malloc(r->body_len + 1);
        memcpy(v->keys[v->n], r->key, r->key_len);
        memcpy(v->bodies[v->n], r->body, r->body_len);
    }
    if (v->n < 20000)
        v->ids[v->n] = r->id;
    v->n++;
    return v->stop_at && v->n == v->stop_at ? 42 : 0;
}

static seen *seen_new(void)
{
    seen *v = calloc(1, sizeof *v);
    assert_non_null(v);
    return v;
}

static void seen_free(seen *v)
{
    for (size_t i = 0; i < 64 && i < v->n; i++) {
        free(v->keys[i]);
        free(v->bodies[i]);
    }
    free(v);
}

static seen *pending_of(pdw_spool *s)
{
    seen *v = seen_new();
    assert_int_equal(pdw_spool_foreach_pending(s, collect, v), 0);
    return v;
}

/* Fault injection through pdw_spool_io; call numbers count from 1. */
typedef struct fault {
    int writes, syncs;
    int short_write; /* this write writes half and returns */
    int fail_write;  /* this write fails with write_errno */
    int write_errno;
    int fail_sync;   /* this sync fails with sync_errno */
    int sync_errno;
    long sleep_ns;   /* added to each sync (a slow disk) */
} fault;

static long f_write(int fd, const void *b, size_t n, void *u)
{
    fault *f = u;
    int k = ++f->writes;
    if (k == f->fail_write) {
        errno = f->write_errno;
        return -1;
    }
    if (k == f->short_write && n > 1)
        return (long)write(fd, b, n / 2);
    return (long)write(fd, b, n);
}

static int f_sync(int fd, void *u)
{
    fault *f = u;
    int k = ++f->syncs;
    if (f->sleep_ns) {
        struct timespec ts = { 0, f->sleep_ns };
        nanosleep(&ts, NULL);
    }
    if (k == f->fail_sync) {
        errno = f->sync_errno;
        return -1;
    }
    return fdatasync(fd);
}

/* A record of a journal file, parsed independently of the library. */
typedef struct jrec {
    size_t start, end;
    int type;
    uint64_t id;      /* the id field */
    uint32_t count;   /* handled: how many ids */
    size_t ids_at;    /* handled: offset of the id list */
} jrec;

static uint64_t le64(const char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

static uint32_t le32s(const char *p)
{
    return (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8 |
           (uint32_t)(unsigned char)p[2] << 16 | (uint32_t)(unsigned char)p[3] << 24;
}

static size_t parse_journal(const char *b, size_t n, jrec *out, size_t max)
{
    size_t k = 0, off = 0;
    while (off + 12 <= n && k < max) {
        assert_memory_equal(b + off, "PDWJ", 4);
        uint32_t plen = le32s(b + off + 4);
        assert_true(off + 12 + plen <= n);
        assert_int_equal(pdw__crc32c(0, b + off + 12, plen), le32s(b + off + 8));
        jrec r = { off, off + 12 + plen, (unsigned char)b[off + 12], le64(b + off + 13), 0, 0 };
        if (r.type == 2) {
            r.count = le32s(b + off + 21);
            r.ids_at = off + 25;
        }
        out[k++] = r;
        off = r.end;
    }
    assert_int_equal(off, n);
    return k;
}

/* ---- CRC ---------------------------------------------------------------------------- */

static void test_crc_vectors(void **state)
{
    (void)state;
    unsigned char b[64];
    assert_int_equal(pdw__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(pdw__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(pdw__crc32c(0, "", 0), 0);
    memset(b, 0, 32);
    assert_int_equal(pdw__crc32c(0, b, 32), 0x8A9136AAu);
    assert_int_equal(pdw__crc32c_sw(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, 32);
    assert_int_equal(pdw__crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    assert_int_equal(pdw__crc32c(0, b, 32), 0x46DD794Eu);
    assert_int_equal(pdw__crc32c_sw(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    assert_int_equal(pdw__crc32c(0, b, 32), 0x113FDB5Cu);
    /* chaining, and the two paths agree at every length and alignment */
    assert_int_equal(pdw__crc32c(pdw__crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    unsigned char big[1100];
    unsigned x = 7;
    for (size_t i = 0; i < sizeof big; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (unsigned char)(x >> 16);
    }
    for (size_t a = 0; a < 8; a++)
        for (size_t n = 0; n + a <= 1024; n += (n < 40 ? 1 : 37)) {
            uint32_t hw = pdw__crc32c(0, big + a, n), sw = pdw__crc32c_sw(0, big + a, n);
            assert_int_equal(hw, sw);
            size_t h = n / 3;
            assert_int_equal(pdw__crc32c(pdw__crc32c(0, big + a, h), big + a + h, n - h), hw);
        }
}

/* ---- basics ------------------------------------------------------------------------- */

static void test_options_and_args(void **state)
{
    (void)state;
    pdw_spool_options o;
    assert_int_equal(pdw_spool_options_init(NULL, PDW_SPOOL_OPTIONS_VERSION), PDW_EINVAL);
    assert_int_equal(pdw_spool_options_init(&o, 999), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_spool_options_init(&o, PDW_SPOOL_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, PDW_SPOOL_OPTIONS_VERSION);
    assert_int_equal(o.segment_bytes, 0);
    assert_null(o.io);
    tmp t;
    tmp_make(&t);
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(NULL, t.dir, NULL, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_spool_open(&s, NULL, NULL, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_spool_open(&s, "", NULL, NULL, NULL), PDW_EINVAL);
    o.version = 99;
    assert_int_equal(pdw_spool_open(&s, t.dir, &o, NULL, NULL), PDW_EVERSIONSTRUCT);
    assert_null(s);
    pdw_allocator half = { NULL, NULL, NULL, NULL };
    o.version = PDW_SPOOL_OPTIONS_VERSION;
    o.allocator = &half;
    assert_int_equal(pdw_spool_open(&s, t.dir, &o, NULL, NULL), PDW_EINVAL);
    /* a path whose parent does not exist */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/no/such/dir", t.root);
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_spool_open(&s, bad, NULL, NULL, &err), PDW_EIO);
    assert_int_equal(err.code, PDW_EIO);

    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    struct stat st;
    assert_int_equal(stat(t.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(r.segments, 0);
    assert_int_equal(r.deliveries, 0);
    char key[65536];
    memset(key, 'k', sizeof key);
    assert_int_equal(pdw_spool_append(s, key, 65536, 0, "", 0, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_spool_append(s, NULL, 3, 0, "", 0, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, NULL, 5, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_spool_foreach_pending(s, NULL, NULL), PDW_EINVAL);
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(s, key, 65535, 0, NULL, 0, &id, NULL), 0);
    assert_int_equal(id, 1);
    pdw_spool_close(s);
    pdw_spool_close(NULL);
    tmp_clean(&t);
}

static void test_roundtrip_reopen(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (char)i;
    struct {
        const char *key;
        size_t key_len;
        int64_t ms;
        const char *body;
        size_t len;
    } in[] = {
        { "2:deal:change:a:1", 17, 1700000000123, "{\"a\":1}", 7 },
        { "", 0, -5, "", 0 },                  /* empty key and body */
        { "k\0ey", 4, 0, bin, sizeof bin },    /* binary bytes, NUL inside the key */
        { "x", 1, INT64_MAX, "body", 4 },
    };
    size_t n = sizeof in / sizeof in[0];

    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = 0;
        assert_int_equal(pdw_spool_append(s, in[i].key, in[i].key_len, in[i].ms, in[i].body,
                                          in[i].len, &id, NULL),
                         0);
        assert_int_equal(id, i + 1);
        assert_int_equal(pdw_spool_durable(s), i + 1);
    }
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.appended, n);
    assert_int_equal(st.pending, n);
    assert_int_equal(st.segments, 1);
    assert_true(st.flushes >= 1 && st.flushes <= n);
    pdw_spool_close(s);

    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.segments, 1);
    assert_int_equal(r.deliveries, n);
    assert_int_equal(r.pending, n);
    assert_int_equal(r.torn_bytes, 0);
    assert_int_equal(r.skipped_bytes, 0);
    seen *v = pending_of(s);
    assert_int_equal(v->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v->ids[i], i + 1);
        assert_true(v->ms[i] == in[i].ms);
        assert_int_equal(v->key_lens[i], in[i].key_len);
        assert_memory_equal(v->keys[i], in[i].key, in[i].key_len);
        assert_int_equal(v->body_lens[i], in[i].len);
        assert_memory_equal(v->bodies[i], in[i].body, in[i].len);
    }
    seen_free(v);
    /* ids keep growing across the reopen */
    assert_int_equal(append_str(s, "k5", "five"), n + 1);
    pdw_spool_close(s);
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, n + 1);
    assert_int_equal(append_str(s, "k6", "six"), n + 2);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_large_body(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    size_t n = 3u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 31 + 7);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    uint64_t id;
    assert_int_equal(pdw_spool_append(s, "big", 3, 1, body, n, &id, NULL), 0);
    append_str(s, "small", "x");
    pdw_spool_close(s);
    s = open_ok(t.dir, NULL, NULL);
    seen *v = pending_of(s);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->body_lens[0], n);
    assert_memory_equal(v->bodies[0], body, n);
    assert_int_equal(v->body_lens[1], 1);
    seen_free(v);
    pdw_spool_close(s);
    free(body);
    tmp_clean(&t);
}

static void test_pending_handled_reopen(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    for (int i = 0; i < 10; i++)
        append_str(s, "k", "b");
    assert_int_equal(pdw_spool_mark_handled(s, 2), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 5), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 9), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 5), PDW_ENOTFOUND); /* already handled */
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.pending, 7);
    uint64_t d = 0;
    assert_int_equal(pdw_spool_flush(s, &d), 0);
    assert_int_equal(d, 10);
    pdw_spool_close(s);

    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, 10);
    assert_int_equal(r.pending, 7);
    seen *v = pending_of(s);
    uint64_t want[] = { 1, 3, 4, 6, 7, 8, 10 };
    assert_int_equal(v->n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(v->ids[i], want[i]);
    seen_free(v);
    /* a marker queued without a flush is written by close */
    assert_int_equal(pdw_spool_mark_handled(s, 1), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 2), PDW_ENOTFOUND);
    pdw_spool_close(s);
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.pending, 6);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_mark_unknown(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    assert_int_equal(pdw_spool_mark_handled(s, 0), PDW_ENOTFOUND);
    assert_int_equal(pdw_spool_mark_handled(s, 1), PDW_ENOTFOUND);
    uint64_t id;
    assert_int_equal(pdw_spool_append_nowait(s, "k", 1, 0, "b", 1, &id, NULL), 0);
    /* appended but not durable yet: not pending */
    assert_int_equal(pdw_spool_mark_handled(s, id), PDW_ENOTFOUND);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(pdw_spool_mark_handled(s, id), 0);
    assert_int_equal(pdw_spool_mark_handled(s, id), PDW_ENOTFOUND);
    assert_int_equal(pdw_spool_mark_handled(s, 999), PDW_ENOTFOUND);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_nowait_flush(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    uint64_t a, b, c, d = 99;
    assert_int_equal(pdw_spool_append_nowait(s, "a", 1, 0, "1", 1, &a, NULL), 0);
    assert_int_equal(pdw_spool_append_nowait(s, "b", 1, 0, "2", 1, &b, NULL), 0);
    assert_int_equal(pdw_spool_append_nowait(s, "c", 1, 0, "3", 1, &c, NULL), 0);
    assert_int_equal(a, 1);
    assert_int_equal(c, 3);
    assert_int_equal(pdw_spool_durable(s), 0);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.flushes, 0);
    assert_int_equal(pdw_spool_flush(s, &d), 0);
    assert_int_equal(d, 3);
    assert_int_equal(pdw_spool_dropped(s, 2), 0);
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.flushes, 1); /* one fdatasync for the three */
    assert_int_equal(st.pending, 3);
    assert_int_equal(pdw_spool_flush(s, &d), 0); /* nothing to do */
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.flushes, 1);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_foreach_order_early_stop(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 256; /* the walk crosses segments */
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    for (int i = 0; i < 10; i++) {
        char body[64];
        snprintf(body, sizeof body, "body number %d of the walk", i + 1);
        append_str(s, "key", body);
    }
    assert_int_equal(pdw_spool_mark_handled(s, 3), 0);
    assert_int_equal(pdw_spool_mark_handled(s, 7), 0);
    seen *v = pending_of(s);
    uint64_t want[] = { 1, 2, 4, 5, 6, 8, 9, 10 };
    assert_int_equal(v->n, 8);
    for (size_t i = 0; i < 8; i++) {
        char body[64];
        assert_int_equal(v->ids[i], want[i]);
        snprintf(body, sizeof body, "body number %d of the walk", (int)want[i]);
        assert_int_equal(v->body_lens[i], strlen(body));
        assert_memory_equal(v->bodies[i], body, strlen(body));
    }
    seen_free(v);
    v = seen_new();
    v->stop_at = 4;
    assert_int_equal(pdw_spool_foreach_pending(s, collect, v), 42);
    assert_int_equal(v->n, 4);
    assert_int_equal(v->ids[3], 5);
    seen_free(v);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* ---- group commit ------------------------------------------------------------------- */

enum { THREADS = 8, PER_THREAD = 2000 };

typedef struct worker {
    pdw_spool *s;
    int index;
    uint64_t ids[PER_THREAD];
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char key[32], body[64];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(key, sizeof key, "t%d:%d", w->index, i);
        snprintf(body, sizeof body, "{\"thread\":%d,\"i\":%d}", w->index, i);
        if (pdw_spool_append(w->s, key, strlen(key), i, body, strlen(body), &w->ids[i], NULL))
            w->failures++;
        else if (pdw_spool_durable(w->s) < w->ids[i])
            w->failures++;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_group_commit_threads(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    /* Each fdatasync takes at least 100 us, so that batching shows whatever the disk. */
    fault f = { 0 };
    f.sleep_ns = 100000;
    pdw_spool_io io = { NULL, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    static worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].s = s;
        w[i].index = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    static uint64_t all[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        for (int j = 0; j < PER_THREAD; j++) {
            all[i * PER_THREAD + j] = w[i].ids[j];
            if (j)
                assert_true(w[i].ids[j] > w[i].ids[j - 1]);
        }
    }
    qsort(all, THREADS * PER_THREAD, sizeof all[0], cmp_u64);
    for (size_t i = 0; i < THREADS * PER_THREAD; i++)
        assert_int_equal(all[i], i + 1); /* distinct, dense */
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.appended, THREADS * PER_THREAD);
    assert_int_equal(st.pending, THREADS * PER_THREAD);
    assert_int_equal(pdw_spool_durable(s), THREADS * PER_THREAD);
    print_message("group commit: %llu appends, %llu flushes\n",
                  (unsigned long long)st.appended, (unsigned long long)st.flushes);
    assert_true(st.flushes < st.appended / 2);
    assert_int_equal(st.flushes, (uint64_t)f.syncs);
    pdw_spool_close(s);
    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, THREADS * PER_THREAD);
    assert_int_equal(r.torn_bytes, 0);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* Appenders wait for the end of their own batch only (the next batch's appenders sleep
 * on), one of those leads the next, and a leader may wait a little for more records: none
 * of it may lose a wake-up. Appenders with pauses of their own, from one record to bursts,
 * mixed with pdw_spool_flush() and mark_handled callers, on a slow disk; every append must
 * return durable, and the whole run must end (a lost wake-up hangs it). */
enum { MIX_THREADS = 12, MIX_PER_THREAD = 150 };

typedef struct mixer {
    pdw_spool *s;
    int index, failures;
    uint64_t last;
} mixer;

static void *mix_append(void *arg)
{
    mixer *m = arg;
    unsigned rng = (unsigned)m->index * 2654435761u + 1;
    for (int i = 0; i < MIX_PER_THREAD; i++) {
        uint64_t id = 0;
        if (pdw_spool_append(m->s, "k", 1, i, "{}", 2, &id, NULL) != 0 ||
            pdw_spool_durable(m->s) < id || id <= m->last)
            m->failures++;
        m->last = id;
        rng = rng * 1103515245u + 12345u;
        if (rng >> 28 == 0) { /* now and then a pause longer than a flush */
            struct timespec ts = { 0, 300000 };
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static atomic_int mix_stop, mix_flush_failures;

static void *mix_flush(void *arg)
{
    pdw_spool *s = arg;
    uint64_t next = 1;
    while (!atomic_load(&mix_stop)) {
        uint64_t durable = 0;
        if (pdw_spool_flush(s, &durable) != 0) /* no cmocka assert off the main thread */
            atomic_fetch_add(&mix_flush_failures, 1);
        for (; next <= durable; next++)
            pdw_spool_mark_handled(s, next);
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_group_commit_wakeups(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    f.sleep_ns = 200000; /* 0.2 ms per sync */
    pdw_spool_io io = { NULL, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    static mixer m[MIX_THREADS];
    pthread_t th[MIX_THREADS], fl;
    atomic_store(&mix_stop, 0);
    assert_int_equal(pthread_create(&fl, NULL, mix_flush, s), 0);
    for (int i = 0; i < MIX_THREADS; i++) {
        m[i] = (mixer){ s, i, 0, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, mix_append, &m[i]), 0);
    }
    for (int i = 0; i < MIX_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(m[i].failures, 0);
    }
    atomic_store(&mix_stop, 1);
    assert_int_equal(pthread_join(fl, NULL), 0);
    assert_int_equal(atomic_load(&mix_flush_failures), 0);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.appended, MIX_THREADS * MIX_PER_THREAD);
    assert_int_equal(pdw_spool_durable(s), MIX_THREADS * MIX_PER_THREAD);
    print_message("wake-ups: %llu appends, %llu flushes\n", (unsigned long long)st.appended,
                  (unsigned long long)st.flushes);
    assert_true(st.flushes < st.appended);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* One appender at a time never waits for company: each append is one flush. */
static void test_lone_appender_not_delayed(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    f.sleep_ns = 1000000; /* 1 ms per sync */
    pdw_spool_io io = { NULL, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    for (int i = 0; i < 20; i++)
        append_str(s, "k", "alone");
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.flushes, 20);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* ---- recovery ----------------------------------------------------------------------- */

enum { TORN_MAX = 200 };

/* Recover a copy of the journal cut at `cut`, against a model computed from the records. */
static void check_cut(tmp *t, const char *name, const char *b, const jrec *rec, size_t nrec,
                      size_t cut)
{
    char copy[128];
    snprintf(copy, sizeof copy, "%s/copy", t->root);
    rm_files(copy);
    mkdir(copy, 0700);
    write_file(copy, name, b, cut);

    /* model: complete records only */
    uint64_t ids[TORN_MAX], max_id = 0;
    int handled[TORN_MAX] = { 0 };
    size_t nd = 0, good_end = 0;
    for (size_t i = 0; i < nrec && rec[i].end <= cut; i++) {
        good_end = rec[i].end;
        if (rec[i].id > max_id)
            max_id = rec[i].id;
        if (rec[i].type == 1) {
            ids[nd++] = rec[i].id;
            continue;
        }
        for (uint32_t k = 0; k < rec[i].count; k++) {
            uint64_t h = le64(b + rec[i].ids_at + 8 * k);
            for (size_t j = 0; j < nd; j++)
                if (ids[j] == h)
                    handled[j] = 1;
        }
    }
    size_t npend = 0;
    for (size_t j = 0; j < nd; j++)
        npend += !handled[j];

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.no_sync = 1; /* recovery logic, not durability, is under test here */
    pdw_spool_recovery r;
    pdw_spool *s = open_ok(copy, &o, &r);
    assert_int_equal(r.deliveries, nd);
    assert_int_equal(r.pending, npend);
    assert_int_equal(r.torn_bytes, cut - good_end);
    assert_int_equal(r.skipped_bytes, 0);
    assert_int_equal(file_size(copy, name), (long)good_end);
    seen *v = pending_of(s);
    assert_int_equal(v->n, npend);
    for (size_t j = 0, k = 0; j < nd; j++)
        if (!handled[j])
            assert_int_equal(v->ids[k++], ids[j]);
    seen_free(v);
    /* appends after recovery work and survive another reopen */
    uint64_t id = append_str(s, "after", "the cut");
    assert_int_equal(id, max_id + 1);
    pdw_spool_close(s);
    s = open_ok(copy, &o, &r);
    assert_int_equal(r.deliveries, nd + 1);
    assert_int_equal(r.pending, npend + 1);
    assert_int_equal(r.torn_bytes, 0);
    v = pending_of(s);
    assert_true(v->n >= 1 && v->n < 64);
    assert_int_equal(v->ids[v->n - 1], id);
    assert_int_equal(v->body_lens[v->n - 1], 7);
    assert_memory_equal(v->bodies[v->n - 1], "the cut", 7);
    seen_free(v);
    pdw_spool_close(s);
}

static void test_torn_tail_every_cut(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    char body[200];
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "{\"n\":%d,\"pad\":\"%.*s\"}", i, (i * 7) % 90,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        uint64_t id = append_str(s, "2:deal:change:k", i == 39 ? "" : body);
        if (i % 6 == 5) { /* markers between the deliveries, some in the last records */
            assert_int_equal(pdw_spool_mark_handled(s, id - 2), 0);
            assert_int_equal(pdw_spool_mark_handled(s, id - 4), 0);
            assert_int_equal(pdw_spool_flush(s, NULL), 0);
        }
    }
    assert_int_equal(pdw_spool_mark_handled(s, 38), 0);
    pdw_spool_close(s);

    char names[4][32];
    assert_int_equal(list_journal(t.dir, names, 4), 1);
    size_t n;
    char *b = read_journal(t.dir, names[0], &n);
    jrec rec[TORN_MAX];
    size_t nrec = parse_journal(b, n, rec, TORN_MAX);
    assert_true(nrec >= 45);
    assert_int_equal(rec[nrec - 1].type, 2); /* the last record is a marker */

    size_t from = rec[nrec - 3].start, cuts = 0;
    for (size_t c = from; c <= n; c++, cuts++)
        check_cut(&t, names[0], b, rec, nrec, c);
    unsigned x = 2024;
    for (int i = 0; i < 200; i++, cuts++) {
        x = x * 1103515245u + 12345u;
        check_cut(&t, names[0], b, rec, nrec, (x >> 8) % (n + 1));
    }
    check_cut(&t, names[0], b, rec, nrec, 0);
    print_message("torn tail: %zu cuts over %zu records (%zu bytes)\n", cuts, nrec, n);
    free(b);
    tmp_clean(&t);
}

static void test_torn_tail_garbage(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *s = open_ok(t.dir, NULL, NULL);
    for (int i = 0; i < 5; i++)
        append_str(s, "k", "body");
    pdw_spool_close(s);
    char names[2][32];
    assert_int_equal(list_journal(t.dir, names, 2), 1);
    size_t n;
    char *b = read_journal(t.dir, names[0], &n);
    /* zeros after the end (a preallocated or half-persisted page), then a valid-looking
     * magic with a huge length */
    char *g = calloc(1, n + 600);
    memcpy(g, b, n);
    memcpy(g + n + 300, "PDWJ\xff\xff\xff\x7f", 8);
    write_file(t.dir, names[0], g, n + 600);
    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, 5);
    assert_int_equal(r.torn_bytes, 600);
    assert_int_equal(file_size(t.dir, names[0]), (long)n);
    assert_int_equal(append_str(s, "k", "six"), 6);
    pdw_spool_close(s);
    /* a flipped bit inside the last record of the last segment: it is the torn tail */
    size_t m;
    free(b);
    b = read_journal(t.dir, names[0], &m);
    b[m - 2] ^= 0x10;
    write_file(t.dir, names[0], b, m);
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, 5);
    assert_int_equal(r.torn_bytes, m - n);
    pdw_spool_close(s);
    free(b);
    free(g);
    tmp_clean(&t);
}

static void test_corrupt_older_segment_skipped(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 1024;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    char body[128];
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "{\"n\":%d,\"text\":\"some padding for a hundred bytes "
                                    "of record, more or less\"}", i + 1);
        append_str(s, "key", body);
    }
    pdw_spool_close(s);
    char names[16][32];
    int ns = list_journal(t.dir, names, 16);
    assert_true(ns >= 3);

    /* segment 0: a flipped byte in the body of its second record */
    size_t n0, n1;
    char *b0 = read_journal(t.dir, names[0], &n0);
    jrec r0[64], r1[64];
    size_t k0 = parse_journal(b0, n0, r0, 64);
    assert_true(k0 >= 4);
    b0[r0[1].end - 5] ^= 0x01;
    write_file(t.dir, names[0], b0, n0);
    /* segment 1: the magic of its third record destroyed */
    char *b1 = read_journal(t.dir, names[1], &n1);
    size_t k1 = parse_journal(b1, n1, r1, 64);
    assert_true(k1 >= 4);
    b1[r1[2].start] = 'X';
    write_file(t.dir, names[1], b1, n1);

    pdw_spool_recovery r;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.segments, ns);
    assert_int_equal(r.deliveries, 38);
    assert_int_equal(r.torn_bytes, 0);
    assert_int_equal(r.skipped_bytes, (r0[1].end - r0[1].start) + (r1[2].end - r1[2].start));
    seen *v = pending_of(s);
    assert_int_equal(v->n, 38);
    for (size_t i = 0; i < v->n; i++) {
        assert_true(v->ids[i] != r0[1].id);
        assert_true(v->ids[i] != r1[2].id);
    }
    assert_int_equal(v->ids[v->n - 1], 40); /* later records kept */
    seen_free(v);
    /* the corrupt segments stay readable: nothing was cut from them */
    assert_int_equal(file_size(t.dir, names[0]), (long)n0);
    assert_int_equal(append_str(s, "k", "new"), 41);
    pdw_spool_close(s);
    free(b0);
    free(b1);
    tmp_clean(&t);
}

/* ---- rotation and deletion ---------------------------------------------------------- */

static void test_rotation_and_deletion(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 4096;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    char body[201];
    memset(body, 'b', 200);
    body[200] = '\0';
    for (int i = 0; i < 100; i++)
        append_str(s, "key", body);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    char names[64][32];
    int ns = list_journal(t.dir, names, 64);
    assert_true(ns >= 5);
    assert_int_equal(st.segments, (uint64_t)ns);
    uint64_t total = 0;
    for (int i = 0; i < ns; i++)
        total += (uint64_t)file_size(t.dir, names[i]);
    assert_int_equal(st.bytes, total);
    for (int i = 0; i + 1 < ns; i++)
        assert_true(file_size(t.dir, names[i]) >= 4096);

    for (uint64_t id = 1; id <= 100; id++)
        assert_int_equal(pdw_spool_mark_handled(s, id), 0);
    assert_int_equal(ns, list_journal(t.dir, names, 64)); /* nothing durable yet */
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(list_journal(t.dir, names, 64), 1); /* only the active one is left */
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.bytes, (uint64_t)file_size(t.dir, names[0]));
    pdw_spool_close(s);

    /* ids keep growing although the records of 1..100 are gone */
    pdw_spool_recovery r;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.pending, 0);
    assert_int_equal(append_str(s, "k", "x"), 101);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_deletion_order(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 2048;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    char body[101];
    memset(body, 'c', 100);
    body[100] = '\0';
    for (int i = 0; i < 60; i++)
        append_str(s, "key", body);
    char names[64][32];
    int ns = list_journal(t.dir, names, 64);
    assert_true(ns >= 3);
    /* everything but id 1 (in the oldest segment): the newer segments are fully handled
     * but must stay while an older one lives (the marker record may also rotate) */
    for (uint64_t id = 2; id <= 60; id++)
        assert_int_equal(pdw_spool_mark_handled(s, id), 0);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    char after[64][32];
    int na = list_journal(t.dir, after, 64);
    assert_true(na == ns || na == ns + 1);
    for (int i = 0; i < ns; i++)
        assert_string_equal(after[i], names[i]);
    ns = na;
    pdw_spool_close(s);

    pdw_spool_recovery r;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.pending, 1);
    assert_int_equal(r.deliveries, 60);
    assert_int_equal(list_journal(t.dir, names, 64), ns);
    seen *v = pending_of(s);
    assert_int_equal(v->n, 1);
    assert_int_equal(v->ids[0], 1);
    seen_free(v);
    assert_int_equal(pdw_spool_mark_handled(s, 1), 0);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(list_journal(t.dir, names, 64), 1);
    pdw_spool_close(s);
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.pending, 0);
    assert_int_equal(append_str(s, "k", "x"), 61);
    pdw_spool_close(s);
    tmp_clean(&t);
}

static void test_max_bytes(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 1024;
    o.max_bytes = 8192;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    char body[101];
    memset(body, 'm', 100);
    body[100] = '\0';
    uint64_t id = 0, last = 0;
    int rc;
    while ((rc = pdw_spool_append(s, "k", 1, 0, body, 100, &id, NULL)) == 0)
        last = id;
    assert_int_equal(rc, PDW_ENOSPC);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.appended, last); /* the refused one took no id, no buffer */
    assert_int_equal(st.full_errors, 1);
    assert_true(st.bytes <= 8192);
    assert_true(st.bytes + 12 + 19 + 1 + 100 > 8192);
    assert_int_equal(pdw_spool_durable(s), last);
    assert_int_equal(pdw_spool_append_nowait(s, "k", 1, 0, body, 100, &id, NULL), PDW_ENOSPC);
    /* small records may still fit; markers are never refused */
    for (uint64_t i = 1; i <= last; i++)
        assert_int_equal(pdw_spool_mark_handled(s, i), 0);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    pdw_spool_get_stats(s, &st);
    assert_true(st.bytes < 2048);
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, body, 100, &id, NULL), 0);
    assert_int_equal(id, last + 1);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* ---- injected faults ---------------------------------------------------------------- */

/* Reopen: exactly the durable deliveries (`deliveries` records, `want` pending). */
static void check_reopen_ids(tmp *t, size_t deliveries, const uint64_t *want, size_t n)
{
    pdw_spool_recovery r;
    pdw_spool *s = open_ok(t->dir, NULL, &r);
    assert_int_equal(r.torn_bytes, 0); /* the failed batch was cut back */
    assert_int_equal(r.skipped_bytes, 0);
    assert_int_equal(r.deliveries, deliveries);
    seen *v = pending_of(s);
    assert_int_equal(v->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v->ids[i], want[i]);
    seen_free(v);
    pdw_spool_close(s);
}

static void test_inject_enospc_write(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    pdw_spool_io io = { f_write, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    for (int i = 0; i < 3; i++)
        append_str(s, "k", "durable");
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    uint64_t bytes = st.bytes;

    f.fail_write = f.writes + 1;
    f.write_errno = ENOSPC;
    uint64_t id = 0;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, "lost", 4, &id, &err), PDW_ENOSPC);
    assert_int_equal(err.code, PDW_ENOSPC);
    assert_int_equal(id, 4);
    assert_int_equal(pdw_spool_dropped(s, 4), 1);
    assert_int_equal(pdw_spool_dropped(s, 3), 0);
    assert_int_equal(pdw_spool_durable(s), 3);
    assert_int_equal(pdw_spool_mark_handled(s, 4), PDW_ENOTFOUND);
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.full_errors, 1);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.pending, 3);
    char names[2][32];
    assert_int_equal(list_journal(t.dir, names, 2), 1);
    assert_int_equal(file_size(t.dir, names[0]), (long)bytes);

    /* space is back */
    assert_int_equal(append_str(s, "k", "after"), 5);
    assert_int_equal(pdw_spool_dropped(s, 5), 0);
    assert_int_equal(pdw_spool_dropped(s, 4), 1);
    pdw_spool_close(s);
    uint64_t want[] = { 1, 2, 3, 5 };
    check_reopen_ids(&t, 4, want, 4);
    tmp_clean(&t);
}

static void test_inject_short_write_then_enospc(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    pdw_spool_io io = { f_write, NULL, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    append_str(s, "k", "one");
    append_str(s, "k", "two");
    assert_int_equal(pdw_spool_mark_handled(s, 1), 0);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    uint64_t bytes = st.bytes;

    /* a batch of five plus the marker: half of it reaches the file, then the disk is full */
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(pdw_spool_append_nowait(s, "k", 1, 0, "batch", 5, &ids[i], NULL), 0);
    f.short_write = f.writes + 1;
    f.fail_write = f.writes + 2;
    f.write_errno = ENOSPC;
    uint64_t d = 0;
    assert_int_equal(pdw_spool_flush(s, &d), PDW_ENOSPC);
    assert_int_equal(d, 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pdw_spool_dropped(s, ids[i]), 1);
    char names[2][32];
    assert_int_equal(list_journal(t.dir, names, 2), 1);
    assert_int_equal(file_size(t.dir, names[0]), (long)bytes); /* cut back */
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.full_errors, 5);
    assert_int_equal(st.pending, 1); /* id 1 stays handled: its marker is retried */

    assert_int_equal(append_str(s, "k", "later"), 8);
    pdw_spool_close(s);
    uint64_t want[] = { 2, 8 };
    check_reopen_ids(&t, 3, want, 2); /* 1 is handled */
    tmp_clean(&t);
}

static void test_inject_eio_sync(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    pdw_spool_io io = { NULL, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    append_str(s, "k", "one");
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    uint64_t bytes = st.bytes;
    f.fail_sync = f.syncs + 1;
    f.sync_errno = EIO;
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, "lost", 4, &id, NULL), PDW_EIO);
    assert_int_equal(pdw_spool_dropped(s, id), 1);
    assert_int_equal(pdw_spool_durable(s), 1);
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.io_errors, 1);
    assert_int_equal(st.full_errors, 0);
    assert_int_equal(st.bytes, bytes);
    char names[2][32];
    assert_int_equal(list_journal(t.dir, names, 2), 1);
    assert_int_equal(file_size(t.dir, names[0]), (long)bytes);
    /* an ENOSPC from fdatasync (delayed allocation) is a full disk too */
    f.fail_sync = f.syncs + 1;
    f.sync_errno = ENOSPC;
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, "lost", 4, &id, NULL), PDW_ENOSPC);
    assert_int_equal(append_str(s, "k", "three"), 4);
    pdw_spool_close(s);
    uint64_t want[] = { 1, 4 };
    check_reopen_ids(&t, 2, want, 2);
    tmp_clean(&t);
}

/* pdw_spool_status() for a server that appends without waiting and flushes for a batch:
 * pending until the flush, then durable, or dropped with the flush's code (ENOSPC from a
 * write, EIO from fdatasync), and durable ids stay durable after later failures. */
static void nowait(pdw_spool *s, const char *body, uint64_t *id)
{
    assert_int_equal(pdw_spool_append_nowait(s, "k", 1, 0, body, strlen(body), id, NULL), 0);
}

static void test_status_nowait_flush(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    pdw_spool_io io = { f_write, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    assert_int_equal(pdw_spool_status(NULL, 1), PDW_EINVAL);
    assert_int_equal(pdw_spool_status(s, 0), PDW_EINVAL);
    assert_int_equal(pdw_spool_status(s, 1), PDW_EINVAL); /* not handed out yet */

    uint64_t a, b, c, d, e;
    nowait(s, "one", &a);
    nowait(s, "two", &b);
    assert_int_equal(pdw_spool_status(s, a), 1);
    assert_int_equal(pdw_spool_status(s, b), 1);
    uint64_t durable = 0;
    assert_int_equal(pdw_spool_flush(s, &durable), 0);
    assert_int_equal(durable, b);
    assert_int_equal(pdw_spool_status(s, a), 0);
    assert_int_equal(pdw_spool_status(s, b), 0);

    /* a full disk on the write: the batch is dropped with PDW_ENOSPC */
    nowait(s, "three", &c);
    nowait(s, "four", &d);
    f.fail_write = f.writes + 1;
    f.write_errno = ENOSPC;
    assert_int_equal(pdw_spool_flush(s, NULL), PDW_ENOSPC);
    assert_int_equal(pdw_spool_status(s, c), PDW_ENOSPC);
    assert_int_equal(pdw_spool_status(s, d), PDW_ENOSPC);
    assert_int_equal(pdw_spool_status(s, b), 0);

    /* fdatasync fails: PDW_EIO; the next batch goes through again */
    nowait(s, "five", &e);
    f.fail_sync = f.syncs + 1;
    f.sync_errno = EIO;
    assert_int_equal(pdw_spool_flush(s, NULL), PDW_EIO);
    assert_int_equal(pdw_spool_status(s, e), PDW_EIO);
    uint64_t g;
    nowait(s, "six", &g);
    assert_int_equal(pdw_spool_status(s, g), 1);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(pdw_spool_status(s, g), 0);
    assert_int_equal(pdw_spool_status(s, c), PDW_ENOSPC);
    assert_int_equal(pdw_spool_status(s, e), PDW_EIO);
    assert_int_equal(pdw_spool_status(s, a), 0);
    assert_int_equal(pdw_spool_status(s, g + 1), PDW_EINVAL);
    pdw_spool_close(s);
    uint64_t want[] = { a, b, g };
    check_reopen_ids(&t, 3, want, 3);
    tmp_clean(&t);
}

/* Several threads wait on one failing flush: all of them get the error. */
typedef struct waiter {
    pdw_spool *s;
    int rc;
    uint64_t id;
} waiter;

static void *wait_append(void *arg)
{
    waiter *w = arg;
    w->rc = pdw_spool_append(w->s, "k", 1, 0, "w", 1, &w->id, NULL);
    return NULL;
}

static void test_inject_failure_wakes_waiters(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    f.fail_sync = 2;
    f.sync_errno = EIO;
    f.sleep_ns = 20000000; /* slow syncs: the others pile up behind the first flush */
    pdw_spool_io io = { NULL, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    waiter w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i].s = s;
        assert_int_equal(pthread_create(&th[i], NULL, wait_append, &w[i]), 0);
        if (i == 0) { /* thread 0 leads the first (good) flush; 1..3 wait for the second */
            struct timespec ts = { 0, 5000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        if (w[i].rc == PDW_EIO) {
            failed++;
            assert_int_equal(pdw_spool_dropped(s, w[i].id), 1);
        } else {
            assert_int_equal(w[i].rc, 0);
            assert_int_equal(pdw_spool_dropped(s, w[i].id), 0);
        }
    }
    assert_true(failed >= 1);
    print_message("one failing flush: %d of 4 appends failed\n", failed);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.pending, (uint64_t)(4 - failed));
    pdw_spool_close(s);
    pdw_spool_recovery r;
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, (uint64_t)(4 - failed));
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* ---- recycled segment files --------------------------------------------------------- */

static int has_file(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static unsigned long long inode_of(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(stat(p, &st), 0);
    return (unsigned long long)st.st_ino;
}

/* Directory entries other than LOCK: the journal and the spare file. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
             strcmp(e->d_name, "LOCK") != 0;
    closedir(d);
    return n;
}

/* Copy the files of src into a fresh dst: what a kill -9 at this point leaves (the
 * spool's writes are in the page cache, which every later reader sees). */
static void copy_dir(const char *src, const char *dst)
{
    rm_files(dst);
    rmdir(dst);
    assert_int_equal(mkdir(dst, 0700), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", src, e->d_name);
        if (strcmp(e->d_name, "LOCK") == 0 || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t n;
        char *b = read_journal(src, e->d_name, &n);
        write_file(dst, e->d_name, b, n);
        free(b);
    }
    closedir(d);
}

static uint64_t seg_name_of(const char *f)
{
    return strtoull(f + 8, NULL, 16);
}

/* A closed journal: every file is whole records, every delivery id is at least its
 * segment's name (the invariant recycling relies on), and ids grow across the journal. */
static void check_floors(const char *dir)
{
    char names[64][32];
    int ns = list_journal(dir, names, 64);
    uint64_t last = 0;
    for (int i = 0; i < ns; i++) {
        size_t n;
        char *b = read_journal(dir, names[i], &n);
        jrec rec[TORN_MAX];
        size_t k = parse_journal(b, n, rec, TORN_MAX);
        for (size_t j = 0; j < k; j++) {
            if (rec[j].type != 1)
                continue;
            if (rec[j].id < seg_name_of(names[i]))
                fail_msg("%s holds delivery %llu", names[i], (unsigned long long)rec[j].id);
            assert_true(rec[j].id > last);
            last = rec[j].id;
        }
        free(b);
    }
}

/* Both spools' pending deliveries, equal (ids, keys and bodies). */
static void assert_same_pending(pdw_spool *a, pdw_spool *b)
{
    seen *va = pending_of(a), *vb = pending_of(b);
    assert_int_equal(va->n, vb->n);
    for (size_t i = 0; i < va->n && i < 20000; i++)
        assert_int_equal(va->ids[i], vb->ids[i]);
    for (size_t i = 0; i < va->n && i < 64; i++) {
        assert_int_equal(va->body_lens[i], vb->body_lens[i]);
        assert_memory_equal(va->bodies[i], vb->bodies[i], va->body_lens[i]);
    }
    seen_free(va);
    seen_free(vb);
}

/* Open a crash image of each directory and compare what they recover. */
static void assert_same_recovery(tmp *t, const char *a, const char *b)
{
    char ca[128], cb[128];
    snprintf(ca, sizeof ca, "%s/crash-a", t->root);
    snprintf(cb, sizeof cb, "%s/crash-b", t->root);
    copy_dir(a, ca);
    copy_dir(b, cb);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    o.no_sync = 1;
    pdw_spool_recovery ra, rb;
    pdw_spool *sa = open_ok(ca, &o, &ra), *sb = open_ok(cb, &o, &rb);
    assert_int_equal(ra.segments, rb.segments);
    assert_int_equal(ra.deliveries, rb.deliveries);
    assert_int_equal(ra.pending, rb.pending);
    assert_int_equal(ra.skipped_bytes, 0);
    assert_int_equal(rb.torn_bytes, 0); /* no recycling: nothing past the end */
    assert_same_pending(sa, sb);
    /* the next id is the same too */
    assert_int_equal(append_str(sa, "k", "next"), append_str(sb, "k", "next"));
    pdw_spool_close(sa);
    pdw_spool_close(sb);
    rm_files(ca);
    rmdir(ca);
    rm_files(cb);
    rmdir(cb);
}

/* Steady appends and handled markers across many small segments: handled segment files
 * are reused (the inode of the spare becomes the next segment's), the directory never
 * holds more than the live segments and one spare, and what is recovered (after a clean
 * close, and from a crash image at any step) is exactly what a spool that cannot recycle
 * (a directory named spare.pdwj blocks it) recovers. */
static void test_recycle_steady(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    char other[128];
    snprintf(other, sizeof other, "%s/norecycle", t.root);
    assert_int_equal(mkdir(other, 0700), 0);
    char block[160];
    snprintf(block, sizeof block, "%s/spare.pdwj", other);
    assert_int_equal(mkdir(block, 0700), 0);

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    pdw_spool *a = open_ok(t.dir, &o, NULL), *b = open_ok(other, &o, NULL);
    char body[128];
    unsigned long long spare_ino = 0;
    char known[64][32];
    int nknown = list_journal(t.dir, known, 64), reused = 0, crashes = 0;
    uint64_t late[8] = { 0 };
    for (int i = 1; i <= 400; i++) {
        snprintf(body, sizeof body, "{\"n\":%d,\"pad\":\"%.*s\"}", i, 40 + i % 50,
                 "...................................................................");
        uint64_t id = append_str(a, "key", body);
        assert_int_equal(append_str(b, "key", body), id);
        /* handled three behind; every 37th only 25 later (deletion stalls, then catches
         * up several segments at once) */
        if (id > 3 && (id - 3) % 37 != 0) {
            assert_int_equal(pdw_spool_mark_handled(a, id - 3), 0);
            assert_int_equal(pdw_spool_mark_handled(b, id - 3), 0);
        } else if (id > 3) {
            late[(id - 3) / 37 % 8] = id - 3;
        }
        for (int k = 0; k < 8; k++)
            if (late[k] && late[k] + 25 <= id) {
                assert_int_equal(pdw_spool_mark_handled(a, late[k]), 0);
                assert_int_equal(pdw_spool_mark_handled(b, late[k]), 0);
                late[k] = 0;
            }
        assert_int_equal(pdw_spool_flush(a, NULL), 0);
        assert_int_equal(pdw_spool_flush(b, NULL), 0);

        pdw_spool_stats sa, sb;
        pdw_spool_get_stats(a, &sa);
        pdw_spool_get_stats(b, &sb);
        assert_int_equal(sa.segments, sb.segments);
        assert_int_equal(sa.bytes, sb.bytes);
        assert_int_equal(sa.pending, sb.pending);
        char names[64][32];
        int ns = list_journal(t.dir, names, 64);
        assert_int_equal((uint64_t)ns, sa.segments);
        assert_true(count_files(t.dir) <= ns + 1);
        assert_int_equal(list_journal(other, names, 64), ns);
        /* a new segment takes the spare's inode when there was a spare */
        for (int j = 0; j < ns; j++) {
            int old = 0;
            for (int k = 0; k < nknown; k++)
                old |= strcmp(names[j], known[k]) == 0;
            if (old)
                continue;
            if (spare_ino) {
                assert_int_equal(inode_of(t.dir, names[j]), spare_ino);
                reused++;
            }
        }
        memcpy(known, names, sizeof names);
        nknown = ns;
        spare_ino = has_file(t.dir, "spare.pdwj") ? inode_of(t.dir, "spare.pdwj") : 0;
        if (i % 23 == 0) {
            assert_same_recovery(&t, t.dir, other);
            crashes++;
        }
    }
    print_message("recycling: %d segment files reused, %d crash images compared\n", reused,
                  crashes);
    assert_true(reused >= 20);
    int had_spare = has_file(t.dir, "spare.pdwj");
    pdw_spool_close(a);
    pdw_spool_close(b);
    check_floors(t.dir);

    /* reopened: the same deliveries, the same pending ones, no torn bytes (close cut the
     * active file's stale tail), and the spare is kept */
    pdw_spool_recovery ra, rb;
    a = open_ok(t.dir, &o, &ra);
    b = open_ok(other, &o, &rb);
    assert_int_equal(has_file(t.dir, "spare.pdwj"), had_spare);
    assert_int_equal(ra.segments, rb.segments);
    assert_int_equal(ra.deliveries, rb.deliveries);
    assert_int_equal(ra.pending, rb.pending);
    assert_int_equal(ra.torn_bytes, 0);
    assert_int_equal(ra.skipped_bytes, 0);
    assert_int_equal(rb.torn_bytes, 0);
    assert_int_equal(ra.pending, 3 + (late[0] != 0) + (late[1] != 0) + (late[2] != 0) +
                                     (late[3] != 0) + (late[4] != 0) + (late[5] != 0) +
                                     (late[6] != 0) + (late[7] != 0));
    assert_same_pending(a, b);
    pdw_spool_close(a);
    pdw_spool_close(b);
    rm_files(other);
    rmdir(block);
    rmdir(other);
    tmp_clean(&t);
}

/* A spool dir whose active segment is a reused file with stale bytes past its end: small
 * segments, everything handled at once, so that segments are deleted (one becomes the
 * spare) and the spare is taken again. Leaves the spool open, after `pending` more
 * deliveries that stay pending; *ids_out gets them. */
static pdw_spool *open_recycled(const char *dir, const pdw_spool_options *o, int pending,
                                uint64_t *ids_out)
{
    pdw_spool *s = open_ok(dir, o, NULL);
    char body[128];
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 6; i++) {
            snprintf(body, sizeof body, "{\"round\":%d,\"i\":%d,\"pad\":\"%.*s\"}", round, i,
                     20 + 7 * i, "..................................................");
            uint64_t id = append_str(s, "old", body);
            assert_int_equal(pdw_spool_mark_handled(s, id), 0);
        }
        assert_int_equal(pdw_spool_flush(s, NULL), 0);
    }
    for (int i = 0; i < pending; i++) {
        snprintf(body, sizeof body, "{\"new\":%d}", i);
        ids_out[i] = append_str(s, "new", body);
    }
    return s;
}

/* Name, file size and durable size of the active segment (the last journal file; the
 * older ones are exactly their durable size). */
static void active_segment(pdw_spool *s, const char *dir, char name[32], long *size,
                           size_t *durable)
{
    char names[64][32];
    int ns = list_journal(dir, names, 64);
    assert_true(ns >= 1);
    memcpy(name, names[ns - 1], 32);
    *size = file_size(dir, name);
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    uint64_t older = 0;
    for (int i = 0; i + 1 < ns; i++)
        older += (uint64_t)file_size(dir, names[i]);
    *durable = (size_t)(st.bytes - older);
}

/* Where recovery ends a reused file whose live records end at `from`: the old life's
 * handled markers that happen to start exactly there are harmless and kept (they name
 * deliveries long gone); the first of anything else ends it. */
static size_t stale_cut(const char *b, size_t n, size_t from)
{
    while (from + 12 <= n && memcmp(b + from, "PDWJ", 4) == 0) {
        uint32_t plen = le32s(b + from + 4);
        if (plen > n - from - 12 || pdw__crc32c(0, b + from + 12, plen) != le32s(b + from + 8) ||
            b[from + 12] != 2)
            break;
        from += 12 + plen;
    }
    return from;
}

/* (a) A crash right after the spare was renamed to the new segment's name, before anything
 * was written in it: the new last segment is full of records of its earlier life, which
 * all pass their CRC. None comes back; the next id is the new segment's name. */
static void test_recycle_crash_spare_renamed(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    uint64_t ids[3];
    pdw_spool *s = open_recycled(t.dir, &o, 3, ids);
    pdw_spool_close(s);
    assert_true(has_file(t.dir, "spare.pdwj"));
    pdw_spool_recovery r0;
    s = open_ok(t.dir, &o, &r0); /* what there is before the crash */
    pdw_spool_close(s);
    assert_int_equal(r0.pending, 3);
    size_t n;
    char *spare = read_journal(t.dir, "spare.pdwj", &n);
    jrec rec[TORN_MAX];
    size_t k = parse_journal(spare, n, rec, TORN_MAX); /* whole valid records */
    size_t olds = 0;
    for (size_t j = 0; j < k; j++)
        olds += rec[j].type == 1;
    assert_true(olds >= 3);

    /* the rename rotate() would do next: the new segment is named after the next id */
    char f[32];
    uint64_t next = ids[2] + 1;
    snprintf(f, sizeof f, "journal-%016llx.pdwj", (unsigned long long)next);
    char from[160], to[160];
    snprintf(from, sizeof from, "%s/spare.pdwj", t.dir);
    snprintf(to, sizeof to, "%s/%s", t.dir, f);
    assert_int_equal(rename(from, to), 0);

    pdw_spool_recovery r;
    s = open_ok(t.dir, &o, &r);
    size_t keep = stale_cut(spare, n, 0);
    assert_int_equal(r.torn_bytes, n - keep);
    assert_int_equal(r.deliveries, r0.deliveries);
    assert_int_equal(r.segments, r0.segments + 1);
    assert_int_equal(r.pending, 3);
    assert_int_equal(file_size(t.dir, f), (long)keep);
    seen *v = pending_of(s);
    assert_int_equal(v->n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v->ids[i], ids[i]);
    seen_free(v);
    assert_int_equal(append_str(s, "k", "after"), next);
    pdw_spool_close(s);
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.pending, 4);
    assert_int_equal(r.torn_bytes, 0);
    pdw_spool_close(s);
    free(spare);
    tmp_clean(&t);
}

/* (b) A reused active file, a few new records written, a crash: the records of its earlier
 * life after them are cut off (torn_bytes), only the new ones come back. (c) The same with
 * a batch partly written over the stale bytes, cut at every byte: the complete records of
 * the batch are kept (as after any torn write), nothing of the earlier life. */
static void test_recycle_crash_stale_tail(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    uint64_t ids[3];
    pdw_spool *s = open_recycled(t.dir, &o, 2, ids);
    char act[32];
    long size;
    size_t end;
    active_segment(s, t.dir, act, &size, &end);
    size_t n;
    char *img = read_journal(t.dir, act, &n);
    assert_int_equal(n, (size_t)size);
    assert_true(n > end + 100); /* a reused file, longer than what was written in it */
    jrec live[TORN_MAX];
    size_t k = parse_journal(img, end, live, TORN_MAX);
    assert_true(k >= 2);
    assert_int_equal(live[k - 1].type, 1);
    assert_int_equal(live[k - 1].id, ids[1]);
    char pre[128], copy[128];
    snprintf(pre, sizeof pre, "%s/pre", t.root);
    snprintf(copy, sizeof copy, "%s/copy", t.root);
    copy_dir(t.dir, pre);

    /* (b) a crash now */
    copy_dir(pre, copy);
    pdw_spool_recovery r;
    pdw_spool *c = open_ok(copy, &o, &r);
    size_t keep = stale_cut(img, n, end);
    assert_int_equal(r.torn_bytes, n - keep);
    assert_int_equal(r.skipped_bytes, 0);
    assert_int_equal(r.pending, 2);
    assert_int_equal(file_size(copy, act), (long)keep);
    seen *v = pending_of(c);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->ids[0], ids[0]);
    assert_int_equal(v->ids[1], ids[1]);
    seen_free(v);
    assert_int_equal(append_str(c, "k", "next"), ids[1] + 1);
    pdw_spool_close(c);

    /* (c) the next batch (three deliveries and a marker), written in place over the stale
     * bytes; then crash images with the batch cut at every byte */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pdw_spool_append_nowait(s, "b", 1, 0, "batch", 5, &ids[2], NULL), 0);
    assert_int_equal(pdw_spool_mark_handled(s, ids[0]), 0);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    char now[32];
    long size2;
    size_t end2;
    active_segment(s, t.dir, now, &size2, &end2);
    if (strcmp(now, act) == 0)
        assert_int_equal(size2, size); /* no rotation: written in place, the size is kept */
    size_t n2;
    char *after = read_journal(t.dir, act, &n2);
    jrec batch[8];
    size_t nb = 0, e2 = end;
    while (nb < 4) { /* the batch's records */
        uint32_t plen = le32s(after + e2 + 4);
        assert_true(e2 + 12 + plen <= n2);
        assert_int_equal(pdw__crc32c(0, after + e2 + 12, plen), le32s(after + e2 + 8));
        batch[nb++] = (jrec){ e2, e2 + 12 + plen, after[e2 + 12], le64(after + e2 + 13), 0, 0 };
        e2 += 12 + plen;
    }
    assert_int_equal(batch[3].type, 2);
    assert_true(e2 < n); /* all of it over stale bytes */
    pdw_spool_close(s);
    char *mix = malloc(n);
    assert_non_null(mix);
    for (size_t cut = end; cut <= e2; cut++) {
        memcpy(mix, img, n);
        memcpy(mix + end, after + end, cut - end); /* the batch up to the cut, stale after */
        copy_dir(pre, copy);
        write_file(copy, act, mix, n);
        pdw_spool_options q = o;
        q.no_sync = 1;
        c = open_ok(copy, &q, &r);
        size_t whole = 0, good = end;
        for (size_t j = 0; j < nb && batch[j].end <= cut; j++) {
            good = batch[j].end;
            whole += batch[j].type == 1;
        }
        if (good == cut) /* cut between records: stale bytes follow */
            good = stale_cut(mix, n, good);
        assert_int_equal(r.torn_bytes, n - good);
        assert_int_equal(r.skipped_bytes, 0);
        /* id ids[0] is handled only with the whole batch (its marker is last) */
        uint64_t want = 2 + whole - (cut >= batch[3].end);
        assert_int_equal(r.pending, want);
        v = pending_of(c);
        assert_int_equal(v->n, want);
        for (size_t j = 0; j < v->n; j++)
            assert_true(v->ids[j] >= ids[0] && v->ids[j] <= ids[2]); /* nothing older */
        seen_free(v);
        pdw_spool_close(c);
    }
    free(mix);
    free(after);
    free(img);
    rm_files(pre);
    rmdir(pre);
    tmp_clean(&t);
}

/* (d) A journal as the writer before recycling left it: appended files, no spare, a
 * segment holding markers only, and after it the one corner case of that writer (segment 8
 * holding delivery 7, its name - 1), and a torn tail. Recovered exactly as before. */
static size_t enc_rec(char *out, const unsigned char *payload, size_t plen)
{
    memcpy(out, "PDWJ", 4);
    for (int i = 0; i < 4; i++) {
        out[4 + i] = (char)(plen >> (8 * i));
        out[8 + i] = (char)(pdw__crc32c(0, payload, plen) >> (8 * i));
    }
    memcpy(out + 12, payload, plen);
    return 12 + plen;
}

static size_t enc_delivery(char *out, uint64_t id, const char *body)
{
    unsigned char p[256];
    size_t blen = strlen(body);
    p[0] = 1;
    for (int i = 0; i < 8; i++) {
        p[1 + i] = (unsigned char)(id >> (8 * i));
        p[9 + i] = (unsigned char)((uint64_t)1700000000000 >> (8 * i));
    }
    p[17] = 1;
    p[18] = 0;
    p[19] = 'k';
    memcpy(p + 20, body, blen);
    return enc_rec(out, p, 20 + blen);
}

static size_t enc_marker(char *out, uint64_t floor, const uint64_t *ids, uint32_t n)
{
    unsigned char p[256];
    p[0] = 2;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (unsigned char)(floor >> (8 * i));
    for (int i = 0; i < 4; i++)
        p[9 + i] = (unsigned char)(n >> (8 * i));
    for (uint32_t j = 0; j < n; j++)
        for (int i = 0; i < 8; i++)
            p[13 + 8 * j + (uint32_t)i] = (unsigned char)(ids[j] >> (8 * i));
    return enc_rec(out, p, 13 + 8 * (size_t)n);
}

static void test_recycle_old_journal_unchanged(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    assert_int_equal(mkdir(t.dir, 0700), 0);
    char b[2048];
    size_t n = 0;
    for (uint64_t id = 1; id <= 4; id++)
        n += enc_delivery(b + n, id, "{\"seg\":1}");
    n += enc_marker(b + n, 4, (const uint64_t[]){ 1, 2 }, 2);
    write_file(t.dir, "journal-0000000000000001.pdwj", b, n);
    n = enc_delivery(b, 5, "{\"seg\":5}");
    n += enc_delivery(b + n, 6, "{\"seg\":5}");
    n += enc_marker(b + n, 6, (const uint64_t[]){ 3 }, 1);
    write_file(t.dir, "journal-0000000000000005.pdwj", b, n);
    n = enc_marker(b, 6, (const uint64_t[]){ 5 }, 1); /* markers only */
    write_file(t.dir, "journal-0000000000000007.pdwj", b, n);
    n = enc_delivery(b, 7, "{\"seg\":8}"); /* name - 1: the old writer's corner case */
    n += enc_delivery(b + n, 8, "{\"seg\":8}");
    size_t whole = n;
    n += enc_delivery(b + n, 9, "{\"seg\":8,\"torn\":true}");
    n -= 10; /* torn */
    write_file(t.dir, "journal-0000000000000008.pdwj", b, n);

    pdw_spool_recovery r;
    pdw_spool *s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.segments, 4);
    assert_int_equal(r.deliveries, 8);
    assert_int_equal(r.pending, 4);
    assert_int_equal(r.torn_bytes, n - whole);
    assert_int_equal(r.skipped_bytes, 0);
    assert_false(has_file(t.dir, "spare.pdwj"));
    seen *v = pending_of(s);
    uint64_t want[] = { 4, 6, 7, 8 };
    assert_int_equal(v->n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(v->ids[i], want[i]);
    assert_memory_equal(v->bodies[2], "{\"seg\":8}", 9);
    seen_free(v);
    assert_int_equal(append_str(s, "k", "next"), 9);
    pdw_spool_close(s);
    s = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, 9);
    assert_int_equal(r.pending, 5);
    assert_int_equal(r.torn_bytes, 0);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* A segment that fills up with handled markers only, with no delivery written since it was
 * made, is rotated without breaking the invariant: the ids up to the new name are skipped
 * when none is assigned yet; a delivery appended during that flush (from the sync hook)
 * waits for the next flush, written in the old segment, and the rotation follows it. */
typedef struct hook_append {
    pdw_spool *s;
    int at_sync;  /* append during this sync call */
    int syncs;
    uint64_t id;
} hook_append;

static int sync_then_append(int fd, void *u)
{
    hook_append *h = u;
    if (++h->syncs == h->at_sync && h->s)
        pdw_spool_append_nowait(h->s, "h", 1, 0, "from the hook", 13, &h->id, NULL);
    return fdatasync(fd);
}

static void test_rotation_marker_only_segment(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    hook_append h = { NULL, 0, 0, 0 };
    pdw_spool_io io = { NULL, sync_then_append, &h };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 256;
    o.io = &io;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    h.s = s;
    for (int i = 0; i < 40; i++)
        append_str(s, "key", "{\"a delivery of some length\":1}");
    /* a new, empty active segment named 41: markers one at a time fill it */
    char names[64][32];
    int ns = list_journal(t.dir, names, 64);
    assert_int_equal(file_size(t.dir, names[ns - 1]), 0);
    assert_int_equal(seg_name_of(names[ns - 1]), 41);
    uint64_t m = 1;
    while (file_size(t.dir, names[ns - 1]) + 33 < 256) {
        assert_int_equal(pdw_spool_mark_handled(s, m++), 0);
        assert_int_equal(pdw_spool_flush(s, NULL), 0);
    }
    /* the marker that fills it; id 41 is appended while it is synced: the segment cannot
     * be rotated to 42 before 41 is written, so it takes 41 first */
    h.at_sync = h.syncs + 1;
    assert_int_equal(pdw_spool_mark_handled(s, m++), 0);
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(h.id, 41);
    assert_int_equal(pdw_spool_status(s, 41), 1);
    ns = list_journal(t.dir, names, 64);
    assert_int_equal(seg_name_of(names[ns - 1]), 41); /* not rotated */
    assert_int_equal(pdw_spool_flush(s, NULL), 0);
    assert_int_equal(pdw_spool_status(s, 41), 0);
    /* a marker-only segment again (named 42), filled with nothing assigned: ids up to the
     * next name are skipped */
    ns = list_journal(t.dir, names, 64);
    assert_int_equal(seg_name_of(names[ns - 1]), 42);
    while (seg_name_of(names[ns - 1]) == 42) {
        assert_int_equal(pdw_spool_mark_handled(s, m++), 0);
        assert_int_equal(pdw_spool_flush(s, NULL), 0);
        ns = list_journal(t.dir, names, 64);
    }
    uint64_t id = append_str(s, "k", "after the markers");
    assert_int_equal(id, seg_name_of(names[ns - 1]));
    assert_true(id > 42);
    pdw_spool_close(s);
    check_floors(t.dir);
    pdw_spool_recovery r;
    o.io = NULL;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.torn_bytes, 0);
    assert_int_equal(r.skipped_bytes, 0);
    seen *v = pending_of(s);
    assert_int_equal(v->n, 40 - (m - 1) + 2);
    assert_int_equal(v->ids[v->n - 2], 41);
    assert_int_equal(v->ids[v->n - 1], id);
    seen_free(v);
    assert_int_equal(append_str(s, "k", "next"), id + 1);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* A failed flush in a reused segment file: cut back (the stale tail goes too), and the
 * dropped batch never comes back, after a clean close or from a crash image. */
static void test_recycle_failed_flush(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    fault f = { 0 };
    pdw_spool_io io = { f_write, f_sync, &f };
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    o.io = &io;
    uint64_t ids[2];
    pdw_spool *s = open_recycled(t.dir, &o, 2, ids);
    char act[32];
    long size;
    size_t durable;
    active_segment(s, t.dir, act, &size, &durable);
    assert_true((size_t)size > durable); /* a reused file, longer than its records */
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);

    /* the write goes through, the fdatasync fails */
    f.fail_sync = f.syncs + 1;
    f.sync_errno = EIO;
    uint64_t lost = 0;
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, "lost", 4, &lost, NULL), PDW_EIO);
    assert_int_equal(pdw_spool_dropped(s, lost), 1);
    pdw_spool_stats st2;
    pdw_spool_get_stats(s, &st2);
    assert_int_equal(st2.bytes, st.bytes);
    assert_int_equal(st2.segments, st.segments);
    assert_int_equal(file_size(t.dir, act), (long)durable); /* cut back, stale tail too */
    char copy[128];
    snprintf(copy, sizeof copy, "%s/copy", t.root);
    copy_dir(t.dir, copy);

    /* a short write, then a full disk */
    uint64_t lost2 = 0;
    f.short_write = f.writes + 1;
    f.fail_write = f.writes + 2;
    f.write_errno = ENOSPC;
    assert_int_equal(pdw_spool_append(s, "k", 1, 0, "lost too", 8, &lost2, NULL), PDW_ENOSPC);
    uint64_t kept = append_str(s, "k", "kept");
    pdw_spool_close(s);

    pdw_spool_recovery r;
    o.io = NULL;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.torn_bytes, 0);
    seen *v = pending_of(s);
    assert_int_equal(v->n, 3);
    assert_int_equal(v->ids[0], ids[0]);
    assert_int_equal(v->ids[1], ids[1]);
    assert_int_equal(v->ids[2], kept);
    seen_free(v);
    pdw_spool_close(s);
    /* the crash image right after the first failure */
    s = open_ok(copy, &o, &r);
    assert_int_equal(r.torn_bytes, 0); /* the cut took the stale tail too */
    v = pending_of(s);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->ids[1], ids[1]);
    seen_free(v);
    assert_true(append_str(s, "k", "x") > ids[1]); /* (the dropped id may be taken again) */
    pdw_spool_close(s);
    (void)lost2;
    tmp_clean(&t);
}

/* A spare file without a journal (segments removed by hand) is not reused: its records'
 * ids are not below the names to come. Something else named spare.pdwj is left alone. */
static void test_recycle_spare_edge_cases(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 600;
    uint64_t ids[1];
    pdw_spool *s = open_recycled(t.dir, &o, 0, ids);
    pdw_spool_close(s);
    assert_true(has_file(t.dir, "spare.pdwj"));
    char names[64][32];
    int ns = list_journal(t.dir, names, 64);
    for (int i = 0; i < ns; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", t.dir, names[i]);
        assert_int_equal(unlink(p), 0);
    }
    pdw_spool_recovery r;
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.segments, 0);
    assert_false(has_file(t.dir, "spare.pdwj"));
    assert_int_equal(append_str(s, "k", "first again"), 1);
    pdw_spool_close(s);

    /* a directory under the spare's name: segments are deleted, not renamed onto it */
    rm_files(t.dir);
    char block[160];
    snprintf(block, sizeof block, "%s/spare.pdwj", t.dir);
    assert_int_equal(mkdir(block, 0700), 0);
    s = open_recycled(t.dir, &o, 1, ids);
    ns = list_journal(t.dir, names, 64);
    assert_true(ns <= 2);
    struct stat st;
    assert_int_equal(stat(block, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    pdw_spool_close(s);
    s = open_ok(t.dir, &o, &r);
    assert_int_equal(r.pending, 1);
    pdw_spool_close(s);
    assert_int_equal(rmdir(block), 0);
    tmp_clean(&t);
}

/* pdw_spool_foreach_pending() keeps its snapshot while segments are handled, deleted and
 * reused under it: a delivery whose segment went meanwhile is skipped, not an error. */
typedef struct walk_and_handle {
    pdw_spool *s;
    uint64_t upto;
    size_t visited;
} walk_and_handle;

static int handle_all_on_first(const pdw_spool_record *rec, void *user)
{
    walk_and_handle *w = user;
    if (w->visited++ == 0) { /* handle everything and write enough to reuse files */
        for (uint64_t id = rec->id; id <= w->upto; id++)
            pdw_spool_mark_handled(w->s, id);
        for (int i = 0; i < 40; i++) {
            uint64_t id = 0;
            if (pdw_spool_append(w->s, "k", 1, 0, "overwrite the old files", 23, &id, NULL) ||
                pdw_spool_mark_handled(w->s, id))
                return 1;
        }
        pdw_spool_flush(w->s, NULL);
    }
    return 0;
}

static void test_recycle_during_walk(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 400;
    pdw_spool *s = open_ok(t.dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 30; i++)
        last = append_str(s, "key", "{\"a body that fills segments\":true}");
    walk_and_handle w = { s, last, 0 };
    assert_int_equal(pdw_spool_foreach_pending(s, handle_all_on_first, &w), 0);
    assert_true(w.visited >= 1 && w.visited <= 30);
    assert_true(has_file(t.dir, "spare.pdwj"));
    pdw_spool_stats st;
    pdw_spool_get_stats(s, &st);
    assert_int_equal(st.pending, 0);
    pdw_spool_close(s);
    tmp_clean(&t);
}

/* ---- locking ------------------------------------------------------------------------ */

static void test_locked(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    pdw_spool *a = open_ok(t.dir, NULL, NULL), *b = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    /* flock locks belong to open file descriptions: a second open in this process
     * conflicts like another process would */
    assert_int_equal(pdw_spool_open(&b, t.dir, NULL, NULL, &err), PDW_ELOCKED);
    assert_int_equal(err.code, PDW_ELOCKED);
    assert_null(b);
    append_str(a, "k", "still usable");
    pdw_spool_close(a);
    pdw_spool_recovery r;
    b = open_ok(t.dir, NULL, &r);
    assert_int_equal(r.deliveries, 1);
    pdw_spool_close(b);
    tmp_clean(&t);
}

/* ---- allocation failures ------------------------------------------------------------ */


static int count_cb(const pdw_spool_record *r, void *user)
{
    (void)r;
    (*(int *)user)++;
    return 0;
}

static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    tmp t;
    tmp_make(&t);
    int done = 0;
    long n;
    for (n = 0; !done && n < 10000; n++) {
        /* a fresh journal of several segments, some handled */
        rm_files(t.dir);
        pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
        o.segment_bytes = 512;
        o.no_sync = 1;
        pdw_spool *s = open_ok(t.dir, &o, NULL);
        for (int i = 0; i < 150; i++)
            append_str(s, "key", "some body text of the delivery");
        for (uint64_t id = 1; id <= 150; id += 3)
            assert_int_equal(pdw_spool_mark_handled(s, id), 0);
        pdw_spool_close(s);

        pdw_chaos c = { n, 0, 0 };
        pdw_allocator a = pdw_chaos_allocator(&c);
        o.allocator = &a;
        s = NULL;
        int rc = pdw_spool_open(&s, t.dir, &o, NULL, NULL);
        if (rc != 0) {
            assert_int_equal(rc, PDW_ENOMEM);
            assert_null(s);
            assert_int_equal(c.live, 0);
            continue;
        }
        static char big[40000];
        for (int i = 0; i < 12; i++) { /* large bodies make the buffers grow */
            uint64_t id;
            rc = pdw_spool_append(s, "k", 1, i, big, i % 2 ? sizeof big : 4, &id, NULL);
            assert_true(rc == 0 || rc == PDW_ENOMEM);
            if (rc == PDW_ENOMEM) { /* the spool stays usable */
                long keep = c.countdown;
                c.countdown = -1;
                assert_int_equal(pdw_spool_append(s, "k", 1, i, "again", 5, NULL, NULL), 0);
                c.countdown = keep;
            }
        }
        for (uint64_t id = 2; id <= 170; id += 1) { /* the marker queue grows too */
            rc = pdw_spool_mark_handled(s, id);
            assert_true(rc == 0 || rc == PDW_ENOMEM || rc == PDW_ENOTFOUND);
        }
        rc = pdw_spool_flush(s, NULL);
        assert_true(rc == 0 || rc == PDW_ENOMEM);
        int visited = 0;
        rc = pdw_spool_foreach_pending(s, count_cb, &visited);
        assert_true(rc == 0 || rc == PDW_ENOMEM);
        pdw_spool_close(s);
        assert_int_equal(c.live, 0);
        done = c.countdown >= 0; /* finished without reaching the failure */
    }
    assert_true(done);
    assert_true(n > 8); /* the spool allocates rarely: about a dozen blocks here */
    print_message("allocation sweep: %ld runs\n", n);
    tmp_clean(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_vectors),
        cmocka_unit_test(test_options_and_args),
        cmocka_unit_test(test_roundtrip_reopen),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_pending_handled_reopen),
        cmocka_unit_test(test_mark_unknown),
        cmocka_unit_test(test_nowait_flush),
        cmocka_unit_test(test_foreach_order_early_stop),
        cmocka_unit_test(test_group_commit_threads),
        cmocka_unit_test(test_group_commit_wakeups),
        cmocka_unit_test(test_lone_appender_not_delayed),
        cmocka_unit_test(test_torn_tail_every_cut),
        cmocka_unit_test(test_torn_tail_garbage),
        cmocka_unit_test(test_corrupt_older_segment_skipped),
        cmocka_unit_test(test_rotation_and_deletion),
        cmocka_unit_test(test_deletion_order),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_inject_enospc_write),
        cmocka_unit_test(test_status_nowait_flush),
        cmocka_unit_test(test_inject_short_write_then_enospc),
        cmocka_unit_test(test_inject_eio_sync),
        cmocka_unit_test(test_inject_failure_wakes_waiters),
        cmocka_unit_test(test_recycle_steady),
        cmocka_unit_test(test_recycle_crash_spare_renamed),
        cmocka_unit_test(test_recycle_crash_stale_tail),
        cmocka_unit_test(test_recycle_old_journal_unchanged),
        cmocka_unit_test(test_rotation_marker_only_segment),
        cmocka_unit_test(test_recycle_failed_flush),
        cmocka_unit_test(test_recycle_spare_edge_cases),
        cmocka_unit_test(test_recycle_during_walk),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_alloc_failure_sweep),
    };
    PDW_RUN_GROUP(tests);
}
