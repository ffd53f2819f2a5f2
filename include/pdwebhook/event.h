/**
 * @file pdwebhook/event.h
 * @brief One Pipedrive webhook event, v1 or v2, in one vocabulary.
 *
 * An event is what a delivery's body says, normalised:
 *
 * | canonical action | v1 delivers            | v2 delivers |
 * |------------------|------------------------|-------------|
 * | `create`         | `added`                | `create`    |
 * | `change`         | `updated`, `merged`    | `change`    |
 * | `delete`         | `deleted`              | `delete`    |
 *
 * The object (`deal`, `person`, `deal_product`, ...) is kept as delivered; the list is open.
 * Every accessor is a real exported function. Strings returned are borrowed from the event
 * and live as long as it does; NULL means "absent in this delivery".
 *
 * Parsing validates the whole body (RFC 8259, UTF-8, duplicate keys, depth) and reads the
 * routing fields without building a DOM. pdw_event_json() builds the jansson DOM the first
 * time it is asked for.
 *
 * @par Thread safety
 * Different events may be used from different threads. One event must not be used from
 * two threads at once (pdw_event_json() and the changed-field accessors fill caches).
 */
#ifndef PDWEBHOOK_EVENT_H
#define PDWEBHOOK_EVENT_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Opaque event. */
typedef struct pdw_event pdw_event;

/** @brief jansson's value type (from <jansson.h>), declared here so this header stands alone. */
typedef struct json_t json_t;

/** Longest delivery key including its NUL; see pdw_event_delivery_key(). */
#define PDW_DELIVERY_KEY_MAX 320
/** Longest id (entity, event, webhook, company, user, merge ids) accepted, without NUL. */
#define PDW_ID_MAX 64
/** Longest object name accepted, without NUL. */
#define PDW_NAME_MAX 48
/** Default maximum JSON nesting depth (jansson's own limit is 2048). */
#define PDW_DEFAULT_MAX_DEPTH 512

/** @brief Options for pdw_event_parse(). Initialise with ::PDW_PARSE_OPTIONS_INIT. */
typedef struct pdw_parse_options {
    unsigned version;                 /**< ::PDW_PARSE_OPTIONS_VERSION */
    const pdw_allocator *allocator;   /**< NULL: malloc/realloc/free; copied */
    unsigned max_depth;               /**< 0: ::PDW_DEFAULT_MAX_DEPTH */
} pdw_parse_options;

/** Version of ::pdw_parse_options this header describes. */
#define PDW_PARSE_OPTIONS_VERSION 1
/** Initialiser for ::pdw_parse_options. */
#define PDW_PARSE_OPTIONS_INIT PDW_STRUCT_INIT(pdw_parse_options, PDW_PARSE_OPTIONS_VERSION)

/**
 * @brief Initialise parse options to the defaults (for FFI, where the macro is out of reach).
 * @param[out] opts the struct to fill.
 * @param version ::PDW_PARSE_OPTIONS_VERSION.
 * @return 0, or ::PDW_EINVAL / ::PDW_EVERSIONSTRUCT.
 */
PDW_EXTERN int pdw_parse_options_init(pdw_parse_options *opts, unsigned version);

/**
 * @brief Parse one webhook body into a new event.
 *
 * The body is copied; the caller keeps ownership of @p body.
 * @param[out] out the new event, to be released with pdw_event_free(); NULL on failure.
 * @param body the bytes (no NUL needed); @param len their number.
 * @param opts options, or NULL for the defaults.
 * @param err optional error detail (code, byte offset of a JSON error, message).
 * @return 0, or a negative code: ::PDW_EJSON, ::PDW_EUTF8, ::PDW_EDEPTH, ::PDW_EDUPKEY,
 *   ::PDW_ENOTOBJECT, ::PDW_ENOMETA, ::PDW_EVERSION, ::PDW_EACTION, ::PDW_EOBJECT,
 *   ::PDW_EFIELD, ::PDW_ENOMEM, ::PDW_EINVAL.
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_event_parse(pdw_event **out, const char *body, size_t len,
                               const pdw_parse_options *opts, pdw_error *err);

/** @brief Free an event made by pdw_event_parse(). @param ev the event or NULL. */
PDW_EXTERN void pdw_event_free(pdw_event *ev);

/** @brief Payload version. @return 1 or 2. */
PDW_EXTERN int pdw_event_version(const pdw_event *ev);
/** @brief Canonical action: "create", "change" or "delete". Never NULL. */
PDW_EXTERN const char *pdw_event_action(const pdw_event *ev);
/** @brief The action as delivered: "added", "updated", "merged", "deleted", "create", ... Never NULL. */
PDW_EXTERN const char *pdw_event_delivered_action(const pdw_event *ev);
/** @brief The object ("deal", "person", "deal_product", ...). Never NULL. */
PDW_EXTERN const char *pdw_event_object(const pdw_event *ev);
/** @brief Canonical event name, "change.deal". Never NULL. */
PDW_EXTERN const char *pdw_event_name(const pdw_event *ev);
/** @brief The event name as delivered, "updated.deal". Never NULL. */
PDW_EXTERN const char *pdw_event_delivered_name(const pdw_event *ev);
/** @brief Id of the changed entity (v1 `meta.id`, v2 `meta.entity_id`) as a string, or NULL. */
PDW_EXTERN const char *pdw_event_entity_id(const pdw_event *ev);
/** @brief v2 event id (`meta.id`); NULL for v1, which has none. */
PDW_EXTERN const char *pdw_event_event_id(const pdw_event *ev);
/** @brief `meta.webhook_id` as a string, or NULL. */
PDW_EXTERN const char *pdw_event_webhook_id(const pdw_event *ev);
/** @brief `meta.company_id` as a string, or NULL. */
PDW_EXTERN const char *pdw_event_company_id(const pdw_event *ev);
/** @brief `meta.user_id` (who made the change) as a string, or NULL. */
PDW_EXTERN const char *pdw_event_user_id(const pdw_event *ev);
/** @brief `meta.correlation_id` (v2), or NULL. */
PDW_EXTERN const char *pdw_event_correlation_id(const pdw_event *ev);
/** @brief `meta.change_source` ("app", "api", ...), or NULL. */
PDW_EXTERN const char *pdw_event_change_source(const pdw_event *ev);
/**
 * @brief Delivery attempt, 1-based for both versions (v1 `retry` + 1, v2 `meta.attempt`).
 * @return 1 when the body does not say.
 */
PDW_EXTERN unsigned pdw_event_attempt(const pdw_event *ev);
/**
 * @brief When the change happened, in milliseconds since the Unix epoch (UTC).
 *
 * v1: `meta.timestamp_micro`, else `timestamp_milli`, else `timestamp` (seconds).
 * v2: `meta.timestamp` as RFC 3339, as "YYYY-MM-DD HH:MM:SS" (UTC), or as an integer
 * (or a string of digits): below 10^11 seconds, below 10^14 milliseconds, else microseconds.
 * @return the time, or -1 when the body has none that parses.
 */
PDW_EXTERN int64_t pdw_event_timestamp_ms(const pdw_event *ev);
/** @brief 1 when the change was part of a bulk edit (v1 `is_bulk_update`, v2 `is_bulk_edit`). */
PDW_EXTERN int pdw_event_is_bulk(const pdw_event *ev);
/**
 * @brief 1 for a merge: a v1 `merged` delivery, or a v2 `change` carrying `merged_from_id`.
 * These are the events the `merged.X` pattern matches.
 */
PDW_EXTERN int pdw_event_is_merge(const pdw_event *ev);
/**
 * @brief The id merged away: v2 `meta.merged_from_id`, v1 `current.merge_what_id`. Or NULL.
 */
PDW_EXTERN const char *pdw_event_merged_from_id(const pdw_event *ev);
/**
 * @brief The surviving id: v2 `meta.merged_to_id` (on the delete of a merge), v1 `meta.id`
 * of a `merged` delivery. Or NULL.
 */
PDW_EXTERN const char *pdw_event_merged_to_id(const pdw_event *ev);
/**
 * @brief Key equal for every retry of one event and different for different events.
 *
 * v2: "2:" object ":" action ":" `meta.id` ":" `meta.timestamp` (the id alone is not unique
 * for `user` events, where it equals the user id). v1 (no event id): "1:" object ":" action
 * ":" `meta.id` ":" the most precise timestamp ":" `meta.user_id`. The webhook id is left
 * out on purpose: one event delivered by two overlapping subscriptions is handed on once.
 * @return a NUL-terminated string shorter than ::PDW_DELIVERY_KEY_MAX. Never NULL.
 */
PDW_EXTERN const char *pdw_event_delivery_key(const pdw_event *ev);
/**
 * @brief The raw body bytes. @param ev the event. @param[out] len_out its length, or NULL.
 * @return borrowed from the event (not NUL-terminated in general).
 */
PDW_EXTERN const char *pdw_event_body(const pdw_event *ev, size_t *len_out);
/**
 * @brief The body as a jansson DOM, built on the first call (lazily) and cached.
 * @return a borrowed reference (do not json_decref; json_incref to keep it past the event),
 *   or NULL on out-of-memory.
 */
PDW_EXTERN json_t *pdw_event_json(const pdw_event *ev);
/**
 * @brief The changed object's data, whatever the payload version: v2 `data`, v1 `current`
 * (of a v1 `user` event, which delivers an array, its first element).
 *
 * Read from the DOM of pdw_event_json() (built on the first call, then cached).
 * @param ev the event.
 * @return a borrowed reference into that DOM (do not json_decref; json_incref to keep it
 *   past the event), usually an object; NULL when the delivery has none (absent or JSON
 *   `null`: v1 `deleted`, v2 `delete`; an empty v1 array), or on out-of-memory.
 * @par Thread safety
 * As pdw_event_json(): one thread at a time per event.
 */
PDW_EXTERN json_t *pdw_event_data(const pdw_event *ev);
/**
 * @brief The previous values, whatever the payload version: v2 `previous` (only what
 * Pipedrive considers changed; custom fields under `custom_fields`), v1 `previous` (the
 * whole earlier object; of a v1 `user` event its first element; of a v1 `merged` event the
 * record merged away). See pdw_event_changed() for the field names that changed.
 * @param ev the event.
 * @return a borrowed reference into the DOM of pdw_event_json(), as for pdw_event_data();
 *   NULL when the delivery has none (absent or `null`: creates), or on out-of-memory.
 * @par Thread safety
 * As pdw_event_json().
 */
PDW_EXTERN json_t *pdw_event_previous(const pdw_event *ev);
/**
 * @brief Number of changed fields (computed on first use, then cached).
 *
 * v1 (`updated`): the top-level keys that `current` and `previous` (or `current[0]` and
 * `previous[0]` for users) both carry and whose values are not the same JSON; a key on one
 * side only is not a change. A custom field `<40-hex hash>` and its companion keys
 * (`<hash>_currency`, `<hash>_until`, address parts such as `<hash>_postal_code`: any
 * `<hash>_<a-z0-9_>`) are one field, "custom_fields.<hash>", listed once. A `merged`
 * delivery has none (its `previous` is the record merged away).
 * v2 (`change`): the keys of `previous` (custom fields as "custom_fields.<hash>") minus
 * those whose value is the same JSON in `data`. v2 may leave out fields that did change
 * (`update_time` beside `stage_id`): see docs/EVENTS.md.
 * "The same JSON": objects whatever their member order, strings decoded, numbers by their
 * text. create and delete events have none.
 * @return the count; 0 also on out-of-memory (see pdw_event_changed()).
 */
PDW_EXTERN size_t pdw_event_changed_count(const pdw_event *ev);
/** @brief The i-th changed field name, or NULL when i is out of range. Borrowed. */
PDW_EXTERN const char *pdw_event_changed_field(const pdw_event *ev, size_t i);
/**
 * @brief Did field @p field change? (`stage_id`, `custom_fields.<hash>`, ...)
 * @param ev the event.
 * @param field NUL-terminated field name.
 * @return 1 yes, 0 no, ::PDW_ENOMEM when the list could not be built.
 */
PDW_EXTERN int pdw_event_changed(const pdw_event *ev, const char *field);

/**
 * @brief When the change happened, to the microsecond when the body says so.
 *
 * `meta.timestamp_micro` when present (v1 since about 2017; v2 if Pipedrive sends it),
 * else pdw_event_timestamp_ms() times 1000 (v1 `timestamp_milli` or `timestamp`, v2
 * `meta.timestamp`). For ordering the changes of one entity (pdwebhook/recency.h).
 * @return microseconds since the Unix epoch (UTC), or -1 when the body has no time.
 */
PDW_EXTERN int64_t pdw_event_timestamp_us(const pdw_event *ev);

/**
 * @brief Key of the change itself, equal in its v1 and its v2 delivery.
 *
 * During a v1 → v2 migration Pipedrive runs both versions: one change arrives twice, with
 * different delivery keys ("1:..." and "2:..."). This key names the change, not the
 * delivery: "c:" object ":" what ":" entity id ":" time in ms ":" user id, where what is
 * the canonical action (`create`, `change`, `delete`) or `merge` (a v1 `merged` delivery, a
 * v2 `change` with `merged_from_id`), the time is pdw_event_timestamp_ms() and the user
 * `meta.user_id` (empty when absent).
 *
 * Equal for retries of one delivery, and for the two versions of one change as far as
 * Pipedrive stamps both with the same millisecond (v1 `timestamp_micro` / 1000 and v2
 * `meta.timestamp`); if they ever differ, the keys differ and the change is handed on
 * twice (never lost). Two different changes of one entity by one user within the same
 * millisecond share a key; use it to drop the second version's copy, not instead of
 * pdw_event_delivery_key().
 * @return a NUL-terminated string shorter than ::PDW_DELIVERY_KEY_MAX, borrowed from the
 *   event (built on first use, like the changed fields); NULL when the event has no entity
 *   id or no time.
 */
PDW_EXTERN const char *pdw_event_change_key(const pdw_event *ev);

#ifdef __cplusplus
}
#endif
#endif
