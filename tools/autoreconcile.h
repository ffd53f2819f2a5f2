/* serve --reconcile and serve --watch-subscriptions (docs/GAP-FREE.md): reconciliation by
 * itself, in the background, through the intake (pdw_intake_reconcile(): the spool, the
 * worker, --output/--exec, deduplicated against real deliveries).
 *
 * Windows reconciled: a predicted ban of a webhook once it is over (the ban model's
 * possible-loss callback); the receiver's own downtime, from the last moment the state
 * file says serve was up to this start, when longer than Pipedrive's retry horizon (run
 * once the horizon has passed after the start, so that the retries still due arrive
 * first); the gap of a webhook the watchdog found deleted, from its last successful
 * delivery.
 *
 * State: SPOOL/reconcile-state.json (written whole: write, fsync, rename, fsync of the
 * directory): "last_seen_ms" (renewed every few seconds while serving), the runs
 * (pending, running, done; window, objects, counts, result, started/finished), the
 * webhooks the watchdog knows. A run found "running" at start (a crash) is run again from
 * its start: what it handed on before is a duplicate then, nothing is skipped.
 *
 * Two threads: the runner (one window at a time) and the ticker (the state's last_seen,
 * the receiver's last successful delivery per webhook, the watchdog's checks). */
#ifndef PDW_AUTORECONCILE_H
#define PDW_AUTORECONCILE_H

#include <jansson.h>
#include <pdwebhook/health.h>
#include <pdwebhook/intake.h>
#include <stdint.h>

typedef struct autorec autorec;
typedef struct autorec_config autorec_config;

struct autorec_config {
    const char *spool_dir;        /* required: the state file lives there */
    const char *base_url;         /* NULL: $PIPEDRIVE_BASE_URL, else Pipedrive's */
    const char *api_token, *oauth_token; /* NULL: $PIPEDRIVE_API_TOKEN / _OAUTH_TOKEN */
    const char *objects;          /* NULL: the plan's objects, else every one */
    unsigned retry_horizon_s;     /* 0: 200 */
    int reconcile;                /* ban windows and downtime */
    int watch;                    /* the webhook watchdog (implies reconciling its gaps) */
    unsigned watch_interval_s;    /* 0: 300 */
    const char *public_url;       /* the watchdog: this receiver's URL at Pipedrive */
    const char *watch_events;     /* the watchdog's plan (triggers), or NULL */
    const char *webhook_version;  /* the plan's version, NULL: 2.0 */
    const char *auth_user, *auth_password; /* serve's first credential pair, or NULL */
    pdw_intake *intake;           /* started */
    pdw_health *health;
    void (*log)(const char *line);
};

#ifdef PDW_HAVE_CURL

/* Check the options (no network, no file): 0, or -1 after printing why. */
int autorec_check(const autorec_config *cfg);

/* Read the state file, schedule the downtime window and resume an interrupted run, start
 * the threads. 0, or -1 after printing why. */
int autorec_start(autorec **out, const autorec_config *cfg);

/* The ban model's possible-loss callback (called with the model's lock held). */
void autorec_possible_loss(autorec *a, const char *webhook_id, int64_t from_ms, int64_t to_ms);

/* Add "reconcile" (and "watchdog") to a /healthz object; 1 when it warns. */
int autorec_health(autorec *a, json_t *o);

/* Stop the threads (a run in progress is interrupted and stays pending), write the state
 * a last time, free. NULL is fine. Before the intake stops. */
void autorec_stop(autorec *a);
#else /* built without libcurl: the options are refused */
#include <stdio.h>
static inline int autorec_check(const autorec_config *cfg)
{
    (void)cfg;
    fprintf(stderr, "pdwebhook serve: --reconcile and --watch-subscriptions need libcurl, "
                    "which this build lacks\n");
    return -1;
}
static inline int autorec_start(autorec **out, const autorec_config *cfg)
{
    *out = NULL;
    return autorec_check(cfg);
}
static inline void autorec_possible_loss(autorec *a, const char *w, int64_t f, int64_t t)
{
    (void)a, (void)w, (void)f, (void)t;
}
static inline int autorec_health(autorec *a, json_t *o)
{
    (void)a, (void)o;
    return 0;
}
static inline void autorec_stop(autorec *a)
{
    (void)a;
}
#endif

#endif
