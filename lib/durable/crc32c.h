/* CRC32C (Castagnoli), as used by the spool's records. Internal; not installed. */
#ifndef PDW_CRC32C_H
#define PDW_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC32C over n bytes: start with crc = 0; pdw__crc32c(pdw__crc32c(0, a, na),
 * b, nb) equals the CRC of a followed by b. Uses the SSE4.2 crc32 instruction when the CPU
 * has it, else slicing-by-8 tables. Any thread. */
uint32_t pdw__crc32c(uint32_t crc, const void *data, size_t n);
/* The portable table-driven version (for tests that compare both paths). */
uint32_t pdw__crc32c_sw(uint32_t crc, const void *data, size_t n);

#endif
