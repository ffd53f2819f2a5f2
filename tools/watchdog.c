/* The webhook watchdog of serve --watch-subscriptions (watchdog.h). */
#include <pdwebhook/subscriptions.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"
#include "watchdog.h"

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void id_text(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else
        out[0] = '\0';
}

/* A plan of triggers in version; NULL with err filled. */
static pdw_plan *make_plan(const watchdog_config *cfg, const char *version, const char *user_id,
                           const char *triggers, char *err, size_t cap)
{
    pdw_plan_options po;
    pdw_plan_options_init(&po, PDW_PLAN_OPTIONS_VERSION);
    po.webhook_version = version;
    po.subscription_url = cfg->url;
    po.user_id = user_id;
    po.http_auth_user = cfg->auth_user;
    po.http_auth_password = cfg->auth_password;
    pdw_plan *plan = NULL;
    pdw_error e;
    pdw_error_clear(&e);
    if (pdw_plan_new(&plan, &po, &e) != 0 || pdw_plan_add_list(plan, triggers, &e) != 0 ||
        pdw_plan_check(plan, 0, &e) != 0) {
        snprintf(err, cap, "%s", e.message);
        pdw_plan_free(plan);
        return NULL;
    }
    return plan;
}

int watchdog_check_config(const char *prog, const watchdog_config *cfg)
{
    if (!cfg->url || !*cfg->url) {
        fprintf(stderr, "%s: --watch-subscriptions needs --public-url URL: the address "
                        "Pipedrive delivers to (as for subscriptions sync --url)\n", prog);
        return -1;
    }
    if (cfg->events) {
        char err[512];
        pdw_plan *p = make_plan(cfg, cfg->version, cfg->user_id, cfg->events, err, sizeof err);
        if (!p) {
            fprintf(stderr, "%s: --watch-events: %s\n", prog, err);
            return -1;
        }
        pdw_plan_free(p);
    }
    return 0;
}

/* A listed webhook of ours with this version, action and object, or NULL. */
static json_t *find_listed(json_t *ours, const char *version, const char *action,
                           const char *object)
{
    size_t i;
    json_t *w;
    json_array_foreach(ours, i, w) {
        const char *v = jstr(w, "version"), *a = jstr(w, "event_action"),
                   *o = jstr(w, "event_object");
        if (a && o && strcmp(a, action) == 0 && strcmp(o, object) == 0 &&
            (!v || !version || strcmp(v, version) == 0))
            return w;
    }
    return NULL;
}

static void warn(json_t *warnings, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warn(json_t *warnings, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    json_array_append_new(warnings, json_string(line));
}

int watchdog_run(pdapi *c, const watchdog_config *cfg, json_t *known, int64_t now_ms,
                 json_t *gaps, json_t *warnings, size_t *listed, size_t *created, char *err,
                 size_t errcap)
{
    char url[2300];
    *listed = *created = 0;
    snprintf(url, sizeof url, "%s/webhooks", c->base);
    json_t *doc = NULL;
    long st = pdapi_request(c, "GET", url, NULL, &doc, err, errcap);
    json_t *data = json_object_get(doc, "data");
    if (st != 200 || !(json_is_array(data) || json_is_null(data))) {
        if (st == 200)
            snprintf(err, errcap, "listing webhooks: the answer is not {\"success\":true,"
                                  "\"data\":[...]}");
        json_decref(doc);
        return -1;
    }
    json_t *all_ids = json_object(), *ours = json_array(), *todo = json_array(), *w;
    size_t i;
    json_array_foreach(data, i, w) {
        char id[64];
        id_text(json_object_get(w, "id"), id, sizeof id);
        if (!id[0])
            continue;
        json_object_set_new(all_ids, id, json_true());
        const char *u = jstr(w, "subscription_url");
        if (u && strcmp(u, cfg->url) == 0)
            json_array_append(ours, w);
    }
    *listed = json_array_size(ours);

    /* 1. webhooks known here that are gone from the account */
    const char *id;
    json_t *k;
    void *it;
    json_object_foreach_safe(known, it, id, k) {
        if (json_object_get(all_ids, id) || json_is_true(json_object_get(k, "gone")))
            continue;
        int64_t last_ok = jint(k, "last_success_ms"), first = jint(k, "first_listed_ms");
        const char *act = jstr(k, "event_action"), *obj = jstr(k, "event_object");
        json_object_set_new(k, "gone", json_true());
        json_object_set_new(k, "gone_ms", json_integer(now_ms));
        if (!act || !obj) {
            /* it delivered here, but our token never listed it: another user's, or
             * deleted before the first check. Said once, not re-created. */
            warn(warnings, "webhook %s delivered to this receiver but is not in the API "
                           "token's list of webhooks (deleted, or another user's): not "
                           "re-created", id);
            continue;
        }
        char since[40] = "its creation";
        if (last_ok || first)
            reconcile_format_time(last_ok ? last_ok : first, 'T', since, sizeof since);
        warn(warnings, "webhook %s (%s.%s) of this receiver is gone from Pipedrive (it "
                       "deletes a webhook after 3 days without a successful delivery): "
                       "events since %s were not delivered", id, act, obj, since);
        if (last_ok || first)
            json_array_append_new(gaps, json_pack("{s:s,s:I,s:I,s:s}", "webhook_id", id,
                                                   "from_ms", (json_int_t)(last_ok ? last_ok
                                                                                   : first),
                                                   "to_ms", (json_int_t)now_ms, "object",
                                                   obj));
        json_array_append_new(todo, json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "event_action", act,
                                              "event_object", obj, "version",
                                              jstr(k, "version"), "user_id", jstr(k, "user_id"),
                                              "was", id));
    }

    /* 2. what the plan wants and the account does not have */
    if (cfg->events) {
        pdw_plan *plan = make_plan(cfg, cfg->version, cfg->user_id, cfg->events, err, errcap);
        for (size_t p = 0; plan && p < pdw_plan_count(plan); p++) {
            const char *pa = pdw_plan_action(plan, p), *po = pdw_plan_object(plan, p);
            const char *pv = pdw_plan_version(plan);
            if (find_listed(ours, pv, pa, po))
                continue;
            int dup = 0;
            json_array_foreach(todo, i, w) {
                const char *tv = jstr(w, "version");
                dup = dup || (strcmp(jstr(w, "event_action"), pa) == 0 &&
                              strcmp(jstr(w, "event_object"), po) == 0 &&
                              (!tv || strcmp(tv, pv) == 0));
            }
            if (!dup)
                json_array_append_new(todo, json_pack("{s:s,s:s,s:s,s:s?}", "event_action", pa,
                                                      "event_object", po, "version", pv,
                                                      "user_id", cfg->user_id));
        }
        pdw_plan_free(plan);
    }

    /* 3. create them, as subscriptions sync does */
    json_array_foreach(todo, i, w) {
        const char *a = jstr(w, "event_action"), *o = jstr(w, "event_object");
        const char *v = jstr(w, "version"), *was = jstr(w, "was");
        if (find_listed(ours, v, a, o))
            continue; /* there again (re-created by someone else) */
        char trig[128], perr[512] = "", nid[64] = "";
        snprintf(trig, sizeof trig, "%s.%s", a, o);
        pdw_plan *one = make_plan(cfg, v ? v : cfg->version, jstr(w, "user_id"), trig, perr,
                                  sizeof perr);
        char *body = NULL;
        json_t *ans = NULL;
        long cs = 0;
        if (one && pdw_plan_body_json(one, 0, &body, NULL) == 0)
            cs = pdapi_request(c, "POST", url, body, &ans, perr, sizeof perr);
        if (body) { /* it holds the HTTP auth password */
            volatile char *p = body;
            for (size_t b = 0; p[b]; b++)
                p[b] = 0;
            pdw_free(body);
        }
        json_t *nw = json_object_get(ans, "data");
        id_text(json_object_get(nw, "id"), nid, sizeof nid);
        if ((cs == 200 || cs == 201) && nid[0]) {
            (*created)++;
            json_object_set_new(known, nid, json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I}",
                                                      "event_action", a, "event_object", o,
                                                      "version", jstr(nw, "version"), "user_id",
                                                      jstr(w, "user_id"), "first_listed_ms",
                                                      (json_int_t)now_ms, "last_listed_ms",
                                                      (json_int_t)now_ms));
            json_array_append(ours, nw);
            if (was)
                warn(warnings, "re-created webhook %s (%s.%s) as %s", was, a, o, nid);
            else
                warn(warnings, "created the planned webhook %s.%s, which was missing, as %s",
                     a, o, nid);
        } else {
            warn(warnings, "could not create webhook %s.%s: %s", a, o,
                 perr[0] ? perr : "Pipedrive refused");
        }
        json_decref(ans);
        pdw_plan_free(one);
    }

    /* 4. remember what is listed now */
    json_array_foreach(ours, i, w) {
        char wid[64];
        id_text(json_object_get(w, "id"), wid, sizeof wid);
        json_t *e = json_object_get(known, wid);
        if (!e) {
            e = json_object();
            json_object_set_new(e, "first_listed_ms", json_integer(now_ms));
            json_object_set_new(known, wid, e);
        }
        if (!jint(e, "first_listed_ms"))
            json_object_set_new(e, "first_listed_ms", json_integer(now_ms));
        static const char *const keep[] = { "event_action", "event_object", "version" };
        for (size_t f = 0; f < 3; f++)
            if (jstr(w, keep[f]))
                json_object_set_new(e, keep[f], json_string(jstr(w, keep[f])));
        char uid[32];
        id_text(json_object_get(w, "user_id"), uid, sizeof uid);
        if (uid[0])
            json_object_set_new(e, "user_id", json_string(uid));
        json_object_set_new(e, "last_listed_ms", json_integer(now_ms));
        json_object_set_new(e, "gone", json_false());
    }
    json_decref(todo);
    json_decref(ours);
    json_decref(all_ids);
    json_decref(doc);
    return 0;
}
