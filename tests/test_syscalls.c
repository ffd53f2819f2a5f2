/* System calls whose failure lib/ must see as a failure, not as "no more" or "zero":
 * readdir() (a 32-bit readdir without large-file support fails with EOVERFLOW on ext4, and
 * the spool took that for the end of the directory, so its segments were ignored) and
 * clock_gettime() (an unset timespec was read as the time). The failures are injected by
 * defining the two functions here: the test links the static libraries, so lib/'s calls
 * reach these, which call the C library's own (dlsym(RTLD_NEXT)) unless a failure is armed.
 * The definitions take the name the headers give (readdir64, __clock_gettime64 with
 * _FILE_OFFSET_BITS and _TIME_BITS on 32-bit targets), like lib/'s references. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "pdw_test.h"
#include "pdwebhook/spool.h"
#include "util/util.h"

/* ---- the injected failures ---------------------------------------------------------- */

static int readdir_fail_at;   /* 0: never; n: the nth call from now fails */
static int readdir_errno;
static int clock_fail;        /* 1: every clock fails with EPERM (a seccomp filter) */

static void *real(const char *a, const char *b)
{
    void *f = dlsym(RTLD_NEXT, a);
    return f ? f : dlsym(RTLD_NEXT, b);
}

struct dirent *readdir(DIR *d)
{
    typedef struct dirent *(*fn)(DIR *);
    static fn next;
    if (!next) /* the large-file one first: what <dirent.h> names readdir here */
        next = (fn)(uintptr_t)real(sizeof(off_t) == 8 ? "readdir64" : "readdir", "readdir");
    if (readdir_fail_at > 0 && --readdir_fail_at == 0) {
        errno = readdir_errno;
        return NULL;
    }
    return next(d);
}

int clock_gettime(clockid_t id, struct timespec *t)
{
    typedef int (*fn)(clockid_t, struct timespec *);
    static fn next;
    if (!next)
        next = (fn)(uintptr_t)real(sizeof(time_t) == 8 && sizeof(long) == 4 ? "__clock_gettime64"
                                                                             : "clock_gettime",
                                   "clock_gettime");
    if (clock_fail) {
        errno = EPERM;
        return -1;
    }
    return next(id, t);
}

/* ---- readdir ------------------------------------------------------------------------ */

static void test_readdir_error_fails_the_open(void **state)
{
    (void)state;
    char *root = pdw_test_tmpdir("syscalls"), dir[96];
    snprintf(dir, sizeof dir, "%s/spool", root);

    /* Three segments of one delivery each (and an empty fourth), none handled. */
    pdw_spool_options o = PDW_SPOOL_OPTIONS_INIT;
    o.segment_bytes = 1;
    pdw_spool *s = NULL;
    assert_int_equal(pdw_spool_open(&s, dir, &o, NULL, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pdw_spool_append(s, "k", 1, 1700000000000, "{}", 2, NULL, NULL), 0);
    pdw_spool_close(s);
    int entries = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    while (readdir(d))
        entries++;
    closedir(d);

    /* Whichever call fails (the first one, one in the middle as a 32-bit readdir does on
     * ext4, or the one that would have said "no more"), the open fails: a listing cut
     * short would miss segments (their deliveries lost), or recreate one. */
    static const int errors[] = { EOVERFLOW, EIO };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        for (int at = 1; at <= entries + 1; at++) {
            pdw_error err;
            pdw_spool_recovery r;
            pdw_error_clear(&err);
            s = NULL;
            readdir_errno = errors[i];
            readdir_fail_at = at;
            int rc = pdw_spool_open(&s, dir, &o, &r, &err);
            readdir_fail_at = 0;
            if (rc == 0)
                print_message("readdir failing at call %d of %d: %d of 3 pending\n", at,
                              entries + 1, (int)r.pending);
            assert_int_equal(rc, PDW_EIO);
            assert_int_equal(err.code, PDW_EIO);
            assert_null(s);
        }
    }

    /* Without the failure the deliveries are there, pending. */
    pdw_spool_recovery r;
    s = NULL;
    assert_int_equal(pdw_spool_open(&s, dir, &o, &r, NULL), 0);
    assert_true(r.segments >= 3); /* and the empty one rotated to after the last */
    assert_int_equal(r.deliveries, 3);
    assert_int_equal(r.pending, 3);
    pdw_spool_close(s);
    pdw_test_rmtree(root);
    free(root);
}

/* ---- clock_gettime ------------------------------------------------------------------ */

static void test_clock_refused_falls_back(void **state)
{
    (void)state;
    /* A clock this system does not have (EINVAL): the wall clock instead. */
    time_t before = time(NULL);
    struct timespec t = pdw__clock_now((clockid_t)1000);
    time_t after = time(NULL);
    assert_true(t.tv_sec >= before && t.tv_sec <= after);
    assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);

    /* No clock at all (EPERM from a seccomp filter): time(), not an unset timespec. */
    before = time(NULL);
    clock_fail = 1;
    t = pdw__clock_now(CLOCK_MONOTONIC);
    uint64_t mono = pdw__mono_ms();
    int64_t wall = pdw__wall_ms();
    struct timespec deadline = pdw__deadline_in(1500);
    clock_fail = 0;
    after = time(NULL);
    assert_true(t.tv_sec >= before && t.tv_sec <= after);
    assert_int_equal(t.tv_nsec, 0);
    assert_true(mono >= (uint64_t)before * 1000u && mono <= (uint64_t)after * 1000u);
    assert_true(wall >= (int64_t)before * 1000 && wall <= (int64_t)after * 1000);
    assert_true(deadline.tv_sec >= before + 1 && deadline.tv_sec <= after + 2);
    assert_true(deadline.tv_nsec >= 0 && deadline.tv_nsec < 1000000000L);

    /* And the real clocks once more. */
    t = pdw__clock_now(CLOCK_MONOTONIC);
    assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readdir_error_fails_the_open),
        cmocka_unit_test(test_clock_refused_falls_back),
    };
    PDW_RUN_GROUP(tests);
}
