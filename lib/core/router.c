/* The router: patterns `action.object` mapped to handlers, dispatched in registration order.
 *
 * Layout. An event has one canonical action a (0..2) and one object name o, so the handlers
 * that can match it live in at most four buckets: (a, o), (a, *), (*, o) and (*, *). The
 * wildcard-object buckets are fixed arrays in the router; the per-object buckets hang off
 * an open-addressing hash table keyed by the object name. A dispatch hashes the object
 * once, probes the table (load factor kept at or below 1/2, so the expected probe count is
 * a small constant) and merges the up-to-four buckets by registration sequence number.
 * Its cost therefore depends on the handlers that can match the event, never on how many
 * patterns were registered for other events.
 *
 * `merged.X` is stored as (change, X) with a merge-only flag rather than as a fifth
 * action: a merge is a change, so `change.deal` and `*.deal` must see it too, and keeping
 * it in the change bucket means the ordering merge needs no extra list.
 *
 * Mutation happens only before the router is frozen (by pdw_router_freeze() or the first
 * dispatch). After that every field except `frozen` itself is read-only, which is what
 * makes concurrent dispatch safe without a lock.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"

/* Longest pattern: the longest action word ("updated"/"deleted", 7), the dot and the
 * longest object name. Scanning stops a byte beyond it, so an unterminated or huge string
 * is never read past what could be a valid pattern. */
#define PATTERN_MAX (7 + 1 + PDW_NAME_MAX)

/* First table size; a power of two so that probing can mask instead of divide. */
#define TABLE_MIN 16

/* One registration. Owned strings are freed with the router. */
typedef struct entry {
    size_t seq;         /* registration order, global across buckets */
    pdw_handler_cb cb;
    void *user;
    char *pattern;      /* as registered, for the error callback */
    char *field;        /* field filter, or NULL */
    int merge_only;     /* registered as `merged.X`: needs ev->merge == 1 */
} entry;

/* Entries in registration order (appended, so sorted by seq by construction). */
typedef struct bucket {
    entry *v;
    size_t n, cap;
} bucket;

/* One object name's handlers: per canonical action, and for `*`. */
typedef struct obj_slot {
    char *name;         /* NULL: empty table slot */
    uint64_t hash;      /* kept so that growing the table does not rehash the strings */
    bucket by_action[PDW__ACT_COUNT];
    bucket any_action;
} obj_slot;

struct pdw_router {
    pdw_allocator alloc;
    /* Set once, never cleared. Atomic because the first dispatch may run on several threads
     * at once and each of them sets it; everything else is immutable by then. */
    _Atomic int frozen;
    size_t count;       /* registrations so far; also the next sequence number */
    bucket any_any;                     /* `*.*` */
    bucket act_any[PDW__ACT_COUNT];     /* `a.*` */
    obj_slot *slots;                    /* `a.o` and `*.o`, by object name */
    size_t slot_cap;                    /* 0 or a power of two */
    size_t slot_used;
    pdw_handler_cb fallback;
    void *fallback_user;
    pdw_handler_error_cb on_error;
    void *on_error_user;
    pdw_recency *recency;               /* borrowed; NULL: no staleness check */
    pdw_handler_cb on_stale;            /* NULL: stale events are dropped */
    void *on_stale_user;
};

/* ---- small helpers ------------------------------------------------------------------ */

/* FNV-1a: short keys, no need for anything stronger (the names come from the host's own
 * registrations; an attacker only picks which one event looks up). */
static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return h;
}

static int is_frozen(const pdw_router *r)
{
    /* Relaxed is enough: the flag publishes no data. Registration and the freeze happen on
     * one thread (by contract), and other threads received the router through whatever
     * synchronisation the host used to hand them the pointer. */
    return atomic_load_explicit(&r->frozen, memory_order_relaxed) != 0;
}

/* Make room for one more entry; on failure the bucket is untouched. */
static int bucket_reserve(const pdw_allocator *a, bucket *b)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 4;
    if (cap > (size_t)-1 / sizeof *b->v)
        return PDW_ENOMEM;
    entry *v = pdw__realloc(a, b->v, cap * sizeof *v);
    if (!v)
        return PDW_ENOMEM;
    b->v = v;
    b->cap = cap;
    return 0;
}

static void bucket_free(const pdw_allocator *a, bucket *b)
{
    for (size_t i = 0; i < b->n; i++) {
        pdw__free(a, b->v[i].pattern);
        pdw__free(a, b->v[i].field);
    }
    pdw__free(a, b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

/* Index of the slot for name, or of the empty slot where it would go. slot_cap > 0. */
static size_t table_probe(const obj_slot *slots, size_t cap, const char *name, size_t n,
                          uint64_t h)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    /* Terminates: the load factor is at most 1/2, so an empty slot exists. */
    while (slots[i].name) {
        if (slots[i].hash == h && strlen(slots[i].name) == n &&
            memcmp(slots[i].name, name, n) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static const obj_slot *table_find(const pdw_router *r, const char *name, size_t n)
{
    if (r->slot_cap == 0)
        return NULL;
    size_t i = table_probe(r->slots, r->slot_cap, name, n, hash_name(name, n));
    return r->slots[i].name ? &r->slots[i] : NULL;
}

/* Ensure one more name fits with the load factor at most 1/2. Growing is invisible to
 * dispatch, so a registration that fails later may leave the table grown. */
static int table_reserve(pdw_router *r)
{
    if ((r->slot_used + 1) * 2 <= r->slot_cap)
        return 0;
    size_t cap = r->slot_cap ? r->slot_cap * 2 : TABLE_MIN;
    if (cap < r->slot_cap)
        return PDW_ENOMEM;
    obj_slot *slots = pdw__calloc(&r->alloc, cap, sizeof *slots);
    if (!slots)
        return PDW_ENOMEM;
    for (size_t i = 0; i < r->slot_cap; i++) {
        const obj_slot *s = &r->slots[i];
        if (!s->name)
            continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (slots[j].name)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    pdw__free(&r->alloc, r->slots);
    r->slots = slots;
    r->slot_cap = cap;
    return 0;
}

/* ---- patterns ----------------------------------------------------------------------- */

/* A parsed pattern. action/object -1 mean `*`. */
typedef struct parsed {
    int action;
    int merge_only;
    const char *object; /* points into the pattern; NULL for `*` */
    size_t object_len;
} parsed;

/* Copy up to 48 bytes of s into out for an error message, non-printable bytes as '?'
 * (the pattern is the host's, but it may be anything, and the message is a C string). */
static void quote_for_message(char *out, size_t out_size, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < out_size && i < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    }
    if (n > 48 && k + 4 < out_size) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

static int parse_pattern(const char *pattern, parsed *p, pdw_error *err)
{
    size_t len = strnlen(pattern, PATTERN_MAX + 1);
    char q[64];
    quote_for_message(q, sizeof q, pattern, len);
    if (len == 0)
        return pdw__error_set(err, PDW_EPATTERN, -1, "empty event pattern");
    if (len > PATTERN_MAX)
        return pdw__error_set(err, PDW_EPATTERN, -1,
                              "event pattern \"%s\" too long (object names are at most %d bytes)",
                              q, PDW_NAME_MAX);
    const char *dot = memchr(pattern, '.', len);
    if (!dot || memchr(dot + 1, '.', len - (size_t)(dot - pattern) - 1))
        return pdw__error_set(err, PDW_EPATTERN, -1,
                              "event pattern \"%s\" must be action.object with exactly one '.'",
                              q);
    size_t alen = (size_t)(dot - pattern);
    const char *obj = dot + 1;
    size_t olen = len - alen - 1;

    p->merge_only = 0;
    if (alen == 1 && pattern[0] == '*') {
        p->action = -1;
    } else {
        int merged = 0;
        p->action = pdw__action_id(pattern, alen, &merged);
        if (p->action < 0)
            return pdw__error_set(err, PDW_EPATTERN, -1,
                                  "event pattern \"%s\": unknown action (create, change, "
                                  "delete, added, updated, deleted, merged or *)",
                                  q);
        p->merge_only = merged;
    }
    if (olen == 1 && obj[0] == '*') {
        p->object = NULL;
        p->object_len = 0;
    } else if (pdw__object_valid(obj, olen)) {
        p->object = obj;
        p->object_len = olen;
    } else {
        return pdw__error_set(err, PDW_EPATTERN, -1,
                              "event pattern \"%s\": object must be * or 1..%d bytes of "
                              "[A-Za-z0-9_]",
                              q, PDW_NAME_MAX);
    }
    return 0;
}

/* ---- registration ------------------------------------------------------------------- */

static int add_entry(pdw_router *r, const char *pattern, const char *field, pdw_handler_cb cb,
                     void *user, pdw_error *err)
{
    if (!r || !pattern || !cb)
        return pdw__error_set(err, PDW_EINVAL, -1, "router, pattern and handler are required");
    if (is_frozen(r))
        return pdw__error_set(err, PDW_EFROZEN, -1, "%s", pdw_strerror(PDW_EFROZEN));
    /* Initialised although parse_pattern() sets it on success: gcc -O2 cannot see that
     * pdw__error_set() never returns 0 here and warns (-Wmaybe-uninitialized). */
    parsed p = { -1, 0, NULL, 0 };
    int rc = parse_pattern(pattern, &p, err);
    if (rc)
        return rc;

    /* Everything that can fail is done before anything visible changes, so that an
     * out-of-memory leaves the router exactly as it was. */
    entry e = { r->count, cb, user, NULL, NULL, p.merge_only };
    obj_slot fresh;          /* the object's slot when this registration creates it */
    memset(&fresh, 0, sizeof fresh);
    obj_slot *slot = NULL;   /* the existing slot otherwise */
    size_t slot_index = 0;
    bucket *b;

    e.pattern = pdw__strdup(&r->alloc, pattern);
    if (!e.pattern)
        goto nomem;
    if (field) {
        e.field = pdw__strdup(&r->alloc, field);
        if (!e.field)
            goto nomem;
    }

    if (!p.object) {
        b = p.action < 0 ? &r->any_any : &r->act_any[p.action];
    } else {
        uint64_t h = hash_name(p.object, p.object_len);
        if (r->slot_cap) {
            slot_index = table_probe(r->slots, r->slot_cap, p.object, p.object_len, h);
            if (r->slots[slot_index].name)
                slot = &r->slots[slot_index];
        }
        if (!slot) {
            if (table_reserve(r))
                goto nomem;
            /* The table may have moved: find the insertion point again. */
            slot_index = table_probe(r->slots, r->slot_cap, p.object, p.object_len, h);
            fresh.name = pdw__strndup(&r->alloc, p.object, p.object_len);
            if (!fresh.name)
                goto nomem;
            fresh.hash = h;
        }
        obj_slot *target = slot ? slot : &fresh;
        b = p.action < 0 ? &target->any_action : &target->by_action[p.action];
    }
    if (bucket_reserve(&r->alloc, b))
        goto nomem;

    /* Commit: nothing below can fail. */
    b->v[b->n++] = e;
    if (p.object && !slot) {
        r->slots[slot_index] = fresh;
        r->slot_used++;
    }
    r->count++;
    return 0;

nomem:
    /* fresh's buckets are empty or hold only reserved space, never entries. */
    pdw__free(&r->alloc, fresh.name);
    for (int i = 0; i < PDW__ACT_COUNT; i++)
        pdw__free(&r->alloc, fresh.by_action[i].v);
    pdw__free(&r->alloc, fresh.any_action.v);
    pdw__free(&r->alloc, e.field);
    pdw__free(&r->alloc, e.pattern);
    char q[64];
    quote_for_message(q, sizeof q, pattern, strnlen(pattern, PATTERN_MAX + 1));
    return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory registering \"%s\"", q);
}

/* ---- public API --------------------------------------------------------------------- */

int pdw_router_options_init(pdw_router_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_ROUTER_OPTIONS_VERSION);
}

int pdw_router_new(pdw_router **out, const pdw_router_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (opts && opts->version != PDW_ROUTER_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1,
                              "pdw_router_options version %u, this library knows %d",
                              opts->version, PDW_ROUTER_OPTIONS_VERSION);
    pdw_allocator a;
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "allocator must set malloc, realloc and free");
    pdw_router *r = pdw__calloc(&a, 1, sizeof *r);
    if (!r)
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory creating the router");
    /* calloc zeroed every pointer and count; the atomic gets a proper initialisation. */
    r->alloc = a;
    atomic_init(&r->frozen, 0);
    *out = r;
    return 0;
}

void pdw_router_free(pdw_router *r)
{
    if (!r)
        return;
    /* Copy the allocator out: it lives inside the memory about to be freed. */
    pdw_allocator a = r->alloc;
    bucket_free(&a, &r->any_any);
    for (int i = 0; i < PDW__ACT_COUNT; i++)
        bucket_free(&a, &r->act_any[i]);
    for (size_t i = 0; i < r->slot_cap; i++) {
        obj_slot *s = &r->slots[i];
        if (!s->name)
            continue;
        for (int k = 0; k < PDW__ACT_COUNT; k++)
            bucket_free(&a, &s->by_action[k]);
        bucket_free(&a, &s->any_action);
        pdw__free(&a, s->name);
    }
    pdw__free(&a, r->slots);
    pdw__free(&a, r);
}

int pdw_router_on(pdw_router *r, const char *pattern, pdw_handler_cb cb, void *user,
                  pdw_error *err)
{
    pdw__error_reset(err);
    return add_entry(r, pattern, NULL, cb, user, err);
}

int pdw_router_on_change(pdw_router *r, const char *pattern, const char *field,
                         pdw_handler_cb cb, void *user, pdw_error *err)
{
    pdw__error_reset(err);
    if (!field || !*field)
        return pdw__error_set(err, PDW_EINVAL, -1, "field must be a non-empty string");
    return add_entry(r, pattern, field, cb, user, err);
}

int pdw_router_on_unhandled(pdw_router *r, pdw_handler_cb cb, void *user)
{
    if (!r || !cb)
        return PDW_EINVAL;
    if (is_frozen(r))
        return PDW_EFROZEN;
    r->fallback = cb;
    r->fallback_user = user;
    return 0;
}

int pdw_router_on_error(pdw_router *r, pdw_handler_error_cb cb, void *user)
{
    if (!r || !cb)
        return PDW_EINVAL;
    if (is_frozen(r))
        return PDW_EFROZEN;
    r->on_error = cb;
    r->on_error_user = user;
    return 0;
}

int pdw_router_on_stale(pdw_router *r, pdw_recency *tracker, pdw_handler_cb cb, void *user)
{
    if (!r || !tracker)
        return PDW_EINVAL;
    if (is_frozen(r))
        return PDW_EFROZEN;
    r->recency = tracker;
    r->on_stale = cb;
    r->on_stale_user = user;
    return 0;
}

void pdw_router_freeze(pdw_router *r)
{
    if (r)
        atomic_store_explicit(&r->frozen, 1, memory_order_relaxed);
}

size_t pdw_router_count(const pdw_router *r)
{
    return r ? r->count : 0;
}

/* ---- dispatch ----------------------------------------------------------------------- */

/* Account for one failed handler (or unevaluable filter) and tell the error callback. */
static void note_failure(const pdw_router *r, const pdw_event *ev, const char *pattern, int rc,
                         pdw_dispatch_result *res)
{
    if (res->failed++ == 0)
        res->first_failure = rc;
    if (r->on_error)
        r->on_error(ev, pattern, rc, r->on_error_user);
}

int pdw_router_dispatch(const pdw_router *r, const pdw_event *ev, pdw_dispatch_result *result)
{
    pdw_dispatch_result res = { 0, 0, 0 };
    if (result)
        *result = res;
    /* An action outside 0..2 cannot come from pdw_event_parse(); refusing it beats
     * indexing the per-action buckets with it. */
    if (!r || !ev || ev->action < 0 || ev->action >= PDW__ACT_COUNT)
        return PDW_EINVAL;

    /* The public signature takes a const router because, to the caller, dispatch does not
     * change it. The freeze latch is the one exception: it is atomic and one-way, and the
     * router was allocated by pdw_router_new() (never defined const), so writing through
     * the cast is well defined. Load first so that concurrent dispatches on a frozen router
     * only read the cache line. */
    if (!is_frozen(r))
        atomic_store_explicit(&((pdw_router *)r)->frozen, 1, memory_order_relaxed);

    /* A change of the entity newer than this one was dispatched already: the handlers
     * would act on superseded data. The tracker records the event otherwise. */
    if (r->recency && pdw_recency_check(r->recency, ev) == PDW_RECENCY_STALE) {
        if (r->on_stale) {
            res.matched = 1;
            int rc = r->on_stale(ev, r->on_stale_user);
            if (rc != 0)
                note_failure(r, ev, "(stale)", rc, &res);
        }
        if (result)
            *result = res;
        return res.failed ? PDW_EHANDLER : 0;
    }

    /* The up-to-four candidate lists; no allocation, they live on the stack. */
    const bucket *lists[4];
    size_t pos[4] = { 0, 0, 0, 0 };
    size_t k = 0;
    int a = ev->action;
    lists[k++] = &r->any_any;
    lists[k++] = &r->act_any[a];
    /* ev->object is NUL-terminated by the parser; bound the scan by the array anyway. */
    const char *nul = memchr(ev->object, '\0', sizeof ev->object);
    size_t olen = nul ? (size_t)(nul - ev->object) : sizeof ev->object;
    const obj_slot *s = table_find(r, ev->object, olen);
    if (s) {
        lists[k++] = &s->by_action[a];
        lists[k++] = &s->any_action;
    }

    int filter_failed = 0;
    for (;;) {
        /* k-way merge by sequence number: with k <= 4 a linear scan of the heads is
         * cheaper than any heap. */
        size_t best = k;
        for (size_t i = 0; i < k; i++) {
            if (pos[i] < lists[i]->n &&
                (best == k || lists[i]->v[pos[i]].seq < lists[best]->v[pos[best]].seq))
                best = i;
        }
        if (best == k)
            break;
        const entry *e = &lists[best]->v[pos[best]++];

        if (e->merge_only && ev->merge != 1)
            continue;
        if (e->field) {
            int c = pdw_event_changed(ev, e->field);
            if (c < 0) {
                /* We cannot tell whether this handler should run. Count it as matched
                 * and failed (so the fallback does not run for an event that may well
                 * have been handled) and make dispatch return the allocation failure
                 * rather than PDW_EHANDLER: the host should answer 5xx so Pipedrive
                 * retries, since the handler never got to see the event. */
                res.matched++;
                note_failure(r, ev, e->pattern, c, &res);
                filter_failed = 1;
                continue;
            }
            if (c != 1)
                continue;
        }
        res.matched++;
        int rc = e->cb(ev, e->user);
        if (rc != 0)
            note_failure(r, ev, e->pattern, rc, &res);
    }

    if (res.matched == 0 && r->fallback) {
        res.matched = 1;
        int rc = r->fallback(ev, r->fallback_user);
        if (rc != 0)
            note_failure(r, ev, "(unhandled)", rc, &res);
    }

    if (result)
        *result = res;
    if (filter_failed)
        return PDW_ENOMEM;
    return res.failed ? PDW_EHANDLER : 0;
}
