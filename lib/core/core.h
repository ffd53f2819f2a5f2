/* The core layer (lib/core): declarations shared by its modules. Not installed.
 * Below it: lib/json (the scanner and DOM) and lib/util. */
#ifndef PDW_CORE_H
#define PDW_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "json/scan.h"
#include "pdwebhook/pdwebhook.h" /* the core's own public API */
#include "util/util.h"

/* ---- event.c ---------------------------------------------------------------------- */
struct pdw_event {
    pdw_allocator alloc;
    const char *body; /* borrowed, or owned when owns_body */
    size_t body_len;
    int owns_body;
    pdw__scan scan;
    int version;      /* 1 or 2 */
    int action;       /* PDW__ACT_* */
    int merge;
    int bulk;
    unsigned attempt;
    long long timestamp_ms;
    char delivered_action[16];
    char object[PDW_NAME_MAX + 1];
    char name[2 * PDW_NAME_MAX + 2];
    char delivered_name[2 * PDW_NAME_MAX + 2];
    /* ids: NUL-terminated; the accessors return NULL when has_* is 0 */
    char entity_id[PDW_ID_MAX + 1], event_id[PDW_ID_MAX + 1], webhook_id[PDW_ID_MAX + 1];
    char company_id[PDW_ID_MAX + 1], user_id[PDW_ID_MAX + 1], correlation_id[PDW_ID_MAX + 1];
    char change_source[PDW_ID_MAX + 1], merged_from_id[PDW_ID_MAX + 1];
    char merged_to_id[PDW_ID_MAX + 1];
    unsigned char has_entity_id, has_event_id, has_webhook_id, has_company_id, has_user_id;
    unsigned char has_correlation_id, has_change_source, has_merged_from_id, has_merged_to_id;
    char key[PDW_DELIVERY_KEY_MAX];
    /* lazy caches */
    json_t *dom;
    int changed_state; /* 0 not built, 1 built, <0 failed */
    char **changed;
    size_t changed_count;
    /* order and identity of the change (recency.c) */
    long long timestamp_us;   /* -1 when none */
    long long timestamp_unit; /* its precision in µs: 1, 1000 or 1000000 */
    int change_key_state;     /* 0 not built, 1 built, -1 none */
    char change_key[PDW_DELIVERY_KEY_MAX];
};

/* Parse body (borrowed: must outlive the event) into a caller-provided event.
 * a may be NULL. Release with pdw__event_fini(). */
int pdw__event_init(pdw_event *ev, const char *body, size_t len, unsigned max_depth,
                    const pdw_allocator *a, pdw_error *err);
void pdw__event_fini(pdw_event *ev);
/* "YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM]" or "YYYY-MM-DD HH:MM:SS" (UTC) in ms since the
 * epoch, or -1. */
long long pdw__parse_datetime(const char *s, size_t n);

/* ---- changes.c -------------------------------------------------------------------- */
/* The changed-field names of a change event (see event.h, pdw_event_changed_count()):
 * a new array of new strings through ev->alloc, both NULL / 0 when nothing changed.
 * 0 or PDW_ENOMEM (nothing left allocated). */
int pdw__changes_build(const pdw_event *ev, char ***items_out, size_t *count_out);

/* ---- auth.c ----------------------------------------------------------------------- */
/* Strict RFC 4648 base64 decode (standard alphabet, '=' padding required, no white space,
 * non-zero trailing bits rejected). out must hold in_len / 4 * 3 bytes.
 * Returns the decoded length, or -1 when the input is not canonical base64. */
long pdw__base64_decode(const char *in, size_t in_len, unsigned char *out);
/* Constant-time equality of a (attacker's) and s (secret): time depends only on the two
 * lengths, never on where they differ. 1 equal, 0 not. */
int pdw__ct_equal(const void *a, size_t a_len, const void *s, size_t s_len);

typedef struct pdw__auth pdw__auth; /* credentials + token, owned by the receiver */
/* Copies credentials/token (checked: non-empty, user without ':', no control characters).
 * Returns 0, PDW_EINVAL or PDW_ENOMEM. */
int pdw__auth_new(pdw__auth **out, const pdw_credential *creds, size_t n,
                  const char *token, const char *token_name, const pdw_allocator *a,
                  pdw_error *err);
void pdw__auth_free(pdw__auth *auth); /* wipes the secrets */
/* Does the request authenticate? authorization = the value of the one Authorization
 * header (NULL when there is none). query = the query string without '?' (may be NULL).
 * Checks every configured pair without early exit. Returns 0 when authenticated, else
 * PDW_EAUTHMISSING (no header / no token), PDW_EAUTHMALFORMED (not Basic, bad base64, no
 * colon) or PDW_EAUTHWRONG. */
int pdw__auth_check(const pdw__auth *auth, const char *authorization, size_t auth_len,
                    const char *query, size_t query_len);
/* 1 when Basic credentials are configured (so 401 answers carry WWW-Authenticate). */
int pdw__auth_has_basic(const pdw__auth *auth);

#endif
