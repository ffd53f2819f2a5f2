/* The source-address allowlist (pdwebhook/allow.h): ranges of one family kept merged and
 * sorted, as 128-bit numbers (IPv4 in the low 32 bits of its own list). */
#include <arpa/inet.h>
#include <string.h>

#include "core/core.h"
#include "pdwebhook/allow.h"

typedef struct u128 {
    uint64_t hi, lo;
} u128;

typedef struct range {
    u128 lo, hi; /* inclusive */
} range;

typedef struct family {
    range *v;
    size_t n, cap;
} family;

struct pdw_allowlist {
    pdw_allocator alloc;
    family f[2]; /* [0] IPv4, [1] IPv6 */
};

static int cmp(u128 a, u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static u128 from_bytes(const unsigned char *p, size_t n)
{
    u128 x = { 0, 0 };
    for (size_t i = 0; i < n; i++) {
        x.hi = (x.hi << 8) | (x.lo >> 56);
        x.lo = (x.lo << 8) | p[i];
    }
    return x;
}

/* Parse an address into (family index, value). 0 or -1. */
static int parse_addr(const char *s, size_t n, int *fam, u128 *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    unsigned char b[16];
    if (inet_pton(AF_INET, buf, b) == 1) {
        *fam = 0;
        *out = from_bytes(b, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, b) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(b, mapped, 12) == 0) { /* ::ffff:a.b.c.d is the IPv4 address */
            *fam = 0;
            *out = from_bytes(b + 12, 4);
        } else {
            *fam = 1;
            *out = from_bytes(b, 16);
        }
        return 0;
    }
    return -1;
}

/* The range of prefix/bits in a family of width w (32 or 128); -1 when host bits are set. */
static int prefix_range(u128 a, unsigned bits, unsigned w, range *r)
{
    unsigned host = w - bits; /* 0 .. 128 */
    u128 mask = { 0, 0 };     /* the host bits */
    if (host >= 64) {
        mask.lo = ~0ull;
        mask.hi = host >= 128 ? ~0ull : (host == 64 ? 0 : (1ull << (host - 64)) - 1);
    } else if (host > 0) {
        mask.lo = (1ull << host) - 1;
    }
    if ((a.hi & mask.hi) || (a.lo & mask.lo))
        return -1;
    r->lo = a;
    r->hi = (u128){ a.hi | mask.hi, a.lo | mask.lo };
    return 0;
}

static u128 plus1(u128 a)
{
    u128 r = { a.hi + (a.lo == ~0ull), a.lo + 1 };
    return r;
}

static int is_max(u128 a)
{
    return a.hi == ~0ull && a.lo == ~0ull;
}

/* Whether a range ending at end reaches a range starting at start (overlap or adjacent). */
static int reaches(u128 end, u128 start)
{
    return is_max(end) || cmp(plus1(end), start) >= 0;
}

/* Insert r, merging it with the ranges it overlaps or touches. */
static int insert(pdw_allowlist *l, family *f, range r)
{
    if (!f->v)
        f->n = f->cap = 0; /* nothing allocated yet: nothing held */
    size_t i = 0;
    while (i < f->n && !reaches(f->v[i].hi, r.lo))
        i++;
    size_t j = i; /* [i, j): the ranges merged into r */
    while (j < f->n && reaches(r.hi, f->v[j].lo)) {
        if (cmp(f->v[j].lo, r.lo) < 0)
            r.lo = f->v[j].lo;
        if (cmp(f->v[j].hi, r.hi) > 0)
            r.hi = f->v[j].hi;
        j++;
    }
    if (j == i) { /* a new range at i */
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 16;
            range *v = pdw__realloc(&l->alloc, f->v, cap * sizeof *v);
            if (!v)
                return PDW_ENOMEM;
            f->v = v;
            f->cap = cap;
        }
        memmove(f->v + i + 1, f->v + i, (f->n - i) * sizeof *f->v);
        f->n++;
    } else if (j > i + 1) {
        memmove(f->v + i + 1, f->v + j, (f->n - j) * sizeof *f->v);
        f->n -= j - i - 1;
    }
    f->v[i] = r;
    return 0;
}

int pdw_allowlist_new(pdw_allowlist **out, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is required");
    pdw_allocator a;
    pdw__alloc_set(&a, NULL);
    *out = pdw__calloc(&a, 1, sizeof **out);
    if (!*out)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    (*out)->alloc = a;
    return 0;
}

void pdw_allowlist_free(pdw_allowlist *l)
{
    if (!l)
        return;
    pdw__free(&l->alloc, l->f[0].v);
    pdw__free(&l->alloc, l->f[1].v);
    pdw_allocator a = l->alloc;
    pdw__free(&a, l);
}

/* Parse one entry into its family and range. */
static int parse_entry(const char *s, size_t n, int *fam, range *r)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    u128 a;
    if (parse_addr(s, alen, fam, &a) != 0)
        return -1;
    unsigned w = *fam ? 128 : 32, bits = w;
    if (slash) {
        long long b = pdw__decimal(slash + 1, n - alen - 1);
        if (b < 0 || b > (long long)w || n - alen - 1 > 3)
            return -1;
        bits = (unsigned)b;
    }
    return prefix_range(a, bits, w, r);
}

int pdw_allowlist_add(pdw_allowlist *l, const char *cidr, size_t len, pdw_error *err)
{
    pdw__error_reset(err);
    if (!l || (!cidr && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "list and text are required");
    int fam;
    range r;
    if (parse_entry(cidr, len, &fam, &r) != 0)
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "not an address range (a.b.c.d/n or x:y::/n, no host bits "
                              "below the prefix): %.*s",
                              (int)(len > 60 ? 60 : len), cidr);
    return insert(l, &l->f[fam], r) == 0 ? 0 : pdw__error_set(err, PDW_ENOMEM, -1, NULL);
}

int pdw_allowlist_add_text(pdw_allowlist *l, const char *text, size_t len, pdw_error *err)
{
    pdw__error_reset(err);
    if (!l || (!text && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "list and text are required");
    pdw_allowlist tmp = *l; /* all or nothing: work on copies of the arrays */
    for (int k = 0; k < 2; k++) {
        tmp.f[k].v = l->f[k].n ? pdw__calloc(&l->alloc, l->f[k].cap, sizeof *l->f[k].v) : NULL;
        if (!tmp.f[k].v)
            tmp.f[k].n = tmp.f[k].cap = 0;
        if (l->f[k].n && !tmp.f[k].v) {
            pdw__free(&l->alloc, tmp.f[0].v);
            return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
        }
        if (l->f[k].n)
            memcpy(tmp.f[k].v, l->f[k].v, l->f[k].n * sizeof *l->f[k].v);
    }
    size_t line = 0, i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        line++;
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t a = i, b = e;
        const char *hash = memchr(text + a, '#', b - a);
        if (hash)
            b = (size_t)(hash - text);
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        if (b > a) {
            int fam;
            range r;
            if (parse_entry(text + a, b - a, &fam, &r) != 0)
                rc = pdw__error_set(err, PDW_EINVAL, -1, "line %zu: not an address range: %.*s",
                                    line, (int)(b - a > 60 ? 60 : b - a), text + a);
            else if (insert(&tmp, &tmp.f[fam], r) != 0)
                rc = pdw__error_set(err, PDW_ENOMEM, -1, NULL);
        }
        i = e + 1;
    }
    if (rc != 0) {
        pdw__free(&l->alloc, tmp.f[0].v);
        pdw__free(&l->alloc, tmp.f[1].v);
        return rc;
    }
    pdw__free(&l->alloc, l->f[0].v);
    pdw__free(&l->alloc, l->f[1].v);
    *l = tmp;
    return 0;
}

int pdw_allowlist_contains(const pdw_allowlist *l, const char *addr, size_t len)
{
    int fam;
    u128 a;
    if (!l || !addr || parse_addr(addr, len, &fam, &a) != 0)
        return 0;
    const family *f = &l->f[fam];
    size_t lo = 0, hi = f->n; /* the first range whose hi >= a */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(f->v[mid].hi, a) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n && cmp(f->v[lo].lo, a) <= 0;
}

size_t pdw_allowlist_count(const pdw_allowlist *l)
{
    return l ? l->f[0].n + l->f[1].n : 0;
}
