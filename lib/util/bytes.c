/* Small pieces of text and arithmetic that several layers need once: hexadecimal digits,
 * bounded decimals, and the retry policy (attempts, jittered exponential backoff) of the
 * worker and the Redis consumer. */
#include "util/util.h"

int pdw__hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long long pdw__decimal(const char *p, size_t n)
{
    if (n == 0 || n > 18) /* 18 digits always fit a long long */
        return -1;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    return x;
}

uint64_t pdw__rand64(uint64_t *s)
{
    /* xorshift64*: jitter only, no need for more */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

void pdw__retry_init(pdw__retry *r, unsigned max_attempts, uint64_t base_ms, uint64_t max_ms,
                     uint64_t seed)
{
    r->max_attempts = max_attempts ? max_attempts : 8;
    r->base_ms = base_ms ? base_ms : 1000;
    r->max_ms = max_ms ? max_ms : 60000;
    if (r->max_ms < r->base_ms)
        r->max_ms = r->base_ms;
    r->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

uint64_t pdw__retry_delay_ms(pdw__retry *r, unsigned failures)
{
    uint64_t d = r->base_ms;
    for (unsigned i = 1; i < failures && d < r->max_ms; i++)
        d *= 2;
    if (d > r->max_ms)
        d = r->max_ms;
    uint64_t half = d / 2;
    return half + (half ? pdw__rand64(&r->rng) % (half + 1) : 0);
}
