/* Changed fields: which fields of the entity a `change` event says changed, the same names
 * for v1 and v2. Read from the scanner's spans, built only when asked for (event.c caches
 * the list). What the list means, and why, is in docs/API.md ("Changed fields") and
 * docs/DECISIONS.md; the Pipedrive quirks behind each rule are in PIPEDRIVE.md.
 *
 * v1: keys that current and previous both carry, whose values differ. A key on one side
 *     only is not a change (real bodies carry different key sets on the two sides).
 *     Custom fields and their companion keys (<hash>_currency, <hash>_lat, ...) are named
 *     custom_fields.<hash>, once. merged.X has no field changes: previous is another record.
 * v2: the keys of previous (custom fields as custom_fields.<hash>), minus those whose value
 *     is the same JSON as in data (Pipedrive's previous is not an exact diff). */
#include <string.h>

#include "core/core.h"

/* Member visits spent on searches (keys out of order, v2 look-ups in data) before giving
 * up on equality: a body of pathological shape then reports a field as changed rather
 * than cost quadratic time. Real bodies spend a few hundred. */
#define CHANGES_BUDGET 1000000L

typedef struct changes {
    const pdw_allocator *a;
    char **items;
    size_t count, cap;
    long budget;
} changes;

/* ---- JSON equality over validated spans ------------------------------------------- */

static int same(changes *c, const pdw__val *x, const pdw__val *y);

/* Find member `key` of obj, counting the visits. 1 found, 0 not (or out of budget). */
static int find(changes *c, const pdw__val *obj, const pdw__val *key, pdw__val *out)
{
    pdw__obj_iter it;
    pdw__val k;
    pdw__obj_iter_init(&it, obj);
    while (c->budget > 0 && pdw__obj_next(&it, &k, out)) {
        c->budget--;
        if (pdw__val_equal(&k, key))
            return 1;
    }
    return 0;
}

static int same_object(changes *c, const pdw__val *x, const pdw__val *y)
{
    pdw__obj_iter ix, iy;
    pdw__val kx, vx, ky, vy;
    size_t nx = 0, ny = 0;
    /* Same members whatever their order: walk side by side, search when the orders part. */
    pdw__obj_iter_init(&ix, x);
    pdw__obj_iter_init(&iy, y);
    while (pdw__obj_next(&ix, &kx, &vx)) {
        nx++;
        int paired = pdw__obj_next(&iy, &ky, &vy);
        ny += (size_t)paired;
        if (!(paired && pdw__val_equal(&kx, &ky)) && !find(c, y, &kx, &vy))
            return 0;
        if (!same(c, &vx, &vy))
            return 0;
    }
    while (pdw__obj_next(&iy, &ky, &vy))
        ny++;
    return nx == ny; /* no duplicate keys (the scanner refuses them): same count, same set */
}

static int same_array(changes *c, const pdw__val *x, const pdw__val *y)
{
    pdw__obj_iter ix, iy;
    pdw__val vx, vy;
    pdw__arr_iter_init(&ix, x);
    pdw__arr_iter_init(&iy, y);
    for (;;) {
        int gx = pdw__arr_next(&ix, &vx), gy = pdw__arr_next(&iy, &vy);
        if (!gx || !gy)
            return gx == gy;
        if (!same(c, &vx, &vy))
            return 0;
    }
}

/* x and y are the same JSON value: objects regardless of member order, strings decoded,
 * numbers by their text (1 and 1.0 differ), insignificant white space aside. */
static int same(changes *c, const pdw__val *x, const pdw__val *y)
{
    if (x->type != y->type)
        return 0;
    if (x->type == PDW__J_OBJECT)
        return same_object(c, x, y);
    if (x->type == PDW__J_ARRAY)
        return same_array(c, x, y);
    return pdw__val_equal(x, y);
}

/* ---- field names ------------------------------------------------------------------ */

static int is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* The custom field a v1 key belongs to: the 40-hex hash itself, or a companion key
 * <hash>_<suffix> (suffix of [a-z0-9_], e.g. currency, until, timezone_id, lat, long,
 * route, formatted_address, postal_code, ...). 1 when it is one, else 0. */
static int v1_custom_field(const char *s, size_t n)
{
    if (n < 40)
        return 0;
    for (size_t i = 0; i < 40; i++)
        if (!is_hex(s[i]))
            return 0;
    if (n == 40)
        return 1;
    if (s[40] != '_' || n == 41)
        return 0;
    for (size_t i = 41; i < n; i++)
        if (!(is_hex(s[i]) || (s[i] >= 'g' && s[i] <= 'z') || s[i] == '_'))
            return 0;
    return 1;
}

/* Append prefix + name[0..n), unless the list has it already (folded companion keys). */
static int add(changes *c, const char *prefix, const char *name, size_t n)
{
    char buf[512];
    size_t plen = strlen(prefix);
    if (n > sizeof buf - 1 - plen)
        return 0; /* longer than any field name: not a field, leave it out */
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, name, n);
    buf[plen + n] = '\0';
    /* only a folded custom field can come twice; the budget bounds the searches */
    for (size_t i = 0; *prefix && i < c->count && c->budget > 0; i++, c->budget--)
        if (strcmp(c->items[i], buf) == 0)
            return 0;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **items = pdw__realloc(c->a, c->items, cap * sizeof *items);
        if (!items)
            return PDW_ENOMEM;
        c->items = items;
        c->cap = cap;
    }
    char *s = pdw__strndup(c->a, buf, plen + n);
    if (!s)
        return PDW_ENOMEM;
    c->items[c->count++] = s;
    return 0;
}

static int add_key(changes *c, const char *prefix, const pdw__val *key)
{
    char buf[512];
    long n = pdw__str_decode(key, buf, sizeof buf);
    return n < 0 ? 0 : add(c, prefix, buf, (size_t)n);
}

static int add_v1(changes *c, const pdw__val *key)
{
    char buf[512];
    long n = pdw__str_decode(key, buf, sizeof buf);
    if (n < 0)
        return 0;
    if (v1_custom_field(buf, (size_t)n))
        return add(c, "custom_fields.", buf, 40);
    return add(c, "", buf, (size_t)n);
}

/* ---- v1 and v2 -------------------------------------------------------------------- */

static int changed_v1(changes *c, const pdw__val *cur, const pdw__val *prev)
{
    pdw__obj_iter it, pit;
    pdw__val k, v, pk, pv;
    int rc;
    /* Pipedrive writes current and previous in the same key order: walk them side by side
     * and only search when the orders part. */
    pdw__obj_iter_init(&it, cur);
    pdw__obj_iter_init(&pit, prev);
    while (pdw__obj_next(&it, &k, &v)) {
        const char *at = pit.p;
        int found = pdw__obj_next(&pit, &pk, &pv) && pdw__val_equal(&k, &pk);
        if (!found) {
            /* the walks are out of step: a key on one side only, or another order */
            found = find(c, prev, &k, &pv);
            if (!found && c->budget <= 0)
                return 0; /* out of budget: what is listed so far stands */
            /* go on side by side after the member found, or from where we were when k is
             * in current only, so that one extra key costs one search, not one per key */
            pit.p = found ? pv.p + pv.len + (pv.type == PDW__J_STRING) : at;
        }
        if (found && !same(c, &v, &pv) && (rc = add_v1(c, &k)) < 0)
            return rc;
    }
    return 0;
}

/* The entries of prev whose value is not the same in data (data may be ABSENT). */
static int changed_v2_members(changes *c, const pdw__val *prev, const pdw__val *data,
                              const char *prefix)
{
    pdw__obj_iter it;
    pdw__val k, v, dv;
    int rc;
    pdw__obj_iter_init(&it, prev);
    while (pdw__obj_next(&it, &k, &v)) {
        if (!*prefix && pdw__str_eq(&k, "custom_fields") && v.type == PDW__J_OBJECT) {
            pdw__val dcf;
            dcf.type = PDW__J_ABSENT;
            if (data->type == PDW__J_OBJECT && find(c, data, &k, &dcf) &&
                dcf.type != PDW__J_OBJECT)
                dcf.type = PDW__J_ABSENT;
            if ((rc = changed_v2_members(c, &v, &dcf, "custom_fields.")) < 0)
                return rc;
            continue;
        }
        if (data->type == PDW__J_OBJECT && find(c, data, &k, &dv) && same(c, &v, &dv))
            continue;
        if ((rc = add_key(c, prefix, &k)) < 0)
            return rc;
    }
    return 0;
}

int pdw__changes_build(const pdw_event *ev, char ***items_out, size_t *count_out)
{
    const pdw__scan *s = &ev->scan;
    changes c = { &ev->alloc, NULL, 0, 0, CHANGES_BUDGET };
    int rc = 0;
    *items_out = NULL;
    *count_out = 0;
    if (ev->action != PDW__ACT_CHANGE)
        return 0;
    if (ev->version == 2) {
        if (s->previous.type == PDW__J_OBJECT)
            rc = changed_v2_members(&c, &s->previous, &s->data, "");
    } else if (!ev->merge) {
        pdw__val cur = s->current, prev = s->previous;
        if (cur.type == PDW__J_ARRAY && !pdw__array_first(&s->current, &cur))
            cur.type = PDW__J_NULL;
        if (prev.type == PDW__J_ARRAY && !pdw__array_first(&s->previous, &prev))
            prev.type = PDW__J_NULL;
        if (cur.type == PDW__J_OBJECT && prev.type == PDW__J_OBJECT)
            rc = changed_v1(&c, &cur, &prev);
    }
    if (rc < 0) {
        for (size_t i = 0; i < c.count; i++)
            pdw__free(c.a, c.items[i]);
        pdw__free(c.a, c.items);
        return rc;
    }
    *items_out = c.items;
    *count_out = c.count;
    return 0;
}
