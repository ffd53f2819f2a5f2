/**
 * @file pdwebhook/error.h
 * @brief Error and reason codes, their names, messages and HTTP statuses.
 *
 * Every function that can fail returns an `int`: 0 (::PDW_OK) or a negative `PDW_E*`
 * code. The same codes are the *reason* of a request verdict (see pdwebhook/receiver.h),
 * so one table gives the code, its name, its message and the HTTP status a receiver sends
 * for it by default.
 *
 * The table is append-only: a code's value never changes and is never reused.
 */
#ifndef PDWEBHOOK_ERROR_H
#define PDWEBHOOK_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief The error table: XX(NAME, value, default HTTP status, message).
 *
 * Expand it with your own XX to build switch statements or bindings. Append only.
 */
#define PDW_ERRNO_MAP(XX)                                                                    \
    XX(OK, 0, 200, "accepted")                                                               \
    XX(ENOMEM, -1, 500, "out of memory")                                                     \
    XX(EINVAL, -2, 500, "invalid argument")                                                  \
    XX(EMETHOD, -3, 405, "method not allowed: Pipedrive delivers with POST")                 \
    XX(EMEDIATYPE, -4, 415, "unsupported media type: expected application/json")            \
    XX(ETOOLARGE, -5, 413, "body larger than the configured limit")                          \
    XX(ELENGTH, -6, 400, "body length does not match Content-Length")                        \
    XX(EAUTHMISSING, -7, 401, "credentials missing")                                         \
    XX(EAUTHMALFORMED, -8, 401, "malformed Authorization header")                            \
    XX(EAUTHWRONG, -9, 401, "wrong credentials")                                             \
    XX(EJSON, -10, 400, "body is not valid JSON")                                            \
    XX(EUTF8, -11, 400, "body is not valid UTF-8")                                           \
    XX(EDEPTH, -12, 400, "JSON nested too deeply")                                           \
    XX(EDUPKEY, -13, 400, "duplicate key in a JSON object")                                  \
    XX(ENOTOBJECT, -14, 400, "top level of the body is not a JSON object")                   \
    XX(ENOMETA, -15, 400, "missing or non-object \"meta\"")                                  \
    XX(EVERSION, -16, 400, "unknown or missing payload version")                             \
    XX(EACTION, -17, 400, "missing or unknown event action")                                 \
    XX(EOBJECT, -18, 400, "missing or invalid event object")                                 \
    XX(EFIELD, -19, 400, "a meta field has the wrong type or size")                          \
    XX(EDUPLICATE, -20, 200, "duplicate of an accepted delivery")                            \
    XX(EHANDLER, -21, 200, "a handler failed")                                               \
    XX(ESTORE, -22, 503, "deduplication store unavailable")                                  \
    XX(EFROZEN, -23, 500, "registry frozen: handlers must be registered before dispatch")    \
    XX(EPATTERN, -24, 500, "invalid event pattern")                                          \
    XX(ENOAUTH, -25, 500, "no credentials configured and insecure_no_auth not set")          \
    XX(EVERSIONSTRUCT, -26, 500, "unsupported options struct version")                       \
    XX(ENOTFOUND, -27, 500, "not found")                                                     \
    XX(EHEADER, -28, 400, "malformed or repeated request header")                            \
    XX(ERANGE, -29, 500, "value out of range")                                               \
    XX(ENOSPC, -30, 503, "spool full: no space left or over its size limit")                 \
    XX(EIO, -31, 503, "spool input/output error")                                            \
    XX(ELOCKED, -32, 500, "spool directory is in use by another process")                    \
    XX(ELIMIT, -33, 500, "more than 40 webhooks for one Pipedrive user")                     \
    XX(EUNSUPPORTED, -34, 500, "event not available in this webhook version")              \
    XX(EREDIS, -35, 503, "Redis unreachable or refused a command")                          \
    XX(EREDISAUTH, -36, 500, "Redis refused the credentials")                                \
    XX(ENOTBUILT, -37, 500, "not built in: an optional library was missing at build time")  \
    XX(EINFLIGHT, -38, 503, "the same delivery is being accepted by another request")     \
    XX(EFORBIDDEN, -39, 403, "source address not in the allowlist")

/** @brief The codes, generated from ::PDW_ERRNO_MAP as `PDW_<NAME>`. */
typedef enum pdw_errno {
#define PDW__XX(name, value, status, msg) PDW_##name = (value),
    PDW_ERRNO_MAP(PDW__XX)
#undef PDW__XX
    PDW__ERRNO_MIN = -39 /**< @internal the lowest code; grows with the table */
} pdw_errno;

/**
 * @brief Human-readable message for a code.
 * @param code a `PDW_*` code; unknown codes give "unknown error".
 * @return a static string, never NULL. Contains no request data and no secret.
 */
PDW_EXTERN const char *pdw_strerror(int code);

/**
 * @brief The code's name, e.g. "PDW_EJSON".
 * @param code a `PDW_*` code.
 * @return a static string, never NULL ("PDW_EUNKNOWN" for unknown codes).
 */
PDW_EXTERN const char *pdw_err_name(int code);

/**
 * @brief The HTTP status a receiver answers for a code by default (the status table).
 * @param code a `PDW_*` code.
 * @return the status; 500 for unknown codes.
 */
PDW_EXTERN int pdw_err_http_status(int code);

/** Size of pdw_error::message including the NUL. */
#define PDW_ERROR_MESSAGE_MAX 160

/**
 * @brief Optional, caller-owned error detail.
 *
 * Pass a pointer to one as the last argument of a function; NULL is allowed everywhere.
 * Every function that takes one resets it at entry (code ::PDW_OK, offset -1, empty
 * message), as jansson's `json_error_t` is, so a struct reused for several calls only
 * ever describes the last one: after a call that succeeded it reads ::PDW_OK and an empty
 * message, whatever an earlier call left there. When a call fails it fills the struct
 * once, with the detail closest to the cause. No thread-local state is used. The message
 * never contains a secret (credentials are never quoted).
 *
 * Initialise one with ::PDW_ERROR_INIT (or pdw_error_clear()) when you read it without a
 * call having reset it.
 */
typedef struct pdw_error {
    int code;          /**< a `PDW_E*` code, ::PDW_OK when nothing failed */
    long long offset;  /**< byte offset in the body of a JSON error, -1 if none */
    char message[PDW_ERROR_MESSAGE_MAX]; /**< NUL-terminated detail, "" when nothing failed */
} pdw_error;

/** Initialiser for ::pdw_error: no error (::PDW_OK, offset -1, empty message). */
#define PDW_ERROR_INIT { PDW_OK, -1, "" }

/**
 * @brief Reset an error struct to "no error", as every call taking one does at entry.
 * @param err the struct, or NULL.
 * @par Thread safety: any thread.
 */
PDW_EXTERN void pdw_error_clear(pdw_error *err);

#ifdef __cplusplus
}
#endif
#endif
