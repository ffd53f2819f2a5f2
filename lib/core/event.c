/* The event: a v1 or v2 body read into one vocabulary, from the scanner's spans. The DOM
 * and the changed-field list are built only when asked for. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/dom.h"
#include "core/core.h"

/* ---- small readers over scanner values ---------------------------------------------- */

static int has(const pdw__val *v)
{
    return v->type != PDW__J_ABSENT && v->type != PDW__J_NULL;
}

/* An id as text: a string (decoded, no control characters) or an integer (its digits).
 * Absent or null: *present = 0. Anything else, or too long: PDW_EFIELD. */
static int read_id(const pdw__val *v, char *buf, size_t cap, unsigned char *present,
                   const char *what, pdw_error *err)
{
    *present = 0;
    buf[0] = '\0';
    if (!has(v))
        return 0;
    if (v->type == PDW__J_NUMBER && v->is_int) {
        if (v->len >= cap)
            return pdw__error_set(err, PDW_EFIELD, -1, "meta field %s: number too long", what);
        memcpy(buf, v->p, v->len);
        buf[v->len] = '\0';
        *present = 1;
        return 0;
    }
    if (v->type == PDW__J_STRING) {
        long n = pdw__str_decode(v, buf, cap);
        if (n < 0)
            return pdw__error_set(err, PDW_EFIELD, -1, "meta field %s: longer than %zu bytes",
                                  what, cap - 1);
        /* The scanner refuses raw control characters in strings, so without escapes only
         * DEL can be there; an escape can decode to any of them. */
        int bad = memchr(buf, 0x7f, (size_t)n) != NULL;
        for (long i = 0; v->escaped && !bad && i < n; i++)
            bad = (unsigned char)buf[i] < 0x20;
        if (bad)
            return pdw__error_set(err, PDW_EFIELD, -1, "meta field %s: control character",
                                  what);
        *present = 1;
        return 0;
    }
    return pdw__error_set(err, PDW_EFIELD, -1, "meta field %s: expected a string or an integer",
                          what);
}

/* A non-negative integer from a number or a string of digits. -1 when it is neither. */
static long long read_uint(const pdw__val *v)
{
    const char *p = v->p;
    size_t n = v->len;
    if (v->type == PDW__J_NUMBER) {
        if (!v->is_int)
            return -1;
    } else if (v->type != PDW__J_STRING || v->escaped) {
        return -1;
    }
    return pdw__decimal(p, n);
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int digits(const char *p, size_t n, unsigned *out)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        x = x * 10 + (unsigned)(p[i] - '0');
    }
    *out = x;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff...][Z|+HH:MM|-HH:MM]" or "YYYY-MM-DD HH:MM:SS" (UTC), in ms;
 * -1 when it is neither (core.h: reconcile.c reads record times with it too). */
long long pdw__parse_datetime(const char *s, size_t n)
{
    unsigned y, mo, d, h, mi, se, ms = 0;
    if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        unsigned scale = 100;
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += (unsigned)(s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return -1;
    }
    long long offset_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        unsigned oh, om;
        if (n - i < 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (long long)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    }
    if (i != n)
        return -1;
    long long days = days_from_civil((long long)y, mo, d);
    long long secs = days * 86400 + (long long)(h * 3600 + mi * 60 + se) - offset_min * 60;
    return secs * 1000 + ms;
}

/* An integer timestamp of unknown unit: seconds below 10^11, ms below 10^14, else µs. */
static long long scale_auto(long long x)
{
    if (x < 100000000000LL)
        return x * 1000;
    if (x < 100000000000000LL)
        return x;
    return x / 1000;
}

static long long read_timestamp(const pdw__val *v)
{
    if (!has(v))
        return -1;
    long long x = read_uint(v);
    if (x >= 0)
        return scale_auto(x);
    if (v->type == PDW__J_NUMBER) { /* seconds with a fraction: 1492654463.572 */
        char buf[40];
        if (v->len >= sizeof buf)
            return -1;
        memcpy(buf, v->p, v->len);
        buf[v->len] = '\0';
        char *end;
        double d = strtod(buf, &end);
        if (*end || d < 0 || d > 1e11)
            return -1;
        return (long long)(d * 1000.0);
    }
    if (v->type == PDW__J_STRING) {
        char buf[64];
        long n = pdw__str_decode(v, buf, sizeof buf);
        return n < 0 ? -1 : pdw__parse_datetime(buf, (size_t)n);
    }
    return -1;
}

/* The precision, in µs, of a timestamp read_timestamp() could read: a fraction of a second
 * counts in ms (parse_datetime() keeps ms), whole seconds in seconds, an integer by the
 * magnitude scale_auto() reads it with. */
static long long timestamp_unit(const pdw__val *v)
{
    if (memchr(v->p, '.', v->len))
        return 1000;
    long long x = read_uint(v);
    if (x < 0 || x < 100000000000LL)
        return 1000000; /* "YYYY-MM-DD HH:MM:SS", RFC 3339 without a fraction, seconds */
    return x < 100000000000000LL ? 1000 : 1;
}

/* The raw text of a timestamp for the delivery key (decoded string or number text). */
static int raw_text(const pdw__val *v, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (v->type == PDW__J_STRING)
        return pdw__str_decode(v, buf, cap) >= 0;
    if (v->type == PDW__J_NUMBER && v->len < cap) {
        memcpy(buf, v->p, v->len);
        buf[v->len] = '\0';
        return 1;
    }
    return !has(v);
}

/* ---- building an event ------------------------------------------------------------- */

/* buf = the concatenation of the n strings, cut at cap - 1 bytes and NUL-terminated: what
 * snprintf(buf, cap, "%s%s...") gives, without the format interpreter on the hot path. */
static void join(char *buf, size_t cap, const char *const *parts, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n && at + 1 < cap; i++) {
        size_t l = strlen(parts[i]);
        if (l > cap - 1 - at)
            l = cap - 1 - at;
        memcpy(buf + at, parts[i], l);
        at += l;
    }
    buf[at] = '\0';
}

static int read_word(const pdw__val *v, char *buf, size_t cap)
{
    if (v->type != PDW__J_STRING)
        return -1;
    long n = pdw__str_decode(v, buf, cap);
    return n < 0 ? -1 : (int)n;
}

static int read_version(const pdw_event *ev)
{
    const pdw__scan *s = &ev->scan;
    if (s->m_version.type == PDW__J_STRING) {
        char buf[16];
        if (read_word(&s->m_version, buf, sizeof buf) >= 1 && buf[0] == '2' &&
            (buf[1] == '\0' || buf[1] == '.'))
            return 2;
        return -1;
    }
    if (s->m_version.type != PDW__J_ABSENT)
        return -1;
    if (read_uint(&s->m_v) == 1 || read_uint(&s->v) == 1)
        return 1;
    return -1;
}

static int build(pdw_event *ev, pdw_error *err)
{
    const pdw__scan *s = &ev->scan;
    int rc;

    if (s->meta.type != PDW__J_OBJECT)
        return pdw__error_set(err, PDW_ENOMETA, -1, "the body has no \"meta\" object");
    ev->version = read_version(ev);
    if (ev->version < 0)
        return pdw__error_set(err, PDW_EVERSION, -1,
                              "no recognisable version (meta.version \"2.0\" or v 1)");

    /* action */
    int n = read_word(&s->m_action, ev->delivered_action, sizeof ev->delivered_action);
    int merged = 0;
    ev->action = n > 0 ? pdw__action_id(ev->delivered_action, (size_t)n, &merged) : -1;
    if (ev->action >= 0) {
        /* each version speaks its own words: v2 never says "updated", v1 never "change" */
        int v2word = strcmp(ev->delivered_action, pdw__action_name(ev->action)) == 0;
        if ((ev->version == 2) != v2word)
            ev->action = -1;
    }
    if (ev->action < 0)
        return pdw__error_set(err, PDW_EACTION, -1, "meta.action missing or not a %s action",
                              ev->version == 2 ? "v2 (create/change/delete)"
                                               : "v1 (added/updated/merged/deleted)");

    /* object */
    const pdw__val *ov = ev->version == 2 ? &s->m_entity : &s->m_object;
    n = read_word(ov, ev->object, sizeof ev->object);
    if (n <= 0 || !pdw__object_valid(ev->object, (size_t)n))
        return pdw__error_set(err, PDW_EOBJECT, -1, "meta.%s missing or not a valid name",
                              ev->version == 2 ? "entity" : "object");

    const char *nm[] = { pdw__action_name(ev->action), ".", ev->object };
    join(ev->name, sizeof ev->name, nm, 3);
    const char *dn[] = { ev->delivered_action, ".", ev->object };
    join(ev->delivered_name, sizeof ev->delivered_name, dn, 3);

    /* ids */
#define ID(field, val, what)                                                                 \
    if ((rc = read_id(val, ev->field, sizeof ev->field, &ev->has_##field, what, err)) < 0)   \
        return rc;
    if (ev->version == 2) {
        ID(entity_id, &s->m_entity_id, "entity_id");
        ID(event_id, &s->m_id, "id");
    } else {
        ID(entity_id, &s->m_id, "id");
    }
    ID(webhook_id, &s->m_webhook_id, "webhook_id");
    ID(company_id, &s->m_company_id, "company_id");
    ID(user_id, &s->m_user_id, "user_id");
    ID(correlation_id, &s->m_correlation_id, "correlation_id");
    ID(change_source, &s->m_change_source, "change_source");
    ID(merged_from_id, &s->m_merged_from_id, "merged_from_id");
    ID(merged_to_id, &s->m_merged_to_id, "merged_to_id");
#undef ID

    /* merges */
    if (ev->version == 1 && merged) {
        pdw__val what;
        ev->merge = 1;
        if (!ev->has_merged_from_id && s->current.type == PDW__J_OBJECT &&
            pdw__obj_get(&s->current, "merge_what_id", &what) &&
            (rc = read_id(&what, ev->merged_from_id, sizeof ev->merged_from_id,
                          &ev->has_merged_from_id, "current.merge_what_id", err)) < 0)
            return rc;
        if (!ev->has_merged_to_id && ev->has_entity_id) {
            memcpy(ev->merged_to_id, ev->entity_id, sizeof ev->merged_to_id);
            ev->has_merged_to_id = 1;
        }
    } else if (ev->version == 2 && ev->action == PDW__ACT_CHANGE && ev->has_merged_from_id) {
        ev->merge = 1;
    }

    /* attempt: v1 retry 0..3 -> 1..4; v2 attempt as is */
    const pdw__val *av = ev->version == 2 ? &s->m_attempt : &s->retry;
    ev->attempt = 1;
    if (has(av)) {
        long long a = read_uint(av);
        if (a < 0 || a > 1000 || (ev->version == 2 && a == 0))
            return pdw__error_set(err, PDW_EFIELD, -1, "%s is not a small non-negative integer",
                                  ev->version == 2 ? "meta.attempt" : "retry");
        ev->attempt = (unsigned)(ev->version == 2 ? a : a + 1);
    }

    ev->bulk = (ev->version == 2 ? s->m_is_bulk_edit.type : s->m_is_bulk_update.type) ==
               PDW__J_TRUE;

    /* timestamp, most precise first */
    const pdw__val *tv = &s->m_timestamp;
    ev->timestamp_ms = -1;
    if (ev->version == 1 && has(&s->m_timestamp_micro)) {
        long long us = read_uint(&s->m_timestamp_micro);
        ev->timestamp_ms = us < 0 ? -1 : us / 1000;
        tv = &s->m_timestamp_micro;
    } else if (ev->version == 1 && has(&s->m_timestamp_milli)) {
        ev->timestamp_ms = read_uint(&s->m_timestamp_milli);
        tv = &s->m_timestamp_milli;
    }
    if (ev->timestamp_ms < 0)
        ev->timestamp_ms = read_timestamp(&s->m_timestamp);

    /* the precise time, for ordering (pdw_event_timestamp_us(), recency.c), with the
     * precision the body gives it */
    long long us = has(&s->m_timestamp_micro) ? read_uint(&s->m_timestamp_micro) : -1;
    ev->timestamp_us = -1;
    ev->timestamp_unit = 0;
    if (us >= 0) {
        ev->timestamp_us = us;
        ev->timestamp_unit = 1;
    } else if (ev->timestamp_ms >= 0 && ev->timestamp_ms <= INT64_MAX / 1000) {
        ev->timestamp_us = ev->timestamp_ms * 1000;
        ev->timestamp_unit = tv == &s->m_timestamp_milli ? 1000 : timestamp_unit(&s->m_timestamp);
    }

    /* delivery key: see pdw_event_delivery_key() in event.h */
    char ts[PDW_ID_MAX + 1];
    if (!raw_text(tv, ts, sizeof ts))
        return pdw__error_set(err, PDW_EFIELD, -1, "meta.timestamp too long");
    if (ev->version == 2) {
        const char *k[] = { "2:", ev->object, ":", ev->delivered_action, ":",
                            ev->has_event_id ? "" : "e",
                            ev->has_event_id ? ev->event_id : ev->entity_id, ":", ts };
        join(ev->key, sizeof ev->key, k, sizeof k / sizeof k[0]);
    } else {
        const char *k[] = { "1:", ev->object, ":", ev->delivered_action, ":", ev->entity_id,
                            ":", ts, ":", ev->user_id };
        join(ev->key, sizeof ev->key, k, sizeof k / sizeof k[0]);
    }
    return 0;
}

int pdw__event_init(pdw_event *ev, const char *body, size_t len, unsigned max_depth,
                    const pdw_allocator *a, pdw_error *err)
{
    memset(ev, 0, sizeof *ev);
    if (pdw__alloc_set(&ev->alloc, a) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    ev->body = body;
    ev->body_len = len;
    int rc = pdw__scan_body(&ev->scan, body, len, max_depth, &ev->alloc, err);
    if (rc == 0)
        rc = build(ev, err);
    return rc;
}

void pdw__event_fini(pdw_event *ev)
{
    if (!ev)
        return;
    if (ev->dom)
        json_decref(ev->dom);
    for (size_t i = 0; i < ev->changed_count; i++)
        pdw__free(&ev->alloc, ev->changed[i]);
    pdw__free(&ev->alloc, ev->changed);
    ev->dom = NULL;
    ev->changed = NULL;
    ev->changed_count = 0;
    ev->changed_state = 0;
}

int pdw_parse_options_init(pdw_parse_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_PARSE_OPTIONS_VERSION);
}

int pdw_event_parse(pdw_event **out, const char *body, size_t len,
                    const pdw_parse_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (!body && len)
        return pdw__error_set(err, PDW_EINVAL, -1, "body is NULL");
    if (opts && opts->version != PDW_PARSE_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "parse options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");

    pdw_event *ev = pdw__malloc(&a, sizeof *ev);
    char *copy = pdw__malloc(&a, len);
    if (!ev || !copy) {
        pdw__free(&a, ev);
        pdw__free(&a, copy);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    if (len)
        memcpy(copy, body, len);
    int rc = pdw__event_init(ev, copy, len, opts ? opts->max_depth : 0, &a, err);
    ev->owns_body = 1;
    if (rc < 0) {
        pdw_event_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

void pdw_event_free(pdw_event *ev)
{
    if (!ev)
        return;
    pdw_allocator a = ev->alloc;
    pdw__event_fini(ev);
    if (ev->owns_body)
        pdw__free(&a, (void *)(uintptr_t)ev->body);
    pdw__free(&a, ev);
}

/* ---- accessors --------------------------------------------------------------------- */

int pdw_event_version(const pdw_event *ev) { return ev->version; }
const char *pdw_event_action(const pdw_event *ev) { return pdw__action_name(ev->action); }
const char *pdw_event_delivered_action(const pdw_event *ev) { return ev->delivered_action; }
const char *pdw_event_object(const pdw_event *ev) { return ev->object; }
const char *pdw_event_name(const pdw_event *ev) { return ev->name; }
const char *pdw_event_delivered_name(const pdw_event *ev) { return ev->delivered_name; }
unsigned pdw_event_attempt(const pdw_event *ev) { return ev->attempt; }
int64_t pdw_event_timestamp_ms(const pdw_event *ev) { return (int64_t)ev->timestamp_ms; }
int pdw_event_is_bulk(const pdw_event *ev) { return ev->bulk; }
int pdw_event_is_merge(const pdw_event *ev) { return ev->merge; }
const char *pdw_event_delivery_key(const pdw_event *ev) { return ev->key; }

#define ID_ACCESSOR(field)                                                                   \
    const char *pdw_event_##field(const pdw_event *ev)                                       \
    {                                                                                         \
        return ev->has_##field ? ev->field : NULL;                                           \
    }
ID_ACCESSOR(entity_id)
ID_ACCESSOR(event_id)
ID_ACCESSOR(webhook_id)
ID_ACCESSOR(company_id)
ID_ACCESSOR(user_id)
ID_ACCESSOR(correlation_id)
ID_ACCESSOR(change_source)
ID_ACCESSOR(merged_from_id)
ID_ACCESSOR(merged_to_id)
#undef ID_ACCESSOR

const char *pdw_event_body(const pdw_event *ev, size_t *len_out)
{
    if (len_out)
        *len_out = ev->body_len;
    return ev->body;
}

json_t *pdw_event_json(const pdw_event *cev)
{
    /* The DOM is a cache: building it does not change what the event is. */
    pdw_event *ev = (pdw_event *)(uintptr_t)cev;
    /* The body passed the scanner, so the DOM is built without validating it again
     * (lib/dom.h); NULL only when jansson's allocator fails. */
    if (!ev->dom)
        ev->dom = pdw__dom_build(ev->body, ev->body_len);
    return ev->dom;
}

/* data / previous by version: v2 key, v1 key; v1 user events carry an array of one. JSON
 * null is "none", as absent (the Python binding's Event.data / Event.previous agree). */
static json_t *section(const pdw_event *ev, const char *v2_key, const char *v1_key)
{
    json_t *root = pdw_event_json(ev);
    if (!root)
        return NULL;
    json_t *v = json_object_get(root, ev->version == 2 ? v2_key : v1_key);
    if (ev->version == 1 && json_is_array(v))
        v = json_array_get(v, 0);
    return v && !json_is_null(v) ? v : NULL;
}

json_t *pdw_event_data(const pdw_event *ev)
{
    return section(ev, "data", "current");
}

json_t *pdw_event_previous(const pdw_event *ev)
{
    return section(ev, "previous", "previous");
}

/* ---- changed fields (built by changes.c) ------------------------------------------ */

static int build_changed(pdw_event *ev)
{
    int rc = pdw__changes_build(ev, &ev->changed, &ev->changed_count);
    if (rc < 0)
        return rc;
    ev->changed_state = 1;
    return 0;
}

static int ensure_changed(const pdw_event *cev)
{
    /* A cache, like the DOM. */
    pdw_event *ev = (pdw_event *)(uintptr_t)cev;
    if (ev->changed_state == 1)
        return 0;
    return build_changed(ev);
}

size_t pdw_event_changed_count(const pdw_event *ev)
{
    return ensure_changed(ev) < 0 ? 0 : ev->changed_count;
}

const char *pdw_event_changed_field(const pdw_event *ev, size_t i)
{
    if (ensure_changed(ev) < 0 || i >= ev->changed_count)
        return NULL;
    return ev->changed[i];
}

int pdw_event_changed(const pdw_event *ev, const char *field)
{
    if (!ev || !field)
        return 0;
    int rc = ensure_changed(ev);
    if (rc < 0)
        return rc;
    size_t n = strlen(field);
    for (size_t i = 0; i < ev->changed_count; i++) {
        const char *c = ev->changed[i];
        /* "custom_fields" also answers for any "custom_fields.<hash>" */
        if (strncmp(c, field, n) == 0 && (c[n] == '\0' || c[n] == '.'))
            return 1;
    }
    return 0;
}
