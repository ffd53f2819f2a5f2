/* Internal: the jansson DOM of a body the scanner (scan.h) has already validated, built
 * without a second validation pass. Used by pdw_event_json(). */
#ifndef PDW_DOM_H
#define PDW_DOM_H

#include <stddef.h>

#include <jansson.h>

/** Deepest nesting of arrays and objects the builder follows: jansson's own
 * JSON_PARSER_MAX_DEPTH, the cap of pdw__scan_body(). */
#define PDW__DOM_MAX_DEPTH 2048u

/**
 * Build the jansson DOM of body[0..len).
 *
 * The result equals what json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
 * returns (same types, values, member order, reals bit for bit) provided that the body
 * has passed pdw__scan_body() (with any top level, and a nesting depth of at most
 * PDW__DOM_MAX_DEPTH). The builder relies on that validation for what it does not check
 * (UTF-8, duplicate keys); on any input whatsoever it reads only body[0..len), never
 * aborts, and returns either a DOM or NULL.
 *
 * @param body  the bytes; need not be NUL-terminated. NULL gives NULL.
 * @param len   their number.
 * @return a new reference (the caller owns it and releases it with json_decref()), or NULL
 *         when jansson's allocator fails or when the body is not well-formed JSON as far
 *         as the builder looks (a body that never went through the scanner). Nothing is
 *         left allocated when NULL is returned.
 *
 * Thread safety: reentrant (no global state of its own). Every allocation, including its
 * scratch space, goes through jansson's global allocator (json_set_alloc_funcs()). Reals
 * are parsed with strtod() in the calling thread's locale, the decimal point adapted as
 * jansson adapts it, so a concurrent setlocale() is as unsafe as it is for jansson.
 */
json_t *pdw__dom_build(const char *body, size_t len);

#endif
