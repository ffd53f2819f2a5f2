/* fuzz_auth: the Authorization header (Basic) and query-token parser.
 *
 * Input: byte 0 picks the mode, the rest is the material.
 *  mode 0: byte 1 splits the rest into an Authorization value and a query string, checked
 *          by pdw__auth_check() against two pairs and a query token. The answer must be one
 *          of the four documented ones, and equal what a plain reference implementation
 *          (strict RFC 4648 base64, the user ends at the first ':') says.
 *  mode 1: the rest is base64-encoded and sent as "Basic <b64>": round trip; the answer
 *          depends only on the decoded credentials.
 *  mode 2: the rest goes to pdw__base64_decode() into a buffer of exactly the documented
 *          size; the result must equal the reference decoder's. */
#include <string.h>

#include "fuzz.h"
#include "core/core.h"

static const pdw_credential creds[] = {
    { "pipedrive", "s3cret" },
    { "old", "pw:with:colons" },
};
static const char token[] = "tok en";

static int ref_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Obvious strict decoder: length % 4 == 0, '=' only as the last one or two characters,
 * unused bits zero. Returns the length or -1. */
static long ref_b64_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t pad = 0;
    if (n >= 1 && in[n - 1] == '=')
        pad = (n >= 2 && in[n - 2] == '=') ? 2 : 1;
    long o = 0;
    for (size_t q = 0; q < n; q += 4) {
        int v[4];
        int last = q + 4 == n;
        for (int k = 0; k < 4; k++) {
            if (last && (size_t)k >= 4 - pad)
                v[k] = 0;
            else if ((v[k] = ref_b64_value(in[q + (size_t)k])) < 0)
                return -1;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (last && pad == 2) {
            if (v[1] & 0xF)
                return -1;
            break;
        }
        out[o++] = (unsigned char)((v[1] & 0xF) << 4 | v[2] >> 2);
        if (last && pad == 1) {
            if (v[2] & 0x3)
                return -1;
            break;
        }
        out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
    }
    return o;
}

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

/* The answer for decoded credentials dec[0..n). */
static int ref_pairs(const unsigned char *dec, size_t n)
{
    const unsigned char *colon = memchr(dec, ':', n);
    if (!colon)
        return PDW_EAUTHMALFORMED;
    for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        size_t ul = strlen(creds[i].user), pl = strlen(creds[i].password);
        if (ul + 1 + pl == n && memcmp(dec, creds[i].user, ul) == 0 && dec[ul] == ':' &&
            memcmp(dec + ul + 1, creds[i].password, pl) == 0)
            return 0;
    }
    return PDW_EAUTHWRONG;
}

/* Reference for an Authorization value: OWS trimmed, "basic" any case, 1+ SP, base64. */
static int ref_basic(const unsigned char *h, size_t n)
{
    if (n > 4096)
        return PDW_EAUTHMALFORMED;
    size_t b = 0, e = n;
    while (b < e && (h[b] == ' ' || h[b] == '\t'))
        b++;
    while (e > b && (h[e - 1] == ' ' || h[e - 1] == '\t'))
        e--;
    if (e - b < 7)
        return PDW_EAUTHMALFORMED;
    static const char scheme[] = "basic";
    for (size_t i = 0; i < 5; i++) {
        unsigned char c = h[b + i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)scheme[i])
            return PDW_EAUTHMALFORMED;
    }
    b += 5;
    if (h[b] != ' ')
        return PDW_EAUTHMALFORMED;
    while (b < e && h[b] == ' ')
        b++;
    unsigned char dec[4096];
    long k = ref_b64_decode(h + b, e - b, dec);
    if (k < 0)
        return PDW_EAUTHMALFORMED;
    return ref_pairs(dec, (size_t)k);
}

static pdw__auth *auth_both, *auth_basic;

static void setup(void)
{
    if (auth_both)
        return;
    FUZZ_CHECK(pdw__auth_new(&auth_both, creds, 2, token, NULL, NULL, NULL) == 0);
    FUZZ_CHECK(pdw__auth_new(&auth_basic, creds, 2, NULL, NULL, NULL, NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    if (mode == 0) {
        size_t split = n ? (size_t)p[0] : 0;
        if (n) {
            p++;
            n--;
        }
        if (split > n)
            split = n;
        /* exact-size copies so that an over-read of either span is caught */
        char *h = malloc(split ? split : 1);
        char *q = malloc(n - split ? n - split : 1);
        FUZZ_CHECK(h && q);
        memcpy(h, p, split);
        memcpy(q, p + split, n - split);
        int r1 = pdw__auth_check(auth_basic, h, split, q, n - split);
        FUZZ_CHECK(r1 == ref_basic((const unsigned char *)h, split));
        int r2 = pdw__auth_check(auth_both, h, split, q, n - split);
        FUZZ_CHECK(r2 == 0 || r2 == PDW_EAUTHMISSING || r2 == PDW_EAUTHMALFORMED ||
                   r2 == PDW_EAUTHWRONG);
        FUZZ_CHECK(r1 != 0 ? r2 == r1 : 1);
        /* no header at all */
        FUZZ_CHECK(pdw__auth_check(auth_basic, NULL, 0, q, n - split) == PDW_EAUTHMISSING);
        free(h);
        free(q);
    } else if (mode == 1) {
        if (n > 3000)
            return 0;
        char *h = malloc(6 + (n + 2) / 3 * 4);
        FUZZ_CHECK(h != NULL);
        memcpy(h, "Basic ", 6);
        size_t len = 6 + b64_encode(p, n, h + 6);
        int want = n == 0 ? PDW_EAUTHMALFORMED : ref_pairs(p, n);
        FUZZ_CHECK(pdw__auth_check(auth_basic, h, len, NULL, 0) == want);
        free(h);
    } else {
        unsigned char *out = malloc(n / 4 * 3 + 1);
        unsigned char *ref = malloc(n / 4 * 3 + 1);
        FUZZ_CHECK(out && ref);
        long got = pdw__base64_decode((const char *)p, n, out);
        long exp = ref_b64_decode(p, n, ref);
        FUZZ_CHECK(got == exp);
        if (got > 0)
            FUZZ_CHECK(memcmp(out, ref, (size_t)got) == 0);
        free(out);
        free(ref);
    }
    return 0;
}
