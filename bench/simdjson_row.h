/* The simdjson_limit row: simdjson's validating DOM parse, behind a C interface so that
 * pdwebhook-bench stays C. Built only when libsimdjson is found (bench/CMakeLists.txt). */
#ifndef PDW_BENCH_SIMDJSON_ROW_H
#define PDW_BENCH_SIMDJSON_ROW_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void *pdw_bench_simdjson_new(void);
void pdw_bench_simdjson_free(void *parser);
/* Parse len bytes at p (followed by at least 64 readable bytes); 0 when valid. */
int pdw_bench_simdjson_parse(void *parser, const char *p, size_t len);
#ifdef __cplusplus
}
#endif
#endif
