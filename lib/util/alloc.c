/* The allocator hook: every allocation of the library goes through these wrappers. */
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void *sys_malloc(size_t n, void *user)
{
    (void)user;
    return malloc(n);
}

static void *sys_realloc(void *p, size_t n, void *user)
{
    (void)user;
    return realloc(p, n);
}

static void sys_free(void *p, void *user)
{
    (void)user;
    free(p);
}

int pdw__alloc_set(pdw_allocator *dst, const pdw_allocator *src)
{
    if (!src) {
        dst->malloc = sys_malloc;
        dst->realloc = sys_realloc;
        dst->free = sys_free;
        dst->user = NULL;
        return 0;
    }
    if (!src->malloc || !src->realloc || !src->free)
        return PDW_EINVAL;
    *dst = *src;
    return 0;
}

void *pdw__malloc(const pdw_allocator *a, size_t n)
{
    return a->malloc(n ? n : 1, a->user);
}

void *pdw__calloc(const pdw_allocator *a, size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return NULL;
    void *p = pdw__malloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *pdw__realloc(const pdw_allocator *a, void *p, size_t n)
{
    return a->realloc(p, n ? n : 1, a->user);
}

void pdw__free(const pdw_allocator *a, void *p)
{
    if (p)
        a->free(p, a->user);
}

char *pdw__strndup(const pdw_allocator *a, const char *s, size_t n)
{
    char *d = pdw__malloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *pdw__strdup(const pdw_allocator *a, const char *s)
{
    return pdw__strndup(a, s, strlen(s));
}

void pdw__wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

int pdw__struct_init(void *s, size_t size, unsigned version, unsigned want)
{
    if (!s)
        return PDW_EINVAL;
    if (version != want)
        return PDW_EVERSIONSTRUCT;
    memset(s, 0, size);
    memcpy(s, &version, sizeof version); /* the first member */
    return 0;
}
