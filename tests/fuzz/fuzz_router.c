/* fuzz_router: router patterns, differential against a reference matcher.
 *
 * Input: lines. Each line is a registration: "pattern" or "pattern<TAB>field" (a field
 * filter), at most 64 of them. Every registration's result must be what the documented
 * grammar says (action one of the seven words or `*`, one '.', object `*` or 1..48 bytes
 * of [A-Za-z0-9_]). Then a set of events (fixed ones, plus one per registered object name)
 * is dispatched and the handlers that ran, in order, must be exactly those the reference
 * matcher picks; the fallback runs exactly when none matched. */
#include <string.h>

#include "fuzz.h"
#include "core/core.h"

#define MAX_REG 64
#define MAX_RUN 256

typedef struct reg {
    char pattern[128];
    char field[128];
    int has_field;
    int valid;
    int action;     /* -1 = * */
    int merge_only;
    char object[PDW_NAME_MAX + 1]; /* "" = * */
} reg;

typedef struct run_log {
    int ran[MAX_RUN];
    size_t n;
    int fallback;
} run_log;

static run_log g_log;
static reg g_regs[MAX_REG];

static int handler(const pdw_event *ev, void *user)
{
    (void)ev;
    if (g_log.n < MAX_RUN)
        g_log.ran[g_log.n++] = (int)(intptr_t)user;
    return ((intptr_t)user % 5) == 4; /* some handlers fail */
}

static int fallback(const pdw_event *ev, void *user)
{
    (void)ev;
    (void)user;
    g_log.fallback++;
    return 0;
}

/* The documented grammar, written out plainly. */
static void ref_parse(reg *r)
{
    static const struct { const char *w; int id, merged; } words[] = {
        { "create", 0, 0 }, { "added", 0, 0 },   { "change", 1, 0 }, { "updated", 1, 0 },
        { "merged", 1, 1 }, { "delete", 2, 0 },  { "deleted", 2, 0 },
    };
    r->valid = 0;
    const char *dot = strchr(r->pattern, '.');
    if (!dot || strchr(dot + 1, '.'))
        return;
    size_t alen = (size_t)(dot - r->pattern);
    const char *obj = dot + 1;
    size_t olen = strlen(obj);
    r->merge_only = 0;
    if (alen == 1 && r->pattern[0] == '*') {
        r->action = -1;
    } else {
        r->action = -2;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (strlen(words[i].w) == alen && !memcmp(words[i].w, r->pattern, alen)) {
                r->action = words[i].id;
                r->merge_only = words[i].merged;
            }
        if (r->action == -2)
            return;
    }
    if (olen == 1 && obj[0] == '*') {
        r->object[0] = '\0';
    } else {
        if (olen == 0 || olen > PDW_NAME_MAX)
            return;
        for (size_t i = 0; i < olen; i++) {
            char c = obj[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_'))
                return;
        }
        memcpy(r->object, obj, olen + 1);
    }
    r->valid = 1;
}

static int ref_matches(const reg *r, const pdw_event *ev)
{
    if (!r->valid)
        return 0;
    int act = !strcmp(pdw_event_action(ev), "create") ? 0
              : !strcmp(pdw_event_action(ev), "change") ? 1 : 2;
    if (r->action >= 0 && r->action != act)
        return 0;
    if (r->merge_only && !pdw_event_is_merge(ev))
        return 0;
    if (r->object[0] && strcmp(r->object, pdw_event_object(ev)) != 0)
        return 0;
    if (r->has_field && pdw_event_changed(ev, r->field) != 1)
        return 0;
    return 1;
}

static void dispatch_and_compare(pdw_router *rt, size_t nreg, const char *body)
{
    pdw_event *ev = NULL;
    if (pdw_event_parse(&ev, body, strlen(body), NULL, NULL) != 0)
        abort(); /* the bodies below are valid: a parse failure is a bug */
    memset(&g_log, 0, sizeof g_log);
    pdw_dispatch_result res;
    int rc = pdw_router_dispatch(rt, ev, &res);
    int want[MAX_REG];
    size_t nwant = 0;
    unsigned failed = 0;
    for (size_t i = 0; i < nreg; i++)
        if (ref_matches(&g_regs[i], ev)) {
            want[nwant++] = (int)i;
            failed += (i % 5) == 4;
        }
    FUZZ_CHECK(g_log.n == nwant);
    for (size_t i = 0; i < nwant; i++)
        FUZZ_CHECK(g_log.ran[i] == want[i]);
    FUZZ_CHECK(g_log.fallback == (nwant == 0));
    FUZZ_CHECK(res.matched == (nwant ? nwant : 1));
    FUZZ_CHECK(res.failed == failed);
    FUZZ_CHECK(rc == (failed ? PDW_EHANDLER : 0));
    pdw_event_free(ev);
}

static const char *const fixed[] = {
    "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\",\"id\":\"e1\","
    "\"entity_id\":\"7\",\"timestamp\":\"2024-01-01T00:00:00Z\"},"
    "\"data\":{\"stage_id\":2,\"custom_fields\":{\"abc\":1}},"
    "\"previous\":{\"stage_id\":1,\"custom_fields\":{\"abc\":null}}}",
    "{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"person\",\"id\":\"e2\","
    "\"entity_id\":\"8\",\"merged_from_id\":\"9\",\"timestamp\":\"2024-01-01T00:00:00Z\"},"
    "\"data\":{\"id\":8},\"previous\":{\"name\":\"x\"}}",
    "{\"v\":1,\"meta\":{\"v\":1,\"action\":\"merged\",\"object\":\"organization\",\"id\":5,"
    "\"timestamp\":1492654463},\"current\":{\"id\":5,\"merge_what_id\":4},\"previous\":{\"id\":4}}",
    "{\"v\":1,\"meta\":{\"v\":1,\"action\":\"added\",\"object\":\"deal\",\"id\":5,"
    "\"timestamp\":1492654463},\"current\":{\"id\":5},\"previous\":null}",
    "{\"meta\":{\"version\":\"2.0\",\"action\":\"delete\",\"entity\":\"lead\",\"id\":\"e3\","
    "\"entity_id\":\"x\",\"timestamp\":\"2024-01-01T00:00:00Z\"},\"data\":null,"
    "\"previous\":{\"id\":\"x\"}}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    pdw_router *rt = NULL;
    FUZZ_CHECK(pdw_router_new(&rt, NULL, NULL) == 0);
    FUZZ_CHECK(pdw_router_on_unhandled(rt, fallback, NULL) == 0);
    size_t nreg = 0, i = 0;
    while (i < size && nreg < MAX_REG) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) : size;
        const uint8_t *tab = memchr(data + i, '\t', end - i);
        size_t pend = tab ? (size_t)(tab - data) : end;
        reg *r = &g_regs[nreg];
        memset(r, 0, sizeof *r);
        size_t plen = pend - i < sizeof r->pattern - 1 ? pend - i : sizeof r->pattern - 1;
        memcpy(r->pattern, data + i, plen); /* NULs inside cut the pattern short, as in C */
        if (tab) {
            size_t flen = end - pend - 1;
            if (flen > sizeof r->field - 1)
                flen = sizeof r->field - 1;
            memcpy(r->field, tab + 1, flen);
            r->has_field = 1;
        }
        i = end + 1;
        ref_parse(r);
        pdw_error err;
        pdw_error_clear(&err);
        int rc = r->has_field
                     ? pdw_router_on_change(rt, r->pattern, r->field, handler,
                                            (void *)(intptr_t)nreg, &err)
                     : pdw_router_on(rt, r->pattern, handler, (void *)(intptr_t)nreg, &err);
        if (r->has_field && r->field[0] == '\0') {
            FUZZ_CHECK(rc == PDW_EINVAL);
            r->valid = 0;
        } else {
            FUZZ_CHECK(rc == (r->valid ? 0 : PDW_EPATTERN));
        }
        FUZZ_CHECK(rc == err.code);
        nreg++;
    }
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        dispatch_and_compare(rt, nreg, fixed[k]);
    /* one event per registered object name, each action */
    for (size_t k = 0; k < nreg; k++) {
        if (!g_regs[k].valid || !g_regs[k].object[0])
            continue;
        static const char *const acts[] = { "create", "change", "delete" };
        for (int a = 0; a < 3; a++) {
            char body[512];
            snprintf(body, sizeof body,
                     "{\"meta\":{\"version\":\"2.0\",\"action\":\"%s\",\"entity\":\"%s\","
                     "\"id\":\"e\",\"entity_id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\"%s},"
                     "\"data\":{\"id\":1},\"previous\":{\"stage_id\":1}}",
                     acts[a], g_regs[k].object, a == 1 && k % 2 ? ",\"merged_from_id\":\"2\"" : "");
            dispatch_and_compare(rt, nreg, body);
        }
    }
    FUZZ_CHECK(pdw_router_on(rt, "*.*", handler, NULL, NULL) == PDW_EFROZEN);
    pdw_router_free(rt);
    return 0;
}
