/**
 * @file pdwebhook/reconcile.h
 * @brief Reconciled events: what changed in Pipedrive, re-read from its API, as events.
 *
 * Pipedrive drops events: during a ban, after its last retry (about 3 minutes), and for
 * good once a webhook is deleted. What changed meanwhile can be re-read from Pipedrive's
 * API (`GET /v1/recents`, the v2 list endpoints with `updated_since`; see
 * docs/GAP-FREE.md). This header turns one API record into an event body shaped like a
 * webhook v2 delivery, marked as reconciled:
 *
 * ```
 * {"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"42",
 *          "id":"r1767225600000:42","timestamp":"2026-01-01T00:00:00.000Z",
 *          "type":"general","attempt":1,"reconciled":true,"reconciled_from":"/api/v2/deals"},
 *  "data":{...the record as the API returned it...},"previous":null}
 * ```
 *
 * and gives every event an **update key**, `u:<object>:<entity id>:<update time in ms>`,
 * equal for a delivery and for the reconciled record of the same state of the same entity
 * (v2 `data.update_time`, v1 `current.update_time`; users: `modified`). The durable intake
 * remembers it for each accepted delivery and a reconciled record claims it
 * (pdw_intake_reconcile()): a window that overlaps real deliveries, or is reconciled
 * twice, hands nothing on twice.
 *
 * Pure functions: no I/O; any thread.
 */
#ifndef PDWEBHOOK_RECONCILE_H
#define PDWEBHOOK_RECONCILE_H

#include "common.h"
#include "error.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Return value of pdw_reconcile_body(): the record changed outside the window. */
#define PDW_RECONCILE_OUTSIDE 1

/**
 * @brief 1 when the event was made by reconciliation (`meta.reconciled` is true), not
 * delivered by Pipedrive. 0 otherwise (also for NULL).
 */
PDW_EXTERN int pdw_event_is_reconciled(const pdw_event *ev);

/**
 * @brief The event's update key, `u:<object>:<entity id>:<update time in ms>`.
 *
 * The update time is read from the entity's state: v2 `data.update_time`, v1
 * `current.update_time` (`current[0]` for users), `modified` for users; RFC 3339 or
 * "YYYY-MM-DD HH:MM:SS" (UTC). A delete (no current state) reads `previous` instead.
 * @param ev the event.
 * @param[out] out the key, NUL-terminated.
 * @param cap the size of @p out (::PDW_DELIVERY_KEY_MAX is always enough).
 * @return the key's length, ::PDW_ENOTFOUND (no entity id or no update time),
 *   ::PDW_ERANGE (@p cap too small) or ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_event_update_key(const pdw_event *ev, char *out, size_t cap);

/**
 * @brief When an API record was last changed, in ms since the epoch.
 * @param object the object ("deal", "user", ...), NUL-terminated.
 * @param record the record's JSON text (an object); no NUL needed.
 * @param len its length.
 * @return the time (`update_time`, else `modified`, else `add_time`/`created`), or
 *   ::PDW_ENOTFOUND, ::PDW_EJSON, ::PDW_EINVAL.
 */
PDW_EXTERN int64_t pdw_reconcile_record_time(const char *object, const char *record,
                                             size_t len);

/**
 * @brief Build a reconciled event's body from one API record.
 *
 * The action: `delete` when the record says it is deleted (`is_deleted` or `deleted`
 * true, or `active_flag` false except for users, whose deactivation is a change, as in
 * Pipedrive's webhooks), `create` when it was added inside the window (`add_time`, users
 * `created`, at or after @p from_ms), else `change`. A deleted record goes to `previous`
 * with `data` null, as in a v2 delete delivery; otherwise it is `data`, `previous` null.
 * @param[out] out the body, NUL-terminated, to free with pdw_free(); NULL unless 0.
 * @param[out] out_len its length; may be NULL.
 * @param object the record's object ("deal", "person", "lead", ...).
 * @param record the record's JSON text (an object with an `id`); no NUL needed.
 * @param len its length.
 * @param from_ms the window's start (ms since the epoch, inclusive).
 * @param to_ms its end (exclusive); 0 or less: no end.
 * @param source where the record was read (`/v1/recents`, `/api/v2/deals`) for
 *   `meta.reconciled_from`, or NULL.
 * @param err optional error detail, or NULL.
 * @return 0 (built), ::PDW_RECONCILE_OUTSIDE (its update time is outside the window:
 *   nothing built), ::PDW_EJSON, ::PDW_ENOTOBJECT, ::PDW_EFIELD (no id, no update time,
 *   an object name that is not `[A-Za-z0-9_]`), ::PDW_EINVAL, ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_reconcile_body(char **out, size_t *out_len, const char *object,
                                  const char *record, size_t len, int64_t from_ms,
                                  int64_t to_ms, const char *source, pdw_error *err);

#ifdef __cplusplus
}
#endif
#endif
