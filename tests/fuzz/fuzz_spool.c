/* fuzz_spool: journal recovery from whatever is on disk (torn writes, bit rot, a foreign
 * file in the spool directory).
 *
 * Input: byte 0 flags, byte 1 split point, then the segment bytes.
 *   flag 0x01 "framed": the rest is a list of chunks (u16 little-endian length, payload),
 *             each written as a record with the right magic, length and CRC32C, so that
 *             the fuzzer reaches the record decoder (ids, markers, counts) past the CRC;
 *             otherwise the bytes are written as they are.
 *   flag 0x02 two segments: byte 1 / 256 of the bytes go to journal-...1, the rest to
 *             journal-...2 (flag 0x08: journal-ffffffffffffffff, flag 0x10: a name near
 *             the id limit); otherwise everything is journal-...1.
 *   flag 0x04 256-byte segments (rotation and deletion).
 * Properties: pdw_spool_open() recovers (returns 0) whatever the segments hold; every
 * pending record it hands back is in bounds; one append succeeds (or is refused with
 * PDW_ERANGE when the journal claims ids near 2^62), and a second open recovers again and
 * finds the appended delivery pending: an accepted delivery is never lost. */
#define _DEFAULT_SOURCE 1 /* dirfd() */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fuzz.h"
#include "internal.h"

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
} walk;

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
    clean_dir();
    write_file("journal-0000000000000001.pdwj", b, split);
    if (flags & 2)
        write_file((flags & 8)    ? "journal-ffffffffffffffff.pdwj"   /* not a valid name */
                   : (flags & 16) ? "journal-3fffffffffffff00.pdwj"   /* near the id limit */
                                  : "journal-0000000000000002.pdwj",
                   b + split, blen - split);
    free(bytes);

    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.no_sync = 1;
    o.segment_bytes = (flags & 4) ? 256 : 0; /* small segments: rotation and deletion too */
    pdw_spool *s = NULL;
    pdw_spool_recovery rec;
    int rc = pdw_spool_open(&s, dir, &o, &rec, NULL);
    FUZZ_CHECK(rc == 0);
    walk w = { 0, 0, 0 };
    FUZZ_CHECK(pdw_spool_foreach_pending(s, on_pending, &w) == 0);
    FUZZ_CHECK(w.n == rec.pending);
    uint64_t id = 0;
    rc = pdw_spool_append(s, "k", 1, 1, "{}", 2, &id, NULL);
    /* PDW_ERANGE: the journal claims ids near 2^62 ("ids exhausted"): refused, not lost */
    FUZZ_CHECK(rc == 0 || rc == PDW_ERANGE);
    pdw_spool_close(s);
    if (rc != 0)
        return 0;
    FUZZ_CHECK(id > 0);

    s = NULL;
    FUZZ_CHECK(pdw_spool_open(&s, dir, &o, &rec, NULL) == 0);
    walk w2 = { 0, id, 0 };
    FUZZ_CHECK(pdw_spool_foreach_pending(s, on_pending, &w2) == 0);
    FUZZ_CHECK(w2.found);
    FUZZ_CHECK(pdw_spool_mark_handled(s, id) == 0);
    pdw_spool_close(s);
    return 0;
}
