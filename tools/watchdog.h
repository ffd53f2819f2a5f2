/* The webhook watchdog of `serve --watch-subscriptions` (docs/GAP-FREE.md): list the
 * account's webhooks, find those of this receiver that Pipedrive deleted (it deletes a
 * webhook after 3 days without a successful delivery) or that the subscription plan wants
 * and that do not exist, re-create them from the plan (pdwebhook/subscriptions.h, as
 * `subscriptions sync` creates them) and say which gaps to reconcile. It never deletes a
 * webhook. The scheduling and the state file are autoreconcile.c's. */
#ifndef PDW_WATCHDOG_H
#define PDW_WATCHDOG_H

#include <jansson.h>
#include <stdint.h>

#include "pdapi.h"

typedef struct watchdog_config {
    const char *url;            /* this receiver's URL at Pipedrive (subscription_url) */
    const char *events;         /* the plan's triggers (updated.deal,*.person), or NULL */
    const char *version;        /* the plan's webhooks version; NULL: 2.0 */
    const char *user_id;        /* the plan's user id, or NULL */
    const char *auth_user;      /* HTTP Basic pair given to re-created webhooks, or NULL */
    const char *auth_password;
} watchdog_config;

/* Check the plan offline (the triggers, the URL): 0, or -1 after printing why. */
int watchdog_check_config(const char *prog, const watchdog_config *cfg);

/* One check at now_ms.
 * known: the webhooks remembered between checks (and across restarts), an object
 *   id -> {"event_action","event_object","version","first_listed_ms","last_listed_ms",
 *   "last_success_ms","gone"}: updated in place (the caller merges the receiver's
 *   last successful deliveries into it).
 * gaps: appended {"webhook_id","from_ms","to_ms","object"} for each webhook found gone
 *   whose last successful delivery (or, never one, its first listing) is known.
 * warnings: appended one line per finding (gone, re-created, failed to re-create).
 * *listed: the webhooks for the URL now listed; *created: how many were created.
 * Returns 0, or -1 with err filled (listing failed: nothing changed). Never prints the
 * URL (it may hold a token) nor a password. */
int watchdog_run(pdapi *c, const watchdog_config *cfg, json_t *known, int64_t now_ms,
                 json_t *gaps, json_t *warnings, size_t *listed, size_t *created, char *err,
                 size_t errcap);

#endif
