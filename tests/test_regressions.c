/* Regressions for bugs found by fuzzing (docs/FUZZING.md lists them); each also has a seed
 * in tests/fuzz/corpus/<target>/bug-*. */
#include "pdw_test.h"

#include <fcntl.h>
#include <unistd.h>

#include "durable/crc32c.h"
#include "core/core.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/subscriptions.h"

static char dir[64];

static int mkdir_setup(void **state)
{
    (void)state;
    char *d = pdw_test_tmpdir("regress");
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
    return 0;
}

static int rmdir_teardown(void **state)
{
    (void)state;
    pdw_test_rmtree(dir);
    return 0;
}

/* Append one framed record (magic, length, CRC32C, payload) to buf. */
static size_t put_record(unsigned char *buf, const unsigned char *payload, size_t n)
{
    uint32_t crc = pdw__crc32c(0, payload, n);
    memcpy(buf, "PDWJ", 4);
    for (int k = 0; k < 4; k++) {
        buf[4 + k] = (unsigned char)(n >> (8 * k));
        buf[8 + k] = (unsigned char)(crc >> (8 * k));
    }
    memcpy(buf + 12, payload, n);
    return 12 + n;
}

static size_t delivery(unsigned char *p, uint64_t id)
{
    memset(p, 0, 22);
    p[0] = 1; /* type: delivery */
    for (int k = 0; k < 8; k++)
        p[1 + k] = (unsigned char)(id >> (8 * k));
    p[17] = 1; /* key length 1 */
    p[19] = 'k';
    p[20] = '{';
    p[21] = '}';
    return 22;
}

static void write_segment(const char *name, const unsigned char *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (long)n);
    close(fd);
}

typedef struct seen {
    uint64_t ids[8];
    size_t n;
} seen;

static int collect(const pdw_spool_record *r, void *user)
{
    seen *s = user;
    if (s->n < 8)
        s->ids[s->n++] = r->id;
    return 0;
}

/* Bug 1 (fuzz_spool): a CRC-valid record of an unknown type carrying id 2^64-1 made the
 * next id wrap to 1; the next delivery was acknowledged, written after a higher id, and
 * dropped as out of order by the next recovery: an accepted delivery lost. */
static void test_spool_huge_id_does_not_wrap_next_id(void **state)
{
    (void)state;
    unsigned char seg[256], pay[64];
    size_t n = 0;
    n += put_record(seg + n, pay, delivery(pay, 1));
    pay[0] = 0xff; /* a type from a "newer writer" */
    memset(pay + 1, 0xff, 8);
    n += put_record(seg + n, pay, 9);
    write_segment("journal-0000000000000001.pdwj", seg, n);

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.no_sync = 1;
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(&s, dir, &o, NULL, NULL), 0);
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(s, "k", 1, 1, "{}", 2, &id, NULL), 0);
    assert_int_equal(id, 2);
    pdw_spool_close(s);

    assert_int_equal(pdw_spool_open(&s, dir, &o, NULL, NULL), 0);
    seen got = { { 0 }, 0 };
    assert_int_equal(pdw_spool_foreach_pending(s, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 1);
    assert_int_equal(got.ids[1], 2);
    pdw_spool_close(s);
}

/* The same through a delivery record with a huge id, and a segment named beyond any id. */
static void test_spool_huge_delivery_id_and_name_ignored(void **state)
{
    (void)state;
    unsigned char seg[256], pay[64];
    size_t n = put_record(seg, pay, delivery(pay, UINT64_MAX));
    write_segment("journal-0000000000000001.pdwj", seg, n);
    n = put_record(seg, pay, delivery(pay, 5));
    write_segment("journal-ffffffffffffffff.pdwj", seg, n);

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.no_sync = 1;
    pdw_spool *s = NULL;
    pdw_spool_recovery rec;
    assert_int_equal(pdw_spool_open(&s, dir, &o, &rec, NULL), 0);
    assert_int_equal(rec.pending, 0);
    uint64_t id = 0;
    assert_int_equal(pdw_spool_append(s, "k", 1, 1, "{}", 2, &id, NULL), 0);
    assert_int_equal(id, 1);
    pdw_spool_close(s);
    assert_int_equal(pdw_spool_open(&s, dir, &o, &rec, NULL), 0);
    assert_int_equal(rec.pending, 1);
    pdw_spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spool_huge_id_does_not_wrap_next_id, mkdir_setup,
                                        rmdir_teardown),
        cmocka_unit_test_setup_teardown(test_spool_huge_delivery_id_and_name_ignored,
                                        mkdir_setup, rmdir_teardown),
    };
    PDW_RUN_GROUP(tests);
}
