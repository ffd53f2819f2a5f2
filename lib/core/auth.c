/* Authentication: HTTP Basic (RFC 7617) against a set of credential pairs, and/or a shared
 * token carried in the query string. Pipedrive offers nothing stronger (no signature), so
 * this module is the whole of the receiver's defence: comparisons of secrets run in
 * constant time, every configured pair is checked on every request, the request path never
 * allocates, and every copy of a secret is wiped before its memory is released. */
#include <limits.h>
#include <string.h>

#include "core/core.h"

/* Longest Authorization value accepted. Real Basic values are far shorter; the limit keeps
 * the decoded credentials in a fixed stack buffer, so the request path never allocates. */
#define AUTH_HEADER_MAX 4096
/* Enough for the decoding of any token68 that fits in AUTH_HEADER_MAX. */
#define AUTH_DECODED_MAX (AUTH_HEADER_MAX / 4 * 3)
/* Longest (decoded) query token: again a fixed stack buffer on the request path. */
#define AUTH_TOKEN_MAX 1024
/* Longest query parameter name for the token. */
#define AUTH_TOKEN_NAME_MAX 64
/* "Basic " */
#define AUTH_SCHEME_LEN 5

typedef struct auth_pair {
    char *user;
    size_t user_len;
    char *password;
    size_t password_len;
    /* The canonical base64 of "user:password", as a client sends it: a secret too. */
    char *b64;
    size_t b64_len;
} auth_pair;

struct pdw__auth {
    pdw_allocator alloc;
    auth_pair *pairs; /* NULL when n_pairs is 0 */
    size_t n_pairs;
    char *token;      /* NULL when no query token is configured */
    size_t token_len;
    /* The name is not a secret and is at most 64 bytes: kept inline, one allocation less. */
    char token_name[AUTH_TOKEN_NAME_MAX + 1];
    size_t token_name_len;
};

/* ---- constant-time helpers ---------------------------------------------------------- */

/* Byte masks: 0xFF when the relation holds, else 0, computed without branches so that the
 * base64 decoding of a password does not leak its characters through timing. x, y < 256. */
static unsigned ct_eq8(unsigned x, unsigned y)
{
    return (((0u - (x ^ y)) >> 8) & 0xFFu) ^ 0xFFu;
}

static unsigned ct_gt8(unsigned x, unsigned y)
{
    return ((y - x) >> 8) & 0xFFu;
}

static unsigned ct_ge8(unsigned x, unsigned y)
{
    return ct_gt8(y, x) ^ 0xFFu;
}

/* The 6-bit value of a standard-alphabet base64 character, or 0xFF when it is not one. */
static unsigned b64_value(unsigned char ch)
{
    unsigned c = ch;
    unsigned v = (ct_ge8(c, 'A') & ct_ge8('Z', c) & (c - 'A')) |
                 (ct_ge8(c, 'a') & ct_ge8('z', c) & (c - 'a' + 26u)) |
                 (ct_ge8(c, '0') & ct_ge8('9', c) & (c - '0' + 52u)) |
                 (ct_eq8(c, '+') & 62u) | (ct_eq8(c, '/') & 63u);
    /* 0 is both 'A' and "no range matched": tell them apart. */
    return v | (ct_eq8(v, 0) & (ct_eq8(c, 'A') ^ 0xFFu));
}

long pdw__base64_decode(const char *in, size_t in_len, unsigned char *out)
{
    const unsigned char *p = (const unsigned char *)in;
    if (in_len % 4 != 0 || in_len / 4 * 3 > (size_t)LONG_MAX)
        return -1;
    if (in_len == 0)
        return 0;

    /* Padding may only close the last quantum; '=' anywhere else maps to 0xFF below. The
     * amount of padding is a function of the length, not a secret, so branching on it is
     * fine. */
    size_t pad = 0;
    if (p[in_len - 1] == '=')
        pad = p[in_len - 2] == '=' ? 2 : 1;

    /* Errors are accumulated (bit 0x80 of an invalid value) rather than returned at the
     * first bad byte: the loop does the same work whatever the content. */
    unsigned bad = 0;
    size_t o = 0;
    size_t full = in_len / 4 - (pad ? 1u : 0u);
    for (size_t q = 0; q < full; q++, p += 4) {
        unsigned v0 = b64_value(p[0]), v1 = b64_value(p[1]);
        unsigned v2 = b64_value(p[2]), v3 = b64_value(p[3]);
        bad |= v0 | v1 | v2 | v3;
        out[o++] = (unsigned char)(((v0 << 2) | (v1 >> 4)) & 0xFFu);
        out[o++] = (unsigned char)(((v1 << 4) | (v2 >> 2)) & 0xFFu);
        out[o++] = (unsigned char)(((v2 << 6) | v3) & 0xFFu);
    }
    if (pad) {
        unsigned v0 = b64_value(p[0]), v1 = b64_value(p[1]);
        bad |= v0 | v1;
        out[o++] = (unsigned char)(((v0 << 2) | (v1 >> 4)) & 0xFFu);
        if (pad == 2) {
            /* "xx==": the low 4 bits of the second character carry nothing and must be 0,
             * otherwise several encodings would decode to the same bytes. */
            bad |= ((0u - (v1 & 0x0Fu)) >> 8) & 0x80u;
        } else {
            unsigned v2 = b64_value(p[2]);
            bad |= v2;
            out[o++] = (unsigned char)(((v1 << 4) | (v2 >> 2)) & 0xFFu);
            /* "xxx=": the low 2 bits of the third character must be 0. */
            bad |= ((0u - (v2 & 0x03u)) >> 8) & 0x80u;
        }
    }
    /* Valid values are < 64, so bit 0x80 is set only by an invalid character or bits. */
    if (bad & 0x80u)
        return -1;
    return (long)o;
}

int pdw__ct_equal(const void *a, size_t a_len, const void *s, size_t s_len)
{
    const unsigned char *pa = a;
    const unsigned char *ps = s;
    /* The loop always runs over the secret's length, whatever the attacker sent, and never
     * stops early; a length mismatch only poisons the accumulator. */
    uint64_t acc = (uint64_t)(a_len != s_len);
    size_t i = 0;
    /* Eight bytes at a time where both strings have them; the branches test lengths only
     * (public), never contents. */
    for (; i + 8 <= s_len && i + 8 <= a_len; i += 8) {
        acc |= pdw__load64(pa + i) ^ pdw__load64(ps + i);
    }
    for (; i < s_len; i++) {
        unsigned char x = i < a_len ? pa[i] : 0;
        acc |= (uint64_t)(x ^ ps[i]);
    }
    /* Fold to one bit without a branch on the contents: 1 when acc is 0. */
    acc |= acc >> 32;
    acc &= 0xffffffffu;
    return (int)(((acc - 1u) >> 32) & 1u);
}

/* ---- configuration -------------------------------------------------------------------- */

/* Canonical base64 (standard alphabet, '=' padding, zero pad bits) of a and b joined by
 * ':', into a new NUL-terminated string. Runs at configuration time only, so the table
 * lookups on the secret's bytes cannot be timed by a client. NULL on allocation failure. */
static char *b64_pair(const pdw_allocator *al, const char *a, size_t alen, const char *b,
                      size_t blen, size_t *out_len)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = alen + 1 + blen;
    size_t olen = (n + 2) / 3 * 4;
    char *o = pdw__malloc(al, olen + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v[3] = { 0, 0, 0 };
        size_t m = n - i < 3 ? n - i : 3;
        for (size_t j = 0; j < m; j++) {
            size_t at = i + j;
            unsigned char c = at < alen    ? (unsigned char)a[at]
                              : at == alen ? (unsigned char)':'
                                           : (unsigned char)b[at - alen - 1];
            v[j] = c;
        }
        unsigned w = v[0] << 16 | v[1] << 8 | v[2];
        o[k++] = abc[w >> 18 & 63u];
        o[k++] = abc[w >> 12 & 63u];
        o[k++] = m > 1 ? abc[w >> 6 & 63u] : '=';
        o[k++] = m > 2 ? abc[w & 63u] : '=';
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

/* Control characters cannot appear in an Authorization value or a sane secret; refusing
 * them catches a stray newline read from a file along with the password. */
static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return 1;
    }
    return 0;
}

static int token_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Check every argument before allocating anything, so that a failure needs no clean-up.
 * Messages name the index and the rule, never the value: they may end up in logs. */
static int validate(const pdw_credential *creds, size_t n, const char *token,
                    const char *token_name, pdw_error *err)
{
    if (n > 0 && !creds)
        return pdw__error_set(err, PDW_EINVAL, -1, "credentials is NULL but count is %zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *u = creds[i].user, *pw = creds[i].password;
        if (!u)
            return pdw__error_set(err, PDW_EINVAL, -1, "credential %zu: user is NULL", i);
        if (!pw)
            return pdw__error_set(err, PDW_EINVAL, -1, "credential %zu: password is NULL", i);
        size_t ul = strlen(u), pl = strlen(pw);
        if (ul == 0)
            return pdw__error_set(err, PDW_EINVAL, -1, "credential %zu: user is empty", i);
        if (memchr(u, ':', ul))
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "credential %zu: user contains ':' (RFC 7617 forbids it)", i);
        if (has_control(u, ul))
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "credential %zu: user contains a control character", i);
        if (pl == 0)
            return pdw__error_set(err, PDW_EINVAL, -1, "credential %zu: password is empty", i);
        if (has_control(pw, pl))
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "credential %zu: password contains a control character", i);
        /* A pair whose "Basic " header would exceed the accepted size could never match:
         * refuse it now rather than reject its every delivery. */
        size_t joined = ul + 1 + pl;
        if (joined > AUTH_DECODED_MAX ||
            AUTH_SCHEME_LEN + 1 + (joined + 2) / 3 * 4 > AUTH_HEADER_MAX)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "credential %zu: user and password too long (the "
                                  "Authorization header would exceed %d bytes)",
                                  i, AUTH_HEADER_MAX);
    }
    if (token) {
        size_t tl = strlen(token);
        if (tl == 0)
            return pdw__error_set(err, PDW_EINVAL, -1, "query token is empty");
        if (has_control(token, tl))
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "query token contains a control character");
        if (tl > AUTH_TOKEN_MAX)
            return pdw__error_set(err, PDW_EINVAL, -1, "query token longer than %d bytes",
                                  AUTH_TOKEN_MAX);
    }
    /* Checked even without a token: a bad name is a configuration mistake either way. */
    if (token_name) {
        size_t nl = strlen(token_name);
        if (nl == 0 || nl > AUTH_TOKEN_NAME_MAX)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "query token name must have 1 to %d characters",
                                  AUTH_TOKEN_NAME_MAX);
        for (size_t i = 0; i < nl; i++)
            if (!token_name_char((unsigned char)token_name[i]))
                return pdw__error_set(err, PDW_EINVAL, -1,
                                      "query token name: only [A-Za-z0-9_.-] allowed");
    }
    return 0;
}

/* Wipe and free one secret string of len bytes (plus its NUL). */
static void free_secret(const pdw_allocator *a, char *s, size_t len)
{
    if (s) {
        pdw__wipe(s, len + 1);
        pdw__free(a, s);
    }
}

void pdw__auth_free(pdw__auth *auth)
{
    if (!auth)
        return;
    /* The allocator lives inside the block being freed: copy it out first. */
    pdw_allocator a = auth->alloc;
    if (auth->pairs) {
        for (size_t i = 0; i < auth->n_pairs; i++) {
            free_secret(&a, auth->pairs[i].user, auth->pairs[i].user_len);
            free_secret(&a, auth->pairs[i].password, auth->pairs[i].password_len);
            free_secret(&a, auth->pairs[i].b64, auth->pairs[i].b64_len);
        }
        pdw__wipe(auth->pairs, auth->n_pairs * sizeof *auth->pairs);
        pdw__free(&a, auth->pairs);
    }
    free_secret(&a, auth->token, auth->token_len);
    pdw__wipe(auth, sizeof *auth);
    pdw__free(&a, auth);
}

int pdw__auth_new(pdw__auth **out, const pdw_credential *creds, size_t n, const char *token,
                  const char *token_name, const pdw_allocator *a, pdw_error *err)
{
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    pdw_allocator alloc;
    if (pdw__alloc_set(&alloc, a) != 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    int rc = validate(creds, n, token, token_name, err);
    if (rc != 0)
        return rc;

    pdw__auth *auth = pdw__calloc(&alloc, 1, sizeof *auth);
    if (!auth)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    auth->alloc = alloc;
    const char *name = token_name ? token_name : "token";
    auth->token_name_len = strlen(name);
    memcpy(auth->token_name, name, auth->token_name_len + 1);

    if (n > 0) {
        /* Zeroed, and n_pairs set up front, so that pdw__auth_free() can undo a partial
         * copy: NULL entries are skipped. */
        auth->pairs = pdw__calloc(&alloc, n, sizeof *auth->pairs);
        if (!auth->pairs)
            goto nomem;
        auth->n_pairs = n;
        for (size_t i = 0; i < n; i++) {
            auth_pair *p = &auth->pairs[i];
            p->user_len = strlen(creds[i].user);
            p->user = pdw__strndup(&alloc, creds[i].user, p->user_len);
            if (!p->user)
                goto nomem;
            p->password_len = strlen(creds[i].password);
            p->password = pdw__strndup(&alloc, creds[i].password, p->password_len);
            if (!p->password)
                goto nomem;
            p->b64 = b64_pair(&alloc, p->user, p->user_len, p->password, p->password_len,
                              &p->b64_len);
            if (!p->b64)
                goto nomem;
        }
    }
    if (token) {
        auth->token_len = strlen(token);
        auth->token = pdw__strndup(&alloc, token, auth->token_len);
        if (!auth->token)
            goto nomem;
    }
    *out = auth;
    return 0;

nomem:
    pdw__auth_free(auth);
    return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
}

int pdw__auth_has_basic(const pdw__auth *auth)
{
    return auth && auth->n_pairs > 0;
}

/* ---- request checks ------------------------------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII-only case folding: tolower() would depend on the locale. */
static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Compare the decoded "user:password" against every pair. Every comparison of every pair is
 * evaluated and combined with bitwise operators, so the time taken does not tell which
 * pair, nor whether the user or the password, was right. */
static int match_pairs(const pdw__auth *auth, const unsigned char *dec, size_t len)
{
    const unsigned char *colon = memchr(dec, ':', len);
    if (!colon)
        return PDW_EAUTHMALFORMED;
    /* RFC 7617: the user ends at the first ':'; the password may contain more. */
    size_t ulen = (size_t)(colon - dec);
    const unsigned char *pw = colon + 1;
    size_t plen = len - ulen - 1;
    unsigned match = 0;
    for (size_t i = 0; i < auth->n_pairs; i++) {
        const auth_pair *p = &auth->pairs[i];
        unsigned u = (unsigned)pdw__ct_equal(dec, ulen, p->user, p->user_len);
        unsigned w = (unsigned)pdw__ct_equal(pw, plen, p->password, p->password_len);
        match |= u & w;
    }
    return match ? 0 : PDW_EAUTHWRONG;
}

static int check_basic(const pdw__auth *auth, const char *h, size_t len)
{
    if (!h)
        return PDW_EAUTHMISSING;
    if (len > AUTH_HEADER_MAX)
        return PDW_EAUTHMALFORMED;
    size_t b = 0, e = len;
    while (b < e && is_ows(h[b]))
        b++;
    while (e > b && is_ows(h[e - 1]))
        e--;
    /* credentials = auth-scheme 1*SP token68 (RFC 7235 section 2.1, RFC 7617). */
    if (e - b < AUTH_SCHEME_LEN + 2)
        return PDW_EAUTHMALFORMED;
    static const char scheme[] = "basic";
    for (size_t i = 0; i < AUTH_SCHEME_LEN; i++)
        if (ascii_lower((unsigned char)h[b + i]) != (unsigned char)scheme[i])
            return PDW_EAUTHMALFORMED;
    b += AUTH_SCHEME_LEN;
    if (h[b] != ' ')
        return PDW_EAUTHMALFORMED;
    while (b < e && h[b] == ' ')
        b++;
    size_t in_len = e - b;
    /* Fast path: the strict decoder below accepts only canonical base64, so the value
     * decodes to a pair's "user:password" exactly when it is that pair's canonical
     * encoding, byte for byte. Comparing the text in constant time against every pair
     * gives the same verdict for about a tenth of the work of a constant-time decode. */
    unsigned match = 0;
    for (size_t i = 0; i < auth->n_pairs; i++)
        match |= (unsigned)pdw__ct_equal(h + b, in_len, auth->pairs[i].b64,
                                         auth->pairs[i].b64_len);
    if (match)
        return 0;
    /* No pair matched: decode, to tell a malformed value from wrong credentials. What is
     * left must be exactly one canonical base64 string: a second field, a comma or an
     * auth-param fails to decode. */
    unsigned char buf[AUTH_DECODED_MAX];
    long n = pdw__base64_decode(h + b, in_len, buf);
    int rc = n < 0 ? PDW_EAUTHMALFORMED : match_pairs(auth, buf, (size_t)n);
    /* The decoder may have written up to this much, even on failure. */
    pdw__wipe(buf, in_len / 4 * 3);
    return rc;
}


static int check_token(const pdw__auth *auth, const char *q, size_t qlen)
{
    if (!q)
        qlen = 0;
    /* Scan the whole query: a second occurrence of the name is refused, since servers and
     * proxies disagree on which of two values wins. */
    const char *val = NULL;
    size_t vlen = 0;
    unsigned found = 0;
    size_t i = 0;
    while (i < qlen) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp ? (size_t)(amp - q) : qlen;
        const char *eq = memchr(q + i, '=', end - i);
        size_t name_end = eq ? (size_t)(eq - q) : end;
        if (name_end - i == auth->token_name_len &&
            memcmp(q + i, auth->token_name, auth->token_name_len) == 0) {
            found++;
            val = eq ? eq + 1 : q + end;
            vlen = eq ? end - name_end - 1 : 0;
        }
        i = end + 1;
    }
    if (found == 0)
        return PDW_EAUTHMISSING;
    if (found > 1)
        return PDW_EAUTHMALFORMED;

    unsigned char buf[AUTH_TOKEN_MAX];
    size_t o = 0;
    int rc = 0;
    for (size_t j = 0; j < vlen; j++) {
        if (o == sizeof buf) {
            rc = PDW_EAUTHMALFORMED; /* longer than any configured token can be */
            break;
        }
        unsigned char c = (unsigned char)val[j];
        if (c == '+') {
            buf[o++] = ' '; /* application/x-www-form-urlencoded */
        } else if (c == '%') {
            int hi = j + 2 < vlen ? pdw__hex_value((unsigned char)val[j + 1]) : -1;
            int lo = j + 2 < vlen ? pdw__hex_value((unsigned char)val[j + 2]) : -1;
            if (hi < 0 || lo < 0) {
                rc = PDW_EAUTHMALFORMED;
                break;
            }
            buf[o++] = (unsigned char)(hi << 4 | lo);
            j += 2;
        } else {
            buf[o++] = c;
        }
    }
    if (rc == 0)
        rc = pdw__ct_equal(buf, o, auth->token, auth->token_len) ? 0 : PDW_EAUTHWRONG;
    pdw__wipe(buf, o);
    return rc;
}

int pdw__auth_check(const pdw__auth *auth, const char *authorization, size_t auth_len,
                    const char *query, size_t query_len)
{
    /* Fail closed: a missing auth object must never let a request through. */
    if (!auth)
        return PDW_EINVAL;
    /* Both checks run whenever both are configured, then the Basic failure is reported
     * first: the answer does not depend on which check happened to be done first. */
    int rb = auth->n_pairs > 0 ? check_basic(auth, authorization, auth_len) : 0;
    int rt = auth->token ? check_token(auth, query, query_len) : 0;
    return rb != 0 ? rb : rt;
}
