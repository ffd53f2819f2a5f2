/**
 * @file pdwebhook/allow.h
 * @brief Source-address allowlist: which addresses may deliver (CIDR, IPv4 and IPv6).
 *
 * Pipedrive publishes the address ranges it delivers from (its "ip-ranges" list; see
 * docs/SERVING.md for the file pdwebhook ships and how to refresh it). A receiver given an
 * allowlist answers a request from any other address 403 ::PDW_EFORBIDDEN before it looks
 * at the credentials or reads the body. Basic auth stays the primary check: an allowlist
 * narrows who can try.
 *
 * Lookups cost the same whatever arrives: a binary search over the merged ranges of one
 * family (at most log2 of their number steps, no allocation). Ranges are merged as they
 * are added, so overlapping or adjacent entries cost nothing.
 */
#ifndef PDWEBHOOK_ALLOW_H
#define PDWEBHOOK_ALLOW_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief An allowlist of address ranges (opaque). */
typedef struct pdw_allowlist pdw_allowlist;

/**
 * @brief Make an empty allowlist (it allows nothing until ranges are added).
 * @param[out] out the list, to be released with pdw_allowlist_free().
 * @param err optional error detail, reset by the call.
 * @return 0, ::PDW_EINVAL or ::PDW_ENOMEM.
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_allowlist_new(pdw_allowlist **out, pdw_error *err);

/**
 * @brief Add one range: `192.0.2.0/24`, `2001:db8::/32`, or a single address (`/32` or
 * `/128` implied). Host bits set below the prefix are refused (`192.0.2.1/24`: a typo
 * more often than an intent).
 * @param l the list.
 * @param cidr the text (no NUL needed); @param len its length.
 * @param err optional error detail (the message quotes the entry), reset by the call.
 * @return 0, ::PDW_EINVAL (not a range: nothing added) or ::PDW_ENOMEM.
 * @par Thread safety: not while the list is being used by another thread.
 */
PDW_EXTERN int pdw_allowlist_add(pdw_allowlist *l, const char *cidr, size_t len,
                                 pdw_error *err);

/**
 * @brief Add every range of a text: one per line; blank lines and `#` comments (also at
 * the end of a line) skipped. All or nothing: on an error nothing of the text is added.
 * @param l the list.
 * @param text the text; @param len its length.
 * @param err optional error detail (the message gives the line number), reset by the call.
 * @return 0, ::PDW_EINVAL or ::PDW_ENOMEM.
 * @par Thread safety: not while the list is being used by another thread.
 */
PDW_EXTERN int pdw_allowlist_add_text(pdw_allowlist *l, const char *text, size_t len,
                                      pdw_error *err);

/**
 * @brief Whether an address, as text (`203.0.113.9`, `2001:db8::1`; an IPv4-mapped IPv6
 * address counts as the IPv4 address it maps), is in the list.
 * @param l the list.
 * @param addr the address (no NUL needed; no port, no brackets); @param len its length.
 * @return 1 allowed, 0 not (also for text that is not an address).
 * @par Thread safety: any number of threads at once, once the list is filled.
 */
PDW_EXTERN int pdw_allowlist_contains(const pdw_allowlist *l, const char *addr, size_t len);

/** @brief The number of ranges after merging. @param l the list. @return the count. */
PDW_EXTERN size_t pdw_allowlist_count(const pdw_allowlist *l);

/** @brief Free the list. @param l the list, or NULL. */
PDW_EXTERN void pdw_allowlist_free(pdw_allowlist *l);

#ifdef __cplusplus
}
#endif
#endif
