/* fuzz_event: event parsing, differential against jansson.
 *
 * The whole input is a body. Properties:
 *  - the scanner's verdict equals json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)'s
 *    (the contract of lib/json/scan.h) on every input without a NUL byte: accepted with an
 *    object top level <=> scan returns 0, accepted with another top level <=>
 *    PDW_ENOTOBJECT; an input with a NUL byte is always refused (jansson drops a NUL
 *    after a number or literal; the scanner does not: lib/json/scan.c, after_token);
 *  - a failing scan or parse fills pdw_error with the same code and an offset in range;
 *  - a parsed event's accessors all work, its DOM equals jansson's, and its changed-field
 *    list answers pdw_event_changed() consistently. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "core/core.h"

#define JFLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

static void check_str(const char *s, size_t max)
{
    if (s)
        FUZZ_CHECK(strnlen(s, max + 1) <= max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    json_error_t je;
    json_t *j = json_loadb(body, size, JFLAGS, &je);

    pdw__scan sc;
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw__scan_body(&sc, body, size, 2048, NULL, &err);
    FUZZ_CHECK(rc == err.code);
    if (rc) {
        FUZZ_CHECK(err.offset >= 0 && (unsigned long long)err.offset <= size);
        FUZZ_CHECK(err.message[0] != '\0');
    }
    if (j && memchr(body, '\0', size) != NULL) {
        FUZZ_CHECK(rc == PDW_EJSON);
        json_decref(j);
        j = NULL;
    } else if (j) {
        FUZZ_CHECK(json_is_object(j) ? rc == 0 : rc == PDW_ENOTOBJECT);
    } else {
        FUZZ_CHECK(rc == PDW_EJSON || rc == PDW_EUTF8 || rc == PDW_EDEPTH ||
                   rc == PDW_EDUPKEY);
    }

    pdw_event *ev = NULL;
    pdw_error_clear(&err);
    rc = pdw_event_parse(&ev, body, size, NULL, &err);
    FUZZ_CHECK(rc == err.code);
    FUZZ_CHECK(rc <= 0 && rc >= PDW__ERRNO_MIN);
    if (rc != 0) {
        FUZZ_CHECK(ev == NULL);
    } else {
        FUZZ_CHECK(ev != NULL && j != NULL && json_is_object(j));
        int v = pdw_event_version(ev);
        FUZZ_CHECK(v == 1 || v == 2);
        const char *a = pdw_event_action(ev);
        FUZZ_CHECK(!strcmp(a, "create") || !strcmp(a, "change") || !strcmp(a, "delete"));
        FUZZ_CHECK(pdw__object_valid(pdw_event_object(ev), strlen(pdw_event_object(ev))));
        check_str(pdw_event_name(ev), 2 * PDW_NAME_MAX + 1);
        check_str(pdw_event_delivered_name(ev), 2 * PDW_NAME_MAX + 1);
        check_str(pdw_event_delivered_action(ev), 15);
        check_str(pdw_event_entity_id(ev), PDW_ID_MAX);
        check_str(pdw_event_event_id(ev), PDW_ID_MAX);
        check_str(pdw_event_webhook_id(ev), PDW_ID_MAX);
        check_str(pdw_event_company_id(ev), PDW_ID_MAX);
        check_str(pdw_event_user_id(ev), PDW_ID_MAX);
        check_str(pdw_event_correlation_id(ev), PDW_ID_MAX);
        check_str(pdw_event_change_source(ev), PDW_ID_MAX);
        check_str(pdw_event_merged_from_id(ev), PDW_ID_MAX);
        check_str(pdw_event_merged_to_id(ev), PDW_ID_MAX);
        check_str(pdw_event_delivery_key(ev), PDW_DELIVERY_KEY_MAX - 1);
        FUZZ_CHECK(pdw_event_attempt(ev) >= 1);
        (void)pdw_event_timestamp_ms(ev);
        FUZZ_CHECK(pdw_event_is_bulk(ev) == 0 || pdw_event_is_bulk(ev) == 1);
        FUZZ_CHECK(pdw_event_is_merge(ev) == 0 || pdw_event_is_merge(ev) == 1);
        size_t blen = 0;
        const char *b = pdw_event_body(ev, &blen);
        FUZZ_CHECK(blen == size && (size == 0 || memcmp(b, body, size) == 0));
        size_t n = pdw_event_changed_count(ev);
        for (size_t i = 0; i < n; i++) {
            const char *f = pdw_event_changed_field(ev, i);
            FUZZ_CHECK(f != NULL);
            FUZZ_CHECK(pdw_event_changed(ev, f) == 1);
        }
        FUZZ_CHECK(pdw_event_changed_field(ev, n) == NULL);
        for (size_t i = 0; i < n; i++) /* folded companion keys are listed once */
            for (size_t k = i + 1; k < n; k++)
                FUZZ_CHECK(strcmp(pdw_event_changed_field(ev, i),
                                  pdw_event_changed_field(ev, k)) != 0);
        FUZZ_CHECK(pdw_event_timestamp_us(ev) >= -1);
        const char *ck = pdw_event_change_key(ev);
        FUZZ_CHECK(ck == NULL || (strncmp(ck, "c:", 2) == 0 &&
                                  strlen(ck) < PDW_DELIVERY_KEY_MAX));
        FUZZ_CHECK((ck == NULL) == (pdw_event_entity_id(ev) == NULL ||
                                    pdw_event_timestamp_ms(ev) < 0));
        /* the tracker: a second check of one event is never newer or stale */
        pdw_recency_options ro = PDW_RECENCY_OPTIONS_INIT;
        ro.capacity = 8;
        pdw_recency *rec = NULL;
        if (pdw_recency_new(&rec, &ro, NULL) == 0) {
            int first = pdw_recency_check(rec, ev), again = pdw_recency_check(rec, ev);
            FUZZ_CHECK(first == PDW_RECENCY_NEWER || first == PDW_RECENCY_UNKNOWN);
            FUZZ_CHECK(again == (first == PDW_RECENCY_NEWER ? PDW_RECENCY_SAME : first));
            pdw_recency_free(rec);
        }
        json_t *dom = pdw_event_json(ev);
        FUZZ_CHECK(dom != NULL && json_equal(dom, j));
        pdw_event_free(ev);
    }
    json_decref(j);
    return 0;
}
