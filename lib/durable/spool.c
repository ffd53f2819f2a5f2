/* The durable spool: an append-only journal of accepted deliveries (see spool.h for the
 * record format).
 *
 * Segments. A segment is named journal-<N>.pdwj where N is a lower bound of the ids of the
 * deliveries in it: the first segment is 1; a new one is named after the lowest id that may
 * still be written (the first id in `cur`, else the next id to assign), and always above the
 * previous name. Names therefore grow strictly, sort in journal order, and the last name is
 * a floor for the next id at open, so ids keep growing even when every delivery record has
 * been deleted (next id = max(highest id seen + 1, last segment's N)). Handled markers carry
 * the highest id assigned when they were written in their id field, for the same reason.
 *
 * The invariant: a segment named N only ever receives delivery records with id >= N, in
 * increasing order. rotate() names the segment after the lowest id not yet written (every
 * smaller id is written in an older segment or dropped for good); when that is not above the
 * previous name (the active segment holds only markers and no id was written since it was
 * created), it skips ids up to the new name if none is assigned yet, and otherwise does not
 * rotate until the waiting records are written. At open, the next id is at least the last
 * segment's name (recover()). A leader takes all of `cur` at once, so batches are written
 * in id order and every id it writes was still unwritten when the active segment was made,
 * hence not below its name (lead_flush()). The writer before segment recycling named a
 * new segment max(durable + 1, previous + 1), which broke this in one corner case (a
 * segment holding only markers rotated while the next id was still unwritten: that id,
 * N - 1, went into segment N); recovery lets id N - 1 through for those journals.
 *
 * Recycling. Where a wholly handled oldest segment would be deleted, it is renamed to
 * SPARE_NAME instead (at most one spare; the others are deleted), and the next rotation
 * renames the spare to the new segment's name and writes it in place from offset 0. Writing
 * into blocks that exist, without changing the file size, lets fdatasync write the data
 * only, not the inode too. Past its durable end, a recycled active segment holds bytes of
 * its earlier lives: records that still pass their CRC. None of them can be taken for a
 * live record:
 *  - a delivery of an earlier life has id < N - 1: the file's earlier name P had a
 *    successor Q, created after every id in P was settled (id < Q), and N, created after P
 *    was deleted while Q existed, is above Q. Recovery ends the last segment at the first
 *    delivery below N - 1 or not above the previous delivery (a torn tail: cut off), and
 *    skips such deliveries in older segments (counted as skipped);
 *  - a handled marker of an earlier life names only deliveries of P or older segments,
 *    which were all deleted (oldest first) before P was, and ids are never reused: applying
 *    it marks nothing, and its id field (< Q) raises no floor. Recovery applies it like any
 *    marker (it cannot tell it from a live one: the old writer's markers can carry N - 2).
 * The segment that stops being active is cut to its durable size (and synced) before the
 * spare becomes the new one, so older segments carry no stale bytes; if that cut failed or a
 * crash came first, the rule for older segments above still holds. Close cuts the active
 * segment's stale tail too, so that a clean restart finds no torn bytes.
 *
 * Memory. Bodies are never kept after they are written: the pending set is a sorted array
 * of (id, segment, offset), and pdw_spool_foreach_pending() preads each record back. A
 * handled entry becomes a tombstone, compacted away once tombstones outnumber live ones.
 *
 * Group commit. Appends encode their record into `cur` under the mutex. A flush leader
 * takes `cur` (swapping in a spare buffer), writes it with pwrite at the active segment's
 * durable end and fdatasyncs it without the mutex, then publishes the result: ids become
 * durable (and pending), or the batch is dropped (its id range is remembered for
 * pdw_spool_dropped()) and the segment is cut back to its last durable end. Only the leader
 * writes, rotates or deletes segments, so the active fd, its size and the segment sizes
 * need no other lock. Waiters sleep on one condition variable.
 *
 * Space for each post-flush step is reserved up front (pending array capacity at append,
 * marker buffer by the leader under the mutex), so a successful write is never undone by a
 * failed allocation. */
#define _DEFAULT_SOURCE /* flock() and LOCK_* (<sys/file.h>) are BSD, outside POSIX */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable/crc32c.h"
#include "durable/durable.h"

#define HDR 12                       /* magic, payload length, CRC */
#define DELIV_FIXED 19               /* type, id, received_ms, key length */
#define MARK_FIXED 13                /* type, id, count */
#define TYPE_DELIVERY 1
#define TYPE_HANDLED 2
#define MAX_PAYLOAD (256u << 20)     /* larger lengths are corruption, not records */
#define DEFAULT_SEGMENT (64ull << 20)
#define DROPPED_MAX 1024             /* dropped id ranges remembered */
#define SPARE_KEEP (4u << 20)        /* a flushed buffer larger than this is freed */
#define DEAD UINT64_MAX              /* pend.seq of a handled entry */
#define ID_MAX (UINT64_C(1) << 62)   /* ids above are corruption (one id per delivery) */
#define NAME_SIZE 30                 /* "journal-" + 16 hex + ".pdwj" + NUL */
#define SPARE_NAME "spare.pdwj"      /* a handled segment file kept for reuse */
#define GATHER_MAX_US 500            /* longest wait of a leader for more records */
#define GATHER_MIN_US 20             /* shorter waits are not worth a timed sleep */

static const unsigned char MAGIC[4] = { 'P', 'D', 'W', 'J' };

enum {
    SPARE_NONE,   /* no spare file: the next deleted segment becomes it */
    SPARE_READY,  /* a spare file: the next rotation takes it */
    SPARE_BLOCKED /* something we cannot use holds the name: delete, create, leave it */
};

typedef struct segment {
    uint64_t name;      /* journal-<name>.pdwj */
    uint64_t size;      /* durable bytes */
    uint64_t unhandled; /* deliveries in it whose handled marker is not durable yet */
    int64_t newest_ms;  /* latest received_ms of its deliveries (for retain_ms) */
} segment;

typedef struct pend {
    uint64_t id, seq, off; /* seq: the segment's sequence number, DEAD once handled */
} pend;

typedef struct mark {
    uint64_t id, seq;
} mark;

typedef struct drop_range {
    uint64_t lo, hi;
    int code;
} drop_range;

typedef struct buffer {
    char *p;
    size_t len, cap;
} buffer;

struct pdw_spool {
    pdw_allocator alloc;
    pdw_spool_io io;
    uint64_t segment_bytes, max_bytes, retain_ms;
    int no_sync;
    pdw_spool_record_cb on_record; /* told of every delivery found at open */
    void *record_user;
    int dirfd, lockfd, fd; /* fd: the active (last) segment, written with pwrite */
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a flush ended (pdw_spool_flush(), close) */
    pthread_cond_t bcond[2]; /* batch b ended: appenders of batch b wait on bcond[b & 1] */
    int sync_ready; /* mutex and conditions initialised */

    segment *segs; /* oldest first; segs[i] has sequence number seq0 + i */
    size_t nsegs, segcap;
    uint64_t seq0;
    uint64_t bytes; /* sum of segs[].size */
    uint64_t fd_end; /* size of the active file: its durable size, or more when it holds
                        stale bytes (a recycled file) or a batch not cut back. Leader-only */
    int spare_file;  /* SPARE_NAME: SPARE_NONE, SPARE_READY or SPARE_BLOCKED. Leader-only */

    buffer cur, spare;       /* cur: deliveries appended since the leader last took it */
    uint64_t cur_first;      /* ids in cur: [cur_first, cur_first + cur_n) */
    int64_t cur_newest;      /* latest received_ms in cur */
    size_t cur_n;
    size_t last_n;           /* deliveries in the last batch taken */
    uint64_t last_sync_us;   /* how long the last batch's write + fdatasync took */
    size_t gather_target;    /* a leader waits for cur_n to reach it (0: none waits) */
    size_t inflight_n;       /* deliveries / bytes being written by the leader */
    uint64_t inflight_bytes;

    pend *pend; /* sorted by id */
    size_t pend_len, pend_cap, pend_dead;
    mark *marks; /* handled, marker not yet durable */
    size_t nmarks, markcap;
    char *markbuf; /* the leader's encoded marker record */
    size_t markbuf_cap;

    uint64_t next_id, durable;
    int flushing, tail_dirty;
    uint64_t taken, done; /* batches taken by a leader / finished */
    uint64_t fail_seq;    /* the last failed batch and its code */
    int fail_code;
    drop_range drops[DROPPED_MAX]; /* ring, oldest at drop_head */
    size_t drop_head, drop_n;

    uint64_t appended, flushes, full_errors, io_errors;
};

/* ---- little-endian fields --------------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- files -------------------------------------------------------------------------- */

static void seg_path(char out[NAME_SIZE], uint64_t name)
{
    snprintf(out, NAME_SIZE, "journal-%016llx.pdwj", (unsigned long long)name);
}

/* 1 and *name when f is exactly journal-<16 hex>.pdwj. */
static int seg_parse(const char *f, uint64_t *name)
{
    if (strlen(f) != NAME_SIZE - 1 || memcmp(f, "journal-", 8) != 0 ||
        memcmp(f + 24, ".pdwj", 5) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 8; i < 24; i++) {
        char c = f[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    if (v > ID_MAX)
        return 0; /* beyond any id: not one of ours */
    *name = v;
    return 1;
}

static int errno_code(int e)
{
#ifdef EDQUOT
    if (e == EDQUOT)
        return PDW_ENOSPC;
#endif
    return e == ENOSPC ? PDW_ENOSPC : PDW_EIO;
}

/* Write all of p at offset off (in place: the file may already be longer); 0 or a PDW
 * code. The write hook is write(2)-like: it gets the file offset set with lseek first. */
static int write_at(pdw_spool *s, int fd, uint64_t off, const char *p, size_t n)
{
    if (n > 0 && s->io.write && lseek(fd, (off_t)off, SEEK_SET) < 0)
        return PDW_EIO;
    while (n > 0) {
        long r = s->io.write ? s->io.write(fd, p, n, s->io.user)
                             : (long)pwrite(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno_code(errno);
        if (r == 0)
            return PDW_EIO;
        size_t w = (size_t)r < n ? (size_t)r : n;
        p += w;
        n -= w;
        off += w;
    }
    return 0;
}

static int sync_file(pdw_spool *s, int fd)
{
    for (;;) {
        int r = s->io.sync ? s->io.sync(fd, s->io.user) : fdatasync(fd);
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return errno_code(errno);
    }
}

static int sync_dir(pdw_spool *s)
{
    return s->no_sync || fsync(s->dirfd) == 0 ? 0 : PDW_EIO;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* ---- records ------------------------------------------------------------------------ */

/* Size of the valid record at p (magic, sane length, CRC, well-formed payload), or 0. */
static size_t record_at(const unsigned char *p, size_t avail)
{
    if (avail < HDR || memcmp(p, MAGIC, 4) != 0)
        return 0;
    uint32_t plen = get32(p + 4);
    if (plen < 9 || plen > MAX_PAYLOAD || plen > avail - HDR)
        return 0;
    const unsigned char *q = p + HDR;
    if (q[0] == TYPE_DELIVERY && (plen < DELIV_FIXED || get16(q + 17) > plen - DELIV_FIXED))
        return 0;
    if (q[0] == TYPE_HANDLED &&
        (plen < MARK_FIXED || (plen - MARK_FIXED) / 8 != get32(q + 9) ||
         (plen - MARK_FIXED) % 8 != 0))
        return 0;
    if (pdw__crc32c(0, q, plen) != get32(p + 8))
        return 0;
    return HDR + plen;
}

static size_t pend_find(const pdw_spool *s, uint64_t id) /* first index with id >= id */
{
    size_t lo = 0, hi = s->pend_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pend[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void pend_compact(pdw_spool *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->pend_len; i++)
        if (s->pend[i].seq != DEAD)
            s->pend[j++] = s->pend[i];
    s->pend_len = j;
    s->pend_dead = 0;
}

static int pend_reserve(pdw_spool *s, size_t need)
{
    if (need <= s->pend_cap)
        return 0;
    size_t cap = s->pend_cap ? s->pend_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > SIZE_MAX / sizeof(pend))
        return PDW_ENOMEM;
    pend *p = pdw__realloc(&s->alloc, s->pend, cap * sizeof *p);
    if (!p)
        return PDW_ENOMEM;
    s->pend = p;
    s->pend_cap = cap;
    return 0;
}

/* ---- recovery ----------------------------------------------------------------------- */

typedef struct recovery_state {
    pdw_spool_recovery r;
    uint64_t max_id;  /* highest id mentioned anywhere */
    uint64_t last_id; /* highest delivery id kept (deliveries must come in id order) */
} recovery_state;

static int apply_record(pdw_spool *s, recovery_state *rs, size_t segi, uint64_t off,
                        const unsigned char *q)
{
    uint64_t id = get64(q + 1);
    /* A record that kept its CRC but carries an id no writer reaches: ignore it, or the
     * next id would wrap (found by tests/fuzz/fuzz_spool). */
    if (id > ID_MAX)
        return 0;
    if (id > rs->max_id)
        rs->max_id = id;
    if (q[0] == TYPE_DELIVERY) {
        if (id <= rs->last_id)
            return 0; /* out of order: cannot happen with our writer; ignore it */
        if (pend_reserve(s, s->pend_len + 1) < 0)
            return PDW_ENOMEM;
        s->pend[s->pend_len++] = (pend){ id, s->seq0 + segi, off };
        s->segs[segi].unhandled++;
        int64_t received = (int64_t)get64(q + 9);
        if (received > s->segs[segi].newest_ms)
            s->segs[segi].newest_ms = received;
        if (s->on_record) {
            uint32_t plen = get32(q - HDR + 4);
            size_t klen = get16(q + 17);
            if (klen <= plen - DELIV_FIXED) {
                pdw_spool_record rec = { id, received, (const char *)q + DELIV_FIXED, klen,
                                         (const char *)q + DELIV_FIXED + klen,
                                         plen - DELIV_FIXED - klen };
                s->on_record(&rec, s->record_user);
            }
        }
        rs->last_id = id;
        rs->r.deliveries++;
    } else if (q[0] == TYPE_HANDLED) {
        uint32_t n = get32(q + 9);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t h = get64(q + MARK_FIXED + 8 * (size_t)i);
            if (h > ID_MAX)
                continue;
            size_t k = pend_find(s, h);
            if (h > rs->max_id)
                rs->max_id = h;
            if (k == s->pend_len || s->pend[k].id != h || s->pend[k].seq == DEAD)
                continue; /* an id whose segment is gone, or marked twice: ignore */
            s->segs[s->pend[k].seq - s->seq0].unhandled--;
            s->pend[k].seq = DEAD;
            s->pend_dead++;
        }
    } /* other types: from a newer writer; skipped */
    return 0;
}

/* A delivery record (payload q) below the floor of segment `name`: a record of an earlier
 * life of a recycled file (see the file comment). The floor is name - 1, not name, for the
 * journals of the writer before recycling. Ids above ID_MAX are apply_record()'s. */
static int below_floor(uint64_t name, const unsigned char *q)
{
    uint64_t id = get64(q + 1);
    return q[0] == TYPE_DELIVERY && id <= ID_MAX && id + 1 < name;
}

/* A delivery record not above the last delivery kept: never written by our writer, so in
 * the last segment it is stale (the bytes of an earlier life of the file, past its end). */
static int out_of_order(const recovery_state *rs, const unsigned char *q)
{
    uint64_t id = get64(q + 1);
    return q[0] == TYPE_DELIVERY && id <= ID_MAX && id <= rs->last_id;
}

/* Read segment segi (fd open, size bytes). In the last segment the first bad record ends
 * the journal and is cut off, and so does the first stale delivery (below the segment's
 * floor or out of order: the bytes past the end of a recycled file); in older ones
 * corrupt bytes and deliveries below the floor are skipped. */
static int recover_segment(pdw_spool *s, recovery_state *rs, size_t segi, int fd,
                           uint64_t size, int last)
{
    uint64_t name = s->segs[segi].name;
    if (size > SIZE_MAX)
        return PDW_EIO;
    size_t n = (size_t)size, off = 0;
    unsigned char *p = NULL;
    int rc = 0;
    if (n > 0) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            return PDW_EIO;
        p = m;
    }
    while (off < n && rc == 0) {
        size_t len = record_at(p + off, n - off);
        const unsigned char *pl = p + off + HDR;
        if (len && !below_floor(name, pl) && !(last && out_of_order(rs, pl))) {
            rc = apply_record(s, rs, segi, off, pl);
            off += len;
            continue;
        }
        if (len && !last) { /* stale bytes left by a crash before the rotation's cut */
            rs->r.skipped_bytes += len;
            off += len;
            continue;
        }
        if (last) { /* a torn tail or stale bytes: nothing after it was ever acknowledged */
            rs->r.torn_bytes += n - off;
            if (ftruncate(fd, (off_t)off) != 0 || (!s->no_sync && fsync(fd) != 0))
                rc = PDW_EIO;
            n = off;
            break;
        }
        size_t q = off + 1;
        while (q < n) {
            const unsigned char *c = memchr(p + q, MAGIC[0], n - q);
            if (!c) {
                q = n;
                break;
            }
            q = (size_t)(c - p);
            if (record_at(p + q, n - q))
                break;
            q++;
        }
        rs->r.skipped_bytes += q - off;
        off = q;
    }
    if (p)
        munmap(p, (size_t)size);
    s->segs[segi].size = n;
    s->bytes += n;
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* List the segment names, sorted. */
static int list_segments(pdw_spool *s, const char *dir, uint64_t **out, size_t *n_out)
{
    uint64_t *names = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d)
        return PDW_EIO;
    int rc = 0;
    for (;;) {
        /* NULL is the end only with errno untouched: an error (EOVERFLOW from a 32-bit
         * readdir on ext4, EIO) would otherwise hide the segments after it */
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno != 0)
                rc = PDW_EIO;
            break;
        }
        uint64_t v;
        if (!seg_parse(e->d_name, &v))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *nn = pdw__realloc(&s->alloc, names, nc * sizeof *nn);
            if (!nn) {
                rc = PDW_ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n++] = v;
    }
    closedir(d);
    if (rc < 0) {
        pdw__free(&s->alloc, names);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_u64);
    *out = names;
    *n_out = n;
    return 0;
}

/* Create segment `name` as a new, empty file, durably. Leader (or open) only, mutex not
 * held. */
static int create_segment(pdw_spool *s, uint64_t name, int *fd_out)
{
    char f[NAME_SIZE];
    seg_path(f, name);
    int fd = openat(s->dirfd, f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno_code(errno);
    int rc = sync_dir(s);
    if (rc < 0) {
        close(fd);
        unlinkat(s->dirfd, f, 0);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* Make the spare file segment `name`: rename it, open it to be written in place (neither
 * O_TRUNC nor O_APPEND: its blocks are the point), and make the new name durable before
 * anything is written in it, like a created file. *size_out: its size (stale bytes until
 * overwritten). On failure the spare is put back and not tried again, or removed; the
 * caller creates a file instead. Leader only, mutex not held. */
static int take_spare(pdw_spool *s, uint64_t name, int *fd_out, uint64_t *size_out)
{
    char f[NAME_SIZE];
    struct stat st;
    seg_path(f, name);
    if (fstatat(s->dirfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return PDW_EIO; /* never rename over a file (create_segment() fails on it too) */
    if (renameat(s->dirfd, SPARE_NAME, s->dirfd, f) != 0) {
        s->spare_file = errno == ENOENT ? SPARE_NONE : SPARE_BLOCKED;
        return PDW_EIO;
    }
    int fd = openat(s->dirfd, f, O_WRONLY | O_CLOEXEC | O_NOFOLLOW), rc = PDW_EIO;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        rc = sync_dir(s);
    if (rc == 0) {
        s->spare_file = SPARE_NONE;
        *fd_out = fd;
        *size_out = (uint64_t)st.st_size;
        return 0;
    }
    if (fd >= 0)
        close(fd);
    /* put it back, or else out of the way: under the new name it would be a segment (whose
     * stale records recovery would cut, but still) */
    if (renameat(s->dirfd, f, s->dirfd, SPARE_NAME) == 0) {
        s->spare_file = SPARE_BLOCKED;
    } else {
        unlinkat(s->dirfd, f, 0);
        s->spare_file = SPARE_NONE;
    }
    return rc;
}

/* Delete segments oldest first while the oldest is not the active one and every delivery
 * in it is handled durably. The order matters: the handled marker of a delivery may live in
 * any newer segment, so deleting a newer segment while an older one remains would bring the
 * older one's handled deliveries back as pending after a restart. Deleting only the oldest
 * means every marker in a deleted segment refers to deliveries that are already gone (which
 * is also why the markers of a recycled file's earlier life are harmless).
 *
 * When there is no spare file, the first segment deleted becomes it (renamed, not unlinked):
 * the next rotation reuses the file and its blocks.
 * Called with the mutex held by the leader (or at open); drops it around the syscalls. */
static int retained(const pdw_spool *s, const segment *g)
{
    if (!s->retain_ms)
        return 0;
    return g->newest_ms + (int64_t)s->retain_ms > pdw__wall_ms();
}

static void delete_handled(pdw_spool *s)
{
    int any = 0;
    while (s->nsegs > 1 && s->segs[0].unhandled == 0 && !retained(s, &s->segs[0])) {
        char f[NAME_SIZE];
        seg_path(f, s->segs[0].name);
        int keep = s->spare_file == SPARE_NONE;
        pthread_mutex_unlock(&s->lock);
        int r = keep ? renameat(s->dirfd, f, s->dirfd, SPARE_NAME) : unlinkat(s->dirfd, f, 0);
        int e = errno;
        pthread_mutex_lock(&s->lock);
        if (r != 0 && e != ENOENT && keep) {
            s->spare_file = SPARE_BLOCKED; /* the name is taken by something else: unlink */
            continue;
        }
        if (r != 0 && e != ENOENT)
            break;
        if (r == 0 && keep)
            s->spare_file = SPARE_READY;
        s->bytes -= s->segs[0].size;
        memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof *s->segs);
        s->nsegs--;
        s->seq0++;
        any = 1;
    }
    if (any) {
        pthread_mutex_unlock(&s->lock);
        sync_dir(s); /* best effort: a segment that comes back is deleted again later */
        pthread_mutex_lock(&s->lock);
    }
}

/* The lowest id that a batch taken from now on may hold: the first in cur, else the next
 * to assign; every smaller id is written or dropped for good. Mutex held. */
static uint64_t unwritten_floor(const pdw_spool *s)
{
    return s->cur_n ? s->cur_first : s->next_id;
}

/* Start a new active segment, named `low`: the lowest id that may still be written into it
 * (see the invariant in the file comment). The spare file when there is one, else a new
 * file. Leader only, mutex held (dropped around the syscalls). */
static int rotate(pdw_spool *s, uint64_t low)
{
    if (s->nsegs == s->segcap) {
        size_t nc = s->segcap * 2;
        segment *ns = pdw__realloc(&s->alloc, s->segs, nc * sizeof *ns);
        if (!ns)
            return PDW_ENOMEM;
        s->segs = ns;
        s->segcap = nc;
    }
    uint64_t name = low, prev = s->segs[s->nsegs - 1].name, end = s->segs[s->nsegs - 1].size;
    if (name <= prev) {
        /* The active segment holds no delivery and none was written since it was made (it
         * holds markers only). Names must grow: skip the ids up to prev + 1 if none is
         * assigned yet; else write those first (the caller rotates after a later flush). */
        if (low != s->next_id || s->cur_n)
            return PDW_EIO;
        name = prev + 1;
    }
    if (name > ID_MAX)
        return PDW_ERANGE; /* recovery would not list it */
    if (name > s->next_id)
        s->next_id = name;
    int old = s->fd, fd = -1, rc = PDW_EIO;
    uint64_t size = 0;
    pthread_mutex_unlock(&s->lock);
    /* The segment that stops being active keeps no stale bytes past its durable end (rare:
     * a recycled file, or a failed batch not cut back). Best effort: recovery skips stale
     * deliveries in older segments anyway. */
    if (s->fd_end > end && ftruncate(old, (off_t)end) == 0) {
        s->fd_end = end;
        if (!s->no_sync)
            sync_file(s, old);
    }
    if (s->spare_file == SPARE_READY)
        rc = take_spare(s, name, &fd, &size);
    if (rc < 0)
        rc = create_segment(s, name, &fd);
    pthread_mutex_lock(&s->lock);
    if (rc < 0)
        return rc;
    close(old);
    s->fd = fd;
    s->fd_end = size;
    s->segs[s->nsegs++] = (segment){ name, 0, 0, 0 };
    return 0;
}

/* ---- open / close ------------------------------------------------------------------- */

int pdw_spool_options_init(pdw_spool_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_SPOOL_OPTIONS_VERSION);
}

static void spool_free(pdw_spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->lockfd >= 0)
        close(s->lockfd); /* releases the flock */
    if (s->dirfd >= 0)
        close(s->dirfd);
    if (s->sync_ready) {
        pthread_cond_destroy(&s->cond);
        pthread_cond_destroy(&s->bcond[0]);
        pthread_cond_destroy(&s->bcond[1]);
        pthread_mutex_destroy(&s->lock);
    }
    pdw_allocator a = s->alloc;
    pdw__free(&a, s->segs);
    pdw__free(&a, s->cur.p);
    pdw__free(&a, s->spare.p);
    pdw__free(&a, s->pend);
    pdw__free(&a, s->marks);
    pdw__free(&a, s->markbuf);
    pdw__free(&a, s);
}

/* After mkdir: make the new directory entry durable too. */
static int sync_parent(pdw_spool *s, const char *dir)
{
    char *p = pdw__strdup(&s->alloc, dir);
    if (!p)
        return PDW_ENOMEM;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    char *slash = strrchr(p, '/');
    const char *parent = ".";
    if (slash == p)
        parent = "/";
    else if (slash) {
        *slash = '\0';
        parent = p;
    }
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = PDW_EIO;
    if (fd >= 0)
        close(fd);
    pdw__free(&s->alloc, p);
    return rc;
}

static int open_dir(pdw_spool *s, const char *dir, pdw_error *err)
{
    if (mkdir(dir, 0700) == 0) {
        if (!s->no_sync && sync_parent(s, dir) == PDW_ENOMEM)
            return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    } else if (errno != EEXIST) {
        return pdw__error_set(err, PDW_EIO, -1, "spool: cannot create %s (errno %d)", dir,
                              errno);
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return pdw__error_set(err, PDW_EIO, -1, "spool: cannot open %s (errno %d)", dir, errno);
    s->lockfd = openat(s->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0)
        return pdw__error_set(err, PDW_EIO, -1, "spool: cannot open %s/LOCK (errno %d)", dir,
                              errno);
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return pdw__error_set(err, PDW_ELOCKED, -1, "spool: %s is locked", dir);
        return pdw__error_set(err, PDW_EIO, -1, "spool: cannot lock %s (errno %d)", dir,
                              errno);
    }
    /* a spare file left by the last run is kept as the spare; anything else under its
     * name is left alone */
    struct stat st;
    if (fstatat(s->dirfd, SPARE_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0)
        s->spare_file = S_ISREG(st.st_mode) ? SPARE_READY : SPARE_BLOCKED;
    else
        s->spare_file = errno == ENOENT ? SPARE_NONE : SPARE_BLOCKED;
    return 0;
}

static int recover(pdw_spool *s, const char *dir, pdw_spool_recovery *out, pdw_error *err)
{
    recovery_state rs;
    memset(&rs, 0, sizeof rs);
    uint64_t *names = NULL;
    size_t n = 0;
    int rc = list_segments(s, dir, &names, &n);
    if (rc < 0)
        return pdw__error_set(err, rc, -1, "spool: cannot list %s", dir);
    s->segcap = n > 4 ? n : 4;
    s->segs = pdw__calloc(&s->alloc, s->segcap, sizeof *s->segs);
    if (!s->segs) {
        pdw__free(&s->alloc, names);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        int last = i + 1 == n;
        char f[NAME_SIZE];
        seg_path(f, names[i]);
        int fd = openat(s->dirfd, f, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = pdw__error_set(err, PDW_EIO, -1, "spool: cannot read %s (errno %d)", f, errno);
            if (fd >= 0)
                close(fd);
            break;
        }
        s->segs[s->nsegs++] = (segment){ names[i], 0, 0, 0 };
        rs.r.segments++;
        rc = recover_segment(s, &rs, i, fd, (uint64_t)st.st_size, last);
        if (last) {
            s->fd = fd;
            s->fd_end = s->segs[i].size; /* the tail was cut */
        } else {
            close(fd);
        }
        if (rc < 0)
            pdw__error_set(err, rc, -1, rc == PDW_ENOMEM ? NULL : "spool: cannot recover %s",
                           f);
    }
    uint64_t last_name = n ? names[n - 1] : 1;
    pdw__free(&s->alloc, names);
    if (rc < 0)
        return rc;
    s->next_id = rs.max_id + 1 > last_name ? rs.max_id + 1 : last_name;
    s->durable = s->next_id - 1;
    if (n == 0) {
        /* A new journal, or one whose segments were removed by hand: ids start again, so
         * a spare file's records are not below every name to come. It goes. */
        if (s->spare_file == SPARE_READY && unlinkat(s->dirfd, SPARE_NAME, 0) == 0)
            s->spare_file = SPARE_NONE;
        else if (s->spare_file == SPARE_READY)
            s->spare_file = SPARE_BLOCKED;
        rc = create_segment(s, last_name, &s->fd);
        if (rc < 0)
            return pdw__error_set(err, rc, -1, "spool: cannot create a segment in %s", dir);
        s->segs[s->nsegs++] = (segment){ last_name, 0, 0, 0 };
    }
    if (s->pend_dead)
        pend_compact(s);
    rs.r.pending = s->pend_len;
    if (out)
        *out = rs.r;
    return 0;
}

int pdw_spool_open(pdw_spool **out, const char *dir, const pdw_spool_options *opts,
                   pdw_spool_recovery *recovery, pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (!dir || !*dir)
        return pdw__error_set(err, PDW_EINVAL, -1, "spool: no directory");
    if (opts && opts->version != PDW_SPOOL_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "spool options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    pdw_spool *s = pdw__calloc(&a, 1, sizeof *s);
    if (!s)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    s->alloc = a;
    s->dirfd = s->lockfd = s->fd = -1;
    if (opts && opts->io)
        s->io = *opts->io;
    s->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT;
    s->max_bytes = opts ? opts->max_bytes : 0;
    s->no_sync = opts ? opts->no_sync : 0;
    s->retain_ms = opts ? opts->retain_ms : 0;
    s->on_record = opts ? opts->on_record : NULL;
    s->record_user = opts ? opts->record_user : NULL;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        spool_free(s);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (pdw__cond_init(&s->cond) != 0) {
        pthread_mutex_destroy(&s->lock);
        spool_free(s);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (pthread_cond_init(&s->bcond[0], NULL) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        spool_free(s);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (pthread_cond_init(&s->bcond[1], NULL) != 0) {
        pthread_cond_destroy(&s->bcond[0]);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        spool_free(s);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    s->sync_ready = 1;
    int rc = open_dir(s, dir, err);
    if (rc == 0)
        rc = recover(s, dir, recovery, err);
    if (rc < 0) {
        spool_free(s);
        return rc;
    }
    pthread_mutex_lock(&s->lock);
    delete_handled(s);
    pthread_mutex_unlock(&s->lock);
    *out = s;
    return 0;
}

/* ---- group commit ------------------------------------------------------------------- */

static uint64_t mono_us(void)
{
    struct timespec t = pdw__clock_now(CLOCK_MONOTONIC);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static int has_work(const pdw_spool *s)
{
    return s->cur.len > 0 || s->nmarks > 0;
}

static void add_drop(pdw_spool *s, uint64_t lo, uint64_t hi, int code)
{
    size_t i = (s->drop_head + s->drop_n) % DROPPED_MAX;
    if (s->drop_n == DROPPED_MAX)
        s->drop_head = (s->drop_head + 1) % DROPPED_MAX;
    else
        s->drop_n++;
    s->drops[i] = (drop_range){ lo, hi, code };
}

/* 0 when id was not dropped, else the error that dropped it. Mutex held. */
static int drop_code(const pdw_spool *s, uint64_t id)
{
    /* ranges are disjoint and grow with time: walk from the newest */
    for (size_t k = s->drop_n; k-- > 0;) {
        const drop_range *r = &s->drops[(s->drop_head + k) % DROPPED_MAX];
        if (id > r->hi)
            return 0;
        if (id >= r->lo)
            return r->code;
    }
    return 0;
}

/* Encode the queued handled ids into markbuf; returns its length (0 if none or no memory). */
static size_t encode_marks(pdw_spool *s, size_t *count)
{
    size_t nm = s->nmarks < (MAX_PAYLOAD - MARK_FIXED) / 8 ? s->nmarks
                                                            : (MAX_PAYLOAD - MARK_FIXED) / 8;
    *count = 0;
    if (nm == 0)
        return 0;
    size_t plen = MARK_FIXED + 8 * nm, need = HDR + plen;
    if (need > s->markbuf_cap) {
        size_t cap = s->markbuf_cap ? s->markbuf_cap : 256;
        while (cap < need)
            cap *= 2;
        char *nb = pdw__realloc(&s->alloc, s->markbuf, cap);
        if (!nb)
            return 0;
        s->markbuf = nb;
        s->markbuf_cap = cap;
    }
    unsigned char *p = (unsigned char *)s->markbuf, *q = p + HDR;
    memcpy(p, MAGIC, 4);
    put32(p + 4, (uint32_t)plen);
    q[0] = TYPE_HANDLED;
    put64(q + 1, s->next_id - 1); /* a floor for the next id at open */
    put32(q + 9, (uint32_t)nm);
    for (size_t i = 0; i < nm; i++)
        put64(q + MARK_FIXED + 8 * i, s->marks[i].id);
    put32(p + 8, pdw__crc32c(0, q, plen));
    *count = nm;
    return need;
}

/* Wake who waits for the end of batch `batch`: its appenders, flush and close; and, when
 * the next batch has records (`next`), one of its appenders to lead it. Called after the
 * mutex is released: woken threads take it at once, and would otherwise block on it
 * again (a second sleep and wake-up each). Late wake-ups are harmless: every waiter checks
 * its condition under the mutex before sleeping and again after. */
static void wake_batch(pdw_spool *s, uint64_t batch, int next)
{
    pthread_cond_broadcast(&s->cond);
    /* appenders of this batch only, not those queued for the next (half the waiters) */
    pthread_cond_broadcast(&s->bcond[batch & 1]);
    if (next)
        pthread_cond_signal(&s->bcond[(batch + 1) & 1]);
}

/* Cut a failed batch [base, end) back off the active file, before anyone learns that it
 * failed (its appenders answer 503, and Pipedrive's retry is taken as new, so the batch
 * must never come back). Why this is enough, written in place as when appending:
 *  - after ftruncate(base) no reader sees a byte of the batch (nor the stale bytes of a
 *    recycled file past it), and the fdatasync makes the smaller size durable, so that a
 *    power cut cannot bring back what of the batch the failed write or sync did put on
 *    disk: complete records with ids above every durable one, which recovery could not
 *    tell from live ones;
 *  - the durable end does not move, so the next batch is written at base again, and its
 *    own fdatasync makes its new size durable.
 * Leaving the batch in place to be overwritten would not do: until the overwrite, a crash
 * brings it back, and a shorter next batch would leave the rest of it behind. The cost is
 * that a recycled file is appended to again (size updates) until the next rotation.
 * When ftruncate fails, tail_dirty makes the next flush try again before it writes, or
 * rotate (the batch then stays in an older segment, where recovery keeps what of it is
 * complete: two failures in a row, as before recycling). The sync is best effort: the cut
 * is in the page cache, which is all a process crash needs; a power cut after a failed
 * sync here could bring the batch back (a duplicate of a delivery answered 503, never a
 * loss). Leader only, mutex not held. */
static void cut_back(pdw_spool *s, int fd, uint64_t base, uint64_t end)
{
    if (ftruncate(fd, (off_t)base) != 0) {
        s->tail_dirty = 1;
        if (end > s->fd_end)
            s->fd_end = end;
        return;
    }
    s->fd_end = base;
    if (!s->no_sync)
        sync_file(s, fd);
}

/* Become the leader: take what was appended, write it, sync it, publish the outcome.
 * Mutex held on entry and exit; no flush running. Returns the batch's code (0, ENOSPC,
 * EIO), or ENOMEM when queued markers could not be encoded. *batch_out: the batch it ran;
 * call wake_batch() for it once the mutex is released. */
static int lead_flush(pdw_spool *s, uint64_t *batch_out)
{
    s->flushing = 1;
    uint64_t batch = ++s->taken;
    int rc = 0, mark_rc = 0;
    size_t nm = 0, mlen = encode_marks(s, &nm);
    if (s->nmarks && !nm)
        mark_rc = PDW_ENOMEM; /* they stay queued for the next flush */
    buffer out = s->cur;
    uint64_t first = s->cur_first;
    int64_t newest = s->cur_newest;
    size_t n = s->cur_n;
    s->cur = s->spare;
    s->spare = (buffer){ NULL, 0, 0 };
    s->cur_n = 0;
    s->last_n = n;
    s->inflight_n = n;
    s->inflight_bytes = out.len + mlen;

    if ((out.len || mlen) && s->tail_dirty) {
        /* a failed batch could not be cut off: cut it now, or start a new segment (the
         * batch's ids are all below `first`, so it may be named `first`) */
        uint64_t end = s->segs[s->nsegs - 1].size;
        pthread_mutex_unlock(&s->lock);
        int r = ftruncate(s->fd, (off_t)end);
        if (r == 0)
            s->fd_end = end;
        pthread_mutex_lock(&s->lock);
        if (r == 0 || rotate(s, n ? first : unwritten_floor(s)) == 0)
            s->tail_dirty = 0;
        else
            rc = PDW_EIO;
    }
    segment *act = &s->segs[s->nsegs - 1];
    uint64_t base = act->size; /* the durable end: the batch is written there, in place */
    int fd = s->fd, synced = 0;
    if ((out.len || mlen) && rc == 0) {
        pthread_mutex_unlock(&s->lock);
        uint64_t t0 = mono_us(), end = base + out.len + mlen;
        rc = write_at(s, fd, base, out.p, out.len);
        if (rc == 0)
            rc = write_at(s, fd, base + out.len, s->markbuf, mlen);
        if (rc == 0 && !s->no_sync) {
            rc = sync_file(s, fd);
            synced = 1;
        }
        uint64_t took = mono_us() - t0;
        if (rc < 0)
            cut_back(s, fd, base, end);
        else if (end > s->fd_end)
            s->fd_end = end;
        pthread_mutex_lock(&s->lock);
        s->last_sync_us = took;
        if (synced || s->no_sync)
            s->flushes++;
        act = &s->segs[s->nsegs - 1];
    }
    if (rc == 0) {
        uint64_t seq = s->seq0 + s->nsegs - 1;
        for (size_t o = 0; o < out.len;) { /* the pending entries were reserved at append */
            const unsigned char *p = (const unsigned char *)out.p + o;
            s->pend[s->pend_len++] = (pend){ get64(p + HDR + 1), seq, base + o };
            o += HDR + get32(p + 4);
        }
        act->unhandled += n;
        if (n && newest > act->newest_ms)
            act->newest_ms = newest;
        act->size += out.len + mlen;
        s->bytes += out.len + mlen;
        if (n)
            s->durable = first + n - 1;
        for (size_t i = 0; i < nm; i++)
            s->segs[s->marks[i].seq - s->seq0].unhandled--;
        if (nm) {
            memmove(s->marks, s->marks + nm, (s->nmarks - nm) * sizeof *s->marks);
            s->nmarks -= nm;
        }
    } else {
        if (n)
            add_drop(s, first, first + n - 1, rc);
        if (rc == PDW_ENOSPC)
            s->full_errors += n;
        else
            s->io_errors++;
        s->fail_seq = batch;
        s->fail_code = rc;
    }
    s->inflight_n = 0;
    s->inflight_bytes = 0;
    out.len = 0;
    if (out.cap > SPARE_KEEP)
        pdw__free(&s->alloc, out.p); /* one huge body should not pin its buffer */
    else
        s->spare = out;
    if (rc == 0) {
        const segment *a = &s->segs[s->nsegs - 1];
        /* Rotate a full segment; also an active segment that is wholly handled and takes a
         * quarter of max_bytes, or else it could never be deleted and a spool refused for
         * being over max_bytes would stay refused with nothing left to hand on. */
        if (a->size >= s->segment_bytes ||
            (s->max_bytes && a->unhandled == 0 && s->cur_n == 0 && a->size >= s->max_bytes / 4))
            rotate(s, unwritten_floor(s)); /* on failure: try again after the next flush */
        delete_handled(s);
    }
    s->done = batch;
    s->flushing = 0;
    *batch_out = batch;
    return rc ? rc : mark_rc;
}

/* Before a leader writes its batch: when the last batch had several deliveries (clients in
 * parallel), wait up to GATHER_MAX_US for about as many more, so that one fdatasync covers
 * the deliveries of the clients just answered too, instead of half of them. Without this,
 * a steady load splits into two alternating batches, each flush written as the other
 * returns (each fdatasync costs tens of microseconds of CPU as well as its latency). A
 * lone client (last batch of one) never waits. Mutex held, no flush running; flushing is
 * set meanwhile, so that nobody else leads and every appender waits for this batch. */
static void gather(pdw_spool *s)
{
    size_t expect = s->last_n;
    /* Waiting w costs each delivery up to w of latency, and saves it when a batch's
     * waiters would otherwise wait for one more flush: worth it for w well under a flush
     * (fast disks wait least). */
    uint64_t wait_us = s->last_sync_us / 2;
    if (wait_us > GATHER_MAX_US)
        wait_us = GATHER_MAX_US;
    if (expect < 2 || s->no_sync || wait_us < GATHER_MIN_US)
        return;
    /* on the clock of s->cond (pdw__cond_init): monotonic, a wall clock set back cannot
     * stretch the wait */
    struct timespec t = pdw__deadline_in_us(wait_us);
    s->flushing = 1;
    s->gather_target = s->cur_n + expect;
    while (s->cur_n < s->gather_target)
        if (pthread_cond_timedwait(&s->cond, &s->lock, &t) != 0)
            break; /* the deadline (or a failure: then write what there is) */
    s->gather_target = 0;
    s->flushing = 0;
}

/* Encode a delivery into cur. *batch_out: the flush batch that will write it (the leader
 * takes cur as batch taken + 1). */
static int append_record(pdw_spool *s, const char *key, size_t key_len, int64_t received_ms,
                         const char *body, size_t len, uint64_t *id_out, uint64_t *batch_out,
                         pdw_error *err)
{
    if (!s || (!key && key_len) || (!body && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "spool: NULL argument");
    if (key_len > 65535)
        return pdw__error_set(err, PDW_EINVAL, -1, "spool: key of %zu bytes", key_len);
    if (len > MAX_PAYLOAD - DELIV_FIXED - key_len)
        return pdw__error_set(err, PDW_EINVAL, -1, "spool: body of %zu bytes", len);
    size_t plen = DELIV_FIXED + key_len + len, rec = HDR + plen;

    pthread_mutex_lock(&s->lock);
    if (s->max_bytes && s->bytes + s->cur.len + s->inflight_bytes + rec > s->max_bytes) {
        s->full_errors++;
        pthread_mutex_unlock(&s->lock);
        return pdw__error_set(err, PDW_ENOSPC, -1, "spool: over max_bytes");
    }
    if (pend_reserve(s, s->pend_len + s->inflight_n + s->cur_n + 1) < 0)
        goto nomem;
    if (s->cur.len + rec > s->cur.cap) {
        size_t cap = s->cur.cap ? s->cur.cap * 2 : 65536;
        while (cap < s->cur.len + rec)
            cap *= 2;
        char *nb = pdw__realloc(&s->alloc, s->cur.p, cap);
        if (!nb)
            goto nomem;
        s->cur.p = nb;
        s->cur.cap = cap;
    }
    if (s->next_id > ID_MAX) { /* recovery would ignore the record: refuse it now */
        pthread_mutex_unlock(&s->lock);
        return pdw__error_set(err, PDW_ERANGE, -1, "spool: ids exhausted");
    }
    uint64_t id = s->next_id++;
    unsigned char *p = (unsigned char *)s->cur.p + s->cur.len, *q = p + HDR;
    memcpy(p, MAGIC, 4);
    put32(p + 4, (uint32_t)plen);
    q[0] = TYPE_DELIVERY;
    put64(q + 1, id);
    put64(q + 9, (uint64_t)received_ms);
    put16(q + 17, (uint16_t)key_len);
    if (key_len)
        memcpy(q + DELIV_FIXED, key, key_len);
    if (len)
        memcpy(q + DELIV_FIXED + key_len, body, len);
    put32(p + 8, pdw__crc32c(0, q, plen));
    if (s->cur_n++ == 0) {
        s->cur_first = id;
        s->cur_newest = received_ms;
    } else if (received_ms > s->cur_newest) {
        s->cur_newest = received_ms;
    }
    s->cur.len += rec;
    s->appended++;
    *batch_out = s->taken + 1;
    if (s->gather_target && s->cur_n >= s->gather_target)
        pthread_cond_broadcast(&s->cond); /* the gathering leader has what it waits for */
    pthread_mutex_unlock(&s->lock);
    *id_out = id;
    return 0;
nomem:
    pthread_mutex_unlock(&s->lock);
    return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
}

int pdw_spool_append_nowait(pdw_spool *s, const char *key, size_t key_len,
                            int64_t received_ms, const char *body, size_t len,
                            uint64_t *id_out, pdw_error *err)
{
    pdw__error_reset(err);
    uint64_t id = 0, batch = 0;
    int rc = append_record(s, key, key_len, received_ms, body, len, &id, &batch, err);
    if (rc == 0 && id_out)
        *id_out = id;
    return rc;
}

int pdw_spool_append(pdw_spool *s, const char *key, size_t key_len, int64_t received_ms,
                     const char *body, size_t len, uint64_t *id_out, pdw_error *err)
{
    pdw__error_reset(err);
    uint64_t id = 0, batch = 0; /* set on success; initialised for the analyzer, which
                                 * cannot see that pdw__error_set() returns its code */
    int rc = append_record(s, key, key_len, received_ms, body, len, &id, &batch, err);
    if (rc < 0)
        return rc;
    uint64_t led = 0; /* the batch this thread wrote, if any */
    int next = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        rc = drop_code(s, id);
        if (rc || s->durable >= id)
            break;
        if (s->flushing) {
            pthread_cond_wait(&s->bcond[batch & 1], &s->lock);
            continue;
        }
        if (s->cur_n == 0 || s->cur_first > id) {
            rc = PDW_EIO; /* dropped so long ago that its range was forgotten */
            break;
        }
        gather(s);
        lead_flush(s, &led); /* our record is in cur: write it ourselves */
        next = s->cur_n > 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (led)
        wake_batch(s, led, next);
    if (id_out)
        *id_out = id;
    if (rc < 0)
        return pdw__error_set(err, rc, -1, "spool: the record was not written");
    return 0;
}

int pdw_spool_flush(pdw_spool *s, uint64_t *durable_out)
{
    if (!s)
        return PDW_EINVAL;
    pthread_mutex_lock(&s->lock);
    uint64_t start = s->done, target = has_work(s) ? s->taken + 1 : s->taken;
    int rc = 0;
    while (s->done < target) {
        if (s->flushing) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        if (!has_work(s))
            break;
        uint64_t led = 0;
        if (lead_flush(s, &led) == PDW_ENOMEM)
            rc = PDW_ENOMEM;
        int next = s->cur_n > 0;
        pthread_mutex_unlock(&s->lock);
        wake_batch(s, led, next);
        pthread_mutex_lock(&s->lock);
    }
    if (s->fail_seq > start && s->fail_seq <= target)
        rc = s->fail_code;
    if (durable_out)
        *durable_out = s->durable;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t pdw_spool_durable(pdw_spool *s)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    uint64_t d = s->durable;
    pthread_mutex_unlock(&s->lock);
    return d;
}

int pdw_spool_dropped(pdw_spool *s, uint64_t id)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    int d = drop_code(s, id) != 0;
    pthread_mutex_unlock(&s->lock);
    return d;
}

int pdw_spool_status(pdw_spool *s, uint64_t id)
{
    if (!s)
        return PDW_EINVAL;
    pthread_mutex_lock(&s->lock);
    /* The ids not settled yet are the newest ones: those in cur and, just below them, the
     * batch the leader is writing (it takes all of cur at once). */
    uint64_t unsettled = s->next_id - s->cur_n - s->inflight_n;
    int rc;
    if (id == 0 || id >= s->next_id)
        rc = PDW_EINVAL; /* never assigned */
    else if ((rc = drop_code(s, id)) != 0)
        ; /* dropped by a failed flush: rc is its code */
    else if (id >= unsettled)
        rc = 1;
    else if (id <= s->durable)
        rc = 0;
    else
        rc = PDW_EIO; /* dropped so long ago that its range was forgotten */
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int pdw_spool_mark_handled(pdw_spool *s, uint64_t id)
{
    if (!s)
        return PDW_EINVAL;
    pthread_mutex_lock(&s->lock);
    size_t k = pend_find(s, id);
    int rc = 0;
    if (k == s->pend_len || s->pend[k].id != id || s->pend[k].seq == DEAD) {
        rc = PDW_ENOTFOUND;
    } else if (s->nmarks == s->markcap) {
        size_t cap = s->markcap ? s->markcap * 2 : 64;
        mark *nm = pdw__realloc(&s->alloc, s->marks, cap * sizeof *nm);
        if (nm) {
            s->marks = nm;
            s->markcap = cap;
        } else {
            rc = PDW_ENOMEM;
        }
    }
    if (rc == 0) {
        s->marks[s->nmarks++] = (mark){ id, s->pend[k].seq };
        s->pend[k].seq = DEAD;
        if (++s->pend_dead >= 64 && s->pend_dead * 2 > s->pend_len)
            pend_compact(s);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void pdw_spool_close(pdw_spool *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    uint64_t led = 0; /* nobody else may be waiting now: no wake-up to send */
    while (s->flushing || has_work(s)) {
        if (s->flushing)
            pthread_cond_wait(&s->cond, &s->lock);
        else if (lead_flush(s, &led) < 0)
            break; /* dropped, or no memory for the markers: they are redone at open */
    }
    /* The active file ends at its durable end, so that a clean restart finds no torn tail
     * (stale bytes of a recycled file, or a batch that could not be cut back). A recycled
     * file gives up its remaining blocks for that; the next rotation takes the spare. */
    uint64_t end = s->nsegs ? s->segs[s->nsegs - 1].size : 0;
    if (s->fd >= 0 && (s->fd_end > end || s->tail_dirty) && ftruncate(s->fd, (off_t)end) == 0 &&
        !s->no_sync)
        sync_file(s, s->fd);
    pthread_mutex_unlock(&s->lock);
    spool_free(s);
}

/* ---- reading back ------------------------------------------------------------------- */

typedef struct snap {
    uint64_t id, name, off;
} snap;

/* Read the record at off into *buf; fills rec. 0, PDW_EIO or PDW_ENOMEM. */
static int read_record(pdw_spool *s, int fd, const snap *e, buffer *buf, pdw_spool_record *rec)
{
    unsigned char h[HDR];
    if (pread_all(fd, h, HDR, e->off) < 0 || memcmp(h, MAGIC, 4) != 0)
        return PDW_EIO;
    uint32_t plen = get32(h + 4);
    if (plen < DELIV_FIXED || plen > MAX_PAYLOAD)
        return PDW_EIO;
    if (plen > buf->cap) {
        char *nb = pdw__realloc(&s->alloc, buf->p, plen);
        if (!nb)
            return PDW_ENOMEM;
        buf->p = nb;
        buf->cap = plen;
    }
    const unsigned char *q = (const unsigned char *)buf->p;
    if (pread_all(fd, buf->p, plen, e->off + HDR) < 0 ||
        pdw__crc32c(0, q, plen) != get32(h + 8) || q[0] != TYPE_DELIVERY ||
        get64(q + 1) != e->id)
        return PDW_EIO;
    size_t klen = get16(q + 17);
    if (klen > plen - DELIV_FIXED)
        return PDW_EIO;
    rec->id = e->id;
    rec->received_ms = (int64_t)get64(q + 9);
    rec->key = buf->p + DELIV_FIXED;
    rec->key_len = klen;
    rec->body = buf->p + DELIV_FIXED + klen;
    rec->body_len = plen - DELIV_FIXED - klen;
    return 0;
}

/* Whether segment `name` was deleted (or recycled) since the walk's snapshot. */
static int segment_gone(pdw_spool *s, uint64_t name)
{
    pthread_mutex_lock(&s->lock);
    int gone = s->nsegs == 0 || name < s->segs[0].name;
    pthread_mutex_unlock(&s->lock);
    return gone;
}

/* The walk works on a snapshot of the pending ids taken at the start, without holding the
 * mutex during callbacks: a delivery handled after the snapshot is still visited if its
 * segment still exists, and is skipped if its segment was deleted meanwhile (also when the
 * walk had opened the file before that: a recycled file may be rewritten under it, which
 * reads as a bad record). */
int pdw_spool_foreach_pending(pdw_spool *s, pdw_spool_record_cb cb, void *user)
{
    if (!s || !cb)
        return PDW_EINVAL;
    pthread_mutex_lock(&s->lock);
    size_t n = s->pend_len - s->pend_dead, j = 0;
    snap *v = n ? pdw__calloc(&s->alloc, n, sizeof *v) : NULL;
    if (n && !v) {
        pthread_mutex_unlock(&s->lock);
        return PDW_ENOMEM;
    }
    for (size_t i = 0; i < s->pend_len; i++)
        if (s->pend[i].seq != DEAD)
            /* n counts the live entries, so v is not NULL when one is found */
            /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
            v[j++] = (snap){ s->pend[i].id, s->segs[s->pend[i].seq - s->seq0].name,
                             s->pend[i].off };
    pthread_mutex_unlock(&s->lock);

    buffer buf = { NULL, 0, 0 };
    int fd = -1, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i == 0 || v[i].name != v[i - 1].name) {
            char f[NAME_SIZE];
            if (fd >= 0)
                close(fd);
            seg_path(f, v[i].name);
            fd = openat(s->dirfd, f, O_RDONLY | O_CLOEXEC);
            if (fd < 0 && errno != ENOENT) {
                rc = PDW_EIO;
                break;
            }
        }
        if (fd < 0)
            continue; /* the segment was deleted: all of it was handled meanwhile */
        pdw_spool_record rec;
        rc = read_record(s, fd, &v[i], &buf, &rec);
        if (rc == PDW_EIO && segment_gone(s, v[i].name)) {
            rc = 0;
            continue;
        }
        if (rc == 0)
            rc = cb(&rec, user);
    }
    if (fd >= 0)
        close(fd);
    pdw__free(&s->alloc, buf.p);
    pdw__free(&s->alloc, v);
    return rc;
}

int pdw_spool_read(pdw_spool *s, uint64_t id, pdw_spool_record_cb cb, void *user)
{
    if (!s || !cb)
        return PDW_EINVAL;
    pthread_mutex_lock(&s->lock);
    size_t i = pend_find(s, id);
    if (i == s->pend_len || s->pend[i].id != id || s->pend[i].seq == DEAD) {
        pthread_mutex_unlock(&s->lock);
        return PDW_ENOTFOUND;
    }
    snap e = { id, s->segs[s->pend[i].seq - s->seq0].name, s->pend[i].off };
    pthread_mutex_unlock(&s->lock);

    char f[NAME_SIZE];
    seg_path(f, e.name);
    int fd = openat(s->dirfd, f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* deleted meanwhile: only once all of it was handled */
        return errno == ENOENT ? PDW_ENOTFOUND : PDW_EIO;
    buffer buf = { NULL, 0, 0 };
    pdw_spool_record rec;
    int rc = read_record(s, fd, &e, &buf, &rec);
    close(fd);
    if (rc == PDW_EIO && segment_gone(s, e.name))
        rc = PDW_ENOTFOUND; /* recycled under us: it was handled */
    if (rc == 0)
        rc = cb(&rec, user);
    pdw__free(&s->alloc, buf.p);
    return rc;
}

void pdw_spool_get_stats(pdw_spool *s, pdw_spool_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    out->appended = s->appended;
    out->flushes = s->flushes;
    out->pending = s->pend_len - s->pend_dead;
    out->bytes = s->bytes;
    out->segments = s->nsegs;
    out->full_errors = s->full_errors;
    out->io_errors = s->io_errors;
    pthread_mutex_unlock(&s->lock);
}
