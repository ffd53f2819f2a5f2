/* An event as a JSON object with its canonical fields (inspect, serve --output/--exec). */
#include "cli.h"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *pdw_cli_event_json(const pdw_event *ev, int with_body)
{
    json_t *o = json_object();
    json_t *changed = json_array();
    if (!o || !changed) {
        json_decref(o);
        json_decref(changed);
        return NULL;
    }
    for (size_t i = 0, n = pdw_event_changed_count(ev); i < n; i++)
        json_array_append_new(changed, json_string(pdw_event_changed_field(ev, i)));
    int64_t ts = pdw_event_timestamp_ms(ev);
    int rc = 0;
    rc |= json_object_set_new(o, "ok", json_true());
    rc |= json_object_set_new(o, "version", json_integer(pdw_event_version(ev)));
    rc |= json_object_set_new(o, "event", json_string(pdw_event_name(ev)));
    rc |= json_object_set_new(o, "delivered", json_string(pdw_event_delivered_name(ev)));
    rc |= json_object_set_new(o, "action", json_string(pdw_event_action(ev)));
    rc |= json_object_set_new(o, "object", json_string(pdw_event_object(ev)));
    rc |= json_object_set_new(o, "merge", json_boolean(pdw_event_is_merge(ev)));
    rc |= json_object_set_new(o, "bulk", json_boolean(pdw_event_is_bulk(ev)));
    rc |= json_object_set_new(o, "attempt", json_integer(pdw_event_attempt(ev)));
    rc |= json_object_set_new(o, "entity_id", str_or_null(pdw_event_entity_id(ev)));
    rc |= json_object_set_new(o, "event_id", str_or_null(pdw_event_event_id(ev)));
    rc |= json_object_set_new(o, "webhook_id", str_or_null(pdw_event_webhook_id(ev)));
    rc |= json_object_set_new(o, "company_id", str_or_null(pdw_event_company_id(ev)));
    rc |= json_object_set_new(o, "user_id", str_or_null(pdw_event_user_id(ev)));
    rc |= json_object_set_new(o, "timestamp_ms", ts >= 0 ? json_integer(ts) : json_null());
    rc |= json_object_set_new(o, "delivery_key", json_string(pdw_event_delivery_key(ev)));
    rc |= json_object_set_new(o, "changed", changed);
    rc |= json_object_set_new(o, "merged_from_id", str_or_null(pdw_event_merged_from_id(ev)));
    rc |= json_object_set_new(o, "merged_to_id", str_or_null(pdw_event_merged_to_id(ev)));
    if (pdw_event_is_reconciled(ev)) /* re-read from Pipedrive's API, not delivered */
        rc |= json_object_set_new(o, "reconciled", json_true());
    if (with_body) {
        json_t *dom = pdw_event_json(ev);
        rc |= dom ? json_object_set(o, "body", dom) : -1;
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}
