/* The core library's exports of the ground floor: pdw_free(), the version and the error
 * table (pdwebhook/common.h, pdwebhook/error.h). The other libraries link their own hidden
 * copy of lib/util and call these through the core library. */
#include <stdlib.h>

#include "core/core.h"

void pdw_free(void *ptr)
{
    free(ptr);
}

const char *pdw_version(void)
{
    return PDW_VERSION_STRING;
}

unsigned pdw_version_number(void)
{
    return (unsigned)PDW_VERSION_NUMBER;
}

const char *pdw_strerror(int code)
{
    return pdw__err_message(code);
}

const char *pdw_err_name(int code)
{
    return pdw__err_name(code);
}

int pdw_err_http_status(int code)
{
    return pdw__err_status(code);
}

void pdw_error_clear(pdw_error *err)
{
    pdw__error_reset(err);
}
