/* Small pieces of text and arithmetic that several layers need once: hexadecimal digits,
 * bounded decimals, and the jittered exponential backoff of every retry loop. */
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

uint64_t pdw__backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned failures, uint64_t *rng)
{
    uint64_t d = base_ms;
    for (unsigned i = 1; i < failures && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    uint64_t half = d / 2;
    return half + (half ? pdw__rand64(rng) % (half + 1) : 0);
}
