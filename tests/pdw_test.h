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

/* Run a cmocka group; CMOCKA_TEST_FILTER (set by ctest) selects one case. */
#define PDW_RUN_GROUP(tests)                                                                  \
    do {                                                                                      \
        const char *pdw_filter_ = getenv("CMOCKA_TEST_FILTER");                               \
        if (pdw_filter_ && *pdw_filter_)                                                      \
            cmocka_set_test_filter(pdw_filter_);                                              \
        return cmocka_run_group_tests(tests, NULL, NULL);                                     \
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

#endif
