/* Tests of lib/auth.c: strict base64, constant-time comparison, HTTP Basic parsing and
 * matching, the query token, configuration checks, allocation failures and wiping. */
#include "pdw_test.h"

#include "core/core.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* An encoder of our own, so that the decoder under test never checks itself. */
static size_t b64_encode(const void *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)p[i] << 16;
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* prefix + base64(cred) + suffix into a static buffer (tests run one at a time). */
static const char *hdr3(const char *prefix, const char *cred, const char *suffix)
{
    static char buf[16384];
    size_t pl = strlen(prefix);
    assert_true(pl + (strlen(cred) + 2) / 3 * 4 + strlen(suffix) + 1 < sizeof buf);
    memcpy(buf, prefix, pl);
    size_t n = b64_encode(cred, strlen(cred), buf + pl);
    memcpy(buf + pl + n, suffix, strlen(suffix) + 1);
    return buf;
}

static const char *basic(const char *cred)
{
    return hdr3("Basic ", cred, "");
}

static int chk(const pdw__auth *a, const char *authz)
{
    return pdw__auth_check(a, authz, authz ? strlen(authz) : 0, NULL, 0);
}

static int chk_q(const pdw__auth *a, const char *query)
{
    return pdw__auth_check(a, NULL, 0, query, query ? strlen(query) : 0);
}

static long dec(const char *s, unsigned char *out)
{
    return pdw__base64_decode(s, strlen(s), out);
}

static pdw__auth *new_basic(const pdw_credential *c, size_t n)
{
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, c, n, NULL, NULL, NULL, NULL), 0);
    assert_non_null(a);
    return a;
}

static pdw__auth *new_token(const char *token, const char *name)
{
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, NULL, 0, token, name, NULL, NULL), 0);
    assert_non_null(a);
    return a;
}

static const pdw_credential alice[] = { { "alice", "s3cret" } };

/* A counting allocator: fails the Nth allocation when fail_at == N, tracks live blocks,
 * and on free looks for a needle (a secret) in the block being released. */
typedef struct counting {
    size_t calls;
    size_t fail_at; /* 0: never fail */
    long live;
    const char *needle;
    size_t needle_hits;
} counting;

typedef union block_head {
    size_t size;
    max_align_t align_;
} block_head;

static void *c_malloc(size_t n, void *user)
{
    counting *c = user;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at)
        return NULL;
    block_head *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    c->live++;
    return h + 1;
}

static void c_free(void *p, void *user)
{
    counting *c = user;
    assert_non_null(p);
    block_head *h = (block_head *)p - 1;
    if (c->needle) {
        size_t nl = strlen(c->needle);
        const char *b = p;
        for (size_t i = 0; i + nl <= h->size; i++)
            if (memcmp(b + i, c->needle, nl) == 0)
                c->needle_hits++;
    }
    c->live--;
    free(h);
}

static void *c_realloc(void *p, size_t n, void *user)
{
    /* Not used by auth.c; implemented for completeness of the allocator. */
    if (!p)
        return c_malloc(n, user);
    void *q = c_malloc(n, user);
    if (!q)
        return NULL;
    block_head *h = (block_head *)p - 1;
    memcpy(q, p, h->size < n ? h->size : n);
    c_free(p, user);
    return q;
}

/* ---- base64 --------------------------------------------------------------------------- */

static void base64_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },
        { "foo", "Zm9v" },  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    unsigned char out[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        memset(out, 0xAA, sizeof out);
        long n = dec(v[i][1], out);
        assert_int_equal(n, (long)strlen(v[i][0]));
        if (n > 0)
            assert_memory_equal(out, v[i][0], (size_t)n);
        else
            assert_int_equal(out[0], 0xAA); /* nothing written */
    }
    /* Every byte value at every position, every length mod 3, through our own encoder. */
    unsigned char in[300], back[300];
    char enc[512];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t el = b64_encode(in, len, enc);
        assert_int_equal(pdw__base64_decode(enc, el, back), (long)len);
        assert_memory_equal(back, in, len);
    }
}

static void base64_padding_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg",       "Zg=",      "Zg===",    "Z===",     "====",     "=",   "==",
        "Zm9v====", "Zg==Zg==", "Zm=v",     "=Zm9",     "Z=g=",     "Zm8=Zm9v",
        "Zm9",      "Zm9vY",    "Zm9vYg=",  "Zm9vYg",   "Zm9vYmE",  "Zg=A",
    };
    unsigned char out[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long n = dec(bad[i], out);
        if (n != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void base64_bad_characters(void **state)
{
    (void)state;
    unsigned char out[16];
    /* URL-safe alphabet and other non-alphabet characters are refused. */
    assert_int_equal(dec("Zm9-", out), -1);
    assert_int_equal(dec("Zm9_", out), -1);
    assert_int_equal(dec("Zm9.", out), -1);
    assert_int_equal(dec("Zm9:", out), -1);
    assert_int_equal(pdw__base64_decode("Zm9\0", 4, out), -1);
    assert_int_equal(dec("Zm9\x80", out), -1);
    assert_int_equal(dec("Zm9\xff", out), -1);
    /* Exhaustive: each byte value in the last position of a full quantum. */
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 0; c < 256; c++) {
        char s[5] = { 'Z', 'm', '9', (char)c, 0 };
        int valid = c != 0 && memchr(abc, c, 64) != NULL;
        long n = pdw__base64_decode(s, 4, out);
        if (valid) {
            assert_int_equal(n, 3);
            /* '9' is 61: its low two bits (01) are the top of the third byte. */
            assert_int_equal(out[2], (unsigned)((const char *)memchr(abc, c, 64) - abc) | 0x40u);
        } else if (n != -1) {
            fail_msg("byte 0x%02x accepted", c);
        }
    }
}

static void base64_noncanonical_bits(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(dec("Zg==", out), 1);
    assert_int_equal(dec("Zh==", out), -1); /* same byte 'f', low bits 0001 */
    assert_int_equal(dec("Zm8=", out), 2);
    assert_int_equal(dec("Zm9=", out), -1); /* same "fo", low bits 01 */
    /* Exhaustive over the character that carries the unused bits. */
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int v = 0; v < 64; v++) {
        char two[5] = { 'Q', abc[v], '=', '=', 0 };
        char three[5] = { 'Q', 'Q', abc[v], '=', 0 };
        assert_int_equal(dec(two, out), (v & 15) == 0 ? 1 : -1);
        assert_int_equal(dec(three, out), (v & 3) == 0 ? 2 : -1);
    }
}

static void base64_whitespace(void **state)
{
    (void)state;
    unsigned char out[32];
    static const char *const bad[] = { " Zm9v",  "Zm9v ",     "Zm\r\n9v", "Zm9v\n",
                                       "Zm9v\t", "Zm 9vYmFy", "Zm9v\r\n", "\tZm9v" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dec(bad[i], out), -1);
}

/* ---- ct_equal --------------------------------------------------------------------------- */

static void ct_equal_truth_table(void **state)
{
    (void)state;
    assert_int_equal(pdw__ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(pdw__ct_equal("abd", 3, "abc", 3), 0);
    assert_int_equal(pdw__ct_equal("xbc", 3, "abc", 3), 0);
    assert_int_equal(pdw__ct_equal("ab", 2, "abc", 3), 0);
    assert_int_equal(pdw__ct_equal("abcd", 4, "abc", 3), 0);
    assert_int_equal(pdw__ct_equal("abc", 3, "abcd", 4), 0);
    assert_int_equal(pdw__ct_equal("", 0, "", 0), 1);
    assert_int_equal(pdw__ct_equal(NULL, 0, "", 0), 1);
    assert_int_equal(pdw__ct_equal(NULL, 0, "a", 1), 0);
    assert_int_equal(pdw__ct_equal("a", 1, "", 0), 0);
    /* Prefix of the secret padded with zero bytes must not match (the short side is read
     * as zeros past its end). */
    assert_int_equal(pdw__ct_equal("ab", 2, "ab\0", 3), 0);
    /* Every single-bit difference at every position. */
    unsigned char s[32], a[32];
    for (size_t i = 0; i < sizeof s; i++)
        s[i] = (unsigned char)(0x5A ^ i);
    for (size_t i = 0; i < sizeof s; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(a, s, sizeof a);
            a[i] = (unsigned char)(a[i] ^ (1u << bit));
            assert_int_equal(pdw__ct_equal(a, sizeof a, s, sizeof s), 0);
        }
    assert_int_equal(pdw__ct_equal(s, sizeof s, s, sizeof s), 1);
    /* Every length pair up to 19 bytes (whole 8-byte words, tails, and a side that ends
     * inside a word), equal prefixes: a match only when the lengths are equal; and every
     * single-bit difference at every length. */
    for (size_t la = 0; la < 20; la++)
        for (size_t ls = 0; ls < 20; ls++)
            assert_int_equal(pdw__ct_equal(s, la, s, ls), la == ls);
    for (size_t len = 1; len < 20; len++)
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                memcpy(a, s, sizeof a);
                a[i] = (unsigned char)(a[i] ^ (1u << bit));
                assert_int_equal(pdw__ct_equal(a, len, s, len), 0);
            }
    /* Bytes are raw: 0x00 and 0xFF compare like any other. */
    assert_int_equal(pdw__ct_equal("\xff\x00", 2, "\xff\x00", 2), 1);
    assert_int_equal(pdw__ct_equal("\xff\x00", 2, "\xfe\x00", 2), 0);
}

/* ---- Basic ---------------------------------------------------------------------------- */

static void basic_scheme_case_insensitive(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, hdr3("Basic ", "alice:s3cret", "")), 0);
    assert_int_equal(chk(a, hdr3("basic ", "alice:s3cret", "")), 0);
    assert_int_equal(chk(a, hdr3("BASIC ", "alice:s3cret", "")), 0);
    assert_int_equal(chk(a, hdr3("bAsIc ", "alice:s3cret", "")), 0);
    pdw__auth_free(a);
}

static void basic_spaces_and_tabs(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, hdr3("Basic    ", "alice:s3cret", "")), 0);
    assert_int_equal(chk(a, hdr3("   Basic ", "alice:s3cret", "   ")), 0);
    assert_int_equal(chk(a, hdr3("\tBasic ", "alice:s3cret", "\t")), 0);
    assert_int_equal(chk(a, hdr3(" \t Basic  ", "alice:s3cret", "\t \t")), 0);
    /* RFC 7235: scheme and token68 are separated by 1*SP; a tab there is refused. */
    assert_int_equal(chk(a, hdr3("Basic\t", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic \t", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    /* No separator at all. */
    assert_int_equal(chk(a, hdr3("Basic", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    /* Other white space is not optional white space. */
    assert_int_equal(chk(a, hdr3("\nBasic ", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic ", "alice:s3cret", "\r\n")), PDW_EAUTHMALFORMED);
    /* The length argument is honoured: bytes past it are not looked at. */
    const char *h = basic("alice:s3cret");
    char longer[128];
    snprintf(longer, sizeof longer, "%sGARBAGE", h);
    assert_int_equal(pdw__auth_check(a, longer, strlen(h), NULL, 0), 0);
    assert_int_equal(pdw__auth_check(a, longer, strlen(longer), NULL, 0), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

static void basic_missing_or_empty(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, NULL), PDW_EAUTHMISSING);
    assert_int_equal(pdw__auth_check(a, NULL, 99, "token=x", 7), PDW_EAUTHMISSING);
    assert_int_equal(chk(a, ""), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "   "), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Basic"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Basic "), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Basic     "), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "basic\t"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Basi"), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

static void basic_other_schemes_and_fields(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, hdr3("Bearer ", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Digest username=\"alice\", realm=\"x\""), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basicx ", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("XBasic ", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic Basic ", "alice:s3cret", "")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic ", "alice:s3cret", " extra")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic ", "alice:s3cret", ",")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic ", "alice:s3cret", ", realm=\"x\"")),
                     PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, hdr3("Basic realm=\"x\", ", "alice:s3cret", "")),
                     PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

static void basic_bad_base64(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    /* "alice:s3cret" is "YWxpY2U6czNjcmV0" */
    assert_string_equal(basic("alice:s3cret"), "Basic YWxpY2U6czNjcmV0");
    assert_int_equal(chk(a, "Basic YWxpY2U6czNjcmV0"), 0);
    assert_int_equal(chk(a, "Basic YWxpY2U6czNjcmV"), PDW_EAUTHMALFORMED);   /* length */
    assert_int_equal(chk(a, "Basic YWxpY2U6czNjcmV0="), PDW_EAUTHMALFORMED); /* padding */
    assert_int_equal(chk(a, "Basic YWxpY2U6czNj-mV0"), PDW_EAUTHMALFORMED);  /* url-safe */
    assert_int_equal(chk(a, "Basic YWxpY2U6 czNjcmV0"), PDW_EAUTHMALFORMED); /* space */
    /* "alice:s3cre" canonical is "YWxpY2U6czNjcmU=", "YWxpY2U6czNjcmV=" is not. */
    assert_int_equal(chk(a, "Basic YWxpY2U6czNjcmV="), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, "Basic YWxpY2U6czNjcmU="), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

/* The canonical-text fast path and the decoding path give one verdict: for random pairs
 * (lengths 1..40, every length mod 3), the canonical header is accepted, and each value
 * made by changing one character of it gets exactly the verdict a decode-and-compare
 * reference gives (0 only when it still decodes to the pair). */
static void basic_fast_path_agrees_with_decoding(void **state)
{
    (void)state;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    unsigned long long rng = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 200; round++) {
        char user[41], pw[41], joined[83], hdr[200];
        size_t ul = 1 + (size_t)(round % 40), pl = 1 + (size_t)((round * 7) % 40);
        for (size_t i = 0; i < ul; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            char c = (char)(0x20 + (rng >> 33) % 0x5F);
            user[i] = c == ':' ? 'u' : c;
        }
        for (size_t i = 0; i < pl; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            pw[i] = (char)(0x20 + (rng >> 33) % 0x5F); /* ':' allowed */
        }
        user[ul] = pw[pl] = '\0';
        pdw_credential c[2] = { { "other", "pair" }, { user, pw } };
        pdw__auth *a = new_basic(c, 2);
        snprintf(joined, sizeof joined, "%s:%s", user, pw);
        memcpy(hdr, "Basic ", 6);
        size_t n = b64_encode(joined, strlen(joined), hdr + 6);
        assert_int_equal(chk(a, hdr), 0);
        for (size_t at = 6; at < 6 + n; at++) {
            char orig = hdr[at];
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            char sub = abc[(rng >> 33) % (sizeof abc - 1)];
            if (sub == orig)
                continue;
            hdr[at] = sub;
            unsigned char d[128];
            long dl = pdw__base64_decode(hdr + 6, n, d);
            int want;
            if (dl < 0 || !memchr(d, ':', (size_t)dl))
                want = PDW_EAUTHMALFORMED;
            else if ((size_t)dl == strlen(joined) && memcmp(d, joined, (size_t)dl) == 0)
                want = 0;
            else
                want = PDW_EAUTHWRONG;
            assert_int_equal(chk(a, hdr), want);
            hdr[at] = orig;
        }
        pdw__auth_free(a);
    }
}

static void basic_no_colon(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, basic("alices3cret")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, basic("alice")), PDW_EAUTHMALFORMED);
    assert_int_equal(chk(a, basic("a")), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

static void basic_empty_user_or_password(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, basic(":s3cret")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("alice:")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic(":")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("::")), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void basic_password_with_colon(void **state)
{
    (void)state;
    static const pdw_credential c[] = { { "alice", "pa:ss:word:" } };
    pdw__auth *a = new_basic(c, 1);
    assert_int_equal(chk(a, basic("alice:pa:ss:word:")), 0);
    assert_int_equal(chk(a, basic("alice:pa:ss:word")), PDW_EAUTHWRONG);
    /* The user ends at the FIRST colon: "alice:pa" is not a user. */
    assert_int_equal(chk(a, basic("alice:pa:ss:word:x")), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void basic_utf8(void **state)
{
    (void)state;
    static const pdw_credential c[] = { { "j\xc3\xbcrgen", "p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x94\x91" } };
    pdw__auth *a = new_basic(c, 1);
    assert_int_equal(chk(a, basic("j\xc3\xbcrgen:p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x94\x91")), 0);
    /* Raw bytes, no normalisation: Latin-1 'ü' or a decomposed form do not match. */
    assert_int_equal(chk(a, basic("j\xfcrgen:p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x94\x91")),
                     PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("ju\xcc\x88rgen:p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x94\x91")),
                     PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("j\xc3\xbcrgen:p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x94\x92")),
                     PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void basic_wrong_user_or_password(void **state)
{
    (void)state;
    pdw__auth *a = new_basic(alice, 1);
    assert_int_equal(chk(a, basic("alice:s3cret")), 0);
    assert_int_equal(chk(a, basic("bob:s3cret")), PDW_EAUTHWRONG);   /* wrong user */
    assert_int_equal(chk(a, basic("alice:secret")), PDW_EAUTHWRONG); /* wrong password */
    assert_int_equal(chk(a, basic("bob:nope")), PDW_EAUTHWRONG);     /* both wrong */
    assert_int_equal(chk(a, basic("Alice:s3cret")), PDW_EAUTHWRONG); /* case matters */
    assert_int_equal(chk(a, basic("alice:S3cret")), PDW_EAUTHWRONG);
    /* Wrong lengths: prefixes and extensions of the right values. */
    assert_int_equal(chk(a, basic("alic:s3cret")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("alicee:s3cret")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("alice:s3cre")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("alice:s3cret!")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("alice:s3cret ")), PDW_EAUTHWRONG);
    /* An embedded NUL is a byte like any other. */
    char cred[] = "alice:s3cret\0x";
    char h[64] = "Basic ";
    b64_encode(cred, sizeof cred - 1, h + 6);
    assert_int_equal(chk(a, h), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void basic_rotation_several_pairs(void **state)
{
    (void)state;
    static const pdw_credential c[] = {
        { "alice", "one" }, { "bob", "two2" }, { "carol", "three" }, { "alice", "four" },
    };
    pdw__auth *a = new_basic(c, 4);
    assert_int_equal(pdw__auth_has_basic(a), 1);
    assert_int_equal(chk(a, basic("alice:one")), 0);
    assert_int_equal(chk(a, basic("bob:two2")), 0);
    assert_int_equal(chk(a, basic("carol:three")), 0);
    assert_int_equal(chk(a, basic("alice:four")), 0); /* same user, rotated password */
    /* Mixed pairs: a user of one pair with the password of another. */
    assert_int_equal(chk(a, basic("alice:two2")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("bob:one")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("carol:four")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("bob:three")), PDW_EAUTHWRONG);
    assert_int_equal(chk(a, basic("dave:one")), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void basic_header_size_limit(void **state)
{
    (void)state;
    /* user "u" + ':' + 3064 bytes = 3066 decoded = 4088 base64, header 6 + 4088 = 4094. */
    static char pw[3065];
    memset(pw, 'p', 3064);
    pw[3064] = '\0';
    pdw_credential c[] = { { "u", pw } };
    pdw__auth *a = new_basic(c, 1);
    static char cred[3100];
    snprintf(cred, sizeof cred, "u:%s", pw);
    assert_int_equal(strlen(basic(cred)), 4094);
    assert_int_equal(chk(a, basic(cred)), 0);
    assert_int_equal(chk(a, hdr3("Basic ", cred, "  ")), 0);          /* 4096 bytes */
    assert_int_equal(chk(a, hdr3("Basic ", cred, "   ")), PDW_EAUTHMALFORMED); /* 4097 */
    assert_int_equal(chk(a, hdr3("Basic   ", cred, "     ")), PDW_EAUTHMALFORMED);
    /* Far over: 8 KiB of valid base64 is refused without decoding out of bounds. */
    static char big[9000];
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', 8192);
    big[6 + 8192] = '\0';
    assert_int_equal(chk(a, big), PDW_EAUTHMALFORMED);
    /* Largest token68 that fits: 4088 characters of 'A' decode (to zeros, no colon). */
    big[6 + 4088] = '\0';
    assert_int_equal(chk(a, big), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

/* ---- query token ----------------------------------------------------------------------- */

static void token_present_absent(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc123", NULL);
    assert_int_equal(pdw__auth_has_basic(a), 0);
    assert_int_equal(chk_q(a, "token=abc123"), 0);
    assert_int_equal(chk_q(a, NULL), PDW_EAUTHMISSING);
    assert_int_equal(pdw__auth_check(a, NULL, 0, NULL, 12), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, ""), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "&&"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "other=abc123"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "tokens=abc123"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "xtoken=abc123"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "Token=abc123"), PDW_EAUTHMISSING); /* names are raw */
    assert_int_equal(chk_q(a, "%74oken=abc123"), PDW_EAUTHMISSING);
    /* Present without a value, or with an empty one: cannot match. */
    assert_int_equal(chk_q(a, "token"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token="), PDW_EAUTHWRONG);
    /* An Authorization header does not replace the token. */
    const char *h = basic("token:abc123");
    assert_int_equal(pdw__auth_check(a, h, strlen(h), NULL, 0), PDW_EAUTHMISSING);
    /* The query length is honoured. */
    assert_int_equal(pdw__auth_check(a, NULL, 0, "token=abc123&x", 12), 0);
    assert_int_equal(pdw__auth_check(a, NULL, 0, "token=abc1234", 12), 0);
    assert_int_equal(pdw__auth_check(a, NULL, 0, "token=abc123", 11), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void token_duplicated(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc123", NULL);
    assert_int_equal(chk_q(a, "token=abc123&token=abc123"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk_q(a, "token=abc123&token=wrong"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk_q(a, "token=wrong&x=1&token=abc123"), PDW_EAUTHMALFORMED);
    assert_int_equal(chk_q(a, "token&token=abc123"), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);
}

static void token_percent_encoded(void **state)
{
    (void)state;
    pdw__auth *a = new_token("a b/c+d%e=f&g", NULL);
    assert_int_equal(chk_q(a, "token=a+b%2Fc%2Bd%25e%3Df%26g"), 0);
    assert_int_equal(chk_q(a, "token=a%20b%2fc%2bd%25e%3df%26g"), 0);  /* lower-case hex */
    assert_int_equal(chk_q(a, "token=%61%20%62/c%2Bd%25e=f%26g"), 0); /* raw '=' and '/' ok */
    /* '+' is a space, so a literal '+' must be escaped. */
    assert_int_equal(chk_q(a, "token=a+b%2Fc+d%25e%3Df%26g"), PDW_EAUTHWRONG);
    /* An unescaped '&' ends the value. */
    assert_int_equal(chk_q(a, "token=a+b%2Fc%2Bd%25e%3Df&g"), PDW_EAUTHWRONG);
    pdw__auth_free(a);

    /* Plus to space in a token made of spaces. */
    a = new_token("two words", NULL);
    assert_int_equal(chk_q(a, "token=two+words"), 0);
    assert_int_equal(chk_q(a, "token=two%20words"), 0);
    assert_int_equal(chk_q(a, "token=two%2Bwords"), PDW_EAUTHWRONG);
    pdw__auth_free(a);

    /* UTF-8 token, percent-encoded byte by byte. */
    a = new_token("cl\xc3\xa9", NULL);
    assert_int_equal(chk_q(a, "token=cl%C3%A9"), 0);
    assert_int_equal(chk_q(a, "token=cl\xc3\xa9"), 0);
    assert_int_equal(chk_q(a, "token=cl%E9"), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void token_bad_escape(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc", NULL);
    static const char *const bad[] = { "token=%",      "token=%2",     "token=abc%",
                                       "token=ab%c",   "token=%zz",    "token=%2g",
                                       "token=%g2",    "token=a%%20",  "token=abc%2&x=1",
                                       "token=%-1bc",  "token=% 1abc", "x=1&token=%4" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = chk_q(a, bad[i]);
        if (rc != PDW_EAUTHMALFORMED)
            fail_msg("\"%s\": %d", bad[i], rc);
    }
    /* A bad escape elsewhere in the query is none of our business. */
    assert_int_equal(chk_q(a, "x=%zz&token=abc"), 0);
    pdw__auth_free(a);
}

static void token_wrong(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc123", NULL);
    assert_int_equal(chk_q(a, "token=abc124"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token=ABC123"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token=abc12"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token=abc1234"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token=abc123%00"), PDW_EAUTHWRONG);
    assert_int_equal(chk_q(a, "token=+abc123"), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void token_among_other_params(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc123", NULL);
    assert_int_equal(chk_q(a, "a=1&token=abc123"), 0);
    assert_int_equal(chk_q(a, "token=abc123&b=2"), 0);
    assert_int_equal(chk_q(a, "a=1&token=abc123&b=2&c"), 0);
    assert_int_equal(chk_q(a, "&&token=abc123&&"), 0);
    assert_int_equal(chk_q(a, "x=token%3Dabc&token=abc123"), 0);
    assert_int_equal(chk_q(a, "x=token=zzz&token=abc123"), 0);
    assert_int_equal(chk_q(a, "=token&token=abc123"), 0);
    assert_int_equal(chk_q(a, "a=1&token=wrong&b=2"), PDW_EAUTHWRONG);
    pdw__auth_free(a);
}

static void token_custom_name(void **state)
{
    (void)state;
    pdw__auth *a = new_token("abc123", "pd.key-1_X");
    assert_int_equal(chk_q(a, "pd.key-1_X=abc123"), 0);
    assert_int_equal(chk_q(a, "a=b&pd.key-1_X=abc123"), 0);
    assert_int_equal(chk_q(a, "token=abc123"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "pd.key-1_x=abc123"), PDW_EAUTHMISSING);
    assert_int_equal(chk_q(a, "pd.key-1_X=abc123&pd.key-1_X=abc123"), PDW_EAUTHMALFORMED);
    pdw__auth_free(a);

    /* 64 characters is the longest name. */
    char name[65];
    memset(name, 'n', 64);
    name[64] = '\0';
    a = new_token("t", name);
    char q[128];
    snprintf(q, sizeof q, "%s=t", name);
    assert_int_equal(chk_q(a, q), 0);
    pdw__auth_free(a);
}

static void token_length_limit(void **state)
{
    (void)state;
    static char tok[1025], q[4000];
    memset(tok, 'k', 1024);
    tok[1024] = '\0';
    pdw__auth *a = new_token(tok, NULL);
    snprintf(q, sizeof q, "token=%s", tok);
    assert_int_equal(chk_q(a, q), 0);
    snprintf(q, sizeof q, "token=%sk", tok); /* 1025 bytes */
    assert_int_equal(chk_q(a, q), PDW_EAUTHMALFORMED);
    /* The limit is on the decoded value: 1024 escaped bytes are fine. */
    size_t o = (size_t)snprintf(q, sizeof q, "token=");
    for (int i = 0; i < 1024; i++)
        o += (size_t)snprintf(q + o, sizeof q - o, "%%6B");
    assert_int_equal(chk_q(a, q), 0);
    pdw__auth_free(a);

    /* A configured token over 1024 bytes could never match: refused. */
    static char toolong[1026];
    memset(toolong, 'k', 1025);
    pdw__auth *b = NULL;
    assert_int_equal(pdw__auth_new(&b, NULL, 0, toolong, NULL, NULL, NULL), PDW_EINVAL);
    assert_null(b);
}

/* ---- combinations ---------------------------------------------------------------------- */

static void both_configured(void **state)
{
    (void)state;
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, alice, 1, "tok", NULL, NULL, NULL), 0);
    assert_int_equal(pdw__auth_has_basic(a), 1);
    const char *good = basic("alice:s3cret");
    size_t gl = strlen(good);
    assert_int_equal(pdw__auth_check(a, good, gl, "token=tok", 9), 0);
    /* One passes, the other fails. */
    assert_int_equal(pdw__auth_check(a, good, gl, NULL, 0), PDW_EAUTHMISSING);
    assert_int_equal(pdw__auth_check(a, good, gl, "token=bad", 9), PDW_EAUTHWRONG);
    assert_int_equal(pdw__auth_check(a, good, gl, "token=%", 7), PDW_EAUTHMALFORMED);
    assert_int_equal(pdw__auth_check(a, NULL, 0, "token=tok", 9), PDW_EAUTHMISSING);
    char bad[64];
    snprintf(bad, sizeof bad, "%s", basic("alice:nope"));
    assert_int_equal(pdw__auth_check(a, bad, strlen(bad), "token=tok", 9), PDW_EAUTHWRONG);
    /* Both fail: the Basic failure is reported. */
    assert_int_equal(pdw__auth_check(a, bad, strlen(bad), NULL, 0), PDW_EAUTHWRONG);
    assert_int_equal(pdw__auth_check(a, "Bearer x", 8, "token=bad", 9), PDW_EAUTHMALFORMED);
    assert_int_equal(pdw__auth_check(a, NULL, 0, "token=%", 7), PDW_EAUTHMISSING);
    pdw__auth_free(a);
}

static void none_configured(void **state)
{
    (void)state;
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, NULL, 0, NULL, NULL, NULL, NULL), 0);
    assert_non_null(a);
    assert_int_equal(pdw__auth_has_basic(a), 0);
    assert_int_equal(pdw__auth_check(a, NULL, 0, NULL, 0), 0);
    assert_int_equal(pdw__auth_check(a, "Bearer x", 8, "token=%", 7), 0);
    pdw__auth_free(a);
    /* No auth object at all fails closed. */
    assert_int_equal(pdw__auth_check(NULL, NULL, 0, NULL, 0), PDW_EINVAL);
    assert_int_equal(pdw__auth_has_basic(NULL), 0);
    pdw__auth_free(NULL);
}

/* ---- configuration ---------------------------------------------------------------------- */

/* Expect PDW_EINVAL with a message that does not quote the secret. */
static void expect_einval(const pdw_credential *c, size_t n, const char *token,
                          const char *name, const char *secret)
{
    pdw__auth *a = (pdw__auth *)&a; /* must be reset to NULL */
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw__auth_new(&a, c, n, token, name, NULL, &err);
    assert_int_equal(rc, PDW_EINVAL);
    assert_int_equal(err.code, PDW_EINVAL);
    assert_null(a);
    assert_true(err.message[0] != '\0');
    if (secret && *secret && strstr(err.message, secret))
        fail_msg("message quotes the secret: %s", err.message);
    /* Without an error struct as well. */
    assert_int_equal(pdw__auth_new(&a, c, n, token, name, NULL, NULL), PDW_EINVAL);
    assert_null(a);
}

static void new_validation_errors(void **state)
{
    (void)state;
    {
        pdw_credential c[] = { { "", "Pw-Secret-1" } };
        expect_einval(c, 1, NULL, NULL, "Pw-Secret-1");
    }
    {
        pdw_credential c[] = { { "us:er", "Pw-Secret-2" } };
        expect_einval(c, 1, NULL, NULL, "Pw-Secret-2");
    }
    {
        pdw_credential c[] = { { "user", "" } };
        expect_einval(c, 1, NULL, NULL, NULL);
    }
    {
        pdw_credential c[] = { { "us\ner", "Pw-Secret-3" } };
        expect_einval(c, 1, NULL, NULL, "Pw-Secret-3");
    }
    {
        pdw_credential c[] = { { "user", "Pw-Secret-4\n" } };
        expect_einval(c, 1, NULL, NULL, "Pw-Secret-4");
    }
    {
        pdw_credential c[] = { { "user", "Pw-\x7fSecret-5" } };
        expect_einval(c, 1, NULL, NULL, "Secret-5");
    }
    {
        pdw_credential c[] = { { "user", "Pw\tSecret-6" } };
        expect_einval(c, 1, NULL, NULL, "Secret-6");
    }
    {
        pdw_credential c[] = { { NULL, "Pw-Secret-7" } };
        expect_einval(c, 1, NULL, NULL, "Pw-Secret-7");
    }
    {
        pdw_credential c[] = { { "user", NULL } };
        expect_einval(c, 1, NULL, NULL, NULL);
    }
    /* The failing pair is named by its index, and the good pairs are not quoted either. */
    {
        pdw_credential c[] = { { "a", "Good-Secret-1" }, { "b", "Good-Secret-2" },
                               { "c", "" } };
        pdw__auth *a = NULL;
        pdw_error err;
        pdw_error_clear(&err);
        assert_int_equal(pdw__auth_new(&a, c, 3, NULL, NULL, NULL, &err), PDW_EINVAL);
        assert_non_null(strstr(err.message, "2"));
        assert_null(strstr(err.message, "Good-Secret"));
    }
    expect_einval(NULL, 1, NULL, NULL, NULL);                   /* NULL array, n > 0 */
    expect_einval(alice, 1, "", NULL, "s3cret");                /* empty token */
    expect_einval(NULL, 0, "Tok-Secret\r", NULL, "Tok-Secret"); /* control in token */
    expect_einval(NULL, 0, "Tok\x01Secret", NULL, "Secret");
    /* Bad token names. */
    static char name65[66];
    memset(name65, 'n', 65);
    static const char *const names[] = { "", "a b", "a&b", "a=b", "t\xc3\xb6k", "a%20", "a+b",
                                         name65 };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        expect_einval(NULL, 0, "Tok-Secret", names[i], "Tok-Secret");
    /* Too long to fit in a 4096-byte header. */
    {
        static char pw[3066];
        memset(pw, 'p', 3065);
        pdw_credential c[] = { { "u", pw } };
        expect_einval(c, 1, NULL, NULL, pw);
    }
    /* Bad arguments. */
    assert_int_equal(pdw__auth_new(NULL, alice, 1, NULL, NULL, NULL, NULL), PDW_EINVAL);
    pdw_allocator half = { c_malloc, NULL, c_free, NULL };
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, alice, 1, NULL, NULL, &half, NULL), PDW_EINVAL);
    assert_null(a);
}

static void new_valid_edge_cases(void **state)
{
    (void)state;
    /* Spaces, non-ASCII, and every printable punctuation are allowed in user/password. */
    static const pdw_credential c[] = {
        { "first last", " !\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~ " },
        { "\xe2\x82\xac", "\xff\xfe" }, /* raw bytes: not validated as UTF-8 */
    };
    pdw__auth *a = new_basic(c, 2);
    assert_int_equal(chk(a, basic("first last: !\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~ ")), 0);
    assert_int_equal(chk(a, basic("\xe2\x82\xac:\xff\xfe")), 0);
    pdw__auth_free(a);
    /* The configuration is copied: changing the caller's strings changes nothing. */
    char user[] = "alice", pw[] = "s3cret", tok[] = "tok";
    pdw_credential mine[] = { { user, pw } };
    assert_int_equal(pdw__auth_new(&a, mine, 1, tok, NULL, NULL, NULL), 0);
    memset(pw, 'x', 6);
    memset(tok, 'x', 3);
    const char *h = basic("alice:s3cret");
    assert_int_equal(pdw__auth_check(a, h, strlen(h), "token=tok", 9), 0);
    pdw__auth_free(a);
}

static void new_alloc_failure_sweep(void **state)
{
    (void)state;
    static const pdw_credential c[] = { { "alice", "one" }, { "bob", "two" },
                                        { "carol", "three" } };
    counting cnt;
    pdw_allocator al = { c_malloc, c_realloc, c_free, &cnt };
    size_t n;
    for (n = 1; n < 100; n++) {
        memset(&cnt, 0, sizeof cnt);
        cnt.fail_at = n;
        pdw__auth *a = (pdw__auth *)&a;
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw__auth_new(&a, c, 3, "tok", "key", &al, &err);
        if (rc == 0) {
            assert_non_null(a);
            assert_true(cnt.live > 0);
            /* The copies live in the custom allocator and work. */
            const char *h = basic("bob:two");
            assert_int_equal(pdw__auth_check(a, h, strlen(h), "key=tok", 7), 0);
            pdw__auth_free(a);
            assert_int_equal(cnt.live, 0);
            break;
        }
        assert_int_equal(rc, PDW_ENOMEM);
        assert_int_equal(err.code, PDW_ENOMEM);
        assert_null(a);
        assert_int_equal(cnt.live, 0); /* nothing leaked */
    }
    assert_true(n > 1);
    assert_true(n < 100);
    /* Same without the token and without credentials. */
    for (n = 1; n < 100; n++) {
        memset(&cnt, 0, sizeof cnt);
        cnt.fail_at = n;
        pdw__auth *a = NULL;
        int rc = pdw__auth_new(&a, NULL, 0, "tok", NULL, &al, NULL);
        if (rc == 0) {
            pdw__auth_free(a);
            assert_int_equal(cnt.live, 0);
            break;
        }
        assert_int_equal(rc, PDW_ENOMEM);
        assert_null(a);
        assert_int_equal(cnt.live, 0);
    }
    assert_true(n > 1);
}

static void free_wipes_secrets(void **state)
{
    (void)state;
    static const pdw_credential c[] = { { "alice", "Wipe-Me-Password" },
                                        { "bob", "Wipe-Me-Password-2" } };
    counting cnt;
    pdw_allocator al = { c_malloc, c_realloc, c_free, &cnt };
    memset(&cnt, 0, sizeof cnt);
    pdw__auth *a = NULL;
    assert_int_equal(pdw__auth_new(&a, c, 2, "Wipe-Me-Token", NULL, &al, NULL), 0);
    cnt.needle = "Wipe-Me";
    pdw__auth_free(a);
    assert_int_equal(cnt.live, 0);
    assert_int_equal(cnt.needle_hits, 0);
    /* The user names are wiped too. */
    memset(&cnt, 0, sizeof cnt);
    assert_int_equal(pdw__auth_new(&a, c, 2, NULL, NULL, &al, NULL), 0);
    cnt.needle = "alice";
    pdw__auth_free(a);
    assert_int_equal(cnt.needle_hits, 0);
    /* Sanity check of the checker: a block still holding the needle is seen. */
    memset(&cnt, 0, sizeof cnt);
    char *p = c_malloc(16, &cnt);
    memcpy(p, "xxWipe-Me", 10);
    cnt.needle = "Wipe-Me";
    c_free(p, &cnt);
    assert_int_equal(cnt.needle_hits, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_rfc4648_vectors),
        cmocka_unit_test(base64_padding_errors),
        cmocka_unit_test(base64_bad_characters),
        cmocka_unit_test(base64_noncanonical_bits),
        cmocka_unit_test(base64_whitespace),
        cmocka_unit_test(ct_equal_truth_table),
        cmocka_unit_test(basic_scheme_case_insensitive),
        cmocka_unit_test(basic_spaces_and_tabs),
        cmocka_unit_test(basic_missing_or_empty),
        cmocka_unit_test(basic_other_schemes_and_fields),
        cmocka_unit_test(basic_bad_base64),
        cmocka_unit_test(basic_fast_path_agrees_with_decoding),
        cmocka_unit_test(basic_no_colon),
        cmocka_unit_test(basic_empty_user_or_password),
        cmocka_unit_test(basic_password_with_colon),
        cmocka_unit_test(basic_utf8),
        cmocka_unit_test(basic_wrong_user_or_password),
        cmocka_unit_test(basic_rotation_several_pairs),
        cmocka_unit_test(basic_header_size_limit),
        cmocka_unit_test(token_present_absent),
        cmocka_unit_test(token_duplicated),
        cmocka_unit_test(token_percent_encoded),
        cmocka_unit_test(token_bad_escape),
        cmocka_unit_test(token_wrong),
        cmocka_unit_test(token_among_other_params),
        cmocka_unit_test(token_custom_name),
        cmocka_unit_test(token_length_limit),
        cmocka_unit_test(both_configured),
        cmocka_unit_test(none_configured),
        cmocka_unit_test(new_validation_errors),
        cmocka_unit_test(new_valid_edge_cases),
        cmocka_unit_test(new_alloc_failure_sweep),
        cmocka_unit_test(free_wipes_secrets),
    };
    PDW_RUN_GROUP(tests);
}
