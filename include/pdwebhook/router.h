/**
 * @file pdwebhook/router.h
 * @brief Hand events to the callbacks registered for them.
 *
 * Patterns read `action.object`, in either version's words: `updated.deal` and
 * `change.deal` are the same pattern, `added.*` is `create.*`. `*` matches any action or
 * any object. `merged.X` matches merges only (v1 `merged` deliveries and v2 `change`
 * deliveries carrying `merged_from_id`). A field filter narrows a pattern to changes of one
 * field: `change.deal` with field `stage_id` is "a deal moved stage".
 *
 * Handlers run in registration order, all of them, whatever earlier ones returned.
 * Lookup costs the same however many patterns are registered.
 *
 * @par Thread safety
 * Register from one thread before the first dispatch. The first dispatch freezes the
 * router: registration after it fails with ::PDW_EFROZEN. From then on pdw_router_dispatch()
 * may be called from many threads at once (the router is read-only; handlers must be as
 * thread-safe as that).
 */
#ifndef PDWEBHOOK_ROUTER_H
#define PDWEBHOOK_ROUTER_H

#include "common.h"
#include "error.h"
#include "event.h"
#include "recency.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque router. */
typedef struct pdw_router pdw_router;

/**
 * @brief An event handler.
 * @param ev the event, borrowed for the duration of the call.
 * @param user the pointer given at registration.
 * @return 0 when handled; any other value marks the handler as failed (reported in the
 *   dispatch result and to the error callback). Positive and negative values are both failures.
 */
typedef int (*pdw_handler_cb)(const pdw_event *ev, void *user);

/**
 * @brief Told about each failed handler.
 * @param ev the event; @param pattern the pattern the handler was registered with;
 * @param rc what the handler returned (non-zero), or ::PDW_ENOMEM when its field filter
 *   could not be evaluated; @param user as registered.
 */
typedef void (*pdw_handler_error_cb)(const pdw_event *ev, const char *pattern, int rc,
                                     void *user);

/** @brief Options for pdw_router_new(). Initialise with ::PDW_ROUTER_OPTIONS_INIT. */
typedef struct pdw_router_options {
    unsigned version;               /**< ::PDW_ROUTER_OPTIONS_VERSION */
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied */
} pdw_router_options;

/** Version of ::pdw_router_options this header describes. */
#define PDW_ROUTER_OPTIONS_VERSION 1
/** Initialiser for ::pdw_router_options. */
#define PDW_ROUTER_OPTIONS_INIT PDW_STRUCT_INIT(pdw_router_options, PDW_ROUTER_OPTIONS_VERSION)

/** @brief Fill router options with defaults. @return 0, ::PDW_EINVAL or ::PDW_EVERSIONSTRUCT. */
PDW_EXTERN int pdw_router_options_init(pdw_router_options *opts, unsigned version);

/**
 * @brief Create a router.
 * @param[out] out the router, free with pdw_router_free().
 * @param opts options or NULL.
 * @param err optional detail.
 * @return 0, ::PDW_ENOMEM, ::PDW_EINVAL, ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_router_new(pdw_router **out, const pdw_router_options *opts,
                              pdw_error *err);

/** @brief Free a router. @param r the router or NULL. Not while a dispatch runs. */
PDW_EXTERN void pdw_router_free(pdw_router *r);

/**
 * @brief Register @p cb for @p pattern.
 * @param pattern NUL-terminated `action.object`: action one of create/change/delete,
 *   added/updated/deleted/merged, or `*`; object a name of `[A-Za-z0-9_]` (at most
 *   ::PDW_NAME_MAX bytes) or `*`. Copied.
 * @param r the router.
 * @param cb the handler; @param user handed back to it.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EPATTERN, ::PDW_EFROZEN, ::PDW_ENOMEM, ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_router_on(pdw_router *r, const char *pattern, pdw_handler_cb cb,
                             void *user, pdw_error *err);

/**
 * @brief Register @p cb for @p pattern, only when @p field changed (see pdw_event_changed():
 * `custom_fields` matches a change of any `custom_fields.<hash>`).
 * @param r the router.
 * @param pattern as for pdw_router_on(). Copied.
 * @param field NUL-terminated field name (`stage_id`, `custom_fields.<hash>`). Copied.
 * @param cb the handler; @param user handed back to it.
 * @param err optional error detail, or NULL.
 * @return as pdw_router_on().
 */
PDW_EXTERN int pdw_router_on_change(pdw_router *r, const char *pattern, const char *field,
                                    pdw_handler_cb cb, void *user, pdw_error *err);

/**
 * @brief Set the fallback, run for events no handler matched. One only; a new one replaces it.
 * @return 0, ::PDW_EFROZEN, ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_router_on_unhandled(pdw_router *r, pdw_handler_cb cb, void *user);

/**
 * @brief Set the error callback, told about each handler that failed. One only.
 * @return 0, ::PDW_EFROZEN, ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_router_on_error(pdw_router *r, pdw_handler_error_cb cb, void *user);

/** @brief Freeze the router now (the first dispatch does it anyway). Idempotent. */
PDW_EXTERN void pdw_router_freeze(pdw_router *r);

/** @brief What a dispatch did. */
typedef struct pdw_dispatch_result {
    unsigned matched;   /**< handlers that matched (the fallback counts when it ran) */
    unsigned failed;    /**< of which failed (returned non-zero) */
    int first_failure;  /**< what the first failing handler returned, 0 if none */
} pdw_dispatch_result;

/**
 * @brief Run the handlers registered for @p ev, in registration order.
 *
 * Freezes the router. Safe from many threads once frozen.
 * @param r the router.
 * @param ev the event, borrowed for the call.
 * @param[out] result what ran; may be NULL.
 * A field filter that cannot be evaluated (out of memory) counts as a matched, failed
 * handler that did not run: `first_failure` and the error callback get ::PDW_ENOMEM.
 * @return 0 when every matching handler succeeded (or none matched); ::PDW_ENOMEM when a
 *   field filter could not be evaluated (it wins over ::PDW_EHANDLER, so that the host can
 *   answer 5xx and be retried); ::PDW_EHANDLER when at least one handler failed;
 *   ::PDW_EINVAL for NULL arguments or an event that is not a parsed event (nothing runs
 *   and the router is not frozen).
 */
PDW_EXTERN int pdw_router_dispatch(const pdw_router *r, const pdw_event *ev,
                                   pdw_dispatch_result *result);

/** @brief Number of patterns registered. */
PDW_EXTERN size_t pdw_router_count(const pdw_router *r);

/**
 * @brief Skip superseded events: check each event with @p tracker before its handlers.
 *
 * An event older than a change of the same entity dispatched already
 * (pdw_recency_check() says ::PDW_RECENCY_STALE: typically a retry, 3 to 150 s late, of
 * an older change) runs none of the pattern handlers and not the fallback; @p cb runs
 * instead, when given (log it, count it, or apply what is still useful: a late `create`
 * is stale too). Every other event is recorded in the tracker and dispatched as usual.
 * A second dispatch of the same event (a worker retrying a failed handler) is
 * ::PDW_RECENCY_SAME, so it runs the handlers again.
 *
 * The result of a stale dispatch: `matched` 1 when @p cb ran, else 0; a non-zero return
 * of @p cb is a failure like a handler's (pattern "(stale)"). One tracker may serve
 * several routers (they then share what "seen" means).
 * @param r the router.
 * @param tracker borrowed: must outlive the router.
 * @param cb run for stale events, or NULL to drop them.
 * @param user handed back to @p cb.
 * @return 0, ::PDW_EFROZEN, ::PDW_EINVAL.
 */
PDW_EXTERN int pdw_router_on_stale(pdw_router *r, pdw_recency *tracker, pdw_handler_cb cb,
                                   void *user);

#ifdef __cplusplus
}
#endif
#endif
