/* Subscription planning: wanted triggers -> the smallest set of Pipedrive webhooks, the
 * bodies to create them, and the diff against what an account has. No network here. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "pdwebhook/subscriptions.h"

/* Subscription actions. Unlike the router's vocabulary, `merged` is its own action here:
 * a v1 `updated.deal` webhook is not sent merges, only `merged.deal` and `*.deal` are. */
enum { A_CREATE = 0, A_CHANGE = 1, A_DELETE = 2, A_MERGED = 3, A_ALL = 4, A_COUNT = 5 };

#define PREFIX_MAX 64

typedef struct entry {
    int action;
    char object[PDW_NAME_MAX + 1]; /* "*" for any */
} entry;

typedef struct list {
    entry *v;
    size_t n, cap;
} list;

struct pdw_plan {
    pdw_allocator alloc;
    int v; /* 1 or 2 */
    char *url, *user_id, *auth_user, *auth_password, *prefix;
    size_t password_len;
    int plain_http;
    list wanted; /* every distinct trigger added, in the plan's terms */
    list plan;   /* the minimal set derived from wanted, sorted */
    char **warn;
    size_t nwarn;
};

struct pdw_diff {
    pdw_allocator alloc;
    size_t *create, *del, *keep, *keep_plan;
    size_t ncreate, ndel, nkeep;
};

/* ---- vocabulary --------------------------------------------------------------------- */

static const char *action_word(int v, int a)
{
    static const char *const v1[A_COUNT] = { "added", "updated", "deleted", "merged", "*" };
    static const char *const v2[A_COUNT] = { "create", "change", "delete", "merged", "*" };
    if (a < 0 || a >= A_COUNT)
        return NULL;
    return v == 1 ? v1[a] : v2[a];
}

/* Objects every version knows, then each version's own. Pipedrive's v1 list is closed
 * (its OpenAPI enum); v2's grows, so unknown v2 objects only warn. */
static const char *const objects_both[] = { "activity", "deal", "note", "organization",
                                            "person", "pipeline", "product", "stage", "user" };
static const char *const objects_v1[] = { "activityType" };
static const char *const objects_v2[] = { "lead", "deal_product", "deal_installment",
                                          "project", "task", "board", "phase" };

static int in_set(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return 1;
    return 0;
}
#define IN(s, set) in_set((s), (set), sizeof(set) / sizeof((set)[0]))

static int mergeable(const char *object)
{
    return strcmp(object, "deal") == 0 || strcmp(object, "person") == 0 ||
           strcmp(object, "organization") == 0;
}

static int is_any(const char *object)
{
    return object[0] == '*' && object[1] == '\0';
}

static int covers(const entry *a, const entry *b)
{
    return (a->action == A_ALL || a->action == b->action) &&
           (is_any(a->object) || strcmp(a->object, b->object) == 0);
}

static int entry_equal(const entry *a, const entry *b)
{
    return a->action == b->action && strcmp(a->object, b->object) == 0;
}

/* Sort key: "*" first, then objects alphabetically; within one object `*` first, then
 * create, change, delete, merged. */
static int entry_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int aa = is_any(a->object), ab = is_any(b->object);
    if (aa != ab)
        return ab - aa;
    int c = strcmp(a->object, b->object);
    if (c)
        return c;
    int ka = a->action == A_ALL ? -1 : a->action, kb = b->action == A_ALL ? -1 : b->action;
    return (ka > kb) - (ka < kb);
}

static int list_push(const pdw_allocator *al, list *l, const entry *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        entry *nv = pdw__realloc(al, l->v, cap * sizeof *nv);
        if (!nv)
            return PDW_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    return 0;
}

static void trigger_text(char *buf, size_t cap, int v, const entry *e)
{
    snprintf(buf, cap, "%s.%s", action_word(v, e->action), e->object);
}

/* ---- options and lifetime ----------------------------------------------------------- */

int pdw_plan_options_init(pdw_plan_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_PLAN_OPTIONS_VERSION);
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

/* An absolute http(s) URL with a host, no white space or control characters. */
static int url_ok(const char *u, int *plain)
{
    size_t skip;
    if (strncmp(u, "https://", 8) == 0) {
        skip = 8;
        *plain = 0;
    } else if (strncmp(u, "http://", 7) == 0) {
        skip = 7;
        *plain = 1;
    } else {
        return 0;
    }
    if (u[skip] == '\0' || u[skip] == '/' || u[skip] == '?' || u[skip] == '#')
        return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return 0;
    return strlen(u) <= 2048;
}

static int digits_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int parse_version(const char *s)
{
    if (!s || strcmp(s, "2.0") == 0 || strcmp(s, "2") == 0)
        return 2;
    if (strcmp(s, "1.0") == 0 || strcmp(s, "1") == 0)
        return 1;
    return 0;
}

static void free_warnings(const pdw_allocator *a, char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pdw__free(a, w[i]);
    pdw__free(a, w);
}

void pdw_plan_free(pdw_plan *p)
{
    if (!p)
        return;
    pdw_allocator a = p->alloc;
    if (p->auth_password)
        pdw__wipe(p->auth_password, p->password_len);
    pdw__free(&a, p->auth_password);
    pdw__free(&a, p->auth_user);
    pdw__free(&a, p->url);
    pdw__free(&a, p->user_id);
    pdw__free(&a, p->prefix);
    pdw__free(&a, p->wanted.v);
    pdw__free(&a, p->plan.v);
    free_warnings(&a, p->warn, p->nwarn);
    pdw__free(&a, p);
}

static int recompute(pdw_plan *p);

int pdw_plan_new(pdw_plan **out, const pdw_plan_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (!opts)
        return pdw__error_set(err, PDW_EINVAL, -1, "options are required (subscription_url)");
    if (opts->version != PDW_PLAN_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1,
                              "pdw_plan_options version %u, this library knows %d",
                              opts->version, PDW_PLAN_OPTIONS_VERSION);
    pdw_allocator a;
    if (pdw__alloc_set(&a, opts->allocator))
        return pdw__error_set(err, PDW_EINVAL, -1, "allocator must set malloc, realloc and free");
    int v = parse_version(opts->webhook_version);
    if (!v)
        return pdw__error_set(err, PDW_EINVAL, -1, "webhook version must be \"1.0\" or \"2.0\"");
    int plain = 0;
    /* The URL may hold a token in its query: never quoted. */
    if (!opts->subscription_url || !url_ok(opts->subscription_url, &plain))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "subscription URL must be an absolute http:// or https:// URL "
                              "with a host and no white space");
    if (opts->user_id && !digits_ok(opts->user_id))
        return pdw__error_set(err, PDW_EINVAL, -1, "user id must be 1 to 18 decimal digits");
    if (!opts->http_auth_user != !opts->http_auth_password)
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "HTTP auth user and password go together");
    if (opts->http_auth_user &&
        (!*opts->http_auth_user || strchr(opts->http_auth_user, ':') ||
         has_control(opts->http_auth_user) || !*opts->http_auth_password ||
         has_control(opts->http_auth_password)))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "HTTP auth user and password must be non-empty, without control "
                              "characters, and the user without ':'");
    const char *prefix = opts->name_prefix ? opts->name_prefix : "pdwebhook";
    if (!*prefix || strlen(prefix) > PREFIX_MAX || has_control(prefix))
        return pdw__error_set(err, PDW_EINVAL, -1,
                              "name prefix must be 1 to %d bytes without control characters",
                              PREFIX_MAX);

    pdw_plan *p = pdw__calloc(&a, 1, sizeof *p);
    if (!p)
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory creating the plan");
    p->alloc = a;
    p->v = v;
    p->plain_http = plain;
    p->url = pdw__strdup(&a, opts->subscription_url);
    p->prefix = pdw__strdup(&a, prefix);
    int ok = p->url && p->prefix;
    if (opts->user_id)
        ok = ok && (p->user_id = pdw__strdup(&a, opts->user_id)) != NULL;
    if (opts->http_auth_user) {
        ok = ok && (p->auth_user = pdw__strdup(&a, opts->http_auth_user)) != NULL;
        p->password_len = strlen(opts->http_auth_password);
        ok = ok && (p->auth_password = pdw__strdup(&a, opts->http_auth_password)) != NULL;
    }
    if (!ok || recompute(p) != 0) {
        pdw_plan_free(p);
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory creating the plan");
    }
    *out = p;
    return 0;
}

/* ---- derivation: wanted -> plan and warnings ---------------------------------------- */

typedef struct wbuf {
    const pdw_allocator *a;
    char **v;
    size_t n, cap;
    int failed;
} wbuf;

static void warnf(wbuf *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warnf(wbuf *w, const char *fmt, ...)
{
    if (w->failed)
        return;
    char text[PDW_ERROR_MESSAGE_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->v[i], text) == 0)
            return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **nv = pdw__realloc(w->a, w->v, cap * sizeof *nv);
        if (!nv) {
            w->failed = 1;
            return;
        }
        w->v = nv;
        w->cap = cap;
    }
    char *s = pdw__strdup(w->a, text);
    if (!s) {
        w->failed = 1;
        return;
    }
    w->v[w->n++] = s;
}

/* The actions that together make `*` for an object in version v. */
static int full_set(int v, const char *object, int *acts)
{
    int n = 0;
    acts[n++] = A_CREATE;
    acts[n++] = A_CHANGE;
    acts[n++] = A_DELETE;
    if (v == 1 && mergeable(object))
        acts[n++] = A_MERGED;
    return n;
}

static int covered_by_list(const list *l, const entry *e, size_t *by)
{
    for (size_t i = 0; i < l->n; i++)
        if (covers(&l->v[i], e)) {
            if (by)
                *by = i;
            return 1;
        }
    return 0;
}

/* Rebuild p->plan and p->warn from p->wanted. All or nothing: on ENOMEM the plan keeps
 * its previous derived state. The result is a function of the *set* wanted. */
static int recompute(pdw_plan *p)
{
    const pdw_allocator *a = &p->alloc;
    list out = { NULL, 0, 0 };
    /* 1. maximal elements: drop what another (distinct) trigger covers */
    for (size_t i = 0; i < p->wanted.n; i++) {
        const entry *e = &p->wanted.v[i];
        int dominated = 0;
        for (size_t j = 0; j < p->wanted.n && !dominated; j++)
            if (j != i && covers(&p->wanted.v[j], e) && !entry_equal(&p->wanted.v[j], e))
                dominated = 1;
        if (!dominated && !covered_by_list(&out, e, NULL) && list_push(a, &out, e) != 0)
            goto nomem;
    }
    /* 2. a full set of actions on one object becomes *.object; covered members count
     * (merged.* supplies merged.deal). Replacing a.X by *.X never changes what covers
     * another object, so the objects can be taken in any order. */
    for (size_t i = 0; i < out.n; i++) {
        entry *e = &out.v[i];
        if (e->action == A_ALL || is_any(e->object))
            continue;
        int acts[4], n = full_set(p->v, e->object, acts), all = 1;
        for (int k = 0; k < n && all; k++) {
            entry t;
            t.action = acts[k];
            memcpy(t.object, e->object, sizeof t.object);
            all = covered_by_list(&out, &t, NULL);
        }
        if (!all)
            continue;
        char object[PDW_NAME_MAX + 1];
        memcpy(object, e->object, sizeof object);
        size_t w = 0;
        for (size_t j = 0; j < out.n; j++)
            if (strcmp(out.v[j].object, object) != 0)
                out.v[w++] = out.v[j];
        out.n = w;
        entry star;
        star.action = A_ALL;
        memcpy(star.object, object, sizeof star.object);
        if (list_push(a, &out, &star) != 0)
            goto nomem;
        i = (size_t)-1; /* restart: positions moved */
    }
    if (out.n > 1)
        qsort(out.v, out.n, sizeof *out.v, entry_cmp);

    /* 3. warnings */
    wbuf w = { a, NULL, 0, 0, 0 };
    if (p->plain_http)
        warnf(&w, "the subscription URL is plain http://: Pipedrive delivers to HTTPS "
                  "endpoints in practice, and Basic credentials would travel in clear");
    for (size_t i = 0; i < p->wanted.n; i++) {
        const entry *e = &p->wanted.v[i];
        if (strcmp(e->object, "stage") == 0 && (e->action == A_CHANGE || e->action == A_ALL))
            warnf(&w, "%s.stage fires when a stage itself is edited (its name or order), not "
                      "when a deal moves to another stage: for stage moves subscribe to "
                      "%s.deal and filter on stage_id (pdw_router_on_change)",
                  action_word(p->v, e->action), action_word(p->v, A_CHANGE));
    }
    for (size_t i = 0; i < p->wanted.n; i++) {
        const entry *e = &p->wanted.v[i];
        if (p->v == 2 && !is_any(e->object) && !IN(e->object, objects_both) &&
            !IN(e->object, objects_v2))
            warnf(&w, "object '%s' is not one pdwebhook knows for webhooks 2.0: check the "
                      "spelling (Pipedrive refuses unknown objects)",
                  e->object);
    }
    for (size_t i = 0; i < p->wanted.n; i++) {
        const entry *e = &p->wanted.v[i];
        size_t by;
        int kept = 0;
        for (size_t j = 0; j < out.n && !kept; j++)
            kept = entry_equal(&out.v[j], e);
        if (!kept && covered_by_list(&out, e, &by)) {
            char t1[PDW_NAME_MAX + 16], t2[PDW_NAME_MAX + 16];
            trigger_text(t1, sizeof t1, p->v, e);
            trigger_text(t2, sizeof t2, p->v, &out.v[by]);
            warnf(&w, "%s is covered by %s (no separate subscription)", t1, t2);
        }
    }
    if (w.failed) {
        free_warnings(a, w.v, w.n);
        goto nomem;
    }
    pdw__free(a, p->plan.v);
    p->plan = out;
    free_warnings(a, p->warn, p->nwarn);
    p->warn = w.v;
    p->nwarn = w.n;
    return 0;
nomem:
    pdw__free(a, out.v);
    return PDW_ENOMEM;
}

/* ---- adding triggers ---------------------------------------------------------------- */

/* Parse and check "action.object" (n bytes) for the plan's version. */
static int parse_trigger(const pdw_plan *p, const char *s, size_t n, entry *e, pdw_error *err)
{
    const char *dot = memchr(s, '.', n);
    if (!dot || memchr(dot + 1, '.', n - (size_t)(dot - s) - 1))
        return pdw__error_set(err, PDW_EPATTERN, -1,
                              "trigger '%.*s' is not action.object (e.g. updated.deal)",
                              (int)(n > 100 ? 100 : n), s);
    size_t an = (size_t)(dot - s), on = n - an - 1;
    if (an == 1 && s[0] == '*') {
        e->action = A_ALL;
    } else {
        int merged = 0, id = pdw__action_id(s, an, &merged);
        if (id < 0)
            return pdw__error_set(err, PDW_EPATTERN, -1,
                                  "unknown action '%.*s' (added, updated, merged, deleted, "
                                  "create, change, delete or *)",
                                  (int)(an > 48 ? 48 : an), s);
        e->action = merged ? A_MERGED : id == PDW__ACT_CREATE ? A_CREATE
                                      : id == PDW__ACT_CHANGE ? A_CHANGE
                                                              : A_DELETE;
    }
    const char *o = dot + 1;
    if (!(on == 1 && o[0] == '*') && !pdw__object_valid(o, on))
        return pdw__error_set(err, PDW_EPATTERN, -1,
                              "object '%.*s' must be * or 1 to %d of [A-Za-z0-9_]",
                              (int)(on > 64 ? 64 : on), o, PDW_NAME_MAX);
    memcpy(e->object, o, on);
    e->object[on] = '\0';

    /* what Pipedrive refuses */
    if (e->action == A_MERGED && p->v == 2)
        return pdw__error_set(err, PDW_EUNSUPPORTED, -1,
                              "merged.%s: webhooks 2.0 have no merged action; a merge arrives "
                              "as change.%s (with merged_from_id) and delete: use change.%s "
                              "or version 1.0",
                              e->object, e->object, e->object);
    if (e->action == A_MERGED && !is_any(e->object) && !mergeable(e->object))
        return pdw__error_set(err, PDW_EUNSUPPORTED, -1,
                              "merged.%s: only deal, person and organization are merged",
                              e->object);
    if (is_any(e->object))
        return 0;
    if (p->v == 2 && IN(e->object, objects_v1))
        return pdw__error_set(err, PDW_EUNSUPPORTED, -1,
                              "%s exists in webhooks 1.0 only: use version 1.0", e->object);
    if (p->v == 1 && IN(e->object, objects_v2))
        return pdw__error_set(err, PDW_EUNSUPPORTED, -1,
                              "%s exists in webhooks 2.0 only: use version 2.0", e->object);
    if (p->v == 1 && !IN(e->object, objects_both) && !IN(e->object, objects_v1))
        return pdw__error_set(err, PDW_EUNSUPPORTED, -1,
                              "'%s' is not a webhooks 1.0 object (activity, activityType, "
                              "deal, note, organization, person, pipeline, product, stage, "
                              "user or *)",
                              e->object);
    return 0;
}

static int add_span(pdw_plan *p, const char *s, size_t n, pdw_error *err)
{
    entry e;
    memset(&e, 0, sizeof e); /* parse_trigger() fills it on success only */
    int rc = parse_trigger(p, s, n, &e, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->wanted.n; i++)
        if (entry_equal(&p->wanted.v[i], &e))
            return 0; /* same trigger, perhaps in the other version's words */
    if (list_push(&p->alloc, &p->wanted, &e) != 0)
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory adding a trigger");
    if (recompute(p) != 0) {
        p->wanted.n--;
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory adding a trigger");
    }
    return 0;
}

int pdw_plan_add(pdw_plan *p, const char *trigger, pdw_error *err)
{
    pdw__error_reset(err);
    if (!p || !trigger)
        return pdw__error_set(err, PDW_EINVAL, -1, "plan or trigger is NULL");
    return add_span(p, trigger, strlen(trigger), err);
}

int pdw_plan_add_list(pdw_plan *p, const char *text, pdw_error *err)
{
    pdw__error_reset(err);
    if (!p || !text)
        return pdw__error_set(err, PDW_EINVAL, -1, "plan or list is NULL");
    size_t added = 0;
    const char *s = text;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        const char *start = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            s++;
        if (s == start)
            continue;
        int rc = add_span(p, start, (size_t)(s - start), err);
        if (rc)
            return rc;
        added++;
    }
    if (!added)
        return pdw__error_set(err, PDW_EPATTERN, -1, "no trigger given");
    return 0;
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *pdw_plan_version(const pdw_plan *p)
{
    return p && p->v == 1 ? "1.0" : "2.0";
}

const char *pdw_plan_url(const pdw_plan *p)
{
    return p ? p->url : NULL;
}

size_t pdw_plan_count(const pdw_plan *p)
{
    return p ? p->plan.n : 0;
}

const char *pdw_plan_action(const pdw_plan *p, size_t i)
{
    return p && i < p->plan.n ? action_word(p->v, p->plan.v[i].action) : NULL;
}

const char *pdw_plan_object(const pdw_plan *p, size_t i)
{
    return p && i < p->plan.n ? p->plan.v[i].object : NULL;
}

size_t pdw_plan_warning_count(const pdw_plan *p)
{
    return p ? p->nwarn : 0;
}

const char *pdw_plan_warning(const pdw_plan *p, size_t i)
{
    return p && i < p->nwarn ? p->warn[i] : NULL;
}

int pdw_plan_check(const pdw_plan *p, size_t others, pdw_error *err)
{
    pdw__error_reset(err);
    if (!p)
        return pdw__error_set(err, PDW_EINVAL, -1, "plan is NULL");
    if (p->plan.n == 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "the plan has no subscription: add a trigger");
    if (others > PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER || p->plan.n > PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER - others)
        return pdw__error_set(err, PDW_ELIMIT, -1,
                              "%zu planned + %zu other webhooks of the user exceed Pipedrive's "
                              "limit of %d per user",
                              p->plan.n, others, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER);
    return 0;
}

/* ---- bodies ------------------------------------------------------------------------- */

int pdw_plan_body_json(const pdw_plan *p, size_t i, char **out, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (!p)
        return pdw__error_set(err, PDW_EINVAL, -1, "plan is NULL");
    if (i >= p->plan.n)
        return pdw__error_set(err, PDW_ERANGE, -1, "subscription %zu of %zu", i, p->plan.n);
    const entry *e = &p->plan.v[i];
    char name[PREFIX_MAX + PDW_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s %s.%s", p->prefix, action_word(p->v, e->action), e->object);

    json_t *o = json_object();
    int bad = !o;
    bad = bad || json_object_set_new(o, "name", json_string(name)) != 0;
    bad = bad || json_object_set_new(o, "subscription_url", json_string(p->url)) != 0;
    bad = bad || json_object_set_new(o, "event_action",
                                     json_string(action_word(p->v, e->action))) != 0;
    bad = bad || json_object_set_new(o, "event_object", json_string(e->object)) != 0;
    bad = bad || json_object_set_new(o, "version", json_string(p->v == 1 ? "1.0" : "2.0")) != 0;
    if (p->user_id)
        bad = bad || json_object_set_new(o, "user_id",
                                         json_integer((json_int_t)strtoll(p->user_id, NULL, 10)))
                         != 0;
    if (p->auth_user) {
        bad = bad || json_object_set_new(o, "http_auth_user", json_string(p->auth_user)) != 0;
        bad = bad ||
              json_object_set_new(o, "http_auth_password", json_string(p->auth_password)) != 0;
    }
    /* Dump into a buffer of ours (system malloc, so pdw_free() frees it) rather than
     * json_dumps(), whose buffer comes from whatever allocator the host gave jansson. */
    size_t need = bad ? 0 : json_dumpb(o, NULL, 0, JSON_COMPACT);
    char *buf = need ? malloc(need + 1) : NULL;
    if (buf && json_dumpb(o, buf, need, JSON_COMPACT) == need) {
        buf[need] = '\0';
    } else {
        if (buf)
            pdw__wipe(buf, need);
        free(buf);
        buf = NULL;
    }
    json_decref(o);
    if (!buf)
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory building the body");
    *out = buf;
    return 0;
}

/* ---- diff --------------------------------------------------------------------------- */

void pdw_diff_free(pdw_diff *d)
{
    if (!d)
        return;
    pdw_allocator a = d->alloc;
    pdw__free(&a, d->create);
    pdw__free(&a, d->del);
    pdw__free(&a, d->keep);
    pdw__free(&a, d->keep_plan);
    pdw__free(&a, d);
}

/* "1", "1.0", NULL -> 1; "2", "2.0" -> 2; anything else 0 (never equal to a plan). */
static int listed_version(const char *s)
{
    return s ? parse_version(s) : 1;
}

/* The listed action in our terms, or -1. */
static int listed_action(const char *s)
{
    if (strcmp(s, "*") == 0)
        return A_ALL;
    int merged = 0, id = pdw__action_id(s, strlen(s), &merged);
    if (id < 0)
        return -1;
    return merged ? A_MERGED : id == PDW__ACT_CREATE ? A_CREATE
                             : id == PDW__ACT_CHANGE ? A_CHANGE
                                                     : A_DELETE;
}

static int opt_equal(const char *listed, const char *ours)
{
    if (!listed)
        return 1; /* not reported: not compared */
    if (!ours)
        return listed[0] == '\0';
    return strcmp(listed, ours) == 0;
}

static int same(const pdw_plan *p, const entry *e, const pdw_subscription *s)
{
    return listed_version(s->webhook_version) == p->v && listed_action(s->event_action) == e->action &&
           strcmp(s->event_object, e->object) == 0 &&
           (!p->user_id || !s->user_id || strcmp(s->user_id, p->user_id) == 0) &&
           opt_equal(s->http_auth_user, p->auth_user) &&
           opt_equal(s->http_auth_password, p->auth_password);
}

int pdw_plan_diff(pdw_diff **out, const pdw_plan *p, const pdw_subscription *existing,
                  size_t n, pdw_error *err)
{
    pdw__error_reset(err);
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (!p || (n && !existing))
        return pdw__error_set(err, PDW_EINVAL, -1, "plan or existing list is NULL");
    for (size_t i = 0; i < n; i++)
        if (!existing[i].id || !existing[i].event_action || !existing[i].event_object ||
            !existing[i].subscription_url)
            return pdw__error_set(err, PDW_EINVAL, -1,
                                  "listed webhook %zu lacks id, action, object or URL", i);
    const pdw_allocator *a = &p->alloc;
    pdw_diff *d = pdw__calloc(a, 1, sizeof *d);
    size_t cap = p->plan.n + 1, ecap = n + 1;
    unsigned char *used = pdw__calloc(a, ecap, 1);
    if (d) {
        d->alloc = *a;
        d->create = pdw__calloc(a, cap, sizeof *d->create);
        d->keep_plan = pdw__calloc(a, ecap, sizeof *d->keep_plan);
        d->keep = pdw__calloc(a, ecap, sizeof *d->keep);
        d->del = pdw__calloc(a, ecap, sizeof *d->del);
    }
    if (!d || !used || !d->create || !d->keep_plan || !d->keep || !d->del) {
        pdw__free(a, used);
        pdw_diff_free(d);
        return pdw__error_set(err, PDW_ENOMEM, -1, "out of memory comparing subscriptions");
    }
    for (size_t k = 0; k < p->plan.n; k++) {
        size_t found = (size_t)-1;
        for (size_t i = 0; i < n && found == (size_t)-1; i++)
            if (!used[i] && strcmp(existing[i].subscription_url, p->url) == 0 &&
                same(p, &p->plan.v[k], &existing[i]))
                found = i;
        if (found == (size_t)-1) {
            d->create[d->ncreate++] = k;
        } else {
            used[found] = 1;
            d->keep[d->nkeep] = found;
            d->keep_plan[d->nkeep++] = k;
        }
    }
    size_t user_total = 0;
    for (size_t i = 0; i < n; i++) {
        int ours = strcmp(existing[i].subscription_url, p->url) == 0;
        if (ours && !used[i])
            d->del[d->ndel++] = i;
        if (p->user_id ? (existing[i].user_id && strcmp(existing[i].user_id, p->user_id) == 0)
                       : ours)
            user_total++;
    }
    pdw__free(a, used);
    /* After the sync: what the user had, minus our deletions, plus our creations. Only
     * deletions of the user's own webhooks free a slot. */
    size_t freed = 0;
    for (size_t i = 0; i < d->ndel; i++) {
        const pdw_subscription *s = &existing[d->del[i]];
        if (!p->user_id || (s->user_id && strcmp(s->user_id, p->user_id) == 0))
            freed++;
    }
    size_t after = user_total - freed + d->ncreate;
    if (after > PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER) {
        size_t ncreate = d->ncreate;
        pdw_diff_free(d);
        return pdw__error_set(err, PDW_ELIMIT, -1,
                              "the user would have %zu webhooks (%zu now, %zu to delete, %zu "
                              "to create): Pipedrive allows %d per user",
                              after, user_total, freed, ncreate, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER);
    }
    *out = d;
    return 0;
}

size_t pdw_diff_create_count(const pdw_diff *d)
{
    return d ? d->ncreate : 0;
}

size_t pdw_diff_create(const pdw_diff *d, size_t i)
{
    return d && i < d->ncreate ? d->create[i] : (size_t)-1;
}

size_t pdw_diff_delete_count(const pdw_diff *d)
{
    return d ? d->ndel : 0;
}

size_t pdw_diff_delete(const pdw_diff *d, size_t i)
{
    return d && i < d->ndel ? d->del[i] : (size_t)-1;
}

size_t pdw_diff_keep_count(const pdw_diff *d)
{
    return d ? d->nkeep : 0;
}

size_t pdw_diff_keep(const pdw_diff *d, size_t i)
{
    return d && i < d->nkeep ? d->keep[i] : (size_t)-1;
}

size_t pdw_diff_keep_plan_index(const pdw_diff *d, size_t i)
{
    return d && i < d->nkeep ? d->keep_plan[i] : (size_t)-1;
}
