/* Internal declarations shared by the library's modules. Not installed. */
#ifndef PDW_INTERNAL_H
#define PDW_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "pdwebhook/pdwebhook.h"
#include "scan.h"

/* ---- alloc.c ---------------------------------------------------------------------- */
/* Fill *dst from src (NULL = the C library's functions). EINVAL if src is incomplete. */
int pdw__alloc_set(pdw_allocator *dst, const pdw_allocator *src);
void *pdw__malloc(const pdw_allocator *a, size_t n);
void *pdw__calloc(const pdw_allocator *a, size_t n, size_t size); /* overflow-checked */
void *pdw__realloc(const pdw_allocator *a, void *p, size_t n);
void pdw__free(const pdw_allocator *a, void *p);
char *pdw__strdup(const pdw_allocator *a, const char *s);
char *pdw__strndup(const pdw_allocator *a, const char *s, size_t n);
/* Overwrite memory in a way the compiler may not drop (for secrets). */
void pdw__wipe(void *p, size_t n);

/* The 8 bytes at p as one word, in memory order (any alignment). */
static inline uint64_t pdw__load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* ---- clock.c ---------------------------------------------------------------------- */
uint64_t pdw__mono_ms(void); /* CLOCK_MONOTONIC in ms: for timeouts and backoff */
int64_t pdw__wall_ms(void);  /* CLOCK_REALTIME in ms since the epoch: for what is stored */
void pdw__sleep_ms(uint64_t ms);
/* A condition variable for timed waits: on the monotonic clock where available, so that a
 * wall clock set back cannot stretch a wait. 0 or the pthread error. */
int pdw__cond_init(pthread_cond_t *c);
/* An absolute deadline ms from now for pthread_cond_timedwait() on a condition made by
 * pdw__cond_init() (and only on those: the clocks must agree). */
struct timespec pdw__deadline_in(uint64_t ms);
struct timespec pdw__deadline_in_us(uint64_t us); /* the same in microseconds */

/* ---- deadletter.c ----------------------------------------------------------------- */
/* Append a dead letter to fd: the caller's fields in o (taken over, may be NULL = ENOMEM)
 * plus failed_at_ms, attempts, error and the body. 0, PDW_ENOMEM or PDW_EIO. */
int pdw__dead_letter_append(int fd, json_t *o, const char *body, size_t body_len,
                            unsigned attempts, const char *error);

/* ---- error.c ---------------------------------------------------------------------- */
/* Record an error in err when err is not NULL and still PDW_OK; returns code. */
int pdw__error_set(pdw_error *err, int code, long long offset, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The default JSON response body for a code: {"ok":true} / {"ok":false,"error":"PDW_E.."} */
const char *pdw__error_body(int code, size_t *len);

/* ---- names.c ---------------------------------------------------------------------- */
enum { PDW__ACT_CREATE = 0, PDW__ACT_CHANGE = 1, PDW__ACT_DELETE = 2, PDW__ACT_COUNT = 3 };
/* Map an action as delivered or as written in a pattern ("added", "change", "merged", ...)
 * to its canonical id; *is_merged set to 1 for "merged". Returns -1 when unknown. */
int pdw__action_id(const char *s, size_t n, int *is_merged);
/* "create", "change", "delete" */
const char *pdw__action_name(int id);
/* An object name: 1..PDW_NAME_MAX bytes of [A-Za-z0-9_]. 1 valid, 0 not. */
int pdw__object_valid(const char *s, size_t n);

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
};

/* Parse body (borrowed: must outlive the event) into a caller-provided event.
 * a may be NULL. Release with pdw__event_fini(). */
int pdw__event_init(pdw_event *ev, const char *body, size_t len, unsigned max_depth,
                    const pdw_allocator *a, pdw_error *err);
void pdw__event_fini(pdw_event *ev);

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
