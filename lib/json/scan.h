/* Internal: the validating JSON scanner. One pass over a body, no DOM, no allocation per
 * byte or token; validates like jansson's json_loadb(JSON_REJECT_DUPLICATES) and hands out
 * the routing fields of a Pipedrive body as spans into the body. */
#ifndef PDW_SCAN_H
#define PDW_SCAN_H

#include <stddef.h>

#include "pdwebhook/common.h"
#include "pdwebhook/error.h"

/* JSON value types; ABSENT = the member is not there. */
enum {
    PDW__J_ABSENT = 0,
    PDW__J_NULL,
    PDW__J_FALSE,
    PDW__J_TRUE,
    PDW__J_NUMBER,
    PDW__J_STRING,
    PDW__J_OBJECT,
    PDW__J_ARRAY
};

/* A value inside a validated body.
 * strings: p = first byte after the opening quote, len = bytes up to the closing quote
 *          (raw: escapes not decoded), escaped = 1 when there is a backslash in it.
 * others:  p = first byte of the value, len = its whole text ("123", "true", "{...}").
 * numbers: is_int = 1 when there is neither fraction nor exponent. */
typedef struct pdw__val {
    const char *p;
    size_t len;
    unsigned char type;
    unsigned char escaped;
    unsigned char is_int;
} pdw__val;

/* The routing fields. Top level: v, event, retry, meta, current, previous, data.
 * m_*: members of the top-level "meta" object (all ABSENT when meta is not an object). */
typedef struct pdw__scan {
    pdw__val v, event, retry, meta, current, previous, data;
    pdw__val m_v, m_version, m_action, m_object, m_entity, m_id, m_entity_id;
    pdw__val m_company_id, m_user_id, m_webhook_id, m_correlation_id, m_change_source;
    pdw__val m_timestamp, m_timestamp_micro, m_timestamp_milli, m_attempt;
    pdw__val m_is_bulk_update, m_is_bulk_edit, m_merged_from_id, m_merged_to_id;
} pdw__scan;

/* Validate body[0..len) as one JSON text and fill *out (zeroed first, and again on error).
 * Agrees with json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) on
 * accept/reject, except that a top level that is valid JSON but not an object gives
 * PDW_ENOTOBJECT, and nesting deeper than max_depth gives PDW_EDEPTH.
 * Depth is counted as jansson counts it: every value, scalars included, the top level
 * being 1 ({"a":1} has depth 2). max_depth 0 = PDW_DEFAULT_MAX_DEPTH; above 2048 (jansson's
 * own limit) it is capped at 2048.
 * Also like jansson: one NUL byte right after a number or literal is ignored
 * ({"a":1\0} is accepted; jansson's look-ahead drops it), while NUL anywhere else fails.
 * NULL out, or NULL body with len > 0: PDW_EINVAL. The per-scan hash seed spreads keys;
 * it is not a defence against hash flooding (the body limit caps that).
 * Returns 0, PDW_EJSON, PDW_EUTF8, PDW_EDEPTH, PDW_EDUPKEY, PDW_ENOTOBJECT or PDW_ENOMEM
 * (the duplicate-key set is the only allocation: once per scan, through a, grown rarely).
 * On error, err (if not NULL and still PDW_OK) gets the code, the byte offset, a message. */
int pdw__scan_body(pdw__scan *out, const char *body, size_t len, unsigned max_depth,
                   const pdw_allocator *a, pdw_error *err);

/* Iterate the members of a validated object value. */
typedef struct pdw__obj_iter {
    const char *p;
    const char *end;
} pdw__obj_iter;
void pdw__obj_iter_init(pdw__obj_iter *it, const pdw__val *obj);
/* 1 and key (a STRING val) + value filled, or 0 at the end. */
int pdw__obj_next(pdw__obj_iter *it, pdw__val *key, pdw__val *value);
/* Find member `key` (NUL-terminated, compared with the decoded key) of a validated object.
 * 1 found (*out filled), 0 not found. */
int pdw__obj_get(const pdw__val *obj, const char *key, pdw__val *out);
/* First element of a validated array: 1 found, 0 empty or not an array. */
int pdw__array_first(const pdw__val *arr, pdw__val *out);
/* Iterate the elements of a validated array value (the same iterator type). */
void pdw__arr_iter_init(pdw__obj_iter *it, const pdw__val *arr);
/* 1 and value filled, or 0 at the end. */
int pdw__arr_next(pdw__obj_iter *it, pdw__val *value);
/* Two validated values are the same JSON text, white space outside strings aside and string
 * escapes decoded (1 == 1.0 is NOT equal, member order matters). 1 equal, 0 not. */
int pdw__val_equal(const pdw__val *a, const pdw__val *b);
/* Decode a validated STRING value into buf (cap bytes incl. NUL), NUL-terminated.
 * Returns the decoded length, or -1 when it does not fit. */
long pdw__str_decode(const pdw__val *s, char *buf, size_t cap);
/* A decoded string equals the NUL-terminated `lit`: 1 yes, 0 no. */
int pdw__str_eq(const pdw__val *s, const char *lit);

#endif
