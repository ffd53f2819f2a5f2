// The simdjson_limit row (see simdjson_row.h): one reused dom::parser, input already padded,
// so the row measures simdjson's validating parse and nothing else.
#include "simdjson_row.h"

#include <simdjson.h>

extern "C" void *pdw_bench_simdjson_new(void)
{
    return new (std::nothrow) simdjson::dom::parser();
}

extern "C" void pdw_bench_simdjson_free(void *parser)
{
    delete static_cast<simdjson::dom::parser *>(parser);
}

extern "C" int pdw_bench_simdjson_parse(void *parser, const char *p, size_t len)
{
    auto *ps = static_cast<simdjson::dom::parser *>(parser);
    simdjson::dom::element doc;
    // realloc_if_needed = false: the caller's buffers carry SIMDJSON_PADDING zero bytes
    auto err = ps->parse(reinterpret_cast<const uint8_t *>(p), len, false).get(doc);
    if (err)
        return 1;
    return doc.is_object() ? 0 : 1;
}
