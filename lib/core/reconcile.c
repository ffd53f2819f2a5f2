/* Reconciled events (pdwebhook/reconcile.h): an API record as a v2-shaped event body, and
 * the update key that a delivery and the reconciled record of one state of one entity
 * share. The key is read from the scanner's spans (no DOM): the intake computes it for
 * every accepted delivery. */
#include <stdio.h>

#include "core/core.h"
#include "pdwebhook/reconcile.h"

int pdw_event_is_reconciled(const pdw_event *ev)
{
    pdw__val v;
    if (!ev || ev->scan.meta.type != PDW__J_OBJECT)
        return 0;
    return pdw__obj_get(&ev->scan.meta, "reconciled", &v) && v.type == PDW__J_TRUE;
}

/* A time value of a record: a date-time string, or an integer of seconds / ms. */
static long long span_time(const pdw__val *v)
{
    if (v->type == PDW__J_STRING) {
        char buf[64];
        long n = pdw__str_decode(v, buf, sizeof buf);
        return n < 0 ? -1 : pdw__parse_datetime(buf, (size_t)n);
    }
    if (v->type == PDW__J_NUMBER && v->is_int) {
        long long x = pdw__decimal(v->p, v->len);
        return x < 0 ? -1 : x < 100000000000LL ? x * 1000 : x;
    }
    return -1;
}

static long long state_update_time(const pdw__val *state)
{
    static const char *const keys[] = { "update_time", "modified" };
    pdw__val obj = *state, v;
    if (obj.type == PDW__J_ARRAY && !pdw__array_first(state, &obj)) /* v1 users */
        return -1;
    if (obj.type != PDW__J_OBJECT)
        return -1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (pdw__obj_get(&obj, keys[i], &v)) {
            long long t = span_time(&v);
            if (t >= 0)
                return t;
        }
    return -1;
}

int pdw_event_update_key(const pdw_event *ev, char *out, size_t cap)
{
    if (!ev || !out || !cap)
        return PDW_EINVAL;
    out[0] = '\0';
    const char *id = pdw_event_entity_id(ev);
    if (!id)
        return PDW_ENOTFOUND;
    const pdw__val *state = ev->version == 2 ? &ev->scan.data : &ev->scan.current;
    long long t = state_update_time(state);
    if (t < 0) /* a delete: the last state, where the body has one */
        t = state_update_time(&ev->scan.previous);
    if (t < 0)
        return PDW_ENOTFOUND;
    int n = snprintf(out, cap, "u:%s:%s:%lld", ev->object, id, t);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return PDW_ERANGE;
    }
    return n;
}

/* ---- records ------------------------------------------------------------------------ */

static long long json_time(json_t *v)
{
    if (json_is_string(v))
        return pdw__parse_datetime(json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        long long x = (long long)json_integer_value(v);
        return x < 0 ? -1 : x < 100000000000LL ? x * 1000 : x;
    }
    return -1;
}

static long long record_time(json_t *rec, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long long t = json_time(json_object_get(rec, keys[i]));
        if (t >= 0)
            return t;
    }
    return -1;
}

static long long record_update_time(json_t *rec)
{
    static const char *const keys[] = { "update_time", "modified", "add_time", "created" };
    return record_time(rec, keys, sizeof keys / sizeof keys[0]);
}

static long long record_add_time(json_t *rec)
{
    static const char *const keys[] = { "add_time", "created" };
    return record_time(rec, keys, sizeof keys / sizeof keys[0]);
}

static int is_deleted(const char *object, json_t *rec)
{
    if (json_is_true(json_object_get(rec, "is_deleted")) ||
        json_is_true(json_object_get(rec, "deleted")))
        return 1;
    /* a user's active_flag false is a deactivation, delivered as a change */
    json_t *af = json_object_get(rec, "active_flag");
    return strcmp(object, "user") != 0 && json_is_false(af);
}

static int id_string(json_t *v, char *out, size_t cap)
{
    int n = -1;
    if (json_is_integer(v))
        n = snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) > 0)
        n = snprintf(out, cap, "%s", json_string_value(v));
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void rfc3339(long long ms, char *out, size_t cap)
{
    long long secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    /* civil from days (H. Hinnant) */
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", y, m, d, rem / 3600,
             rem / 60 % 60, rem % 60, ms % 1000);
}

int64_t pdw_reconcile_record_time(const char *object, const char *record, size_t len)
{
    if (!object || (!record && len))
        return PDW_EINVAL;
    json_t *rec = json_loadb(record ? record : "", len, 0, NULL);
    if (!rec)
        return PDW_EJSON;
    long long t = json_is_object(rec) ? record_update_time(rec) : -1;
    json_decref(rec);
    return t < 0 ? PDW_ENOTFOUND : (int64_t)t;
}

static json_t *build(const char *object, json_t *rec, long long updated, long long from_ms,
                     const char *source, const char *id)
{
    char key[PDW_DELIVERY_KEY_MAX], ts[40];
    int deleted = is_deleted(object, rec);
    long long added = record_add_time(rec);
    const char *action = deleted ? "delete" : added >= 0 && added >= from_ms ? "create"
                                                                            : "change";
    /* the event id (meta.id, at most PDW_ID_MAX): the same for the same state, so that
     * the same record reconciled twice has one delivery key; the entity is in the key's
     * other parts ("2:<object>:<action>:<id>:<timestamp>") */
    int kn = snprintf(key, sizeof key, "r%lld:%s", updated, id);
    if (kn < 0 || kn > PDW_ID_MAX) {
        unsigned long long h = 14695981039346656037ULL; /* FNV-1a of a long entity id */
        for (const char *p = id; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        snprintf(key, sizeof key, "r%lld:h%016llx", updated, h);
    }
    rfc3339(updated, ts, sizeof ts);
    json_t *meta = json_object(), *body = json_object();
    int bad = !meta || !body;
    bad = bad || json_object_set_new(meta, "version", json_string("2.0"));
    bad = bad || json_object_set_new(meta, "action", json_string(action));
    bad = bad || json_object_set_new(meta, "entity", json_string(object));
    bad = bad || json_object_set_new(meta, "entity_id", json_string(id));
    bad = bad || json_object_set_new(meta, "id", json_string(key));
    bad = bad || json_object_set_new(meta, "timestamp", json_string(ts));
    bad = bad || json_object_set_new(meta, "type", json_string("general"));
    bad = bad || json_object_set_new(meta, "attempt", json_integer(1));
    bad = bad || json_object_set_new(meta, "reconciled", json_true());
    if (source)
        bad = bad || json_object_set_new(meta, "reconciled_from", json_string(source));
    json_t *company = json_object_get(rec, "company_id");
    if (json_is_integer(company) || json_is_string(company))
        bad = bad || json_object_set(meta, "company_id", company);
    bad = bad || json_object_set_new(body, "meta", meta);
    meta = NULL;
    bad = bad || json_object_set(body, deleted ? "previous" : "data", rec);
    bad = bad || json_object_set_new(body, deleted ? "data" : "previous", json_null());
    json_decref(meta);
    if (bad) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int pdw_reconcile_body(char **out, size_t *out_len, const char *object, const char *record,
                       size_t len, int64_t from_ms, int64_t to_ms, const char *source,
                       pdw_error *err)
{
    pdw__error_reset(err);
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!out || !object || (!record && len))
        return pdw__error_set(err, PDW_EINVAL, -1, "out, object and record are required");
    size_t olen = strlen(object);
    if (!olen || olen > PDW_NAME_MAX || !pdw__object_valid(object, olen))
        return pdw__error_set(err, PDW_EFIELD, -1, "invalid object name");
    json_error_t je;
    json_t *rec = json_loadb(record ? record : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!rec)
        return pdw__error_set(err, PDW_EJSON, je.position, "record: %s", je.text);
    char id[PDW_ID_MAX + 1];
    int rc = 0;
    long long updated = -1;
    json_t *body = NULL;
    if (!json_is_object(rec)) {
        rc = pdw__error_set(err, PDW_ENOTOBJECT, -1, "the record is not a JSON object");
    } else if (id_string(json_object_get(rec, "id"), id, sizeof id) < 0) {
        rc = pdw__error_set(err, PDW_EFIELD, -1, "the record has no usable id");
    } else if ((updated = record_update_time(rec)) < 0) {
        rc = pdw__error_set(err, PDW_EFIELD, -1, "the record has no update time");
    } else if (updated < from_ms || (to_ms > 0 && updated >= to_ms)) {
        rc = PDW_RECONCILE_OUTSIDE;
    } else if (!(body = build(object, rec, updated, from_ms, source, id))) {
        rc = pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    json_decref(rec);
    if (rc != 0)
        return rc;
    /* into a buffer of the default allocator (pdw_free() frees it), not json_dumps()'s,
     * which comes from whatever allocator the host gave jansson */
    pdw_allocator a;
    (void)pdw__alloc_set(&a, NULL);
    size_t need = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *buf = need ? pdw__malloc(&a, need + 1) : NULL;
    if (buf && json_dumpb(body, buf, need, JSON_COMPACT) == need) {
        buf[need] = '\0';
    } else {
        pdw__free(&a, buf);
        buf = NULL;
    }
    json_decref(body);
    if (!buf)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    *out = buf;
    if (out_len)
        *out_len = need;
    return 0;
}
