/* Time, in one place: milliseconds on the monotonic and the wall clock, sleeping, and the
 * clock of timed condition waits. */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h> /* _POSIX_MONOTONIC_CLOCK */

#include "util/util.h"

struct timespec pdw__clock_now(clockid_t id)
{
    struct timespec t = { 0, 0 };
    if (clock_gettime(id, &t) == 0 || clock_gettime(CLOCK_REALTIME, &t) == 0)
        return t;
    t.tv_sec = time(NULL);
    t.tv_nsec = 0;
    return t;
}

uint64_t pdw__mono_ms(void)
{
    struct timespec t = pdw__clock_now(CLOCK_MONOTONIC);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

int64_t pdw__wall_ms(void)
{
    struct timespec t = pdw__clock_now(CLOCK_REALTIME);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void pdw__sleep_ms(uint64_t ms)
{
    struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* Timed waits run on the monotonic clock where the system lets a condition variable use
 * it (pthread_condattr_setclock, POSIX): a wall clock set back by NTP or by hand would
 * otherwise stretch a 2 ms wait by as much as it was set back, and stall a worker or a
 * reconnect loop. Elsewhere both fall back to the wall clock, consistently. */
#if defined(_POSIX_MONOTONIC_CLOCK) && _POSIX_MONOTONIC_CLOCK >= 0 && !defined(__APPLE__)
#define PDW__COND_CLOCK CLOCK_MONOTONIC
#else
#define PDW__COND_CLOCK CLOCK_REALTIME
#endif

int pdw__cond_init(pthread_cond_t *c)
{
#if defined(_POSIX_MONOTONIC_CLOCK) && _POSIX_MONOTONIC_CLOCK >= 0 && !defined(__APPLE__)
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, PDW__COND_CLOCK);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
#else
    return pthread_cond_init(c, NULL);
#endif
}

struct timespec pdw__deadline_in_us(uint64_t us)
{
    struct timespec t = pdw__clock_now(PDW__COND_CLOCK); /* pdw__cond_init()'s clock */
    t.tv_sec += (time_t)(us / 1000000u);
    t.tv_nsec += (long)(us % 1000000u) * 1000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

struct timespec pdw__deadline_in(uint64_t ms)
{
    return pdw__deadline_in_us(ms > UINT64_MAX / 1000u ? UINT64_MAX / 1000u * 1000u : ms * 1000u);
}

int pdw__cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms)
{
    struct timespec t = pdw__deadline_in(ms);
    return pthread_cond_timedwait(c, m, &t);
}
