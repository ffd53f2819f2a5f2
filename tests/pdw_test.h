/* Shared test helpers (cmocka). */
#ifndef PDW_TEST_H
#define PDW_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pdwebhook/common.h"
#include "pdwebhook/error.h"

/* Run a cmocka group; CMOCKA_TEST_FILTER (set by ctest) selects one case. */
#define PDW_RUN_GROUP(tests)                                                                  \
    do {                                                                                      \
        const char *pdw_filter_ = getenv("CMOCKA_TEST_FILTER");                               \
        if (pdw_filter_ && *pdw_filter_)                                                      \
            cmocka_set_test_filter(pdw_filter_);                                              \
        return cmocka_run_group_tests(tests, NULL, NULL);                                     \
    } while (0)

/* Leave e as an earlier failing call would have: a reused struct (see the next two). */
static inline void pdw_test_stale_error(pdw_error *e)
{
    e->code = PDW_EJSON;
    e->offset = 7;
    snprintf(e->message, sizeof e->message, "stale: from an earlier call");
}

/* After a call that succeeded: the struct was reset at entry, no trace of a stale one. */
#define assert_error_reset(e)                                                                 \
    do {                                                                                      \
        assert_int_equal((e).code, PDW_OK);                                                   \
        assert_int_equal((e).offset, -1);                                                     \
        assert_string_equal((e).message, "");                                                 \
    } while (0)

/* After a call that failed with code: its own detail, not a stale one. */
#define assert_error_own(e, want)                                                             \
    do {                                                                                      \
        assert_int_equal((e).code, (want));                                                   \
        assert_true((e).message[0] != '\0');                                                  \
        assert_null(strstr((e).message, "stale"));                                            \
    } while (0)

/* Read a whole file (malloc'd, NUL-terminated for convenience); NULL on failure. */
static inline char *pdw_test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (len_out)
        *len_out = 0;
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* Read tests/fixtures/NAME. */
static inline char *pdw_test_fixture(const char *name, size_t *len_out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PDW_FIXTURES, name);
    return pdw_test_read_file(path, len_out);
}

/* A failing allocator for out-of-memory sweeps (jansson's test_chaos): fails the
 * allocation when countdown reaches 0 (-1: never), counts the blocks still live. */
typedef struct pdw_chaos {
    long countdown; /* allocations left before the failing one; -1 never fail */
    long live;      /* blocks allocated and not freed */
    long calls;     /* malloc/realloc calls */
} pdw_chaos;

static inline int pdw_chaos_fails(pdw_chaos *c)
{
    c->calls++;
    if (c->countdown < 0)
        return 0;
    return c->countdown-- == 0;
}

static inline void *pdw_chaos_malloc(size_t n, void *u)
{
    pdw_chaos *c = u;
    if (pdw_chaos_fails(c))
        return NULL;
    void *p = malloc(n);
    if (p)
        c->live++;
    return p;
}

static inline void *pdw_chaos_realloc(void *p, size_t n, void *u)
{
    pdw_chaos *c = u;
    if (pdw_chaos_fails(c))
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        c->live++;
    return q;
}

static inline void pdw_chaos_free(void *p, void *u)
{
    pdw_chaos *c = u;
    c->live--;
    free(p);
}

/* The allocator hook that uses c. */
static inline pdw_allocator pdw_chaos_allocator(pdw_chaos *c)
{
    pdw_allocator a = { pdw_chaos_malloc, pdw_chaos_realloc, pdw_chaos_free, c };
    return a;
}

/* A fresh directory /tmp/pdw-<what>-XXXXXX (malloc'd; remove it with pdw_test_rmtree()). */
static inline char *pdw_test_tmpdir(const char *what)
{
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "/tmp/pdw-%s-XXXXXX", what);
    char *d = strdup(tmpl);
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

/* rm -rf DIR (a directory made by pdw_test_tmpdir()). */
static inline void pdw_test_rmtree(const char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

#endif
