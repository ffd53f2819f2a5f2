/**
 * @file pdwebhook/subscriptions.h
 * @brief Plan the Pipedrive webhook subscriptions an endpoint needs, and compare them with
 * what an account has. No network: the caller talks to Pipedrive's management API
 * (`GET`/`POST /v1/webhooks`, `DELETE /v1/webhooks/{id}`) with the bodies built here.
 *
 * A Pipedrive webhook is one `event_action` x `event_object` sent to one URL. A plan starts
 * from the triggers an application wants (`updated.deal`, `*.person`, `change.lead`, in
 * either version's words) and keeps the smallest set of subscriptions that delivers them:
 *
 * - **Translation.** Actions are written in the plan's version: `added`/`updated`/
 *   `deleted`/`merged` for "1.0", `create`/`change`/`delete` for "2.0". Either spelling is
 *   accepted as input (`updated.deal` in a 2.0 plan is `change.deal`).
 * - **Refusals** (::PDW_EUNSUPPORTED), the combinations Pipedrive refuses: `merged` in 2.0
 *   (a v2 merge arrives as `change` plus `delete`); `merged` on objects other than `deal`,
 *   `person`, `organization` (or `*`); `activityType` in 2.0; in 1.0, the v2-only objects
 *   (`lead`, `deal_product`, `deal_installment`, `project`, `task`, `board`, `phase`) and
 *   any object outside v1's closed list. Malformed triggers are ::PDW_EPATTERN.
 * - **Collapsing.** A subscription covered by another is dropped (`*.deal` covers
 *   `updated.deal`, `*.*` covers everything, `merged.*` covers `merged.deal`); a full set of
 *   actions on one object becomes `*.object` (in 1.0 that set includes `merged` for
 *   deal/person/organization, so it is never wider than asked). The result does not depend
 *   on the order of the triggers. Objects are never widened to `*`: v2's object list is open.
 * - **Warnings** (advice, never failures): `updated.stage` / `*.stage` fire when a *stage*
 *   is edited, not when a deal moves stage; an object pdwebhook does not know in 2.0
 *   (Pipedrive may refuse it, or it is a typo); a plain `http://` URL; each dropped trigger.
 *
 * Pipedrive allows at most ::PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER webhooks per user;
 * pdw_plan_check() and pdw_plan_diff() enforce it (::PDW_ELIMIT).
 *
 * @par Secrets
 * The HTTP auth password is copied, wiped on free, put only in the body from
 * pdw_plan_body_json(), and never in an error message or a warning. The subscription URL
 * may carry a token in its query, so it is not quoted in messages either.
 *
 * @par Thread safety
 * A plan is built from one thread. Once built, its read-only functions (accessors,
 * pdw_plan_body_json(), pdw_plan_check(), pdw_plan_diff()) may run from many threads.
 */
#ifndef PDWEBHOOK_SUBSCRIPTIONS_H
#define PDWEBHOOK_SUBSCRIPTIONS_H

#include "common.h"
#include "error.h"
#include "event.h"
#include "pipedrive.h"

#ifdef __cplusplus
extern "C" {
#endif


/** @brief Opaque subscription plan. */
typedef struct pdw_plan pdw_plan;

/** @brief Options for pdw_plan_new(). Initialise with ::PDW_PLAN_OPTIONS_INIT. */
typedef struct pdw_plan_options {
    unsigned version;               /**< ::PDW_PLAN_OPTIONS_VERSION */
    /** The webhooks' payload version, "1.0" or "2.0" ("1" and "2" are accepted too);
     *  NULL: "2.0". Always written explicitly in the bodies. */
    const char *webhook_version;
    /** Where Pipedrive delivers: an absolute `http://` or `https://` URL without white
     *  space or control characters (required). Copied. */
    const char *subscription_url;
    /** The Pipedrive user whose permissions the webhooks run under, as decimal digits;
     *  NULL: the user of the API token. Copied. */
    const char *user_id;
    /** HTTP Basic user Pipedrive sends (no ':'); NULL: no auth. Copied. */
    const char *http_auth_user;
    /** HTTP Basic password; set with, and only with, @c http_auth_user. Copied, wiped. */
    const char *http_auth_password;
    /** Prefix of each webhook's `name` (Pipedrive requires a name): the name is
     *  "<prefix> <action>.<object>". NULL: "pdwebhook". At most 64 bytes. Copied. */
    const char *name_prefix;
    const pdw_allocator *allocator; /**< NULL: malloc/realloc/free; copied */
} pdw_plan_options;

/** Version of ::pdw_plan_options this header describes. */
#define PDW_PLAN_OPTIONS_VERSION 1
/** Initialiser for ::pdw_plan_options. */
#define PDW_PLAN_OPTIONS_INIT PDW_STRUCT_INIT(pdw_plan_options, PDW_PLAN_OPTIONS_VERSION)

/**
 * @brief Fill plan options with defaults (all NULL).
 * @param opts the struct to fill.
 * @param version ::PDW_PLAN_OPTIONS_VERSION.
 * @return 0, ::PDW_EINVAL (NULL opts) or ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_plan_options_init(pdw_plan_options *opts, unsigned version);

/**
 * @brief Create an empty plan.
 * @param[out] out the plan; free with pdw_plan_free(). Set to NULL on failure.
 * @param opts options (required: the subscription URL is).
 * @param err optional detail (never quotes the URL or a credential).
 * @return 0; ::PDW_EINVAL (no or malformed URL, bad version, user id not digits,
 *   user without password or the reverse, ':' in the user, prefix too long or with control
 *   characters, incomplete allocator); ::PDW_EVERSIONSTRUCT; ::PDW_ENOMEM.
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_plan_new(pdw_plan **out, const pdw_plan_options *opts, pdw_error *err);

/**
 * @brief Free a plan and wipe its copy of the password.
 * @param plan the plan, or NULL.
 */
PDW_EXTERN void pdw_plan_free(pdw_plan *plan);

/**
 * @brief Add one wanted trigger.
 *
 * Validates, translates to the plan's version and collapses (see the file comment). A
 * trigger already covered changes nothing but a warning.
 * @param plan the plan.
 * @param trigger NUL-terminated `action.object`: action one of `added`, `updated`,
 *   `merged`, `deleted`, `create`, `change`, `delete`, `*`; object `*` or a name of
 *   `[A-Za-z0-9_]` (at most ::PDW_NAME_MAX bytes, case-sensitive: `activityType`).
 * @param err optional detail.
 * @return 0; ::PDW_EPATTERN (malformed); ::PDW_EUNSUPPORTED (Pipedrive refuses it in this
 *   version); ::PDW_EINVAL (NULL argument); ::PDW_ENOMEM (the plan is unchanged).
 */
PDW_EXTERN int pdw_plan_add(pdw_plan *plan, const char *trigger, pdw_error *err);

/**
 * @brief Add several triggers separated by commas and/or white space
 * ("updated.deal, *.person").
 *
 * Stops at the first trigger that fails; those before it stay added.
 * @param plan the plan.
 * @param list NUL-terminated list; empty items are skipped.
 * @param err optional error detail, or NULL.
 * @return as pdw_plan_add(); ::PDW_EPATTERN also when the list holds no trigger.
 */
PDW_EXTERN int pdw_plan_add_list(pdw_plan *plan, const char *list, pdw_error *err);

/** @brief The plan's version: "1.0" or "2.0" (static string). @param plan the plan. */
PDW_EXTERN const char *pdw_plan_version(const pdw_plan *plan);

/** @brief The subscription URL (borrowed from the plan). @param plan the plan. */
PDW_EXTERN const char *pdw_plan_url(const pdw_plan *plan);

/** @brief Number of subscriptions planned. @param plan the plan (NULL gives 0). */
PDW_EXTERN size_t pdw_plan_count(const pdw_plan *plan);

/**
 * @brief The i-th subscription's `event_action`, in the plan version's words
 * (`updated`, `change`, `*`, ...).
 * @param plan the plan; @param i below pdw_plan_count().
 * @return a static string, or NULL when @p i is out of range.
 */
PDW_EXTERN const char *pdw_plan_action(const pdw_plan *plan, size_t i);

/**
 * @brief The i-th subscription's `event_object` (`deal`, `*`, ...).
 * @param plan the plan; @param i below pdw_plan_count().
 * @return borrowed from the plan until the next pdw_plan_add(); NULL when out of range.
 */
PDW_EXTERN const char *pdw_plan_object(const pdw_plan *plan, size_t i);

/** @brief Number of warnings gathered so far. @param plan the plan (NULL gives 0). */
PDW_EXTERN size_t pdw_plan_warning_count(const pdw_plan *plan);

/**
 * @brief The i-th warning, one line of English without a trailing newline.
 * @param plan the plan; @param i below pdw_plan_warning_count().
 * @return borrowed from the plan until the next pdw_plan_add() / pdw_plan_add_list()
 *   (warnings are recomputed) or pdw_plan_free(); NULL when out of range.
 */
PDW_EXTERN const char *pdw_plan_warning(const pdw_plan *plan, size_t i);

/**
 * @brief Check that the plan can be created as it is: at least one subscription, and no
 * more than ::PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER together with @p others.
 * @param plan the plan.
 * @param others webhooks the same user already has that the plan does not replace (0 when
 *   unknown).
 * @param err optional detail (gives the counts).
 * @return 0, ::PDW_EINVAL (NULL plan or empty plan), ::PDW_ELIMIT.
 */
PDW_EXTERN int pdw_plan_check(const pdw_plan *plan, size_t others, pdw_error *err);

/**
 * @brief The body of `POST /v1/webhooks` for the i-th subscription, as compact JSON:
 * `name`, `subscription_url`, `event_action`, `event_object`, `version` (always), then
 * `user_id` (a number) and `http_auth_user` / `http_auth_password` when set.
 * @param plan the plan; @param i below pdw_plan_count().
 * @param[out] out a NUL-terminated string, free with pdw_free(). It holds the password:
 *   wipe it before freeing if that matters to you. NULL on failure.
 * @param err optional detail.
 * @return 0, ::PDW_EINVAL (NULL argument), ::PDW_ERANGE (@p i out of range), ::PDW_ENOMEM.
 */
PDW_EXTERN int pdw_plan_body_json(const pdw_plan *plan, size_t i, char **out, pdw_error *err);

/**
 * @brief A webhook as Pipedrive lists it (`GET /v1/webhooks`), parsed by the caller.
 * All strings are NUL-terminated and borrowed for the duration of pdw_plan_diff().
 * Plain data without a version member: frozen (see docs/ABI.md).
 */
typedef struct pdw_subscription {
    const char *id;                 /**< the webhook id, as a string */
    const char *event_action;       /**< `updated`, `change`, `*`, ... */
    const char *event_object;       /**< `deal`, `*`, ... */
    const char *subscription_url;   /**< compared byte for byte with the plan's URL */
    const char *webhook_version;    /**< listed `version`: "1.0" / "2.0"; NULL: "1.0" */
    const char *user_id;            /**< decimal; NULL: not reported */
    const char *http_auth_user;     /**< NULL: not reported (not compared) */
    const char *http_auth_password; /**< NULL: not reported (not compared) */
} pdw_subscription;

/** @brief Opaque result of pdw_plan_diff(). */
typedef struct pdw_diff pdw_diff;

/**
 * @brief Compare a plan with the webhooks an account has, for a sync that makes the
 * webhooks for the plan's URL equal to the plan.
 *
 * Only webhooks whose `subscription_url` equals the plan's URL are considered; the others
 * are left alone (but count towards the limit when they belong to the plan's user).
 * An existing webhook is *the same subscription* as a planned one when it has: the same
 * URL; the same version; the same action (compared in the canonical vocabulary, so
 * `updated` equals `change`; `merged` and `*` only equal themselves); the same object;
 * the same user id when both the plan and the listing give one; and, when Pipedrive
 * reports them, the same HTTP auth user and password (a listed user or password while
 * the plan has none is a difference). The first match of each planned subscription is
 * kept; further matches (duplicates) and unmatched webhooks for the URL are to delete;
 * planned subscriptions without a match are to create.
 *
 * @param[out] out the result, free with pdw_diff_free(); NULL on failure.
 * @param plan the plan; @param existing the listed webhooks (NULL when @p n is 0).
 * @param n number of listed webhooks.
 * @param err optional detail.
 * @return 0; ::PDW_ELIMIT when after the sync the plan's user would have more than
 *   ::PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER webhooks (counted over listed webhooks with the plan's user id;
 *   without a plan user id, over those for the plan's URL only: Pipedrive's own refusal
 *   remains the last word); ::PDW_EINVAL (NULL argument, or an entry without id, action,
 *   object or URL); ::PDW_ENOMEM.
 * @par Thread safety: any thread; the plan is only read.
 */
PDW_EXTERN int pdw_plan_diff(pdw_diff **out, const pdw_plan *plan,
                             const pdw_subscription *existing, size_t n, pdw_error *err);

/** @brief Free a diff. @param diff the diff, or NULL. */
PDW_EXTERN void pdw_diff_free(pdw_diff *diff);

/** @brief Number of planned subscriptions to create. @param diff the diff. */
PDW_EXTERN size_t pdw_diff_create_count(const pdw_diff *diff);
/**
 * @brief The i-th subscription to create, as an index into the plan.
 * @param diff the diff; @param i below pdw_diff_create_count().
 * @return the plan index, or (size_t)-1 when @p i is out of range.
 */
PDW_EXTERN size_t pdw_diff_create(const pdw_diff *diff, size_t i);

/** @brief Number of listed webhooks to delete. @param diff the diff. */
PDW_EXTERN size_t pdw_diff_delete_count(const pdw_diff *diff);
/**
 * @brief The i-th webhook to delete, as an index into the @c existing array.
 * @param diff the diff; @param i below pdw_diff_delete_count().
 * @return the index, or (size_t)-1 when @p i is out of range.
 */
PDW_EXTERN size_t pdw_diff_delete(const pdw_diff *diff, size_t i);

/** @brief Number of listed webhooks kept (already as planned). @param diff the diff. */
PDW_EXTERN size_t pdw_diff_keep_count(const pdw_diff *diff);
/**
 * @brief The i-th kept webhook, as an index into the @c existing array.
 * @param diff the diff; @param i below pdw_diff_keep_count().
 * @return the index, or (size_t)-1 when @p i is out of range.
 */
PDW_EXTERN size_t pdw_diff_keep(const pdw_diff *diff, size_t i);
/**
 * @brief Which planned subscription the i-th kept webhook stands for.
 * @param diff the diff; @param i below pdw_diff_keep_count().
 * @return the plan index, or (size_t)-1 when @p i is out of range.
 */
PDW_EXTERN size_t pdw_diff_keep_plan_index(const pdw_diff *diff, size_t i);

#ifdef __cplusplus
}
#endif
#endif
