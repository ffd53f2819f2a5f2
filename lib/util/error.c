/* The error table: names, messages, HTTP statuses and response bodies, from one X-macro.
 * Hidden here (each library has its copy); the core library exports it (core/common.c). */
#include <stdio.h>
#include <string.h>

#include "util/util.h"

typedef struct err_row {
    int code;
    int status;
    const char *name;
    const char *message;
    const char *body;
} err_row;

static const err_row rows[] = {
#define PDW__XX(name, value, status, msg)                                                     \
    { value, status, "PDW_" #name, msg,                                                       \
      (value) == 0 ? "{\"ok\":true}" : "{\"ok\":false,\"error\":\"PDW_" #name "\"}" },
    PDW_ERRNO_MAP(PDW__XX)
#undef PDW__XX
};

static const err_row *find(int code)
{
    /* The table is dense: code 0, -1, -2, ... in order. */
    if (code > 0 || code < PDW__ERRNO_MIN)
        return NULL;
    const err_row *r = &rows[-code];
    return r->code == code ? r : NULL;
}

const char *pdw__err_message(int code)
{
    const err_row *r = find(code);
    return r ? r->message : "unknown error";
}

const char *pdw__err_name(int code)
{
    const err_row *r = find(code);
    return r ? r->name : "PDW_EUNKNOWN";
}

int pdw__err_status(int code)
{
    const err_row *r = find(code);
    return r ? r->status : 500;
}

const char *pdw__error_body(int code, size_t *len)
{
    const err_row *r = find(code);
    const char *b = r ? r->body : "{\"ok\":false,\"error\":\"PDW_EUNKNOWN\"}";
    *len = strlen(b);
    return b;
}

void pdw__error_reset(pdw_error *err)
{
    if (err) {
        err->code = PDW_OK;
        err->offset = -1;
        err->message[0] = '\0';
    }
}

int pdw__error_set(pdw_error *err, int code, long long offset, const char *fmt, ...)
{
    if (!err || err->code != PDW_OK)
        return code;
    err->code = code;
    err->offset = offset;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->message, sizeof err->message, "%s", pdw__err_message(code));
    }
    return code;
}
