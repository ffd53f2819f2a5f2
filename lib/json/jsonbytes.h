/* Internal: the byte-level pieces of JSON text that the validating scanner (scan.c) and the
 * DOM builder (dom.c) both read: white space, hexadecimal digits, UTF-8 encoding of a code
 * point (8-byte loads: pdw__load64() in util/util.h). Header-only (static inline), so each stays in its
 * caller's loop. */
#ifndef PDW_JSONBYTES_H
#define PDW_JSONBYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/util.h" /* pdw__load64() */

/* Nonzero for JSON white space (RFC 8259: tab, line feed, carriage return, space). */
static const unsigned char pdw__json_ws[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1,
};

/* The first byte at or after p that is not white space, or end. */
static inline const unsigned char *pdw__skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && pdw__json_ws[*p]) {
        p++;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* pretty-printed bodies: indentation comes in runs of spaces */
        while (end - p >= 8) {
            uint64_t x = pdw__load64(p) ^ 0x2020202020202020ull;
            if (x) {
                p += (unsigned)__builtin_ctzll(x) >> 3; /* skip the leading spaces */
                break;
            }
            p += 8;
        }
#endif
    }
    return p;
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int pdw__hex_val(unsigned c)
{
    if (c - '0' < 10u)
        return (int)(c - '0');
    c |= 0x20u; /* fold to lower case */
    if (c - 'a' < 6u)
        return (int)(c - 'a' + 10);
    return -1;
}

/* Write code point cp (at most U+10FFFF) as UTF-8 at o (room for 4); returns its length. */
static inline unsigned pdw__utf8_put(unsigned long cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
