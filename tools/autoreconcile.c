/* serve --reconcile and --watch-subscriptions: the scheduler and its state file
 * (autoreconcile.h). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pdwebhook/subscriptions.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autoreconcile.h"
#include "reconcile.h"
#include "watchdog.h"

#define STATE_NAME "reconcile-state.json"
#define KEEP_FINISHED 20   /* finished runs kept in the state file */
#define KEEP_WARNINGS 20   /* watchdog findings kept */
#define SHOW_RUNS 5        /* finished runs shown in /healthz */
#define WARN_FOR_MS (24LL * 3600 * 1000) /* /healthz warns this long after a finding */

static const char *prog = "pdwebhook serve";

struct autorec {
    autorec_config cfg;
    char path[4200], tmp[4300], dir[4100];
    char objects[512];
    watchdog_config wcfg;
    pdapi run_api, watch_api;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t runner, ticker;
    int have_runner, have_ticker;
    volatile int stop;
    json_t *state;        /* the state file's document (under lock) */
    int64_t running_id;   /* the run in progress, 0: none */
    int64_t next_watch_ms, last_watch_ms;
    size_t watch_listed;
    unsigned long watch_created;
    char watch_error[512];
    unsigned tick_s;
};

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void logf_(autorec *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void logf_(autorec *a, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (a->cfg.log)
        a->cfg.log(line);
    else
        fprintf(stderr, "%s\n", line);
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    reconcile_format_time(ms, 'T', out, cap);
}

/* ---- objects ------------------------------------------------------------------------ */

static int reconcilable(const char *obj, size_t n)
{
    static const char all[] = RECONCILE_ALL_OBJECTS ",activityType";
    for (const char *s = all; *s;) {
        size_t k = strcspn(s, ",");
        if (k == n && strncmp(s, obj, n) == 0)
            return 1;
        s += k + (s[k] == ',');
    }
    return 0;
}

static void add_object(char *list, size_t cap, const char *obj)
{
    size_t n = strlen(obj), ll = strlen(list);
    for (const char *s = list; *s;) {
        size_t k = strcspn(s, ",");
        if (k == n && strncmp(s, obj, n) == 0)
            return;
        s += k + (s[k] == ',');
    }
    if (ll + n + 2 < cap)
        snprintf(list + ll, cap - ll, "%s%s", ll ? "," : "", obj);
}

/* The objects of one webhook's gap: its object, or all of ours for "*"; "" when it cannot
 * be reconciled. */
static void gap_objects(const autorec *a, const char *obj, char *out, size_t cap)
{
    out[0] = '\0';
    if (!obj || strcmp(obj, "*") == 0)
        snprintf(out, cap, "%s", a->objects);
    else if (reconcilable(obj, strlen(obj)))
        snprintf(out, cap, "%s", obj);
}

/* ---- the state file ----------------------------------------------------------------- */

static int save_locked(autorec *a)
{
    char *text = json_dumps(a->state, JSON_COMPACT);
    if (!text)
        return -1;
    size_t n = strlen(text);
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    for (size_t off = 0; ok && off < n;) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(a->tmp, a->path) == 0;
    free(text);
    if (ok) {
        int d = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            fsync(d);
            close(d);
        }
    } else {
        static int said;
        if (!said++)
            logf_(a, "reconcile: cannot write %s: %s", a->path, strerror(errno));
    }
    return ok ? 0 : -1;
}

static json_t *runs_of(autorec *a)
{
    return json_object_get(a->state, "runs");
}

/* Add a pending run (under lock). */
static void add_run_locked(autorec *a, const char *reason, const char *webhook_id,
                           int64_t from_ms, int64_t to_ms, int64_t not_before_ms,
                           const char *objects)
{
    int64_t id = jint(a->state, "next_run_id");
    if (id < 1)
        id = 1;
    set_int(a->state, "next_run_id", id + 1);
    json_t *r = json_object();
    set_int(r, "id", id);
    json_object_set_new(r, "reason", json_string(reason));
    if (webhook_id)
        json_object_set_new(r, "webhook_id", json_string(webhook_id));
    set_int(r, "from_ms", from_ms);
    set_int(r, "to_ms", to_ms);
    set_int(r, "not_before_ms", not_before_ms);
    json_object_set_new(r, "objects", json_string(objects));
    json_object_set_new(r, "state", json_string("pending"));
    set_int(r, "attempts", 0);
    json_array_append_new(runs_of(a), r);
    char f[40], t[40], nb[40];
    fmt_time(from_ms, f, sizeof f);
    fmt_time(to_ms, t, sizeof t);
    fmt_time(not_before_ms, nb, sizeof nb);
    logf_(a, "reconcile: run %lld scheduled (%s%s%s): %s to %s, %s, not before %s",
          (long long)id, reason, webhook_id ? ", webhook " : "", webhook_id ? webhook_id : "", f,
          t, objects, nb);
    pthread_cond_broadcast(&a->cond);
}

/* Keep the unfinished runs and the last KEEP_FINISHED finished ones (under lock). */
static void trim_locked(autorec *a)
{
    json_t *runs = runs_of(a);
    size_t finished = 0, i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        if (strcmp(jstr(r, "state"), "done") == 0)
            finished++;
    }
    for (i = 0; finished > KEEP_FINISHED && i < json_array_size(runs);) {
        if (strcmp(jstr(json_array_get(runs, i), "state"), "done") == 0) {
            json_array_remove(runs, i);
            finished--;
        } else {
            i++;
        }
    }
}

static json_t *find_run(autorec *a, int64_t id)
{
    size_t i;
    json_t *r;
    json_array_foreach(runs_of(a), i, r) {
        if (jint(r, "id") == id)
            return r;
    }
    return NULL;
}

static int load_state(autorec *a)
{
    json_error_t je;
    json_t *s = json_load_file(a->path, 0, &je);
    if (!s && access(a->path, F_OK) == 0) {
        char bad[4400];
        snprintf(bad, sizeof bad, "%s.bad", a->path);
        rename(a->path, bad);
        logf_(a, "reconcile: %s is unreadable (%s): kept as %s.bad, starting afresh", a->path,
              je.text, STATE_NAME);
    }
    if (s && !json_is_object(s)) {
        json_decref(s);
        s = NULL;
    }
    if (!s)
        s = json_object();
    if (!s)
        return -1;
    if (!json_is_array(json_object_get(s, "runs")))
        json_object_set_new(s, "runs", json_array());
    if (!json_is_object(json_object_get(s, "webhooks")))
        json_object_set_new(s, "webhooks", json_object());
    if (!json_is_array(json_object_get(s, "warnings")))
        json_object_set_new(s, "warnings", json_array());
    set_int(s, "version", 1);
    a->state = s;
    return 0;
}

/* ---- the runner --------------------------------------------------------------------- */

static int emit_intake(const char *body, size_t len, void *user)
{
    autorec *a = user;
    if (a->stop)
        return PDW_EINVAL; /* stopping: the run ends here and stays pending */
    return pdw_intake_reconcile(a->cfg.intake, body, len, NULL);
}

/* Wait on the condition until ms (wall time) or a signal. Under lock. */
static void wait_until_locked(autorec *a, int64_t until_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    pthread_cond_timedwait(&a->cond, &a->lock, &ts);
}

static void *runner_main(void *arg)
{
    autorec *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        int64_t now = wall_ms(), next = now + 1000;
        json_t *due = NULL, *r;
        size_t i;
        json_array_foreach(runs_of(a), i, r) {
            if (strcmp(jstr(r, "state"), "pending") != 0)
                continue;
            int64_t nb = jint(r, "not_before_ms");
            if (nb <= now && (!due || nb < jint(due, "not_before_ms")))
                due = r;
            else if (nb > now && nb < next)
                next = nb;
        }
        if (!due) {
            wait_until_locked(a, next);
            continue;
        }
        int64_t id = jint(due, "id"), from = jint(due, "from_ms"), to = jint(due, "to_ms");
        char objects[512];
        snprintf(objects, sizeof objects, "%s", jstr(due, "objects") ? jstr(due, "objects") : "");
        json_object_set_new(due, "state", json_string("running"));
        set_int(due, "started_ms", now);
        set_int(due, "attempts", jint(due, "attempts") + 1);
        json_object_del(due, "finished_ms");
        a->running_id = id;
        save_locked(a);
        pthread_mutex_unlock(&a->lock);

        char f[40], t[40], err[1024] = "";
        fmt_time(from, f, sizeof f);
        fmt_time(to, t, sizeof t);
        logf_(a, "reconcile: run %lld started: %s to %s, %s", (long long)id, f, t, objects);
        reconcile_counts n = { 0, 0, 0, 0, 0 };
        int rc = objects[0] ? reconcile_window(&a->run_api, objects, from, to, emit_intake, a,
                                               &n, 0, err, sizeof err)
                            : 0;

        pthread_mutex_lock(&a->lock);
        a->running_id = 0;
        now = wall_ms();
        r = find_run(a, id);
        if (r) {
            set_int(r, "read", (int64_t)n.read);
            set_int(r, "handed", (int64_t)n.handed);
            set_int(r, "duplicates", (int64_t)n.duplicates);
            set_int(r, "outside", (int64_t)n.outside);
            set_int(r, "skipped", (int64_t)n.skipped);
            if (rc == 0) {
                json_object_set_new(r, "state", json_string("done"));
                json_object_set_new(r, "result", json_string("ok"));
                json_object_del(r, "error");
                set_int(r, "finished_ms", now);
                logf_(a, "reconcile: run %lld done: %lu records read, %lu handed on, %lu "
                         "already delivered or reconciled", (long long)id, n.read, n.handed,
                      n.duplicates);
            } else if (a->stop) {
                json_object_set_new(r, "state", json_string("pending"));
                json_object_set_new(r, "result", json_string("interrupted"));
                logf_(a, "reconcile: run %lld interrupted by the stop: it runs again at the "
                         "next start", (long long)id);
            } else {
                int64_t tries = jint(r, "attempts");
                int64_t wait_s = 30;
                for (int64_t k = 1; k < tries && wait_s < 900; k++)
                    wait_s *= 2;
                if (wait_s > 900)
                    wait_s = 900;
                json_object_set_new(r, "state", json_string("pending"));
                json_object_set_new(r, "result", json_string("failed"));
                json_object_set_new(r, "error", json_string(err));
                set_int(r, "not_before_ms", now + wait_s * 1000);
                logf_(a, "reconcile: run %lld failed (%s): tried again in %lld s",
                      (long long)id, err, (long long)wait_s);
            }
        }
        trim_locked(a);
        save_locked(a);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- the ticker and the watchdog ---------------------------------------------------- */

/* The receiver's last successful delivery per webhook, into the state (outside the
 * health lock: its callback takes ours). */
static void merge_health(autorec *a)
{
    size_t n = pdw_health_count(a->cfg.health);
    pdw_health_webhook *v = n ? calloc(n, sizeof *v) : NULL;
    size_t got = 0;
    int64_t now = wall_ms();
    for (size_t i = 0; v && i < n; i++)
        if (pdw_health_get(a->cfg.health, i, now, &v[got]) == 0 && v[got].last_success_ms &&
            strcmp(v[got].webhook_id, "unknown") != 0)
            got++;
    pthread_mutex_lock(&a->lock);
    json_t *known = json_object_get(a->state, "webhooks");
    for (size_t i = 0; i < got; i++) {
        json_t *e = json_object_get(known, v[i].webhook_id);
        if (!e) {
            e = json_object();
            json_object_set_new(known, v[i].webhook_id, e);
        }
        if (v[i].last_success_ms > jint(e, "last_success_ms"))
            set_int(e, "last_success_ms", v[i].last_success_ms);
    }
    pthread_mutex_unlock(&a->lock);
    free(v);
}

static void watch_once(autorec *a)
{
    int64_t now = wall_ms();
    pthread_mutex_lock(&a->lock);
    json_t *known = json_deep_copy(json_object_get(a->state, "webhooks"));
    pthread_mutex_unlock(&a->lock);
    json_t *gaps = json_array(), *warnings = json_array();
    size_t listed = 0, created = 0;
    char err[512] = "";
    int rc = known ? watchdog_run(&a->watch_api, &a->wcfg, known, now, gaps, warnings, &listed,
                                  &created, err, sizeof err)
                   : -1;
    pthread_mutex_lock(&a->lock);
    a->last_watch_ms = now;
    if (rc == 0) {
        /* the ticker is the only other writer of "webhooks": merged since the copy? only
         * last_success_ms, taken over here */
        json_t *cur = json_object_get(a->state, "webhooks");
        const char *id;
        json_t *e;
        json_object_foreach(cur, id, e) {
            json_t *k = json_object_get(known, id);
            if (k && jint(e, "last_success_ms") > jint(k, "last_success_ms"))
                set_int(k, "last_success_ms", jint(e, "last_success_ms"));
        }
        json_object_set(a->state, "webhooks", known);
        a->watch_listed = listed;
        a->watch_created += created;
        a->watch_error[0] = '\0';
        size_t i;
        json_t *w;
        json_array_foreach(warnings, i, w) {
            logf_(a, "WARNING: watchdog: %s", json_string_value(w));
            json_array_append_new(json_object_get(a->state, "warnings"),
                                  json_pack("{s:I,s:O}", "time_ms", (json_int_t)now, "message",
                                            w));
        }
        json_t *wl = json_object_get(a->state, "warnings");
        while (json_array_size(wl) > KEEP_WARNINGS)
            json_array_remove(wl, 0);
        json_array_foreach(gaps, i, w) {
            char objs[512];
            gap_objects(a, jstr(w, "object"), objs, sizeof objs);
            if (!objs[0]) {
                logf_(a, "reconcile: webhook %s's object %s cannot be reconciled through the "
                         "API: its gap is lost", jstr(w, "webhook_id"), jstr(w, "object"));
                continue;
            }
            add_run_locked(a, "webhook_deleted", jstr(w, "webhook_id"), jint(w, "from_ms"),
                           jint(w, "to_ms"), now, objs);
        }
        if (json_array_size(warnings) || json_array_size(gaps))
            save_locked(a);
    } else {
        if (strcmp(a->watch_error, err) != 0)
            logf_(a, "watchdog: %s", err);
        snprintf(a->watch_error, sizeof a->watch_error, "%s", err);
    }
    pthread_mutex_unlock(&a->lock);
    json_decref(known);
    json_decref(gaps);
    json_decref(warnings);
}

static void *ticker_main(void *arg)
{
    autorec *a = arg;
    for (;;) {
        merge_health(a);
        pthread_mutex_lock(&a->lock);
        if (a->stop) {
            pthread_mutex_unlock(&a->lock);
            break;
        }
        int64_t now = wall_ms();
        set_int(a->state, "last_seen_ms", now);
        save_locked(a);
        int watch_due = a->cfg.watch && now >= a->next_watch_ms;
        pthread_mutex_unlock(&a->lock);
        if (watch_due) {
            watch_once(a);
            pthread_mutex_lock(&a->lock);
            a->next_watch_ms = wall_ms() + (int64_t)a->cfg.watch_interval_s * 1000;
            pthread_mutex_unlock(&a->lock);
        }
        pthread_mutex_lock(&a->lock);
        int64_t until = wall_ms() + (int64_t)a->tick_s * 1000;
        if (a->cfg.watch && a->next_watch_ms < until)
            until = a->next_watch_ms;
        while (!a->stop && wall_ms() < until)
            wait_until_locked(a, until);
        int stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- the interface ------------------------------------------------------------------ */

int autorec_check(const autorec_config *cfg)
{
    if (!cfg->spool_dir) {
        fprintf(stderr, "%s: --reconcile and --watch-subscriptions need --spool DIR: the "
                        "reconciled events are journaled there, and the state of the runs is "
                        "kept there\n", prog);
        return -1;
    }
    if (cfg->objects && reconcile_check_objects(prog, cfg->objects) < 0)
        return -1;
    if (cfg->watch) {
        watchdog_config w = { cfg->public_url, cfg->watch_events, cfg->webhook_version, NULL,
                              cfg->auth_user, cfg->auth_password };
        if (watchdog_check_config(prog, &w) < 0)
            return -1;
    } else if (cfg->public_url || cfg->watch_events) {
        fprintf(stderr, "%s: --public-url and --watch-events go with --watch-subscriptions\n",
                prog);
        return -1;
    }
    return 0;
}

int autorec_start(autorec **out, const autorec_config *cfg)
{
    *out = NULL;
    if (autorec_check(cfg) < 0)
        return -1;
    autorec *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    a->cfg = *cfg;
    if (!a->cfg.retry_horizon_s)
        a->cfg.retry_horizon_s = 200;
    if (!a->cfg.watch_interval_s)
        a->cfg.watch_interval_s = 300;
    a->tick_s = a->cfg.retry_horizon_s / 4;
    a->tick_s = a->tick_s < 1 ? 1 : a->tick_s > 5 ? 5 : a->tick_s;
    snprintf(a->dir, sizeof a->dir, "%s", cfg->spool_dir);
    snprintf(a->path, sizeof a->path, "%s/%s", cfg->spool_dir, STATE_NAME);
    snprintf(a->tmp, sizeof a->tmp, "%s/%s.tmp", cfg->spool_dir, STATE_NAME);
    a->wcfg = (watchdog_config){ cfg->public_url, cfg->watch_events, cfg->webhook_version, NULL,
                                 cfg->auth_user, cfg->auth_password };
    /* the objects: given, or those of the plan, or every one */
    if (cfg->objects) {
        snprintf(a->objects, sizeof a->objects, "%s", cfg->objects);
    } else if (cfg->watch_events) {
        pdw_plan_options po;
        pdw_plan_options_init(&po, PDW_PLAN_OPTIONS_VERSION);
        po.webhook_version = cfg->webhook_version;
        po.subscription_url = cfg->public_url;
        pdw_plan *plan = NULL;
        if (pdw_plan_new(&plan, &po, NULL) == 0 &&
            pdw_plan_add_list(plan, cfg->watch_events, NULL) == 0)
            for (size_t i = 0; i < pdw_plan_count(plan); i++) {
                const char *o = pdw_plan_object(plan, i);
                if (strcmp(o, "*") == 0)
                    snprintf(a->objects, sizeof a->objects, "%s", RECONCILE_ALL_OBJECTS);
                else if (reconcilable(o, strlen(o)))
                    add_object(a->objects, sizeof a->objects, o);
            }
        pdw_plan_free(plan);
    }
    if (!a->objects[0])
        snprintf(a->objects, sizeof a->objects, "%s", RECONCILE_ALL_OBJECTS);
    const char *base = cfg->base_url ? cfg->base_url : getenv("PIPEDRIVE_BASE_URL");
    const char *tok = cfg->api_token ? cfg->api_token : getenv("PIPEDRIVE_API_TOKEN");
    const char *otok = cfg->oauth_token ? cfg->oauth_token : getenv("PIPEDRIVE_OAUTH_TOKEN");
    if (cfg->api_token)
        otok = NULL; /* the option wins over the other variable */
    else if (cfg->oauth_token)
        tok = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        pdapi_init(&a->run_api, prog, base, tok, otok) < 0 ||
        pdapi_init(&a->watch_api, prog, base, tok, otok) < 0) {
        free(a);
        return -1;
    }
    a->run_api.stop = &a->stop;
    a->watch_api.stop = &a->stop;
    a->watch_api.timeout_s = 20;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return -1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&a->cond, &ca); /* CLOCK_REALTIME: the waits are in wall time */
    pthread_condattr_destroy(&ca);
    if (load_state(a) < 0) {
        autorec_stop(a);
        return -1;
    }

    int64_t now = wall_ms();
    pthread_mutex_lock(&a->lock);
    size_t i;
    json_t *r;
    json_array_foreach(runs_of(a), i, r) {
        if (strcmp(jstr(r, "state"), "running") == 0) {
            json_object_set_new(r, "state", json_string("pending"));
            json_object_set_new(r, "result", json_string("interrupted"));
            json_object_set_new(r, "resumed", json_true());
            set_int(r, "not_before_ms", now);
            char f[40], t[40];
            fmt_time(jint(r, "from_ms"), f, sizeof f);
            fmt_time(jint(r, "to_ms"), t, sizeof t);
            logf_(a, "reconcile: run %lld (%s to %s) was interrupted by a crash: run again "
                     "from its start (what it handed on before is not handed on twice)",
                  (long long)jint(r, "id"), f, t);
        }
    }
    int64_t last = jint(a->state, "last_seen_ms");
    int64_t horizon_ms = (int64_t)a->cfg.retry_horizon_s * 1000;
    if (cfg->reconcile && last > 0 && now - last > horizon_ms) {
        logf_(a, "reconcile: this receiver was down for %lld s, longer than Pipedrive's retry "
                 "horizon (%u s): what changed meanwhile is read from the API",
              (long long)((now - last) / 1000), a->cfg.retry_horizon_s);
        add_run_locked(a, "downtime", NULL, last, now, now + horizon_ms, a->objects);
    } else if (cfg->reconcile && last <= 0) {
        logf_(a, "reconcile: no earlier run in %s: downtime is measured from now on",
              a->path);
    }
    set_int(a->state, "last_seen_ms", now);
    json_object_set_new(a->state, "started_ms", json_integer((json_int_t)now));
    int saved = save_locked(a);
    pthread_mutex_unlock(&a->lock);
    if (saved < 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, a->path, strerror(errno));
        autorec_stop(a);
        return -1;
    }
    a->next_watch_ms = now;
    if (pthread_create(&a->runner, NULL, runner_main, a) == 0)
        a->have_runner = 1;
    if (pthread_create(&a->ticker, NULL, ticker_main, a) == 0)
        a->have_ticker = 1;
    if (!a->have_runner || !a->have_ticker) {
        fprintf(stderr, "%s: cannot start the reconciliation threads\n", prog);
        autorec_stop(a);
        return -1;
    }
    logf_(a, "reconcile: %s%s%s (objects %s, retry horizon %u s, state in %s)",
          cfg->reconcile ? "ban windows and downtime reconciled by themselves" : "",
          cfg->reconcile && cfg->watch ? "; " : "",
          cfg->watch ? "webhooks watched" : "", a->objects, a->cfg.retry_horizon_s, a->path);
    *out = a;
    return 0;
}

void autorec_possible_loss(autorec *a, const char *webhook_id, int64_t from_ms, int64_t to_ms)
{
    if (!a || !a->cfg.reconcile)
        return;
    pthread_mutex_lock(&a->lock);
    add_run_locked(a, "ban", webhook_id, from_ms, to_ms, to_ms, a->objects);
    save_locked(a);
    pthread_mutex_unlock(&a->lock);
}

static json_t *run_view(json_t *r)
{
    json_t *v = json_deep_copy(r);
    json_object_del(v, "not_before_ms");
    if (json_object_get(r, "not_before_ms") && strcmp(jstr(r, "state"), "pending") == 0)
        json_object_set(v, "not_before_ms", json_object_get(r, "not_before_ms"));
    return v;
}

int autorec_health(autorec *a, json_t *o)
{
    if (!a)
        return 0;
    int warn = 0;
    int64_t now = wall_ms();
    pthread_mutex_lock(&a->lock);
    json_t *rc = json_object(), *last = json_array(), *running = NULL, *next = NULL, *r;
    size_t i, pending = 0;
    json_t *runs = runs_of(a);
    for (i = json_array_size(runs); i-- > 0;) {
        r = json_array_get(runs, i);
        const char *st = jstr(r, "state");
        if (strcmp(st, "running") == 0)
            running = r;
        else if (strcmp(st, "pending") == 0) {
            pending++;
            if (!next || jint(r, "not_before_ms") < jint(next, "not_before_ms"))
                next = r;
        } else if (json_array_size(last) < SHOW_RUNS)
            json_array_append_new(last, run_view(r));
        if (strcmp(st, "pending") == 0 && json_object_get(r, "error"))
            warn = 1; /* a failed run waits for its retry */
    }
    json_object_set_new(rc, "enabled", json_boolean(a->cfg.reconcile));
    json_object_set_new(rc, "objects", json_string(a->objects));
    set_int(rc, "retry_horizon_s", a->cfg.retry_horizon_s);
    set_int(rc, "last_seen_ms", jint(a->state, "last_seen_ms"));
    json_object_set_new(rc, "running", running ? run_view(running) : json_null());
    json_object_set_new(rc, "next", next ? run_view(next) : json_null());
    set_int(rc, "pending", (int64_t)pending);
    json_object_set_new(rc, "last_runs", last);
    json_object_set_new(o, "reconcile", rc);
    if (a->cfg.watch) {
        json_t *w = json_object(), *ws = json_array();
        set_int(w, "interval_s", a->cfg.watch_interval_s);
        set_int(w, "last_check_ms", a->last_watch_ms);
        set_int(w, "next_check_ms", a->next_watch_ms);
        set_int(w, "webhooks", (int64_t)a->watch_listed);
        set_int(w, "created", (int64_t)a->watch_created);
        json_object_set_new(w, "error", a->watch_error[0] ? json_string(a->watch_error)
                                                          : json_null());
        json_array_foreach(json_object_get(a->state, "warnings"), i, r) {
            json_array_append(ws, r);
            if (now - jint(r, "time_ms") < WARN_FOR_MS)
                warn = 1;
        }
        json_object_set_new(w, "warnings", ws);
        if (a->watch_error[0])
            warn = 1;
        json_object_set_new(o, "watchdog", w);
    }
    pthread_mutex_unlock(&a->lock);
    return warn;
}

void autorec_stop(autorec *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->have_runner)
        pthread_join(a->runner, NULL);
    if (a->have_ticker)
        pthread_join(a->ticker, NULL);
    if (a->state) {
        set_int(a->state, "last_seen_ms", wall_ms());
        save_locked(a);
        if (a->have_runner)
            logf_(a, "reconcile: stopped; state in %s", a->path);
    }
    json_decref(a->state);
    pdapi_fini(&a->run_api);
    pdapi_fini(&a->watch_api);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
