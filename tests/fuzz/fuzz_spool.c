/* fuzz_spool: journal recovery from whatever is on disk (torn writes, bit rot, a foreign
 * file in the spool directory, the stale records of a reused segment file).
 *
 * Input: byte 0 flags, byte 1 split point, then the segment bytes.
 *   flag 0x01 "framed": the rest is a list of chunks (u16 little-endian length, payload),
 *             each written as a record with the right magic, length and CRC32C, so that
 *             the fuzzer reaches the record decoder (ids, markers, counts) past the CRC;
 *             otherwise the bytes are written as they are.
 *   flag 0x02 two segments: byte 1 / 256 of the bytes go to journal-...1, the rest to
 *             journal-...2 (flag 0x08: journal-ffffffffffffffff, flag 0x10: a name near
 *             the id limit, flag 0x20: journal-<2 + byte 1>); otherwise everything is one
 *             segment, journal-...1, or journal-<2 + byte 1> with flag 0x20: a last segment
 *             named above ids it holds, as a reused file holds the records of its earlier
 *             life past its end (valid records with lower ids, or out of order).
 *   flag 0x04 256-byte segments (rotation and deletion).
 *   flag 0x40 the bytes are also a spare file (spare.pdwj), which a rotation reuses.
 * Properties: pdw_spool_open() recovers (returns 0) whatever the segments hold; every
 * pending record it hands back is in bounds; with one segment, what recovery keeps and
 * cuts equals a reference reading of the rule (records up to the first bad one, or the
 * first delivery below the segment's name - 1 or not above the previous delivery) and
 * every delivery it reports is above the previous one; one append succeeds (or is refused
 * with PDW_ERANGE when the journal claims ids near 2^62), and a second open recovers again
 * and finds exactly the pending deliveries of the first plus the appended one: an accepted
 * delivery is never lost, and nothing cut comes back. */
#define _DEFAULT_SOURCE 1 /* dirfd() */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "durable/crc32c.h"
#include "fuzz.h"
#include "core/core.h"
#include "pdwebhook/durable.h"
#include "pdwebhook/subscriptions.h"

static char dir[64];

static void clean_dir(void)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0)
            abort();
    }
    closedir(d);
}

static void write_file(const char *name, const unsigned char *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0);
    while (n) {
        ssize_t w = write(fd, p, n);
        FUZZ_CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* Frame chunks into records. Returns a malloc'd buffer of *out_len bytes. */
static unsigned char *frame(const uint8_t *p, size_t n, size_t *out_len)
{
    unsigned char *out = malloc(n / 2 * 14 + n + 16);
    FUZZ_CHECK(out != NULL);
    size_t o = 0, i = 0;
    while (i + 2 <= n) {
        size_t len = (size_t)p[i] | (size_t)p[i + 1] << 8;
        i += 2;
        if (len > n - i)
            len = n - i;
        uint32_t crc = pdw__crc32c(0, p + i, len);
        memcpy(out + o, "PDWJ", 4);
        for (int k = 0; k < 4; k++) {
            out[o + 4 + (size_t)k] = (unsigned char)(len >> (8 * k));
            out[o + 8 + (size_t)k] = (unsigned char)(crc >> (8 * k));
        }
        memcpy(out + o + 12, p + i, len);
        o += 12 + len;
        i += len;
    }
    *out_len = o;
    return out;
}

typedef struct walk {
    size_t n;
    uint64_t want_id;
    int found;
    uint64_t *ids; /* every pending id, in order */
    size_t cap;
} walk;

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The reference reading of one record (spool.h's format): its size, or 0 when it is not
 * a whole, well-formed record. */
static size_t ref_record(const unsigned char *p, size_t avail)
{
    if (avail < 12 || memcmp(p, "PDWJ", 4) != 0)
        return 0;
    uint32_t plen = le32(p + 4);
    if (plen < 9 || plen > (256u << 20) || plen > avail - 12)
        return 0;
    const unsigned char *q = p + 12;
    if (q[0] == 1 && (plen < 19 || ((size_t)q[17] | (size_t)q[18] << 8) > plen - 19))
        return 0;
    if (q[0] == 2 && (plen < 13 || (plen - 13) % 8 != 0 || (plen - 13) / 8 != le32(q + 9)))
        return 0;
    if (pdw__crc32c(0, q, plen) != le32(p + 8))
        return 0;
    return 12 + plen;
}

/* Where recovery must end the last (and only) segment `name` of n bytes: before the first
 * bad record, or the first delivery (id within 2^62) below name - 1 or not above the one
 * before. *kept: deliveries before it. */
static size_t ref_cut(const unsigned char *p, size_t n, uint64_t name, size_t *kept)
{
    size_t off = 0;
    uint64_t last = 0;
    *kept = 0;
    for (;;) {
        size_t len = ref_record(p + off, n - off);
        if (!len)
            return off;
        const unsigned char *q = p + off + 12;
        uint64_t id = le64(q + 1);
        if (q[0] == 1 && id <= (UINT64_C(1) << 62)) {
            if (id + 1 < name || id <= last)
                return off;
            last = id;
            (*kept)++;
        }
        off += len;
    }
}

typedef struct seen_ids {
    uint64_t last;
    int ordered; /* every delivery reported was above the one before */
    int floor_ok;
    uint64_t floor;
} seen_ids;

/* on_record at open: told of every delivery recovery keeps, in journal order */
static int on_record(const pdw_spool_record *r, void *user)
{
    seen_ids *v = user;
    if (r->id <= v->last)
        v->ordered = 0;
    if (r->id < v->floor)
        v->floor_ok = 0;
    v->last = r->id;
    return 0;
}

static int on_pending(const pdw_spool_record *r, void *user)
{
    walk *w = user;
    FUZZ_CHECK(r->key != NULL || r->key_len == 0);
    FUZZ_CHECK(r->body != NULL || r->body_len == 0);
    /* touch every byte: ASan checks the spans */
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < r->key_len; i++)
        sink ^= (unsigned char)r->key[i];
    for (size_t i = 0; i < r->body_len; i++)
        sink ^= (unsigned char)r->body[i];
    (void)sink;
    if (w->ids) {
        FUZZ_CHECK(w->n < w->cap);
        w->ids[w->n] = r->id;
    }
    w->n++;
    if (r->id == w->want_id)
        w->found = 1;
    return 0;
}

static void remove_dir(void)
{
    clean_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/pdw-fuzz-spool-XXXXXX");
        FUZZ_CHECK(mkdtemp(dir) != NULL);
        atexit(remove_dir);
    }
    if (size < 2 || size > 65536)
        return 0;
    unsigned flags = data[0];
    size_t n = size - 2;
    const uint8_t *p = data + 2;
    size_t blen = n;
    unsigned char *bytes = (flags & 1) ? frame(p, n, &blen) : NULL;
    const unsigned char *b = bytes ? bytes : p;
    size_t split = (flags & 2) ? blen * data[1] / 256 : blen;
    uint64_t named = 2 + (uint64_t)data[1]; /* flag 0x20 */
    char lname[40];
    snprintf(lname, sizeof lname, "journal-%016llx.pdwj", (unsigned long long)named);
    clean_dir();
    write_file((flags & 0x22) == 0x20 ? lname : "journal-0000000000000001.pdwj", b, split);
    if (flags & 2)
        write_file((flags & 8)    ? "journal-ffffffffffffffff.pdwj"   /* not a valid name */
                   : (flags & 16) ? "journal-3fffffffffffff00.pdwj"   /* near the id limit */
                   : (flags & 32) ? lname
                                  : "journal-0000000000000002.pdwj",
                   b + split, blen - split);
    if (flags & 0x40)
        write_file("spare.pdwj", b, blen);
    size_t kept = 0, cut = 0;
    uint64_t one = (flags & 0x20) ? named : 1; /* the only segment's name */
    if (!(flags & 2))
        cut = ref_cut(b, blen, one, &kept);

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.no_sync = 1;
    o.segment_bytes = (flags & 4) ? 256 : 0; /* small segments: rotation and deletion too */
    seen_ids seen = { 0, 1, 1, (flags & 2) ? 0 : one - 1 };
    o.on_record = on_record;
    o.record_user = &seen;
    pdw_spool *s = NULL;
    pdw_spool_recovery rec;
    int rc = pdw_spool_open(&s, dir, &o, &rec, NULL);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(seen.ordered);
    if (!(flags & 2)) { /* one segment: the reference says where it ends */
        FUZZ_CHECK(seen.floor_ok);
        FUZZ_CHECK(rec.torn_bytes == blen - cut);
        FUZZ_CHECK(rec.deliveries == kept);
        FUZZ_CHECK(rec.skipped_bytes == 0);
    }
    free(bytes);
    size_t cap = size / 16 + 2; /* a delivery takes at least 21 input bytes (framed) */
    uint64_t *before = malloc(cap * sizeof *before), *after = malloc(cap * sizeof *after);
    FUZZ_CHECK(before && after);
    walk w = { 0, 0, 0, before, cap };
    FUZZ_CHECK(pdw_spool_foreach_pending(s, on_pending, &w) == 0);
    FUZZ_CHECK(w.n == rec.pending);
    uint64_t id = 0;
    rc = pdw_spool_append(s, "k", 1, 1, "{}", 2, &id, NULL);
    /* PDW_ERANGE: the journal claims ids near 2^62 ("ids exhausted"): refused, not lost */
    FUZZ_CHECK(rc == 0 || rc == PDW_ERANGE);
    pdw_spool_close(s);
    if (rc != 0) {
        free(before);
        free(after);
        return 0;
    }
    FUZZ_CHECK(id > 0);

    s = NULL;
    seen = (seen_ids){ 0, 1, 1, 0 };
    FUZZ_CHECK(pdw_spool_open(&s, dir, &o, &rec, NULL) == 0);
    FUZZ_CHECK(seen.ordered);
    FUZZ_CHECK(rec.torn_bytes == 0); /* close left the journal whole */
    walk w2 = { 0, id, 0, after, cap };
    FUZZ_CHECK(pdw_spool_foreach_pending(s, on_pending, &w2) == 0);
    FUZZ_CHECK(w2.found);
    /* the same pending deliveries as before the append, and the appended one last */
    FUZZ_CHECK(w2.n == w.n + 1);
    FUZZ_CHECK(memcmp(before, after, w.n * sizeof *before) == 0);
    FUZZ_CHECK(after[w.n] == id);
    FUZZ_CHECK(pdw_spool_mark_handled(s, id) == 0);
    pdw_spool_close(s);
    free(before);
    free(after);
    return 0;
}
