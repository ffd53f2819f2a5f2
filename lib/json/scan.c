/* The validating JSON scanner: one iterative pass, no DOM, no per-token allocation.
 * It accepts exactly what jansson 2.14's json_loadb(JSON_REJECT_DUPLICATES |
 * JSON_DECODE_ANY) accepts (the verdicts are cross-checked in tests/test_scan.c), so
 * that a body we accept can always be turned into a DOM later. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "json/scan.h"
#include "pdwebhook/event.h" /* PDW_DEFAULT_MAX_DEPTH */
#include "util/util.h"
#include "json/jsonbytes.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64 */
#endif

/* jansson's JSON_PARSER_MAX_DEPTH: it rejects deeper bodies whatever we allow. */
#define SCAN_JANSSON_DEPTH 2048u
/* Key records kept on the C stack before the duplicate-key set moves to the heap. */
#define SCAN_STACK_KEYS 256u

typedef const unsigned char *ucp;

/* Keeps a rarely used helper out of the scan loop, whose registers are all taken. */
#if defined(__GNUC__)
#define SCAN_NOINLINE __attribute__((noinline))
#else
#define SCAN_NOINLINE
#endif

/* ---- character classes ------------------------------------------------------------ */

/* Inside strings: nonzero = the fast loop must stop (quote, backslash, control, non-ASCII). */
static const unsigned char str_stop[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(1), R16(1), /* 0x00-0x1F: control characters */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x22 '"' */
    R16(0), R16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x5C '\\' */
    R16(0), R16(0),
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), /* 0x80-0xFF */
#undef R16
};

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 when invalid: rejects
 * what jansson's utf8_check_first/utf8_check_full reject (stray continuation bytes,
 * overlongs, UTF-16 surrogates, > U+10FFFF, truncation). */
static size_t utf8_len(ucp p, ucp end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return (avail >= 2 && (p[1] & 0xC0u) == 0x80u) ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3 || (p[1] & 0xC0u) != 0x80u || (p[2] & 0xC0u) != 0x80u)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0; /* overlong / surrogate */
        return 3;
    }
    if (c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0u) != 0x80u || (p[2] & 0xC0u) != 0x80u ||
            (p[3] & 0xC0u) != 0x80u)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0; /* overlong / > U+10FFFF */
        return 4;
    }
    return 0;
}

/* ---- decoding of validated strings ------------------------------------------------- */

/* A cursor over the decoded bytes of a string; p..end is the raw text between quotes. */
typedef struct dcur {
    ucp p, end;
    unsigned char buf[4];
    unsigned char n, i; /* buf[i..n) still to hand out */
    unsigned char raw;  /* 1: plain bytes, a backslash is just a byte */
} dcur;

static void dcur_init(dcur *c, ucp p, ucp end)
{
    c->p = p;
    c->end = end;
    c->n = c->i = 0;
    c->raw = 0;
}

static unsigned read_hex4(ucp p, ucp end, int *ok)
{
    unsigned v = 0;
    if (end - p < 4) {
        *ok = 0;
        return 0;
    }
    for (int k = 0; k < 4; k++) {
        int h = pdw__hex_val(p[k]);
        if (h < 0) {
            *ok = 0;
            return 0;
        }
        v = v << 4 | (unsigned)h;
    }
    *ok = 1;
    return v;
}

/* Decode one escape at c->p (a backslash) into c->buf. Never reads past c->end, even on
 * malformed input (helpers may be handed spans that were not validated). */
static void dcur_escape(dcur *c)
{
    ucp p = c->p + 1;
    c->i = 0;
    c->n = 1;
    if (p >= c->end) {
        c->buf[0] = '\\';
        c->p = p;
        return;
    }
    switch (*p) {
    case 'b': c->buf[0] = '\b'; break;
    case 'f': c->buf[0] = '\f'; break;
    case 'n': c->buf[0] = '\n'; break;
    case 'r': c->buf[0] = '\r'; break;
    case 't': c->buf[0] = '\t'; break;
    case 'u': {
        int ok;
        unsigned long cp = read_hex4(p + 1, c->end, &ok);
        if (!ok) {
            c->buf[0] = 'u';
            break;
        }
        p += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && c->end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            unsigned long lo = read_hex4(p + 2, c->end, &ok);
            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                p += 6;
            }
        }
        c->n = (unsigned char)pdw__utf8_put(cp, c->buf);
        c->p = p;
        return;
    }
    default: c->buf[0] = *p; break; /* '"', '\\', '/' */
    }
    c->p = p + 1;
}

/* Next decoded byte, or -1 at the end. */
static inline int dcur_next(dcur *c)
{
    if (c->i < c->n)
        return c->buf[c->i++];
    if (c->p >= c->end)
        return -1;
    if (*c->p != '\\' || c->raw)
        return *c->p++;
    dcur_escape(c);
    return c->buf[c->i++];
}

/* Two raw string bodies decode to the same bytes. */
static int str_equal_raw(ucp a, size_t alen, int aesc, ucp b, size_t blen, int besc)
{
    if (!aesc && !besc)
        return alen == blen && memcmp(a, b, alen) == 0;
    dcur x, y;
    dcur_init(&x, a, a + alen);
    dcur_init(&y, b, b + blen);
    x.raw = (unsigned char)!aesc;
    y.raw = (unsigned char)!besc;
    for (;;) {
        int cx = dcur_next(&x), cy = dcur_next(&y);
        if (cx != cy)
            return 0;
        if (cx < 0)
            return 1;
    }
}

/* ---- key hashing ------------------------------------------------------------------- */

/* Word-at-a-time multiply-mix hash over the decoded key bytes, streamable so that escaped
 * and unescaped spellings of one key hash alike. Seeded per scan. */
typedef struct khash {
    uint64_t h;
    uint64_t total;
    unsigned char pend[8];
    unsigned npend;
} khash;

#define KH_M 0x9E3779B97F4A7C15ull

static inline uint64_t kh_word(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= KH_M;
    return h ^ (h >> 32);
}

static void kh_feed(khash *k, ucp s, size_t n)
{
    k->total += n;
    while (n && k->npend) {
        k->pend[k->npend++] = *s++;
        n--;
        if (k->npend == 8) {
            k->h = kh_word(k->h, pdw__load64(k->pend));
            k->npend = 0;
        }
    }
    for (; n >= 8; s += 8, n -= 8)
        k->h = kh_word(k->h, pdw__load64(s));
    while (n--)
        k->pend[k->npend++] = *s++;
}

static uint32_t kh_final(khash *k)
{
    uint64_t w = 0;
    if (k->npend)
        memcpy(&w, k->pend, k->npend);
    uint64_t h = kh_word(k->h, w ^ (k->total << 56));
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* The first n (< 8) bytes at p as kh_final sees them (memcpy into a zeroed word); the 8
 * bytes at p are readable. */
static inline uint64_t load_tail(ucp p, size_t n)
{
    static const union {
        uint16_t u;
        unsigned char c[2];
    } endian = { 1 };
    uint64_t w = pdw__load64(p);
    if (n == 0)
        return 0;
    if (n >= 8)
        return w; /* not reached by the callers; keeps every shift below 64 */
    if (endian.c[0]) /* little endian: the first bytes are the low ones */
        return w & (~0ull >> (64 - 8 * n));
    return w & (~0ull << (64 - 8 * n));
}

/* Hash of a key's decoded bytes; limit = end of the readable buffer (for over-reads). */
static uint32_t key_hash(uint64_t seed, ucp p, size_t len, int esc, ucp limit)
{
    if (!esc) {
        size_t whole = len & ~(size_t)7;
        if ((size_t)(limit - p) >= whole + 8) {
            /* Fast path, same result as kh_feed + kh_final. */
            uint64_t h = seed;
            for (size_t i = 0; i < whole; i += 8)
                h = kh_word(h, pdw__load64(p + i));
            h = kh_word(h, load_tail(p + whole, len - whole) ^ ((uint64_t)len << 56));
            h ^= h >> 29;
            h *= 0xBF58476D1CE4E5B9ull;
            h ^= h >> 32;
            return (uint32_t)h;
        }
    }
    /* Escaped keys, and keys too close to the end of the body for 8-byte loads. */
    khash k = { seed, 0, { 0 }, 0 };
    if (!esc) {
        kh_feed(&k, p, len);
    } else {
        dcur c;
        unsigned char chunk[64];
        size_t n = 0;
        int b;
        dcur_init(&c, p, p + len);
        while ((b = dcur_next(&c)) >= 0) {
            chunk[n++] = (unsigned char)b;
            if (n == sizeof chunk) {
                kh_feed(&k, chunk, n);
                n = 0;
            }
        }
        kh_feed(&k, chunk, n);
    }
    return kh_final(&k);
}

/* ---- duplicate-key set -------------------------------------------------------------- */

/* The keys of all open objects, innermost last, each object's run preceded by a marker
 * record (p == NULL, len = the previous base). An open-addressing table (linear probing)
 * indexes the records; because keys leave in exact reverse order of arrival, removing one
 * is just clearing its slot. Lookups ignore records below the current object's base. */
typedef struct keyrec {
    const char *p;
    uint32_t len;  /* marker: the previous base */
    uint32_t hash;
    uint32_t si;   /* the slot that indexes this record */
    uint32_t esc;
} keyrec;

typedef struct keyset {
    keyrec *rec;
    uint32_t *slot; /* record index + 1; 0 = empty */
    size_t cap;     /* records; the table has 2 * cap slots */
    size_t top;     /* records in use */
    size_t base;    /* first record of the innermost object */
    uint64_t seed;
    ucp limit; /* end of the body */
    void *heap; /* NULL while on the C stack */
    const pdw_allocator *a;
    keyrec srec[SCAN_STACK_KEYS];
    uint32_t sslot[2 * SCAN_STACK_KEYS];
} keyset;

static void ks_init(keyset *ks, const pdw_allocator *a, uint64_t seed, ucp limit)
{
    ks->limit = limit;
    ks->rec = ks->srec;
    ks->slot = ks->sslot;
    ks->cap = SCAN_STACK_KEYS;
    ks->top = ks->base = 0;
    ks->seed = seed;
    ks->heap = NULL;
    ks->a = a;
    memset(ks->sslot, 0, sizeof ks->sslot);
}

static void ks_fini(keyset *ks)
{
    if (ks->heap)
        pdw__free(ks->a, ks->heap);
    ks->heap = NULL;
}

static void ks_insert_slot(keyset *ks, size_t idx)
{
    size_t mask = 2 * ks->cap - 1;
    size_t i = ks->rec[idx].hash & mask;
    while (ks->slot[i])
        i = (i + 1) & mask;
    ks->slot[i] = (uint32_t)(idx + 1);
    ks->rec[idx].si = (uint32_t)i;
}

/* Make room for one more record; PDW_ENOMEM on failure (the old state stays valid). */
static int ks_grow(keyset *ks)
{
    size_t ncap = ks->cap * 4;
    if (ncap > (size_t)UINT32_MAX / 4 ||
        ncap > ((size_t)-1) / (sizeof(keyrec) + 2 * sizeof(uint32_t)))
        return PDW_ENOMEM;
    void *blk = pdw__malloc(ks->a, ncap * sizeof(keyrec) + 2 * ncap * sizeof(uint32_t));
    if (!blk)
        return PDW_ENOMEM;
    keyrec *nrec = blk;
    uint32_t *nslot = (uint32_t *)(void *)(nrec + ncap);
    memcpy(nrec, ks->rec, ks->top * sizeof(keyrec));
    memset(nslot, 0, 2 * ncap * sizeof(uint32_t));
    if (ks->heap)
        pdw__free(ks->a, ks->heap);
    ks->heap = blk;
    ks->rec = nrec;
    ks->slot = nslot;
    ks->cap = ncap;
    /* Re-inserting in arrival order rebuilds the exact LIFO-compatible table. */
    for (size_t i = 0; i < ks->top; i++)
        if (ks->rec[i].p)
            ks_insert_slot(ks, i);
    return 0;
}

static int ks_open(keyset *ks)
{
    if (ks->top == ks->cap) {
        int rc = ks_grow(ks);
        if (rc)
            return rc;
    }
    keyrec *m = &ks->rec[ks->top++];
    m->p = NULL;
    m->len = (uint32_t)ks->base;
    m->hash = 0;
    m->esc = 0;
    ks->base = ks->top;
    return 0;
}

static void ks_close(keyset *ks)
{
    /* Keys leave in reverse order of arrival: the slot of the newest key ends its probe
     * chain, so emptying it cannot cut the chain of a key still in the table. */
    while (ks->top > ks->base)
        ks->slot[ks->rec[--ks->top].si] = 0;
    ks->top--; /* the marker */
    ks->base = ks->rec[ks->top].len;
}

/* Add a key to the innermost object: 0, PDW_EDUPKEY or PDW_ENOMEM. */
static int ks_add(keyset *ks, const char *p, size_t len, int esc)
{
    if (len > UINT32_MAX)
        return PDW_ENOMEM; /* a 4 GiB key: refuse rather than truncate */
    uint32_t h = key_hash(ks->seed, (ucp)p, len, esc, ks->limit);
    size_t mask = 2 * ks->cap - 1;
    size_t i = h & mask;
    for (; ks->slot[i]; i = (i + 1) & mask) {
        size_t idx = ks->slot[i] - 1;
        const keyrec *r = &ks->rec[idx];
        if (idx >= ks->base && r->hash == h &&
            str_equal_raw((ucp)r->p, r->len, (int)r->esc, (ucp)p, len, esc))
            return PDW_EDUPKEY;
    }
    size_t idx = ks->top;
    if (idx == ks->cap) {
        int rc = ks_grow(ks);
        if (rc)
            return rc;
        i = SIZE_MAX; /* the table was rebuilt: probe again below */
    }
    keyrec *r = &ks->rec[idx];
    r->p = p;
    r->len = (uint32_t)len;
    r->hash = h;
    r->esc = (uint32_t)esc;
    ks->top = idx + 1;
    if (i == SIZE_MAX) {
        ks_insert_slot(ks, idx);
    } else {
        /* the empty slot that ended the lookup is where linear probing puts it */
        ks->slot[i] = (uint32_t)(idx + 1);
        r->si = (uint32_t)i;
    }
    return 0;
}

/* ---- routing-field names ------------------------------------------------------------ */

typedef struct field_name {
    char name[16]; /* zero-padded: compared 8 bytes at a time (no name is longer than 15) */
    size_t len;
    size_t off;
} field_name;

#define TOP(f) { #f, sizeof #f - 1, offsetof(pdw__scan, f) }
#define META(f) { #f, sizeof #f - 1, offsetof(pdw__scan, m_##f) }
/* Sorted by length; X_start[L] is the first entry at least L long (a lookup compares only
 * the names of the key's own length). */
static const field_name top_fields[] = {
    TOP(v), TOP(data), TOP(meta), TOP(event), TOP(retry), TOP(current), TOP(previous),
};
static const unsigned char top_start[] = { 0, 0, 1, 1, 1, 3, 5, 5, 6, 7 };
static const field_name meta_fields[] = {
    META(v),                                                          /* 1 */
    META(id),                                                         /* 2 */
    META(action), META(object), META(entity),                         /* 6 */
    META(version), META(user_id), META(attempt),                      /* 7 */
    META(entity_id), META(timestamp),                                 /* 9 */
    META(company_id), META(webhook_id),                               /* 10 */
    META(is_bulk_edit), META(merged_to_id),                           /* 12 */
    META(change_source),                                              /* 13 */
    META(correlation_id), META(is_bulk_update), META(merged_from_id), /* 14 */
    META(timestamp_micro), META(timestamp_milli),                     /* 15 */
};
static const unsigned char meta_start[] = { 0, 0, 1, 2, 2, 2, 2, 5, 8, 8,
                                            10, 12, 12, 14, 15, 18, 20 };
#undef TOP
#undef META

/* Escaped keys, keys near the end of the body, keys longer than any name. */
static SCAN_NOINLINE pdw__val *field_lookup_slow(pdw__scan *out, const field_name *tab,
                                                 const unsigned char *start, size_t nstart,
                                                 const char *p, size_t len, int esc)
{
    char dec[24];
    if (esc) {
        /* Decode into a small buffer: no field name is longer than it. */
        dcur c;
        size_t k = 0;
        int b;
        dcur_init(&c, (ucp)p, (ucp)p + len);
        while ((b = dcur_next(&c)) >= 0) {
            if (k == sizeof dec)
                return NULL;
            dec[k++] = (char)b;
        }
        p = dec;
        len = k;
    }
    if (len == 0 || len + 1 >= nstart)
        return NULL;
    for (size_t i = start[len]; i < start[len + 1]; i++)
        if (tab[i].name[0] == p[0] && memcmp(tab[i].name, p, len) == 0)
            return (pdw__val *)(void *)((char *)out + tab[i].off);
    return NULL;
}

/* The member of *out that the key p[0..len) names in tab, or NULL. */
static inline pdw__val *field_lookup(pdw__scan *out, const field_name *tab,
                                     const unsigned char *start, size_t nstart, const char *p,
                                     size_t len, int esc, ucp end)
{
    if (esc || (size_t)(end - (ucp)p) < 16)
        return field_lookup_slow(out, tab, start, nstart, p, len, esc);
    if (len == 0 || len + 1 >= nstart)
        return NULL;
    /* The key as two words, padded with zeros like the names. */
    uint64_t w0 = len >= 8 ? pdw__load64((ucp)p) : load_tail((ucp)p, len);
    uint64_t w1 = len > 8 ? load_tail((ucp)p + 8, len - 8) : 0;
    /* start has nstart entries and len + 1 < nstart (checked above): start[len] and
     * start[len + 1] are initialised constants. */
    /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign) */
    for (size_t i = start[len]; i < start[len + 1]; i++)
        if (pdw__load64((ucp)tab[i].name) == w0 && pdw__load64((ucp)tab[i].name + 8) == w1)
            return (pdw__val *)(void *)((char *)out + tab[i].off);
    return NULL;
}

/* ---- the scanner --------------------------------------------------------------------- */

typedef struct scanner {
    ucp body, end;
    pdw_error *err;
} scanner;

static int fail(const scanner *s, ucp at, int code, const char *msg)
{
    return pdw__error_set(s->err, code, (long long)(at - s->body), "%s", msg);
}

/* A syntax error at `at`, unless the byte there starts invalid UTF-8 (jansson decodes a
 * character before it looks at it, so that is the error it reports). */
static int fail_tok(const scanner *s, ucp at, const char *msg)
{
    if (at < s->end && *at >= 0x80 && !utf8_len(at, s->end))
        return fail(s, at, PDW_EUTF8, "invalid UTF-8");
    return fail(s, at, PDW_EJSON, msg);
}

/* Scan a string whose opening quote is at p[-1], from *pp on (the bytes before *pp are
 * plain ASCII already checked). On success *pp = the closing quote. */
static int scan_string_slow(const scanner *s, ucp *pp, int *esc)
{
    ucp p = *pp, end = s->end;
    for (;;) {
        /* Fast skip of plain ASCII up to the first byte that needs a look (a quote,
         * backslash, control or non-ASCII byte), which the byte loop below then finds at
         * once. */
        while (end - p >= 8) {
            uint64_t w = pdw__load64(p);
            const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
            uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
            uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
            if (hit & high) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* the lowest flagged byte is a real hit (borrows only flag bytes above) */
                p += (unsigned)__builtin_ctzll(hit & high) >> 3;
#endif
                break;
            }
            p += 8;
        }
        while (p < end && !str_stop[*p])
            p++;
        if (p >= end)
            return fail(s, p, PDW_EJSON, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            *pp = p;
            return 0;
        }
        if (c == '\\') {
            *esc = 1;
            if (end - p < 2)
                return fail(s, end, PDW_EJSON, "unterminated string");
            unsigned e = p[1];
            if (e == 'u') {
                for (int k = 2; k < 6; k++) {
                    if (end - p <= k)
                        return fail(s, end, PDW_EJSON, "unterminated string");
                    if (pdw__hex_val(p[k]) < 0)
                        return fail_tok(s, p + k, "invalid \\u escape");
                }
                int ok;
                unsigned long cp = read_hex4(p + 2, end, &ok);
                if (cp == 0)
                    return fail(s, p, PDW_EJSON, "\\u0000 is not allowed");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(s, p, PDW_EJSON, "lone low surrogate escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
                        return fail(s, p, PDW_EJSON, "lone high surrogate escape");
                    unsigned long lo = read_hex4(p + 8, end, &ok);
                    if (!ok)
                        return fail(s, p + 6, PDW_EJSON, "invalid escape");
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(s, p, PDW_EJSON, "invalid surrogate pair");
                    p += 12;
                } else {
                    p += 6;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
                       e == 'n' || e == 'r' || e == 't') {
                p += 2;
            } else {
                return fail_tok(s, p + 1, "invalid escape");
            }
            continue;
        }
        if (c < 0x20)
            return fail(s, p, PDW_EJSON, "control character in string");
        size_t n = utf8_len(p, end);
        if (!n)
            return fail(s, p, PDW_EUTF8, "invalid UTF-8");
        p += n;
    }
}

/* Scan a string whose opening quote is at p[-1]. On success *pp = the closing quote.
 * Inline fast path: a string of plain ASCII without escapes whose closing quote is found
 * 16 bytes at a time; anything else continues in scan_string_slow() where this stopped. */
static inline int scan_string(const scanner *s, ucp *pp, int *esc)
{
#if defined(__SSE2__)
    ucp p = *pp, end = s->end;
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash));
        /* unsigned w <= 0x1F <=> max(w, 0x1F) == 0x1F; the sign bit of w itself marks the
         * non-ASCII bytes */
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_max_epu8(w, ctl), ctl));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(m, w));
        if (mask) {
            p += __builtin_ctz(mask);
            if (*p == '"') {
                *pp = p;
                return 0;
            }
            break;
        }
        p += 16;
    }
    *pp = p;
#endif
    return scan_string_slow(s, pp, esc);
}

/* 2^1024 - 2^970: the smallest decimal magnitude strtod rounds to infinity. */
static const char dbl_overflow[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466"
    "4901797758720709633028641669288791094655554785194040263065748867150582068190890200070"
    "8383676273854845817711531764475730270069855571366959622842914819860834936475292719074"
    "168444365510704342711559699508093042880177904174497792";

/* Would strtod overflow (return +-HUGE_VAL with ERANGE) on this real? Decided on the
 * decimal digits, so it is exact for any length and independent of the locale.
 * ip..ie: integer digits; fp..fe: fraction digits (may be empty); exp: the exponent,
 * saturated. */
static int real_overflows(ucp ip, ucp ie, ucp fp, ucp fe, long long exp)
{
    const long long cap = 1000000000LL;
    long long dexp; /* value = 0.d1d2... * 10^dexp, d1 != 0 */
    ucp first;      /* d1 */
    if (*ip != '0') {
        size_t k = (size_t)(ie - ip);
        dexp = (k > (size_t)cap ? cap : (long long)k) + exp;
        first = ip;
    } else {
        ucp q = fp;
        while (q < fe && *q == '0')
            q++;
        if (q == fe)
            return 0; /* zero never overflows */
        size_t z = (size_t)(q - fp);
        dexp = exp - (z > (size_t)cap ? cap : (long long)z);
        first = q;
    }
    const long long nd = (long long)sizeof dbl_overflow - 1; /* 309 */
    if (dexp < nd)
        return 0;
    if (dexp > nd)
        return 1;
    /* Same order of magnitude: compare the 309 leading digits with the threshold. */
    ucp q = first, seg = *ip != '0' ? ie : fe;
    for (long long i = 0; i < nd; i++) {
        if (q == seg && seg == ie && *ip != '0') {
            q = fp; /* continue into the fraction */
            seg = fe;
        }
        unsigned d = q < seg ? *q++ : '0';
        if (d != (unsigned char)dbl_overflow[i])
            return d > (unsigned char)dbl_overflow[i];
    }
    return 1; /* equal or above: rounds (half to even) up to infinity */
}

/* Scan a number starting at p. On success *pp = first byte after it. */
static int scan_number(const scanner *s, ucp *pp, unsigned char *is_int)
{
    ucp p = *pp, end = s->end, start = p;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    ucp ip = p;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, start, PDW_EJSON, "leading zero in number");
    } else if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return fail_tok(s, p, "invalid number");
    }
    ucp ie = p, fp = p, fe = p;
    long long exp = 0;
    int real = 0;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return fail_tok(s, p, "digit expected after '.'");
        fp = p;
        while (p < end && is_digit(*p))
            p++;
        fe = p;
        real = 1;
    }
    if (p < end && (*p | 0x20) == 'e') {
        int eneg = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return fail_tok(s, p, "digit expected in exponent");
        while (p < end && is_digit(*p)) {
            if (exp < 1000000000LL)
                exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            exp = -exp;
        real = 1;
    }
    *is_int = (unsigned char)!real;
    if (!real) {
        /* jansson uses strtoll: anything outside long long is "too big integer". */
        size_t nd = (size_t)(ie - ip);
        if (nd > 19 || (nd == 19 && memcmp(ip, neg ? "9223372036854775808"
                                                   : "9223372036854775807", 19) > 0))
            return fail(s, start, PDW_EJSON, "integer too big");
    } else if (real_overflows(ip, ie, fp, fe, exp)) {
        return fail(s, start, PDW_EJSON, "real number overflow");
    }
    *pp = p;
    return 0;
}

/* The scan proper. ks is set up by the caller (which frees it whatever happens). */
static int scan(const scanner *s, pdw__scan *out, unsigned limit, keyset *ks)
{
    ucp p = s->body, end = s->end;
    unsigned d = 0;                        /* open containers */
    uint64_t kind[SCAN_JANSSON_DEPTH / 64] = { 0 }; /* bit set: that level is an array */
    int in_array = 0;                      /* the innermost open container is an array */
    pdw__val *open_target[4] = { NULL, NULL, NULL, NULL }; /* containers being recorded */
    pdw__val *target = NULL;               /* where the value being scanned goes */
    int meta_open = 0;                     /* the depth-2 object now open is top-level meta */
    int top_object = 0;
    int rc;

    /* Compact bodies have no white space: each place that expects a character looks at it
     * first and only skips white space when it is not there. */
value:
    /* jansson counts every value, scalars too: the top level is depth 1. */
    if (d + 1 > limit)
        return fail(s, pdw__skip_ws(p, end), PDW_EDEPTH, "JSON nested too deeply");
value_ws:
    if (p == end)
        return fail(s, p, PDW_EJSON, "unexpected end of input");
    switch (*p) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        p = pdw__skip_ws(p, end);
        goto value_ws;
    case '{':
        if (d == 0)
            top_object = 1;
        if (target) {
            target->p = (const char *)p;
            target->type = PDW__J_OBJECT;
        }
        if (d == 1 && target == &out->meta)
            meta_open = 1;
        kind[d / 64] &= ~(1ull << (d % 64));
        in_array = 0;
        d++;
        if (d < 4)
            open_target[d] = target;
        if ((rc = ks_open(ks)) != 0)
            return fail(s, p, rc, "out of memory");
        p = pdw__skip_ws(p + 1, end);
        if (p < end && *p == '}')
            goto close_object;
        goto key;
    case '[':
        if (target) {
            target->p = (const char *)p;
            target->type = PDW__J_ARRAY;
        }
        kind[d / 64] |= 1ull << (d % 64);
        in_array = 1;
        d++;
        if (d < 4)
            open_target[d] = target;
        target = NULL;
        p = pdw__skip_ws(p + 1, end);
        if (p < end && *p == ']')
            goto close_array;
        goto value;
    case '"': {
        ucp q = p + 1;
        int esc = 0;
        if ((rc = scan_string(s, &q, &esc)) != 0)
            return rc;
        if (target) {
            target->p = (const char *)p + 1;
            target->len = (size_t)(q - p - 1);
            target->type = PDW__J_STRING;
            target->escaped = (unsigned char)esc;
        }
        p = q + 1;
        goto after_value;
    }
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        ucp q = p;
        unsigned char is_int = 0;
        if ((rc = scan_number(s, &q, &is_int)) != 0)
            return rc;
        if (target) {
            target->p = (const char *)p;
            target->len = (size_t)(q - p);
            target->type = PDW__J_NUMBER;
            target->is_int = is_int;
        }
        p = q;
        goto after_token;
    }
    case 't':
    case 'f':
    case 'n': {
        unsigned char type;
        size_t n;
        if (end - p >= 4 && p[0] == 't' && p[1] == 'r' && p[2] == 'u' && p[3] == 'e') {
            type = PDW__J_TRUE;
            n = 4;
        } else if (end - p >= 5 && p[0] == 'f' && p[1] == 'a' && p[2] == 'l' && p[3] == 's' &&
                   p[4] == 'e') {
            type = PDW__J_FALSE;
            n = 5;
        } else if (end - p >= 4 && p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l') {
            type = PDW__J_NULL;
            n = 4;
        } else {
            return fail(s, p, PDW_EJSON, "invalid literal");
        }
        if (target) {
            target->p = (const char *)p;
            target->len = n;
            target->type = type;
        }
        p += n;
        goto after_token;
    }
    default:
        return fail_tok(s, p, "value expected");
    }

after_token:
    /* jansson drops a NUL byte right after a number or literal (its lexer "ungets" the NUL,
     * and a NUL in its look-ahead buffer means "empty"), so it accepts `123\0`. We do not
     * (JSONTestSuite n_multidigit_number_then_00): a raw NUL is never JSON; it falls
     * through to the checks below and is refused as any other stray byte. This is the one
     * input on which the scanner is stricter than jansson (docs/DECISIONS.md). */
after_value:
    p = pdw__skip_ws(p, end);
    if (d == 0) {
        if (p != end)
            return fail_tok(s, p, "end of input expected");
        return top_object ? 0 : fail(s, s->body, PDW_ENOTOBJECT, "top level is not an object");
    }
    if (p == end)
        return fail(s, p, PDW_EJSON, "unexpected end of input");
    if (in_array) {
        if (*p == ',') {
            p++;
            target = NULL;
            goto value;
        }
        if (*p == ']')
            goto close_array;
        return fail_tok(s, p, "',' or ']' expected");
    }
    if (*p == ',') {
        p++;
        goto key;
    }
    if (*p == '}')
        goto close_object;
    return fail_tok(s, p, "',' or '}' expected");

close_object:
    ks_close(ks);
    if (d == 2)
        meta_open = 0;
    /* fall through to the common close */
close_array:
    if (d < 4 && open_target[d]) {
        open_target[d]->len = (size_t)(p + 1 - (ucp)open_target[d]->p);
        open_target[d] = NULL;
    }
    d--;
    in_array = d > 0 && (kind[(d - 1) / 64] >> ((d - 1) % 64) & 1);
    p++;
    goto after_value;

key:
    if (p < end && *p != '"')
        p = pdw__skip_ws(p, end);
    if (p == end || *p != '"')
        return fail_tok(s, p, "string or '}' expected");
    {
        ucp q = p + 1;
        int esc = 0;
        if ((rc = scan_string(s, &q, &esc)) != 0)
            return rc;
        const char *kp = (const char *)p + 1;
        size_t klen = (size_t)(q - p - 1);
        if ((rc = ks_add(ks, kp, klen, esc)) != 0)
            return fail(s, p, rc, rc == PDW_EDUPKEY ? "duplicate object key" : "out of memory");
        target = NULL;
        if (d == 1 && top_object)
            target = field_lookup(out, top_fields, top_start, sizeof top_start, kp, klen, esc,
                                  end);
        else if (d == 2 && meta_open)
            target = field_lookup(out, meta_fields, meta_start, sizeof meta_start, kp, klen,
                                  esc, end);
        p = q + 1;
        if (p < end && *p != ':')
            p = pdw__skip_ws(p, end);
    }
    if (p == end || *p != ':')
        return fail_tok(s, p, "':' expected");
    p++;
    goto value;
}

int pdw__scan_body(pdw__scan *out, const char *body, size_t len, unsigned max_depth,
                   const pdw_allocator *a, pdw_error *err)
{
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "no output struct");
    memset(out, 0, sizeof *out);
    if (!body && len)
        return pdw__error_set(err, PDW_EINVAL, -1, "NULL body");
    if (!body)
        body = "";
    pdw_allocator sys;
    if (!a) {
        pdw__alloc_set(&sys, NULL);
        a = &sys;
    }
    unsigned limit = max_depth ? max_depth : PDW_DEFAULT_MAX_DEPTH;
    if (limit > SCAN_JANSSON_DEPTH)
        limit = SCAN_JANSSON_DEPTH; /* jansson would reject anything deeper anyway */

    scanner s = { (ucp)body, (ucp)body + len, err };
    /* A per-call seed makes hash collisions harder to precompute. */
    uint64_t seed = (uint64_t)(uintptr_t)&s * KH_M ^ (uint64_t)(uintptr_t)body ^ len;
    keyset ks;
    ks_init(&ks, a, seed, s.end);
    int rc = scan(&s, out, limit, &ks);
    ks_fini(&ks);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- helpers over validated values -------------------------------------------------- */

/* End of a string whose opening quote is at p[-1]: the closing quote, or end. */
static ucp skip_str(ucp p, ucp end, int *esc)
{
    while (p < end) {
        if (*p == '"')
            return p;
        if (*p == '\\') {
            *esc = 1;
            p += (end - p >= 2) ? 2 : 1;
            continue;
        }
        p++;
    }
    return end;
}

static ucp advance(ucp p, ucp end, size_t n)
{
    return (size_t)(end - p) >= n ? p + n : end;
}

/* Describe the value at p (after white space) into *v, bounded by end; returns the first
 * byte after it. */
static ucp take_value(ucp p, ucp end, pdw__val *v)
{
    memset(v, 0, sizeof *v);
    if (p >= end)
        return end;
    ucp start = p;
    switch (*p) {
    case '"': {
        int esc = 0;
        ucp q = skip_str(p + 1, end, &esc);
        v->type = PDW__J_STRING;
        v->p = (const char *)p + 1;
        v->len = (size_t)(q - p - 1);
        v->escaped = (unsigned char)esc;
        return q < end ? q + 1 : end;
    }
    case '{':
    case '[': {
        size_t depth = 0;
        v->type = *p == '{' ? PDW__J_OBJECT : PDW__J_ARRAY;
        while (p < end) {
            unsigned c = *p++;
            if (c == '"') {
                int esc = 0;
                p = skip_str(p, end, &esc);
                if (p < end)
                    p++;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    break;
            }
        }
        break;
    }
    case 't': v->type = PDW__J_TRUE; p = advance(p, end, 4); break;
    case 'f': v->type = PDW__J_FALSE; p = advance(p, end, 5); break;
    case 'n': v->type = PDW__J_NULL; p = advance(p, end, 4); break;
    default:
        v->type = PDW__J_NUMBER;
        v->is_int = 1;
        while (p < end && (is_digit(*p) || *p == '-' || *p == '+' || *p == '.' ||
                           (*p | 0x20) == 'e')) {
            if (*p == '.' || (*p | 0x20) == 'e')
                v->is_int = 0;
            p++;
        }
        break;
    }
    v->p = (const char *)start;
    v->len = (size_t)(p - start);
    return p;
}

void pdw__obj_iter_init(pdw__obj_iter *it, const pdw__val *obj)
{
    if (obj && obj->type == PDW__J_OBJECT && obj->len >= 2) {
        it->p = obj->p + 1;
        it->end = obj->p + obj->len - 1; /* the closing brace */
    } else {
        it->p = it->end = NULL;
    }
}

int pdw__obj_next(pdw__obj_iter *it, pdw__val *key, pdw__val *value)
{
    ucp p = (ucp)it->p, end = (ucp)it->end;
    if (!p)
        return 0;
    while (p < end && (pdw__json_ws[*p] || *p == ','))
        p++;
    if (p >= end || *p != '"') {
        it->p = it->end;
        return 0;
    }
    p = take_value(p, end, key);
    p = pdw__skip_ws(p, end);
    if (p < end && *p == ':')
        p++;
    p = pdw__skip_ws(p, end);
    p = take_value(p, end, value);
    it->p = (const char *)p;
    return 1;
}

int pdw__obj_get(const pdw__val *obj, const char *key, pdw__val *out)
{
    pdw__obj_iter it;
    pdw__val k, v;
    pdw__obj_iter_init(&it, obj);
    while (pdw__obj_next(&it, &k, &v)) {
        if (pdw__str_eq(&k, key)) {
            if (out)
                *out = v;
            return 1;
        }
    }
    return 0;
}

int pdw__array_first(const pdw__val *arr, pdw__val *out)
{
    if (!arr || arr->type != PDW__J_ARRAY || arr->len < 2)
        return 0;
    ucp end = (ucp)arr->p + arr->len - 1;
    ucp p = pdw__skip_ws((ucp)arr->p + 1, end);
    if (p >= end)
        return 0;
    pdw__val v;
    take_value(p, end, &v);
    if (out)
        *out = v;
    return 1;
}

void pdw__arr_iter_init(pdw__obj_iter *it, const pdw__val *arr)
{
    if (arr && arr->type == PDW__J_ARRAY && arr->len >= 2) {
        it->p = arr->p + 1;
        it->end = arr->p + arr->len - 1; /* the closing bracket */
    } else {
        it->p = it->end = NULL;
    }
}

int pdw__arr_next(pdw__obj_iter *it, pdw__val *value)
{
    ucp p = (ucp)it->p, end = (ucp)it->end;
    if (!p)
        return 0;
    while (p < end && (pdw__json_ws[*p] || *p == ','))
        p++;
    if (p >= end) {
        it->p = it->end;
        return 0;
    }
    it->p = (const char *)take_value(p, end, value);
    return 1;
}

int pdw__val_equal(const pdw__val *a, const pdw__val *b)
{
    if (!a || !b || a->type != b->type)
        return 0;
    if (a->type == PDW__J_ABSENT)
        return 1;
    if (a->type == PDW__J_STRING)
        return str_equal_raw((ucp)a->p, a->len, a->escaped, (ucp)b->p, b->len, b->escaped);
    ucp x = (ucp)a->p, xe = x + a->len, y = (ucp)b->p, ye = y + b->len;
    for (;;) {
        x = pdw__skip_ws(x, xe);
        y = pdw__skip_ws(y, ye);
        if (x == xe || y == ye)
            return x == xe && y == ye;
        if (*x != *y)
            return 0;
        if (*x == '"') {
            /* Strings: compare decoded, so that escapes and their characters agree. */
            int ex = 0, ey = 0;
            ucp qx = skip_str(x + 1, xe, &ex), qy = skip_str(y + 1, ye, &ey);
            if (!str_equal_raw(x + 1, (size_t)(qx - x - 1), 1, y + 1, (size_t)(qy - y - 1), 1))
                return 0;
            x = qx < xe ? qx + 1 : xe;
            y = qy < ye ? qy + 1 : ye;
            continue;
        }
        x++;
        y++;
    }
}

long pdw__str_decode(const pdw__val *s, char *buf, size_t cap)
{
    if (!s || s->type != PDW__J_STRING || !buf || cap == 0)
        return -1;
    if (!s->escaped) {
        if (s->len >= cap || s->len > (size_t)LONG_MAX)
            return -1;
        memcpy(buf, s->p, s->len);
        buf[s->len] = '\0';
        return (long)s->len;
    }
    dcur c;
    size_t n = 0;
    int b;
    dcur_init(&c, (ucp)s->p, (ucp)s->p + s->len);
    while ((b = dcur_next(&c)) >= 0) {
        if (n + 1 >= cap)
            return -1;
        buf[n++] = (char)b;
    }
    buf[n] = '\0';
    return (long)n;
}

int pdw__str_eq(const pdw__val *s, const char *lit)
{
    if (!s || s->type != PDW__J_STRING || !lit)
        return 0;
    return str_equal_raw((ucp)s->p, s->len, s->escaped, (ucp)lit, strlen(lit), 0);
}
