/**
 * @file pdwebhook/health.h
 * @brief The ban model: count what Pipedrive counts, predict bans, flag possible losses.
 *
 * Pipedrive adds 1 to a webhook's ban counter for each *first* attempt that failed: a
 * non-2xx answer, or none within 10 seconds (failed retries add nothing). At 10 the webhook
 * is banned for 30 minutes, then reactivated with the counter at 0; events during a ban are
 * lost for good. A webhook with no successful delivery for 3 days is deleted.
 *
 * A ::pdw_health object keeps the same books per `webhook_id`, from what the receiver
 * answered (pdw_health_record()). When its counter reaches the threshold it predicts the
 * ban, records the 30-minute window as a *possible loss* (to reconcile by re-reading what
 * changed through Pipedrive's API) and calls the loss callback. It also tracks the last
 * successful delivery and warns ("stale") after 48 hours without one.
 *
 * @par Thread safety
 * All functions may be called from several threads at once (one mutex).
 */
#ifndef PDWEBHOOK_HEALTH_H
#define PDWEBHOOK_HEALTH_H

#include "common.h"
#include "error.h"
#include "pipedrive.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque ban model. */
typedef struct pdw_health pdw_health;

/**
 * @brief Told when a ban is predicted: events of @p webhook_id between @p from_ms and
 * @p to_ms (ms since the epoch) may be lost. Called with the health lock held: do not
 * call back into the same ::pdw_health.
 */
typedef void (*pdw_possible_loss_cb)(const char *webhook_id, int64_t from_ms, int64_t to_ms,
                                     void *user);

/** @brief Options. Initialise with ::PDW_HEALTH_OPTIONS_INIT; 0 means the default. */
typedef struct pdw_health_options {
    unsigned version;                 /**< ::PDW_HEALTH_OPTIONS_VERSION */
    const pdw_allocator *allocator;   /**< NULL: malloc/realloc/free; copied */
    unsigned ban_threshold;           /**< failed first attempts that ban; 0:
                                           ::PDW_PIPEDRIVE_BAN_THRESHOLD (10) */
    uint64_t ban_ms;                  /**< ban length; 0: ::PDW_PIPEDRIVE_BAN_MS (30 min) */
    uint64_t timeout_ms;              /**< answers slower than this are failures; 0:
                                           ::PDW_PIPEDRIVE_TIMEOUT_MS (10 s) */
    uint64_t stale_ms;                /**< warn after this long without success; 0: 48 h */
    size_t max_webhooks;              /**< webhooks tracked (least recently seen dropped); 0: 1024 */
    pdw_possible_loss_cb on_possible_loss; /**< NULL: none */
    void *user;                       /**< handed to @c on_possible_loss */
} pdw_health_options;

/** Version of ::pdw_health_options this header describes. */
#define PDW_HEALTH_OPTIONS_VERSION 1
/** Initialiser for ::pdw_health_options. */
#define PDW_HEALTH_OPTIONS_INIT PDW_STRUCT_INIT(pdw_health_options, PDW_HEALTH_OPTIONS_VERSION)

/** @brief Fill the options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_health_options_init(pdw_health_options *opts, unsigned version);

/**
 * @brief Create a ban model.
 * @param[out] out the model; free with pdw_health_free().
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_health_new(pdw_health **out, const pdw_health_options *opts, pdw_error *err);

/** @brief Free a model. @param h the model or NULL. */
PDW_EXTERN void pdw_health_free(pdw_health *h);

/**
 * @brief Record one answer given to Pipedrive.
 * @param h the model.
 * @param webhook_id the delivery's `meta.webhook_id`, or NULL when unknown (a body that
 *   did not parse, a refused request): booked under "unknown".
 * @param attempt 1-based attempt (pdw_event_attempt()); 0 when unknown, counted as a
 *   first attempt (Pipedrive counts it if it was one; we cannot tell).
 * @param status the HTTP status answered.
 * @param latency_ms how long the answer took.
 * @param now_ms the time of the answer (ms since the epoch).
 * @return 1 when this answer completed a predicted ban, 0 otherwise, ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_health_record(pdw_health *h, const char *webhook_id, unsigned attempt,
                                 int status, uint64_t latency_ms, int64_t now_ms);

/** @brief One webhook's books, as of a given time. */
typedef struct pdw_health_webhook {
    char webhook_id[72];             /**< the id, or "unknown" */
    unsigned failed_first_attempts;  /**< the ban counter now (reset by each predicted ban) */
    unsigned bans;                   /**< bans predicted so far */
    int banned;                      /**< 1 while a predicted ban window is open */
    int64_t ban_from_ms;             /**< the last predicted ban window, 0 when none */
    int64_t ban_to_ms;               /**< its end */
    int64_t last_success_ms;         /**< last 2xx in time, 0 when none */
    int stale;                       /**< 1: no success for stale_ms (Pipedrive deletes at 3 days) */
    uint64_t deliveries;             /**< answers recorded */
    uint64_t failures;               /**< of which failed (non-2xx or late) */
} pdw_health_webhook;

/** @brief Number of webhooks tracked. */
PDW_EXTERN size_t pdw_health_count(pdw_health *h);

/**
 * @brief The i-th webhook's books (order: first seen first).
 * @param h the model.
 * @param i the index, 0 to pdw_health_count() - 1.
 * @param now_ms the time to judge `banned` and `stale` against.
 * @param[out] out filled with the books.
 * @return 0, ::PDW_ENOTFOUND when @p i is out of range.
 */
PDW_EXTERN int pdw_health_get(pdw_health *h, size_t i, int64_t now_ms, pdw_health_webhook *out);

/**
 * @brief The books as JSON, for a health endpoint:
 * `{"webhooks":[{"webhook_id","failed_first_attempts","bans","banned","ban_from_ms",
 * "ban_to_ms","last_success_ms","stale","deliveries","failures"}...],"possible_losses":
 * [{"webhook_id","from_ms","to_ms"}...],"warnings":[...]}`.
 * @return a NUL-terminated string to free with pdw_free(), or NULL on out-of-memory.
 */
PDW_EXTERN char *pdw_health_json(pdw_health *h, int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
