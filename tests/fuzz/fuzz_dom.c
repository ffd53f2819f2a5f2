/* fuzz_dom: the DOM builder (lib/dom.c), differential against jansson.
 *
 * The whole input is a body. Properties:
 *  - the builder reads only the input and never crashes, whatever the input (ASan);
 *  - when the scanner accepts the body (any top level), jansson's
 *    json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) accepts it too, the builder
 *    gives a DOM, and the two dump to the same bytes (compact, reals with 17 digits, so
 *    member order, types, string bytes and real bits all count) and are json_equal. */
#include <jansson.h>
#include <string.h>

#include "json/dom.h"
#include "fuzz.h"
#include "core/core.h"

#define JFLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
#define DFLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    json_t *d = pdw__dom_build(body, size);
    pdw__scan sc;
    int rc = pdw__scan_body(&sc, body, size, 2048, NULL, NULL);
    if (rc == 0 || rc == PDW_ENOTOBJECT) {
        json_error_t je;
        json_t *j = json_loadb(body, size, JFLAGS, &je);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(d != NULL);
        char *dj = json_dumps(j, DFLAGS);
        char *dd = json_dumps(d, DFLAGS);
        FUZZ_CHECK(dj != NULL && dd != NULL);
        FUZZ_CHECK(strcmp(dj, dd) == 0);
        FUZZ_CHECK(json_equal(j, d));
        free(dj);
        free(dd);
        json_decref(j);
    }
    json_decref(d);
    return 0;
}
