/* The ground floor (lib/util): allocation, time, error detail and byte helpers shared by
 * every layer above. Not installed. Includes nothing of the library but the public base
 * headers (common.h, error.h); each library links its own copy of these objects, so no
 * pdw__ symbol is ever exported. */
#ifndef PDW_UTIL_H
#define PDW_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "pdwebhook/common.h"
#include "pdwebhook/error.h"

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

/* ---- bytes.c ---------------------------------------------------------------------- */
/* The value of a hexadecimal digit (either case), or -1. */
int pdw__hex_value(unsigned char c);
/* p[0..n) as a decimal of 1 to 18 digits (no sign, no space), or -1. */
long long pdw__decimal(const char *p, size_t n);
/* The next number of a xorshift64* generator (*s must not be 0): for jitter only. */
uint64_t pdw__rand64(uint64_t *s);
/* How a delivery is retried before it is given up (the worker's and the Redis
 * consumer's policy): attempts, and the backoff between them. */
typedef struct pdw__retry {
    unsigned max_attempts; /* tries before the dead letter */
    uint64_t base_ms, max_ms;
    uint64_t rng; /* jitter; not 0 */
} pdw__retry;
/* The policy from options where 0 means the default (8 attempts, 1 s doubling up to 60 s;
 * max below base is raised to base); seed makes the jitter differ between retriers. */
void pdw__retry_init(pdw__retry *r, unsigned max_attempts, uint64_t base_ms, uint64_t max_ms,
                     uint64_t seed);
/* The delay before attempt n+1 after n failures: base * 2^(n-1), capped at max, drawn
 * in [d/2, d] so that many retriers do not come back at once. */
uint64_t pdw__retry_delay_ms(pdw__retry *r, unsigned failures);

/* ---- clock.c ---------------------------------------------------------------------- */
/* clock_gettime(id) that never leaves the time unset: a clock the system refuses (EINVAL,
 * or EPERM under a seccomp filter) gives CLOCK_REALTIME, then time(NULL). */
struct timespec pdw__clock_now(clockid_t id);
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
/* pthread_cond_timedwait() for at most ms on such a condition; 0 or the pthread error.
 * No time type crosses it: lib/redis, compiled with hiredis's time_t, uses this one. */
int pdw__cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms);

/* The body of every pdw_*_options_init() and pdw_dedup_store_init(): the struct at s
 * (size bytes, its first member the unsigned version) zeroed and its version set when
 * version is want; PDW_EINVAL for a NULL s, PDW_EVERSIONSTRUCT for another version (s
 * untouched). */
int pdw__struct_init(void *s, size_t size, unsigned version, unsigned want);

/* ---- error.c ---------------------------------------------------------------------- */
/* Reset err to "no error" (code PDW_OK, offset -1, empty message); NULL is ignored. Every
 * public function that takes a pdw_error calls it at entry (jansson's jsonp_error_init),
 * so a reused struct never shows a stale message. */
void pdw__error_reset(pdw_error *err);
/* Record an error in err when err is not NULL and still PDW_OK (within one call the first
 * detail recorded wins: it is the closest to the cause); returns code. */
int pdw__error_set(pdw_error *err, int code, long long offset, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The table of pdwebhook/error.h (the core library exports these as pdw_strerror(),
 * pdw_err_name() and pdw_err_http_status()). */
const char *pdw__err_message(int code);
const char *pdw__err_name(int code);
int pdw__err_status(int code);
/* The default JSON response body for a code: {"ok":true} / {"ok":false,"error":"PDW_E.."} */
const char *pdw__error_body(int code, size_t *len);

/* ---- names.c ---------------------------------------------------------------------- */
enum { PDW__ACT_CREATE = 0, PDW__ACT_CHANGE = 1, PDW__ACT_DELETE = 2, PDW__ACT_COUNT = 3 };
/* Map an action as delivered or as written in a pattern ("added", "change", "merged", ...)
 * to its canonical id; *is_merged set to 1 for "merged". Returns -1 when unknown. */
int pdw__action_id(const char *s, size_t n, int *is_merged);
/* "create", "change", "delete" */
const char *pdw__action_name(int id);
/* An object name: 1..PDW_NAME_MAX (pdwebhook/event.h) bytes of [A-Za-z0-9_]. 1 valid, 0 not. */
int pdw__object_valid(const char *s, size_t n);

#endif
