/* The jansson DOM of an already validated body, built in one iterative pass.
 *
 * What it assumes: the body passed pdw__scan_body(), which accepts exactly what jansson
 * 2.14's json_loadb(JSON_REJECT_DUPLICATES) accepts. So the builder does not re-check
 * UTF-8 (strings go in with json_stringn_nocheck) nor duplicate keys (members go in with
 * json_object_setn_new_nocheck, in body order, which jansson keeps), and its DOM is the
 * one json_loadb would build: integers as strtoll reads them ("-0" is the integer 0),
 * reals as strtod reads them in the C locale, escapes decoded to UTF-8.
 *
 * Why it is safe on any input anyway: every read is bounds-checked against body + len
 * (nothing needs a terminating NUL: numbers are copied out before strtod); the grammar is
 * still followed token by token, and anything it does not expect (a bad escape, a lone
 * surrogate, \u0000, an integer out of range, nesting beyond PDW__DOM_MAX_DEPTH, trailing
 * bytes) ends the build with NULL. Containers go into their parent as soon as they are
 * opened, so the root owns everything built so far and one json_decref() cleans up.
 * Without recursion the C stack use is fixed; deeper nests use one heap stack. */
#include "json/dom.h"
#include "json/jsonbytes.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef const unsigned char *ucp;

/* Open containers kept inline before the stack moves to the heap (once, full size). */
#define DOM_INLINE_DEPTH 64u
/* Scratch kept inline for decoded keys and strings and for number text. */
#define DOM_INLINE_SCRATCH 256u
/* Longest locale decimal point handled (glibc's are 1 or 2 bytes). */
#define DOM_MAX_POINT 8u

/* A buffer that starts inline and moves to jansson's allocator when it must grow. */
typedef struct scratch {
    char *p;
    size_t cap;
    char inl[DOM_INLINE_SCRATCH];
} scratch;

typedef struct bld {
    ucp p, end;
    json_malloc_t jmalloc;
    json_free_t jfree;
    json_t **stack;
    size_t depth;
    size_t cap;
    json_t *inl_stack[DOM_INLINE_DEPTH];
    scratch key; /* the decoded key of the member being built */
    scratch val; /* a decoded string value, or a number's text */
} bld;

static void scratch_init(scratch *s)
{
    s->p = s->inl;
    s->cap = sizeof s->inl;
}

static void scratch_fini(bld *b, scratch *s)
{
    if (s->p != s->inl)
        b->jfree(s->p);
}

/* Room for n bytes in s (contents not kept). NULL when the allocator fails. */
static char *scratch_room(bld *b, scratch *s, size_t n)
{
    if (n <= s->cap)
        return s->p;
    char *np = b->jmalloc(n);
    if (!np)
        return NULL;
    scratch_fini(b, s);
    s->p = np;
    s->cap = n;
    return np;
}

/* ---- lexing ------------------------------------------------------------------------- */

static inline void skip_ws(bld *b)
{
    b->p = pdw__skip_ws(b->p, b->end);
}

/* The first '"' or '\\' in [p, end), or end. Eight bytes at a time: the lowest byte the
 * zero-byte test flags is always a real match (false positives only sit above one). */
static inline ucp find_quote_or_backslash(ucp p, ucp end)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t w = pdw__load64(p);
        uint64_t q = w ^ (ones * '"'), s = w ^ (ones * '\\');
        uint64_t hit = (((q - ones) & ~q) | ((s - ones) & ~s)) & highs;
        if (hit)
            return p + ((unsigned)__builtin_ctzll(hit) >> 3);
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

static int hex4(ucp p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int d = pdw__hex_val(p[k]);
        if (d < 0)
            return 0;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 1;
}

/* Decode the escaped string whose raw text starts at s (just after the opening quote) and
 * whose first backslash is at bs, into sc; *len = the decoded length. b->p ends after the
 * closing quote. The decoded text is never longer than the raw one, so the raw length is
 * room enough. Returns 1, or 0 (malformed, or the allocator failed). */
static int decode_escaped(bld *b, scratch *sc, ucp s, ucp bs, size_t *len)
{
    ucp end = b->end, q = bs;
    /* find the closing quote: a backslash always takes the next byte with it */
    for (;;) {
        q = find_quote_or_backslash(q, end);
        if (q >= end)
            return 0;
        if (*q == '"')
            break;
        if (end - q < 2)
            return 0;
        q += 2;
    }
    size_t raw = (size_t)(q - s);
    char *o = scratch_room(b, sc, raw);
    if (!o)
        return 0;
    size_t n = (size_t)(bs - s);
    memcpy(o, s, n);
    ucp p = bs;
    while (p < q) {
        if (*p != '\\') {
            if (*p == '"')
                return 0; /* cannot happen (q is the first unescaped quote): no loop */
            ucp r = find_quote_or_backslash(p + 1, q);
            memcpy(o + n, p, (size_t)(r - p));
            n += (size_t)(r - p);
            p = r;
            continue;
        }
        /* p + 1 < q: the scan above paired every backslash with a byte before q */
        unsigned char e = p[1];
        p += 2;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned hi, lo;
            if (q - p < 4 || !hex4(p, &hi))
                return 0;
            p += 4;
            unsigned long cp = hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return 0; /* jansson: invalid Unicode escape */
                p += 6;
                cp = 0x10000ul + (((unsigned long)hi - 0xD800ul) << 10) + (lo - 0xDC00ul);
            } else if ((hi >= 0xDC00 && hi <= 0xDFFF) || hi == 0) {
                return 0; /* lone low surrogate; \u0000 (no JSON_ALLOW_NUL) */
            }
            /* 6 raw bytes give at most 3, 12 give 4: stays within raw */
            n += pdw__utf8_put(cp, (unsigned char *)o + n);
            break;
        }
        default:
            return 0;
        }
    }
    b->p = q + 1;
    *len = n;
    return 1;
}

/* A string token whose opening quote is at b->p - 1: its decoded bytes as a span, either
 * into the body (no escapes) or into sc. 1 on success, 0 on failure. */
static int string_span(bld *b, scratch *sc, const char **out, size_t *len)
{
    ucp s = b->p;
    ucp q = find_quote_or_backslash(s, b->end);
    if (q >= b->end)
        return 0;
    if (*q == '"') {
        *out = (const char *)s;
        *len = (size_t)(q - s);
        b->p = q + 1;
        return 1;
    }
    if (!decode_escaped(b, sc, s, q, len))
        return 0;
    *out = sc->p;
    return 1;
}

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* strtod on buf[0..n) (NUL-terminated, n < cap), in the C locale's terms: when the
 * current locale's decimal point is not '.', strtod stops at the '.', and the point is
 * swapped in as jansson's jsonp_strtod does. 1 and *out, or 0 (overflow or malformed). */
static int real_from_text(char *buf, size_t n, size_t cap, double *out)
{
    int saved = errno;
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (endp != buf + n) {
        char *dot = memchr(buf, '.', n);
        const struct lconv *lc = localeconv();
        const char *dp = lc ? lc->decimal_point : NULL;
        size_t dl = dp ? strlen(dp) : 0;
        if (!dot || (size_t)(endp - buf) != (size_t)(dot - buf) || dl == 0 ||
            dl > DOM_MAX_POINT || n + dl > cap - 1) {
            errno = saved;
            return 0;
        }
        size_t tail = n - (size_t)(dot - buf) - 1;
        memmove(dot + dl, dot + 1, tail + 1); /* with the NUL */
        memcpy(dot, dp, dl);
        n = n - 1 + dl;
        errno = 0;
        v = strtod(buf, &endp);
        if (endp != buf + n) {
            errno = saved;
            return 0;
        }
    }
    int overflow = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
    errno = saved;
    if (overflow)
        return 0; /* jansson: "real number overflow" (underflow is accepted) */
    *out = v;
    return 1;
}

/* A number token at b->p (JSON grammar), followed as jansson follows it. */
static json_t *number(bld *b)
{
    ucp s = b->p, p = s, end = b->end;
    int neg = 0, real = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return NULL;
    ucp digits = p;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    ucp int_end = p;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    if (p < end && (*p | 0x20u) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    b->p = p;
    if (!real) {
        /* strtoll's value, and jansson's overflow rejection: at most 19 digits fit */
        size_t nd = (size_t)(int_end - digits);
        if (nd > 19)
            return NULL;
        unsigned long long u = 0;
        for (ucp d = digits; d < int_end; d++)
            u = u * 10u + (unsigned)(*d - '0');
        if (neg) {
            if (u > (unsigned long long)LLONG_MAX + 1u)
                return NULL;
            /* -(2^63) without signed overflow */
            return json_integer(u == 0 ? 0 : -(json_int_t)(u - 1u) - 1);
        }
        if (u > (unsigned long long)LLONG_MAX)
            return NULL;
        return json_integer((json_int_t)u);
    }
    size_t n = (size_t)(p - s);
    size_t cap = n + DOM_MAX_POINT + 1; /* n < PTRDIFF_MAX: no wrap */
    char *buf = scratch_room(b, &b->val, cap);
    if (!buf)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v;
    if (!real_from_text(buf, n, cap, &v))
        return NULL;
    return json_real(v);
}

/* Does the literal lit (of n bytes) start at b->p? */
static int literal(bld *b, const char *lit, size_t n)
{
    if ((size_t)(b->end - b->p) < n || memcmp(b->p, lit, n) != 0)
        return 0;
    b->p += n;
    return 1;
}

/* The value at b->p (white space already skipped). Scalars: a new reference. '{' and '[':
 * a new empty container, b->p past the bracket, *opened = 1. NULL on failure. */
static json_t *value(bld *b, int *opened)
{
    json_t *v = NULL;
    *opened = 0;
    if (b->p >= b->end)
        return NULL;
    switch (*b->p) {
    case '{':
        b->p++;
        *opened = 1;
        return json_object();
    case '[':
        b->p++;
        *opened = 1;
        return json_array();
    case '"': {
        const char *s;
        size_t n;
        b->p++;
        if (!string_span(b, &b->val, &s, &n))
            return NULL;
        return json_stringn_nocheck(s, n);
    }
    case 't':
        v = literal(b, "true", 4) ? json_true() : NULL;
        break;
    case 'f':
        v = literal(b, "false", 5) ? json_false() : NULL;
        break;
    case 'n':
        v = literal(b, "null", 4) ? json_null() : NULL;
        break;
    default:
        v = number(b);
        break;
    }
    /* A NUL right after a number or literal is refused like any stray byte, as the
     * scanner does (jansson would skip it: see lib/json/scan.c, after_token). */
    return v;
}

static int push(bld *b, json_t *c)
{
    if (b->depth == b->cap) {
        if (b->stack != b->inl_stack || b->cap >= PDW__DOM_MAX_DEPTH)
            return 0; /* deeper than jansson goes: the scanner never lets that through */
        json_t **ns = b->jmalloc(PDW__DOM_MAX_DEPTH * sizeof(json_t *));
        if (!ns)
            return 0;
        memcpy(ns, b->inl_stack, b->depth * sizeof(json_t *));
        b->stack = ns;
        b->cap = PDW__DOM_MAX_DEPTH;
    }
    b->stack[b->depth++] = c;
    return 1;
}

/* After a value inside the open containers: white space, then ',' (1: a member follows)
 * or closing brackets, each closing the innermost container (0: the outermost closed).
 * -1 on anything else. */
static int after_value(bld *b)
{
    for (;;) {
        skip_ws(b);
        if (b->p >= b->end)
            return -1;
        unsigned char c = *b->p++;
        if (c == ',')
            return 1;
        if (c != (json_is_object(b->stack[b->depth - 1]) ? '}' : ']'))
            return -1;
        if (--b->depth == 0)
            return 0;
    }
}

/* The members of the open containers, until the outermost closes. 1 done, 0 failed. */
static int members(bld *b)
{
    int first = 1; /* just after an opening bracket: the container may close at once */
    for (;;) {
        json_t *top = b->stack[b->depth - 1];
        int is_obj = json_is_object(top);
        skip_ws(b);
        if (b->p >= b->end)
            return 0;
        if (first && *b->p == (is_obj ? '}' : ']')) {
            b->p++;
            if (--b->depth == 0)
                return 1;
        } else {
            const char *key = NULL;
            size_t klen = 0;
            if (is_obj) {
                if (*b->p != '"')
                    return 0;
                b->p++;
                if (!string_span(b, &b->key, &key, &klen))
                    return 0;
                skip_ws(b);
                if (b->p >= b->end || *b->p != ':')
                    return 0;
                b->p++;
                skip_ws(b);
            }
            int opened;
            json_t *v = value(b, &opened);
            if (!v)
                return 0;
            /* both steal v, also when they fail */
            if (is_obj ? json_object_setn_new_nocheck(top, key, klen, v)
                       : json_array_append_new(top, v))
                return 0;
            if (opened) {
                if (!push(b, v))
                    return 0;
                first = 1;
                continue;
            }
        }
        int r = after_value(b);
        if (r <= 0)
            return r == 0;
        first = 0;
    }
}

json_t *pdw__dom_build(const char *body, size_t len)
{
    if (!body)
        return NULL;
    bld b;
    b.p = (ucp)body;
    b.end = b.p + len;
    json_get_alloc_funcs(&b.jmalloc, &b.jfree);
    b.stack = b.inl_stack;
    b.depth = 0;
    b.cap = DOM_INLINE_DEPTH;
    scratch_init(&b.key);
    scratch_init(&b.val);

    int ok = 0, opened;
    skip_ws(&b);
    json_t *root = value(&b, &opened);
    if (root) {
        ok = opened ? push(&b, root) && members(&b) : 1;
        skip_ws(&b);
        ok = ok && b.p == b.end; /* only white space after the top level */
    }
    if (b.stack != b.inl_stack)
        b.jfree(b.stack);
    scratch_fini(&b, &b.key);
    scratch_fini(&b, &b.val);
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}
