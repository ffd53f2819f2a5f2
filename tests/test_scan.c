/* Tests of the validating scanner (lib/scan.c): every verdict is cross-checked with
 * jansson's json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY), the contract of scan.h. */
#include "pdw_test.h"

#include <dirent.h>
#include <jansson.h>

#include "core/core.h"

#define JFLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

/* ---- helpers ------------------------------------------------------------------------ */

/* Printable form of an input for failure messages (truncated). */
static const char *show(const char *s, size_t n)
{
    static char out[600];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, sizeof out - k, "\\x%02x", c);
    }
    if (k + 8 >= sizeof out)
        k += (size_t)snprintf(out + k, sizeof out - k, "...");
    out[k] = '\0';
    return out;
}

/* The verdict the scanner must give: jansson's (1 accepted, 0 rejected; *is_obj = top
 * level is an object), except that a raw NUL byte is never accepted. jansson drops a NUL
 * right after a number or literal (`{"a":1\0}`); the scanner refuses it (JSONTestSuite
 * n_multidigit_number_then_00, docs/DECISIONS.md). Anywhere else jansson refuses a NUL
 * too, so "jansson accepts and there is no NUL" is exactly the scanner's contract. */
static int jansson_ok(const char *s, size_t n, int *is_obj)
{
    json_error_t e;
    json_t *j = json_loadb(s, n, JFLAGS, &e);
    int ok = j != NULL && memchr(s, '\0', n) == NULL;
    if (is_obj)
        *is_obj = ok && json_is_object(j);
    json_decref(j);
    return ok;
}

/* jansson itself, quirk included (to show where the scanner is stricter). */
static int jansson_raw_ok(const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JFLAGS, NULL);
    json_decref(j);
    return j != NULL;
}

static int scan_rc(const char *s, size_t n, unsigned depth)
{
    pdw__scan sc;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw__scan_body(&sc, s, n, depth, NULL, &err);
    /* err is filled exactly when the scan fails, with the same code */
    if (rc != err.code)
        return 12345;
    if (rc && (err.offset < 0 || (size_t)err.offset > n || err.message[0] == '\0'))
        return 12346;
    return rc;
}

/* The scanner and jansson agree on s (max_depth 2048 = jansson's own limit). Returns 1. */
static int agrees(const char *s, size_t n)
{
    int is_obj;
    int jok = jansson_ok(s, n, &is_obj);
    int rc = scan_rc(s, n, 2048);
    if (jok)
        return is_obj ? rc == 0 : rc == PDW_ENOTOBJECT;
    return rc == PDW_EJSON || rc == PDW_EUTF8 || rc == PDW_EDEPTH || rc == PDW_EDUPKEY;
}

/* A counting allocator that can fail its Nth call. */
typedef struct count_alloc {
    long calls;     /* malloc + realloc calls */
    long fail_at;   /* 1-based call number to fail; 0 = never */
    long live;      /* blocks outstanding */
} count_alloc;

static void *ca_malloc(size_t n, void *u)
{
    count_alloc *c = u;
    if (++c->calls == c->fail_at)
        return NULL;
    void *p = malloc(n);
    if (p)
        c->live++;
    return p;
}

static void *ca_realloc(void *p, size_t n, void *u)
{
    count_alloc *c = u;
    if (++c->calls == c->fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        c->live++;
    return q;
}

static void ca_free(void *p, void *u)
{
    count_alloc *c = u;
    c->live--;
    free(p);
}

/* A growable byte buffer for building inputs. */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void b_add(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap : 64);
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        assert_non_null(np);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void b_str(buf *b, const char *s)
{
    b_add(b, s, strlen(s));
}

static void b_rep(buf *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        b_str(b, s);
}

/* The full JSON text of a scanned value (strings include their quotes). */
static json_t *val_dom(const pdw__val *v)
{
    json_error_t e;
    if (v->type == PDW__J_STRING)
        return json_loadb(v->p - 1, v->len + 2, JFLAGS, &e);
    return json_loadb(v->p, v->len, JFLAGS, &e);
}

/* v (a scanned member) matches jansson's member j (NULL = absent). */
static void check_val(const pdw__val *v, json_t *j, const char *what)
{
    if (!j) {
        if (v->type != PDW__J_ABSENT)
            fail_msg("%s: present in scan, absent in jansson", what);
        return;
    }
    static const int map[] = { [JSON_OBJECT] = PDW__J_OBJECT, [JSON_ARRAY] = PDW__J_ARRAY,
                               [JSON_STRING] = PDW__J_STRING, [JSON_INTEGER] = PDW__J_NUMBER,
                               [JSON_REAL] = PDW__J_NUMBER, [JSON_TRUE] = PDW__J_TRUE,
                               [JSON_FALSE] = PDW__J_FALSE, [JSON_NULL] = PDW__J_NULL };
    if (v->type != map[json_typeof(j)])
        fail_msg("%s: type %d, jansson type %d", what, v->type, (int)json_typeof(j));
    if (json_is_number(j) && v->is_int != json_is_integer(j))
        fail_msg("%s: is_int %d disagrees", what, v->is_int);
    json_t *mine = val_dom(v);
    if (!mine || !json_equal(mine, j))
        fail_msg("%s: span does not hold jansson's value", what);
    json_decref(mine);
    if (json_is_string(j)) {
        char tmp[8192];
        long n = pdw__str_decode(v, tmp, sizeof tmp);
        if (n < 0 || (size_t)n != json_string_length(j) ||
            memcmp(tmp, json_string_value(j), (size_t)n) != 0)
            fail_msg("%s: decoded string differs", what);
        if (!pdw__str_eq(v, json_string_value(j)))
            fail_msg("%s: str_eq differs", what);
        if (v->escaped != (memchr(v->p, '\\', v->len) != NULL))
            fail_msg("%s: escaped flag wrong", what);
    }
    if (json_is_integer(j)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        /* the span is the integer's text as written (jansson prints -0 as 0) */
        if (!(v->len == strlen(tmp) && memcmp(v->p, tmp, v->len) == 0) &&
            !(v->len == 2 && memcmp(v->p, "-0", 2) == 0))
            fail_msg("%s: integer text differs", what);
    }
}

#define TOP_FIELDS(X) X(v) X(event) X(retry) X(meta) X(current) X(previous) X(data)
#define META_FIELDS(X)                                                                        \
    X(v) X(version) X(action) X(object) X(entity) X(id) X(entity_id) X(company_id)             \
    X(user_id) X(webhook_id) X(correlation_id) X(change_source) X(timestamp)                  \
    X(timestamp_micro) X(timestamp_milli) X(attempt) X(is_bulk_update) X(is_bulk_edit)        \
    X(merged_from_id) X(merged_to_id)

/* Every extracted field of sc agrees with jansson's DOM of the same body. */
static void check_fields(const pdw__scan *sc, json_t *root, const char *name)
{
    char what[300];
#define CHK_TOP(f)                                                                            \
    snprintf(what, sizeof what, "%s: " #f, name);                                             \
    check_val(&sc->f, json_object_get(root, #f), what);
    TOP_FIELDS(CHK_TOP)
#undef CHK_TOP
    json_t *meta = json_object_get(root, "meta");
    if (!json_is_object(meta))
        meta = NULL;
#define CHK_META(f)                                                                           \
    snprintf(what, sizeof what, "%s: meta." #f, name);                                        \
    check_val(&sc->m_##f, meta ? json_object_get(meta, #f) : NULL, what);
    META_FIELDS(CHK_META)
#undef CHK_META
}

/* All files of tests/fixtures, read into memory. */
typedef struct fixture {
    char name[256];
    char *data;
    size_t len;
} fixture;

static size_t load_fixtures(fixture **out)
{
    DIR *d = opendir(PDW_FIXTURES);
    assert_non_null(d);
    size_t n = 0, cap = 0;
    fixture *f = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            f = realloc(f, cap * sizeof *f);
            assert_non_null(f);
        }
        snprintf(f[n].name, sizeof f[n].name, "%s", e->d_name);
        f[n].data = pdw_test_fixture(e->d_name, &f[n].len);
        assert_non_null(f[n].data);
        n++;
    }
    closedir(d);
    *out = f;
    return n;
}

static void free_fixtures(fixture *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].data);
    free(f);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static void test_fixtures_agree_with_jansson(void **state)
{
    (void)state;
    fixture *f;
    size_t n = load_fixtures(&f);
    size_t valid = 0, invalid = 0;
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        json_error_t e;
        json_t *root = json_loadb(f[i].data, f[i].len, JFLAGS, &e);
        pdw__scan sc;
        pdw_error err;
        pdw_error_clear(&err);
        count_alloc ca = { 0, 0, 0 };
        pdw_allocator a = { ca_malloc, ca_realloc, ca_free, &ca };
        int rc = pdw__scan_body(&sc, f[i].data, f[i].len, 0, &a, &err);
        if (!root) {
            if (rc == 0 || rc == PDW_ENOTOBJECT)
                fail_msg("%s: scanner accepts, jansson rejects: %s", f[i].name, e.text);
            invalid++;
            continue;
        }
        if (rc != (json_is_object(root) ? 0 : PDW_ENOTOBJECT))
            fail_msg("%s: scanner rc %d (%s at %lld), jansson accepts", f[i].name, rc,
                     err.message, err.offset);
        if (rc == 0) {
            valid++;
            check_fields(&sc, root, f[i].name);
            /* ordinary bodies never allocate */
            assert_int_equal(ca.calls, 0);
            /* the routing fields every real fixture has */
            assert_int_equal(sc.meta.type, PDW__J_OBJECT);
            json_t *meta = json_object_get(root, "meta");
            json_t *act = json_object_get(meta, "action");
            assert_true(pdw__str_eq(&sc.m_action, json_string_value(act)));
            json_t *id = json_object_get(meta, "id");
            if (json_is_string(id)) {
                char tmp[128];
                assert_true(pdw__str_decode(&sc.m_id, tmp, sizeof tmp) >= 0);
                assert_string_equal(tmp, json_string_value(id));
            } else if (json_is_integer(id)) {
                char tmp[32];
                snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
                assert_int_equal(sc.m_id.len, strlen(tmp));
                assert_memory_equal(sc.m_id.p, tmp, sc.m_id.len);
            }
        }
        json_decref(root);
    }
    /* the corpus has both kinds (v2-create.deal-pipedream.txt is invalid) */
    assert_true(valid >= 40);
    assert_true(invalid >= 1);
    free_fixtures(f, n);
}

/* ---- the hand-written corpus ------------------------------------------------------------ */

typedef struct ccase {
    const char *s;
    size_t n;
    int code; /* expected with the default max_depth */
} ccase;

#define C(lit, code) { lit, sizeof(lit) - 1, code }
#define OK 0
#define EJ PDW_EJSON
#define EU PDW_EUTF8
#define ED PDW_EDUPKEY
#define EN PDW_ENOTOBJECT
#define EDP PDW_EDEPTH

static const ccase corpus[] = {
    /* valid objects */
    C("{}", OK), C("{\"a\":1}", OK), C(" \t\r\n{ \"a\" : 1 } \n\t\r ", OK),
    C("{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":true,\"e\":false}}", OK),
    C("{\"\":0}", OK), C("{\"a\":\"\"}", OK), C("{\"a\":[]}", OK), C("{\"a\":{}}", OK),
    C("{\"a\":-0}", OK), C("{\"a\":-0.0}", OK), C("{\"a\":0.5e-3}", OK),
    C("{\"a\":1E+2}", OK), C("{\"a\":1e-2}", OK), C("{\"a\":123456789}", OK),
    C("{\"a\":9223372036854775807}", OK), C("{\"a\":-9223372036854775808}", OK),
    C("{\"a\":1e-400}", OK), C("{\"a\":4e-320}", OK), C("{\"a\":1.7976931348623157e308}", OK),
    C("{\"a\":0e99999999999999999999}", OK), C("{\"a\":1e-99999999999999999999}", OK),
    C("{\"a\":0.00e400}", OK), C("{\"a\":1.797693134862315807937289714052e308}", OK),
    C("{\"a\":0.0000000000000000000000000000000000000000000001e353}", OK),
    C("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", OK), C("{\"a\":\"\\u0041\\u00e9\\u20AC\"}", OK),
    C("{\"a\":\"\\uD83D\\uDE00\"}", OK), C("{\"a\":\"\\uDBFF\\uDFFF\"}", OK),
    C("{\"a\":\"\\uabcd\"}", OK), C("{\"a\":\"\x7f\"}", OK),
    C("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", OK),
    C("{\"\xc3\xa9\":\"\xef\xbf\xbf\"}", OK), C("{\"a\":\"\xf4\x8f\xbf\xbf\"}", OK),
    C("{\"a\":\"\xed\x9f\xbf\xee\x80\x80\"}", OK),
    C("{\"a\":1,\"b\":1,\"A\":1,\"a \":1}", OK), C("{\"a\":{\"a\":{\"a\":1}}}", OK),
    C("{\"a\":1,\"b\":{\"a\":2}}", OK), C("{\"x\":[{\"a\":1},{\"a\":1}]}", OK),
    C("{\"ab\":1,\"a\\u0062c\":2}", OK), C("{\"a\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}", OK),
    /* a NUL after a number or literal: jansson drops it, the scanner refuses it
     * (test_jansson_nul_quirk checks that jansson does accept these) */
    C("{\"a\":1\0}", EJ), C("{\"a\":true\0}", EJ), C("{\"a\":1.5\0 }", EJ),
    C("{\"a\":[null\0,false\0]}", EJ), C("{\"a\":-0\0}", EJ), C("{\"a\":1e5\0}", EJ),
    C("123\0", EJ),
    /* valid but not an object */
    C("[]", EN), C("[1,2]", EN), C("1", EN), C("-0", EN), C("\"x\"", EN), C("true", EN),
    C("false", EN), C("null", EN), C(" 5 ", EN), C("\"\\uD800\\uDC00\"", EN), C("true\0", EJ),
    C("[1\0,2]", EJ), C("1e-400", EN), C("[{\"a\":1}]", EN),
    /* empty, white space, BOM, NUL */
    C("", EJ), C(" ", EJ), C("\n\t\r ", EJ), C("\xef\xbb\xbf{}", EJ), C("\0", EJ),
    C("\0{}", EJ), C("{}\0", EJ), C("{\"a\":\"x\"\0}", EJ), C("{\"a\":1\0\0}", EJ),
    C("{\"a\":1 \0}", EJ), C("{\"a\":[]\0}", EJ), C("{\"a\0\":1}", EJ), C("{\"\0\":1}", EJ),
    C("{\"a\":\"x\0y\"}", EJ), C("{\0\"a\":1}", EJ), C("{\"a\"\0:1}", EJ), C("{\"a\":\0 1}", EJ),
    C("nul\0l", EJ), C("\f{}", EJ), C("{}\f", EJ), C("\v{}", EJ), C("{}\xc2\xa0", EJ),
    /* truncated */
    C("{", EJ), C("{\"a\"", EJ), C("{\"a\":", EJ), C("{\"a\":1", EJ), C("{\"a\":1,", EJ),
    C("{\"a", EJ), C("{\"a\":\"b", EJ), C("{\"a\":\"b\\", EJ), C("{\"a\":\"\\u12", EJ),
    C("{\"a\":[1,2", EJ), C("{\"a\":tru", EJ), C("{\"a\":-", EJ), C("{\"a\":1.", EJ),
    C("{\"a\":1e", EJ), C("{\"a\":1e+", EJ), C("[", EJ),
    /* trailing garbage / commas / structure */
    C("{}{}", EJ), C("{} x", EJ), C("{\"a\":1}}", EJ), C("{\"a\":1}]", EJ), C("{},", EJ),
    C("{\"a\":1,}", EJ), C("{\"a\":[1,]}", EJ), C("{,}", EJ), C("{\"a\":[,1]}", EJ),
    C("{\"a\" 1}", EJ), C("{\"a\":1 \"b\":2}", EJ), C("{\"a\"::1}", EJ), C("{a:1}", EJ),
    C("{'a':1}", EJ), C("{\"a\":1;\"b\":2}", EJ), C("{1:1}", EJ), C("{\"a\":[1 2]}", EJ),
    C("{\"a\":{]}", EJ), C("{\"a\":[}", EJ), C("{\"a\":1]", EJ), C("[1}", EJ),
    C("1 x", EJ), C("1 2", EJ), C("{\"a\":1,,\"b\":2}", EJ), C("{\"a\":/*c*/1}", EJ),
    /* numbers */
    C("{\"a\":01}", EJ), C("{\"a\":00}", EJ), C("{\"a\":-01}", EJ), C("{\"a\":.5}", EJ),
    C("{\"a\":1.e5}", EJ), C("{\"a\":+1}", EJ), C("{\"a\":--1}", EJ), C("{\"a\":1e+-1}", EJ),
    C("{\"a\":0x10}", EJ), C("{\"a\":1.5.5}", EJ), C("{\"a\":NaN}", EJ),
    C("{\"a\":Infinity}", EJ), C("{\"a\":-Infinity}", EJ), C("{\"a\":1f}", EJ),
    C("{\"a\":9223372036854775808}", EJ), C("{\"a\":-9223372036854775809}", EJ),
    C("{\"a\":12345678901234567890}", EJ), C("{\"a\":1E400}", EJ), C("{\"a\":-1e309}", EJ),
    C("{\"a\":1.7976931348623159e308}", EJ), C("{\"a\":1e99999999999999999999}", EJ),
    C("{\"a\":0.1e310}", EJ),
    /* literals */
    C("{\"a\":True}", EJ), C("{\"a\":nul}", EJ), C("{\"a\":truex}", EJ),
    C("{\"a\":true1}", EJ), C("{\"a\":nulll}", EJ), C("{\"a\":undefined}", EJ),
    /* strings: control characters and escapes */
    C("{\"a\":\"\x01\"}", EJ), C("{\"a\":\"\n\"}", EJ), C("{\"a\":\"\t\"}", EJ),
    C("{\"a\":\"\x1f\"}", EJ), C("{\"a\":\"\\q\"}", EJ), C("{\"a\":\"\\x41\"}", EJ),
    C("{\"a\":\"\\u00G1\"}", EJ), C("{\"a\":\"\\u004\"}", EJ), C("{\"a\":\"\\U0041\"}", EJ),
    C("{\"a\":\"\\'\"}", EJ), C("{\"a\":\"\\\n\"}", EJ), C("{\"a\":'x'}", EJ),
    C("{\"a\":\"\\u0000\"}", EJ), C("{\"\\u0000\":1}", EJ), C("{\"a\\u0000b\":1}", EJ),
    /* lone / broken surrogate escapes */
    C("{\"a\":\"\\uD800\"}", EJ), C("{\"a\":\"\\uDC00\"}", EJ), C("{\"a\":\"\\uDFFF\"}", EJ),
    C("{\"a\":\"\\uD800x\"}", EJ), C("{\"a\":\"\\uD800\\u0041\"}", EJ),
    C("{\"a\":\"\\uD800\\uD800\"}", EJ), C("{\"a\":\"\\uD800\\n\"}", EJ),
    C("{\"a\":\"\\uDC00\\uD800\"}", EJ), C("{\"\\uD800\":1}", EJ),
    C("{\"a\":\"\\uD800\\u00\"}", EJ),
    /* invalid UTF-8 */
    C("{\"a\":\"\xff\"}", EU), C("{\"a\":\"\x80\"}", EU), C("{\"a\":\"\xc0\x80\"}", EU),
    C("{\"a\":\"\xc1\xbf\"}", EU), C("{\"a\":\"\xe0\x80\x80\"}", EU),
    C("{\"a\":\"\xe0\x9f\xbf\"}", EU), C("{\"a\":\"\xf0\x80\x80\x80\"}", EU),
    C("{\"a\":\"\xf0\x8f\xbf\xbf\"}", EU), C("{\"a\":\"\xed\xa0\x80\"}", EU),
    C("{\"a\":\"\xed\xbf\xbf\"}", EU), C("{\"a\":\"\xf4\x90\x80\x80\"}", EU),
    C("{\"a\":\"\xf5\x80\x80\x80\"}", EU), C("{\"a\":\"\xf8\x88\x80\x80\x80\"}", EU),
    C("{\"a\":\"\xc3\"}", EU), C("{\"a\":\"\xe2\x82\"}", EU), C("{\"a\":\"\xf0\x9f\x98\"}", EU),
    C("{\"a\":\"\xc3", EU), C("{\"a\":\"\xc3\x28\"}", EU), C("{\"a\":\"\xe2\x28\xa1\"}", EU),
    C("{\"\xff\":1}", EU), C("{\"a\":1}\xff", EU), C("\xff{}", EU), C("{\"a\":\xc3}", EU),
    C("{\"a\":1\xc3}", EU), C("{\"a\":\"abcdefghijklmno\xfe\"}", EU), C("{\"a\":\"\xfe\xff\"}", EU),
    C("{\"a\":\"abcdefgh\xc3\xa9\xc3\"}", EU),
    /* duplicate keys */
    C("{\"a\":1,\"a\":2}", ED), C("{\"a\":1,\"a\":1}", ED), C("{\"a\":1,\"\\u0061\":2}", ED),
    C("{\"\\u0061\":1,\"a\":2}", ED), C("{\"\\u0061\":1,\"\\u0061\":2}", ED),
    C("{\"\\/\":1,\"/\":2}", ED), C("{\"\xc3\xa9\":1,\"\\u00e9\":2}", ED),
    C("{\"\\uD83D\\uDE00\":1,\"\xf0\x9f\x98\x80\":2}", ED), C("{\"\":1,\"\":2}", ED),
    C("{\"meta\":{\"action\":\"added\",\"action\":\"x\"}}", ED),
    C("{\"meta\":{},\"meta\":{}}", ED), C("{\"meta\":{\"id\":1,\"i\\u0064\":2}}", ED),
    C("{\"a\":{\"b\":{\"c\":{\"d\":1,\"d\":2}}}}", ED), C("[{\"a\":1,\"a\":1}]", ED),
    C("{\"a\":{\"b\":1},\"b\":2,\"a\":3}", ED), C("{\"a\":[{\"x\":1,\"y\":2,\"x\":3}]}", ED),
    C("{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k1\":9}", ED),
    C("{\"a\\\"b\":1,\"a\\u0022b\":2}", ED),
    /* a duplicate found right at the end of the body (no room for word over-reads) */
    C("{\"abcdefghi\":1,\"abcdefghi\"", ED), C("{\"\\u0061bcdefghi\":1,\"abcdefghi\"", ED),
    C("{\"abcdefghijklmnop\":1,\"abcdefghijklmnop\"", ED),
    C("{\"abcdefghijklmnopq\":1,\"abcdefghijklmnop\\u0071\":2}", ED),
};

/* Where the scanner is stricter than jansson, on purpose: a NUL byte right after a number
 * or literal (issue "Field reliability"; JSONTestSuite n_multidigit_number_then_00). */
static void test_jansson_nul_quirk(void **state)
{
    (void)state;
#define SPAN(lit) { lit, sizeof lit - 1 }
    static const struct {
        const char *s;
        size_t n;
    } quirk[] = {
        SPAN("{\"a\":1\0}"), SPAN("{\"a\":true\0}"), SPAN("{\"a\":null\0 }"),
        SPAN("123\0"),       SPAN("[false\0,1.5\0]"), SPAN("{\"a\":[1e2\0 , -0\0]}"),
    };
#undef SPAN
    for (size_t i = 0; i < sizeof quirk / sizeof quirk[0]; i++) {
        assert_true(jansson_raw_ok(quirk[i].s, quirk[i].n)); /* jansson takes it ... */
        assert_int_equal(scan_rc(quirk[i].s, quirk[i].n, 2048), PDW_EJSON); /* ... we don't */
    }
}

static void test_corpus(void **state)
{
    (void)state;
    size_t n = sizeof corpus / sizeof corpus[0];
    assert_true(n >= 150);
    for (size_t i = 0; i < n; i++) {
        const ccase *c = &corpus[i];
        int rc = scan_rc(c->s, c->n, 0);
        if (rc != c->code)
            fail_msg("corpus[%zu] %s: rc %s, expected %s", i, show(c->s, c->n),
                     pdw_err_name(rc), pdw_err_name(c->code));
        if (!agrees(c->s, c->n))
            fail_msg("corpus[%zu] %s: disagrees with jansson", i, show(c->s, c->n));
        /* expected codes follow jansson's verdict too */
        int is_obj;
        int jok = jansson_ok(c->s, c->n, &is_obj);
        assert_int_equal(jok, c->code == OK || c->code == EN);
    }
}

/* Big inputs built at run time: deep nesting, huge numbers, huge objects. */
static void test_generated_inputs(void **state)
{
    (void)state;
    buf b = { 0 };
    /* 100k-deep nesting */
    b_rep(&b, "[", 100000);
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDEPTH);
    assert_int_equal(scan_rc(b.p, b.n, 2048), PDW_EDEPTH);
    assert_true(agrees(b.p, b.n));
    b_rep(&b, "]", 100000);
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDEPTH);
    assert_int_equal(scan_rc(b.p, b.n, 100000000), PDW_EDEPTH); /* clamped to jansson's */
    assert_true(agrees(b.p, b.n));
    b.n = 0;
    b_rep(&b, "{\"a\":", 100000);
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDEPTH);
    assert_true(agrees(b.p, b.n));

    /* a 1000-digit integer, real, and tiny/huge reals */
    static const char *nums[] = { "1", "-1", "0.", "1.", "0.0", "1e-" };
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        b.n = 0;
        b_str(&b, "{\"a\":");
        b_str(&b, nums[k]);
        b_rep(&b, "1234567890", 100);
        b_str(&b, "}");
        int rc = scan_rc(b.p, b.n, 0);
        assert_int_equal(rc, k < 2 ? PDW_EJSON : 0); /* integers overflow, reals do not */
        assert_true(agrees(b.p, b.n));
    }
    /* a 400-digit real that fits after scaling, and a long digit tail at the limit */
    b.n = 0;
    b_str(&b, "{\"a\":0.");
    b_rep(&b, "0", 400);
    b_str(&b, "17976931348623159e709}");
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EJSON);
    assert_true(agrees(b.p, b.n));
    b.n = 0;
    b_str(&b, "{\"a\":0.");
    b_rep(&b, "0", 400);
    b_str(&b, "17976931348623157");
    b_rep(&b, "9", 500);
    b_str(&b, "e709}");
    assert_true(agrees(b.p, b.n));

    /* 100k keys: linear time, no false duplicate; then one real duplicate at the end */
    b.n = 0;
    b_str(&b, "{");
    char k[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof k, "%s\"key%d\":%d", i ? "," : "", i, i);
        b_str(&b, k);
    }
    size_t mid = b.n;
    b_str(&b, "}");
    assert_int_equal(scan_rc(b.p, b.n, 0), 0);
    assert_true(agrees(b.p, b.n));
    b.n = mid;
    b_str(&b, ",\"key\\u0035\\u00350\":1}"); /* "key550" */
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDUPKEY);
    assert_true(agrees(b.p, b.n));

    /* many nested objects, each with keys: the key stack shrinks back correctly */
    b.n = 0;
    b_str(&b, "{\"top\":1");
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, ",\"o%d\":{\"top\":1,\"x\":{\"top\":2,\"o%d\":3}}", i, i);
        b_str(&b, k);
    }
    mid = b.n;
    b_str(&b, "}");
    assert_int_equal(scan_rc(b.p, b.n, 0), 0);
    b.n = mid;
    b_str(&b, ",\"o299\":0}");
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDUPKEY);
    b.n = mid;
    b_str(&b, ",\"x\":0}");
    assert_int_equal(scan_rc(b.p, b.n, 0), 0);
    free(b.p);
}

/* ---- mutation fuzz ----------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

/* End of the member whose key starts at s[i] (a quote): index of the ',' or '}' after it. */
static size_t member_end(const char *s, size_t n, size_t i)
{
    int depth = 0, in_str = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth-- == 0)
                return i;
        } else if (c == ',' && depth == 0) {
            return i;
        }
    }
    return n;
}

static void mutate(buf *m)
{
    static const char *const frags[] = {
        "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\n", "0", "-", ".", "e", "E", "+",
        "\0", "\x01", "\x1f", "\x7f", "\x80", "\xbf", "\xc0", "\xc3", "\xc3\xa9", "\xe2\x82",
        "\xed\xa0\x80", "\xef\xbb\xbf", "\xf4\x90\x80\x80", "\xf0\x9f\x98\x80", "\xff",
        "\\u0000", "\\u0061", "\\uD800", "\\uDC00", "\\uD83D\\uDE00", "\\u00e9", "\\n", "\\x",
        "true", "false", "null", "nul", "1e400", "1e-400", "9223372036854775808",
        "-9223372036854775808", "00", "1.", "\"meta\":", "\"a\":1,", "\"a\":1", "{}", "[]",
    };
    size_t nf = sizeof frags / sizeof frags[0];
    size_t pos = m->n ? rnd((uint32_t)m->n) : 0;
    switch (rnd(9)) {
    case 0: /* byte flip */
        if (m->n)
            m->p[pos] = (char)(m->p[pos] ^ (1 << rnd(8)));
        break;
    case 1: /* random byte */
        if (m->n)
            m->p[pos] = (char)rnd(256);
        break;
    case 2: /* truncation */
        m->n = pos;
        break;
    case 3:
    case 4: { /* insert a fragment (or a few random bytes) */
        char tmp[32];
        size_t tn;
        if (rnd(4) == 0) {
            tn = 1 + rnd(3);
            for (size_t i = 0; i < tn; i++)
                tmp[i] = (char)rnd(256);
        } else {
            size_t f = rnd((uint32_t)nf);
            tn = f == 16 ? 1 : strlen(frags[f]); /* frags[16] is a NUL byte */
            memcpy(tmp, frags[f], tn);
        }
        b_add(m, tmp, tn); /* grow, then move into place */
        memmove(m->p + pos + tn, m->p + pos, m->n - tn - pos);
        memcpy(m->p + pos, tmp, tn);
        break;
    }
    case 5: /* delete a range */
        if (m->n) {
            size_t len = 1 + rnd(8);
            if (pos + len > m->n)
                len = m->n - pos;
            memmove(m->p + pos, m->p + pos + len, m->n - pos - len);
            m->n -= len;
        }
        break;
    case 6:
    case 7: { /* duplicate a member right after itself */
        size_t tries = 0;
        while (tries++ < 20 && m->n) {
            size_t q = rnd((uint32_t)m->n);
            size_t b = q;
            while (b > 0 && (m->p[b - 1] == ' ' || m->p[b - 1] == '\n'))
                b--;
            if (m->p[q] != '"' || b == 0 || (m->p[b - 1] != '{' && m->p[b - 1] != ','))
                continue;
            size_t e = member_end(m->p, m->n, q);
            if (e >= m->n)
                break;
            size_t len = e - q;
            char *copy = malloc(len + 1);
            assert_non_null(copy);
            memcpy(copy, m->p + q, len);
            copy[len] = ',';
            size_t old = m->n;
            b_add(m, copy, len + 1);
            memmove(m->p + q + len + 1, m->p + q, old - q);
            memcpy(m->p + q, copy, len + 1);
            free(copy);
            break;
        }
        break;
    }
    default: /* replace a character of a string with its \u escape */
        if (m->n && m->p[pos] >= 'a' && m->p[pos] <= 'z') {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)m->p[pos]);
            size_t old = m->n;
            b_add(m, tmp, 5);
            memmove(m->p + pos + 6, m->p + pos + 1, old - pos - 1);
            memcpy(m->p + pos, tmp, 6);
        }
        break;
    }
}

static void test_mutation_fuzz(void **state)
{
    (void)state;
    fixture *f;
    size_t nfix = load_fixtures(&f);
    buf m = { 0 };
    long accepted = 0, dupkeys = 0;
    const long mutants = 30000;
    rng_state = 0x2545F4914F6CDD1Dull;
    for (long i = 0; i < mutants; i++) {
        const fixture *src = &f[rnd((uint32_t)nfix)];
        m.n = 0;
        b_add(&m, src->data, src->len);
        int times = 1 + (int)rnd(3);
        for (int t = 0; t < times; t++)
            mutate(&m);
        int is_obj;
        int jok = jansson_ok(m.p, m.n, &is_obj);
        int rc = scan_rc(m.p, m.n, 2048);
        int ok = jok ? rc == (is_obj ? 0 : PDW_ENOTOBJECT)
                     : (rc == PDW_EJSON || rc == PDW_EUTF8 || rc == PDW_EDEPTH ||
                        rc == PDW_EDUPKEY);
        if (!ok)
            fail_msg("mutant %ld (of %s) disagrees: jansson %s, scanner %s\n%s", i, src->name,
                     jok ? "accepts" : "rejects", pdw_err_name(rc), show(m.p, m.n));
        accepted += jok;
        dupkeys += rc == PDW_EDUPKEY;
    }
    print_message("%ld mutants, %ld accepted, %ld duplicate keys\n", mutants, accepted, dupkeys);
    /* the mutations must exercise both verdicts and the duplicate detection */
    assert_true(accepted > mutants / 20);
    assert_true(dupkeys > mutants / 50);
    free(m.p);
    free_fixtures(f, nfix);
}

/* ---- depth -------------------------------------------------------------------------------- */

static void nest(buf *b, size_t levels, int objects, const char *inner)
{
    b->n = 0;
    b_rep(b, objects ? "{\"a\":" : "[", objects ? levels - 1 : levels);
    if (objects)
        b_str(b, inner[0] ? inner : "{}");
    else
        b_str(b, inner);
    b_rep(b, objects ? "}" : "]", objects ? levels - 1 : levels);
}

static void test_depth_limit(void **state)
{
    (void)state;
    buf b = { 0 };
    /* jansson counts every value, scalars too; at 2048 the verdicts agree exactly */
    for (size_t lv = 2040; lv <= 2052; lv++) {
        for (int obj = 0; obj <= 1; obj++) {
            for (int scalar = 0; scalar <= 1; scalar++) {
                nest(&b, lv, obj, scalar ? (obj ? "{\"b\":1}" : "1") : "");
                int is_obj;
                int jok = jansson_ok(b.p, b.n, &is_obj);
                int rc = scan_rc(b.p, b.n, 2048);
                if (jok != (rc == 0 || rc == PDW_ENOTOBJECT))
                    fail_msg("levels %zu obj %d scalar %d: jansson %d, scanner %d", lv, obj,
                             scalar, jok, rc);
                if (!jok)
                    assert_int_equal(rc, PDW_EDEPTH);
            }
        }
    }
    nest(&b, 2048, 0, "");
    assert_int_equal(scan_rc(b.p, b.n, 2048), PDW_ENOTOBJECT);
    nest(&b, 2048, 0, "1");
    assert_int_equal(scan_rc(b.p, b.n, 2048), PDW_EDEPTH);
    nest(&b, 2048, 1, "");
    assert_int_equal(scan_rc(b.p, b.n, 2048), 0);
    assert_int_equal(scan_rc(b.p, b.n, 4096), 0);
    nest(&b, 2049, 1, "");
    assert_int_equal(scan_rc(b.p, b.n, 4096), PDW_EDEPTH); /* jansson's limit is a ceiling */

    /* small limits: the top level is depth 1, its scalar members depth 2 */
    const char *d2 = "{\"a\":1}", *d3 = "{\"a\":{\"b\":1}}", *d3e = "{\"a\":{\"b\":{}}}";
    const char *d4 = "{\"a\":{\"b\":{\"c\":1}}}";
    assert_int_equal(scan_rc("{}", 2, 1), 0);
    assert_int_equal(scan_rc(d2, strlen(d2), 1), PDW_EDEPTH);
    assert_int_equal(scan_rc(d2, strlen(d2), 2), 0);
    assert_int_equal(scan_rc(d3, strlen(d3), 2), PDW_EDEPTH);
    assert_int_equal(scan_rc(d3, strlen(d3), 3), 0);
    assert_int_equal(scan_rc(d3e, strlen(d3e), 3), 0);
    assert_int_equal(scan_rc(d4, strlen(d4), 3), PDW_EDEPTH);
    assert_int_equal(scan_rc(d4, strlen(d4), 4), 0);
    /* depth is checked before the value is looked at, like jansson */
    assert_int_equal(scan_rc("{\"a\":{\"b\":x}}", 13, 2), PDW_EDEPTH);
    /* 0 = the default (512) */
    nest(&b, 512, 1, "");
    assert_int_equal(scan_rc(b.p, b.n, 0), 0);
    nest(&b, 513, 1, "");
    assert_int_equal(scan_rc(b.p, b.n, 0), PDW_EDEPTH);
    assert_int_equal(scan_rc(b.p, b.n, 513), 0);
    /* the error offset points at the value that is too deep */
    pdw__scan sc;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw__scan_body(&sc, d4, strlen(d4), 3, NULL, &err), PDW_EDEPTH);
    assert_int_equal(err.offset, 15);
    free(b.p);
}

/* ---- allocation ------------------------------------------------------------------------------ */

static void test_failing_allocator(void **state)
{
    (void)state;
    buf b = { 0 };
    b_str(&b, "{\"meta\":{\"action\":\"added\"},\"data\":{");
    char k[48];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%s\"field_%d\":{\"v\":%d}", i ? "," : "", i, i);
        b_str(&b, k);
    }
    b_str(&b, "}}");
    /* how many allocations a full scan makes */
    count_alloc ca = { 0, 0, 0 };
    pdw_allocator a = { ca_malloc, ca_realloc, ca_free, &ca };
    pdw__scan sc;
    assert_int_equal(pdw__scan_body(&sc, b.p, b.n, 0, &a, NULL), 0);
    long total = ca.calls;
    assert_true(total >= 1);  /* 5000 keys do not fit on the stack */
    assert_true(total <= 8);  /* ... and the set grows rarely */
    assert_int_equal(ca.live, 0);
    assert_true(pdw__str_eq(&sc.m_action, "added"));
    for (long n = 1; n <= total + 1; n++) {
        count_alloc c2 = { 0, n, 0 };
        pdw_allocator a2 = { ca_malloc, ca_realloc, ca_free, &c2 };
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw__scan_body(&sc, b.p, b.n, 0, &a2, &err);
        if (n <= total) {
            assert_int_equal(rc, PDW_ENOMEM);
            assert_int_equal(err.code, PDW_ENOMEM);
            assert_int_equal(sc.meta.type, PDW__J_ABSENT); /* out is zeroed on failure */
        } else {
            assert_int_equal(rc, 0);
        }
        assert_int_equal(c2.live, 0);
    }
    /* a NULL allocator means malloc/free */
    assert_int_equal(pdw__scan_body(&sc, b.p, b.n, 0, NULL, NULL), 0);
    /* a duplicate found after the set moved to the heap still frees it */
    b.n -= 2;
    b_str(&b, ",\"field_4999\":0}}");
    count_alloc c3 = { 0, 0, 0 };
    pdw_allocator a3 = { ca_malloc, ca_realloc, ca_free, &c3 };
    assert_int_equal(pdw__scan_body(&sc, b.p, b.n, 0, &a3, NULL), PDW_EDUPKEY);
    assert_int_equal(c3.live, 0);
    free(b.p);
}

/* ---- extracted fields ----------------------------------------------------------------------- */

static void test_routing_fields(void **state)
{
    (void)state;
    static const char body[] =
        "{ \"v\" : 1, \"ev\\u0065nt\": \"updated.deal\", \"retry\": 0,\n"
        "  \"previous\": null, \"current\": {\"id\": 5, \"meta\": {\"action\": \"no\"}},\n"
        "  \"data\": [1, 2 ],\n"
        "  \"meta\": {\"a\\u0063tion\": \"upd\\u0061ted\", \"object\": \"deal\", \"id\": 42,\n"
        "    \"entity_id\": \"7\", \"is_bulk_update\": false, \"timestamp\": 1.5e3,\n"
        "    \"extra\": {\"action\": \"nested\"}, \"v\": 1, \"merged_to_id\": [1]},\n"
        "  \"other\": {\"meta\": 1}}";
    pdw__scan sc;
    assert_int_equal(pdw__scan_body(&sc, body, sizeof body - 1, 0, NULL, NULL), 0);
    json_error_t e;
    json_t *root = json_loadb(body, sizeof body - 1, JFLAGS, &e);
    assert_non_null(root);
    check_fields(&sc, root, "inline");
    json_decref(root);
    assert_true(pdw__str_eq(&sc.event, "updated.deal"));
    assert_true(pdw__str_eq(&sc.m_action, "updated"));
    assert_int_equal(sc.m_action.escaped, 1);
    assert_int_equal(sc.m_object.escaped, 0);
    assert_int_equal(sc.m_id.type, PDW__J_NUMBER);
    assert_int_equal(sc.m_id.is_int, 1);
    assert_int_equal(sc.m_timestamp.is_int, 0);
    assert_int_equal(sc.m_timestamp.len, 5);
    assert_int_equal(sc.m_is_bulk_update.type, PDW__J_FALSE);
    assert_int_equal(sc.previous.type, PDW__J_NULL);
    assert_int_equal(sc.previous.len, 4);
    assert_int_equal(sc.data.type, PDW__J_ARRAY);
    assert_int_equal(sc.data.len, 7); /* "[1, 2 ]" */
    assert_int_equal(sc.m_merged_to_id.type, PDW__J_ARRAY);
    assert_int_equal(sc.m_entity.type, PDW__J_ABSENT);
    assert_int_equal(sc.m_version.type, PDW__J_ABSENT);
    assert_int_equal(sc.current.p[0], '{');
    assert_int_equal(sc.current.p[sc.current.len - 1], '}');

    /* meta not an object: no m_* fields; top level not an object: nothing */
    static const char b2[] = "{\"meta\":[{\"action\":\"added\"}],\"x\":{\"meta\":{\"id\":1}}}";
    assert_int_equal(pdw__scan_body(&sc, b2, sizeof b2 - 1, 0, NULL, NULL), 0);
    assert_int_equal(sc.meta.type, PDW__J_ARRAY);
    assert_int_equal(sc.m_action.type, PDW__J_ABSENT);
    assert_int_equal(sc.m_id.type, PDW__J_ABSENT);
    static const char b3[] = "[{\"meta\":{\"id\":1}}]";
    assert_int_equal(pdw__scan_body(&sc, b3, sizeof b3 - 1, 0, NULL, NULL), PDW_ENOTOBJECT);
    assert_int_equal(sc.meta.type, PDW__J_ABSENT);
    /* a meta key with an escape longer than any field name is simply not a field */
    static const char b4[] = "{\"meta\":{\"\\u0061ctionactionactionaction\":1,\"id\":\"x\"}}";
    assert_int_equal(pdw__scan_body(&sc, b4, sizeof b4 - 1, 0, NULL, NULL), 0);
    assert_int_equal(sc.m_action.type, PDW__J_ABSENT);
    assert_true(pdw__str_eq(&sc.m_id, "x"));
}

static void test_error_details(void **state)
{
    (void)state;
    pdw__scan sc;
    pdw_error err;
    static const struct {
        const char *s;
        int code;
        long long off;
    } cases[] = {
        { "{\"a\":1,\"a\":2}", PDW_EDUPKEY, 7 },
        { "{\"a\":\"SECRET\x01\"}", PDW_EJSON, 12 },
        { "{\"a\":\"SECRET\xff\"}", PDW_EUTF8, 12 },
        { "{\"a\":1} SECRET", PDW_EJSON, 8 },
        { "[\"SECRET\"]", PDW_ENOTOBJECT, 0 },
        { "{\"a\":SECRET}", PDW_EJSON, 5 },
        { "", PDW_EJSON, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pdw_error_clear(&err);
        int rc = pdw__scan_body(&sc, cases[i].s, strlen(cases[i].s), 0, NULL, &err);
        assert_int_equal(rc, cases[i].code);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(err.offset, cases[i].off);
        assert_true(err.message[0] != '\0');
        assert_null(strstr(err.message, "SECRET")); /* body content is never quoted */
    }
    /* the first error wins: a filled err is left alone */
    pdw_error_clear(&err);
    err.code = PDW_EINVAL;
    assert_int_equal(pdw__scan_body(&sc, "{", 1, 0, NULL, &err), PDW_EJSON);
    assert_int_equal(err.code, PDW_EINVAL);
    /* NULL err, NULL body */
    assert_int_equal(pdw__scan_body(&sc, "x", 1, 0, NULL, NULL), PDW_EJSON);
    assert_int_equal(pdw__scan_body(&sc, NULL, 0, 0, NULL, NULL), PDW_EJSON);
    assert_int_equal(pdw__scan_body(&sc, NULL, 3, 0, NULL, NULL), PDW_EINVAL);
}

/* ---- helpers over validated values ---------------------------------------------------------- */

static void test_obj_iteration(void **state)
{
    (void)state;
    size_t len = 0;
    char *body = pdw_test_fixture("v2-change.deal-pipedrive-docs.json", &len);
    assert_non_null(body);
    pdw__scan sc;
    assert_int_equal(pdw__scan_body(&sc, body, len, 0, NULL, NULL), 0);
    json_error_t e;
    json_t *root = json_loadb(body, len, JFLAGS, &e);
    json_t *data = json_object_get(root, "data");
    assert_non_null(data);
    /* iteration yields jansson's members in order of the text, each with the right value */
    pdw__obj_iter it;
    pdw__val k, v;
    size_t count = 0;
    pdw__obj_iter_init(&it, &sc.data);
    while (pdw__obj_next(&it, &k, &v)) {
        char key[128];
        assert_int_equal(k.type, PDW__J_STRING);
        assert_true(pdw__str_decode(&k, key, sizeof key) >= 0);
        json_t *jv = json_object_get(data, key);
        assert_non_null(jv);
        check_val(&v, jv, key);
        count++;
    }
    assert_int_equal(count, json_object_size(data));
    assert_int_equal(pdw__obj_next(&it, &k, &v), 0); /* stays at the end */

    /* obj_get */
    pdw__val got;
    assert_int_equal(pdw__obj_get(&sc.data, "title", &got), 1);
    assert_true(pdw__str_eq(&got, "Sample Org deal"));
    assert_int_equal(pdw__obj_get(&sc.data, "id", &got), 1);
    assert_int_equal(got.type, PDW__J_NUMBER);
    assert_int_equal(got.len, 1);
    assert_int_equal(got.p[0], '8');
    assert_int_equal(pdw__obj_get(&sc.data, "nope", &got), 0);
    assert_int_equal(pdw__obj_get(&sc.data, "titl", &got), 0);
    assert_int_equal(pdw__obj_get(&sc.meta, "host", &got), 1);
    assert_true(pdw__str_eq(&got, "pd-us.pipedrive.com"));
    pdw__val cf, addr;
    assert_int_equal(pdw__obj_get(&sc.data, "custom_fields", &cf), 1);
    assert_int_equal(cf.type, PDW__J_OBJECT);
    assert_int_equal(pdw__obj_get(&cf, "3d0fa3429dfa2d3dec265b4fc5dc8258ab66cdf3", &addr), 1);
    assert_int_equal(pdw__obj_get(&addr, "locality", &got), 1);
    assert_true(pdw__str_eq(&got, "Tallinn"));
    /* not an object */
    assert_int_equal(pdw__obj_get(&sc.m_action, "x", &got), 0);
    pdw__obj_iter_init(&it, &sc.m_action);
    assert_int_equal(pdw__obj_next(&it, &k, &v), 0);

    /* array_first */
    pdw__val labels, first;
    assert_int_equal(pdw__obj_get(&sc.data, "label_ids", &labels), 1);
    assert_int_equal(pdw__array_first(&labels, &first), 1);
    assert_int_equal(first.type, PDW__J_NUMBER);
    assert_int_equal(first.len, 2);
    assert_memory_equal(first.p, "24", 2);
    assert_int_equal(pdw__array_first(&sc.data, &first), 0); /* an object */
    json_decref(root);
    free(body);

    /* members of every type, escaped keys, nested containers, empty object */
    static const char b2[] = "{\"current\":{ \"s\" : \"a\\\"}\" , \"n\":-1.5e+3,\"t\":true,"
                             "\"f\":false,\"z\":null,\"o\":{\"x\":[1,{\"y\":\"]\"}]},"
                             "\"a\":[ ],\"k\\u0065y\":0 },\"previous\":{ },\"data\":[ [\"q\"] ]}";
    assert_int_equal(pdw__scan_body(&sc, b2, sizeof b2 - 1, 0, NULL, NULL), 0);
    root = json_loadb(b2, sizeof b2 - 1, JFLAGS, &e);
    json_t *cur = json_object_get(root, "current");
    count = 0;
    pdw__obj_iter_init(&it, &sc.current);
    while (pdw__obj_next(&it, &k, &v)) {
        char key[16];
        assert_true(pdw__str_decode(&k, key, sizeof key) >= 0);
        check_val(&v, json_object_get(cur, key), key);
        count++;
    }
    assert_int_equal(count, 8);
    assert_int_equal(pdw__obj_get(&sc.current, "key", &got), 1);
    pdw__obj_iter_init(&it, &sc.previous);
    assert_int_equal(pdw__obj_next(&it, &k, &v), 0);
    pdw__val a0;
    assert_int_equal(pdw__obj_get(&sc.current, "a", &a0), 1);
    assert_int_equal(pdw__array_first(&a0, &first), 0); /* "[ ]" */
    assert_int_equal(pdw__array_first(&sc.data, &first), 1);
    assert_int_equal(first.type, PDW__J_ARRAY);
    assert_int_equal(first.len, 5);
    json_decref(root);
}

static int val_equal_text(const char *x, const char *y)
{
    char body[512];
    snprintf(body, sizeof body, "{\"current\":%s,\"previous\":%s}", x, y);
    pdw__scan sc;
    assert_int_equal(pdw__scan_body(&sc, body, strlen(body), 0, NULL, NULL), 0);
    int r = pdw__val_equal(&sc.current, &sc.previous);
    assert_int_equal(pdw__val_equal(&sc.previous, &sc.current), r); /* symmetric */
    return r;
}

static void test_val_equal(void **state)
{
    (void)state;
    assert_true(val_equal_text("1", "1"));
    assert_false(val_equal_text("1", "1.0"));
    assert_false(val_equal_text("1", "10"));
    assert_false(val_equal_text("1", "\"1\""));
    assert_true(val_equal_text("\"a\"", "\"\\u0061\""));
    assert_false(val_equal_text("\"a\"", "\"ab\""));
    assert_true(val_equal_text("{\"a\":[1, 2]}", "{ \"a\" : [ 1 ,2 ] }"));
    assert_true(val_equal_text("{\"a\\u0062\":\"x y\"}", "{\"ab\":\"x\\u0020y\"}"));
    assert_false(val_equal_text("{\"a\":\"x y\"}", "{\"a\":\"xy\"}")); /* space in a string */
    assert_false(val_equal_text("{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}")); /* order */
    assert_false(val_equal_text("[\"a\\\",\\\"b\"]", "[\"a\",\"b\"]"));
    assert_false(val_equal_text("[]", "{}"));
    assert_true(val_equal_text("[ ]", "[]"));
    assert_true(val_equal_text("null", "null"));
    assert_false(val_equal_text("null", "false"));
    assert_true(val_equal_text("\"\\uD83D\\uDE00\"", "\"\xf0\x9f\x98\x80\""));
    assert_false(val_equal_text("[1,[2]]", "[1,[3]]"));
    pdw__val absent = { 0 };
    assert_true(pdw__val_equal(&absent, &absent));
}

static void test_str_decode_and_eq(void **state)
{
    (void)state;
    static const char body[] = "{\"current\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t \\u0041\\u00e9"
                               "\\u20ac\\uD83D\\uDE00\\udbff\\udfff\xc3\xa9\","
                               "\"previous\":\"plain\"}";
    pdw__scan sc;
    assert_int_equal(pdw__scan_body(&sc, body, sizeof body - 1, 0, NULL, NULL), 0);
    const char *want = "a\"b\\c/d\b\f\n\r\t A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                       "\xf4\x8f\xbf\xbf\xc3\xa9";
    char out[64];
    long n = pdw__str_decode(&sc.current, out, sizeof out);
    assert_int_equal(n, (long)strlen(want));
    assert_string_equal(out, want);
    assert_true(pdw__str_eq(&sc.current, want));
    assert_false(pdw__str_eq(&sc.current, "a\"b"));
    /* exact fit (len + NUL) works; one byte less does not, and nothing is overrun */
    memset(out, 'X', sizeof out);
    assert_int_equal(pdw__str_decode(&sc.current, out, strlen(want) + 1), n);
    memset(out, 'X', sizeof out);
    assert_int_equal(pdw__str_decode(&sc.current, out, strlen(want)), -1);
    assert_int_equal(out[strlen(want)], 'X');
    assert_int_equal(pdw__str_decode(&sc.previous, out, 6), 5);
    assert_string_equal(out, "plain");
    assert_int_equal(pdw__str_decode(&sc.previous, out, 5), -1);
    assert_int_equal(pdw__str_decode(&sc.previous, out, 0), -1);
    assert_true(pdw__str_eq(&sc.previous, "plain"));
    assert_false(pdw__str_eq(&sc.previous, "plai"));
    assert_false(pdw__str_eq(&sc.previous, "plains"));
    assert_false(pdw__str_eq(&sc.previous, ""));
    /* not a string */
    pdw__val num = { "1", 1, PDW__J_NUMBER, 0, 1 };
    assert_int_equal(pdw__str_decode(&num, out, sizeof out), -1);
    assert_false(pdw__str_eq(&num, "1"));
    /* empty string */
    static const char b2[] = "{\"event\":\"\"}";
    assert_int_equal(pdw__scan_body(&sc, b2, sizeof b2 - 1, 0, NULL, NULL), 0);
    assert_int_equal(pdw__str_decode(&sc.event, out, 1), 0);
    assert_string_equal(out, "");
    assert_true(pdw__str_eq(&sc.event, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_agree_with_jansson),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_jansson_nul_quirk),
        cmocka_unit_test(test_generated_inputs),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_failing_allocator),
        cmocka_unit_test(test_routing_fields),
        cmocka_unit_test(test_error_details),
        cmocka_unit_test(test_obj_iteration),
        cmocka_unit_test(test_val_equal),
        cmocka_unit_test(test_str_decode_and_eq),
    };
    PDW_RUN_GROUP(tests);
}
