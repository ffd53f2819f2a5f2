/* The error table: names, messages, HTTP statuses and response bodies, from one X-macro. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

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

const char *pdw_strerror(int code)
{
    const err_row *r = find(code);
    return r ? r->message : "unknown error";
}

const char *pdw_err_name(int code)
{
    const err_row *r = find(code);
    return r ? r->name : "PDW_EUNKNOWN";
}

int pdw_err_http_status(int code)
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

void pdw_error_clear(pdw_error *err)
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
        snprintf(err->message, sizeof err->message, "%s", pdw_strerror(code));
    }
    return code;
}
