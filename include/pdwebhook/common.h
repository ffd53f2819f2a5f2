/**
 * @file pdwebhook/common.h
 * @brief Export macro, allocator hook, pdw_free() and run-time version.
 *
 * Everything in pdwebhook is reentrant: there is no global mutable state. Objects are
 * opaque handles created with `pdw_<object>_new()` and released with `pdw_<object>_free()`
 * (which accept NULL). Inputs are `(pointer, length)` spans that need no NUL terminator.
 */
#ifndef PDWEBHOOK_COMMON_H
#define PDWEBHOOK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "pdwebhook/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @cond INTERNAL */
#if defined(_WIN32) && defined(PDW_SHARED_BUILD)
#define PDW_EXTERN __declspec(dllexport)
#elif defined(_WIN32) && defined(PDW_SHARED)
#define PDW_EXTERN __declspec(dllimport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define PDW_EXTERN __attribute__((visibility("default")))
#else
#define PDW_EXTERN
#endif
/** @endcond */

/**
 * @brief The body of every `PDW_X_INIT` initialiser: a struct of type @p T whose
 * `version` is @p V and every other member zero (which means "the default" in every
 * options struct), so that a new member never changes an initialiser or an FFI mirror.
 *
 * In C a designated initializer, `{ .version = V }`; in C++ (which has designated
 * initializers only from C++20, and where g++ warns about the members an aggregate
 * initializer leaves out) a value-initialised object with its version set. Either way
 * `-Wall -Wextra` stays quiet. Use the `PDW_X_INIT` macros, not this one.
 */
#ifdef __cplusplus
#define PDW_STRUCT_INIT(T, V) ([]() { T pdw_s_ = T(); pdw_s_.version = (V); return pdw_s_; }())
#else
#define PDW_STRUCT_INIT(T, V) { .version = (V) }
#endif

/**
 * @brief Memory functions the library uses instead of malloc/realloc/free.
 *
 * Pass one in an options struct to make an object (and everything it allocates) use it.
 * The struct is copied; @c user is handed back to every call. All three functions must be
 * set. They may be called from any thread that uses the object, so they must be as
 * thread-safe as the object's use. A function returning NULL makes the operation fail
 * with ::PDW_ENOMEM and leaves the object usable.
 *
 * pdwebhook never touches jansson's global allocator (json_set_alloc_funcs): the DOM
 * returned by pdw_event_json() is allocated by jansson with whatever the host set there.
 */
typedef struct pdw_allocator {
    /** Like malloc(3). */
    void *(*malloc)(size_t size, void *user);
    /** Like realloc(3). */
    void *(*realloc)(void *ptr, size_t size, void *user);
    /** Like free(3); called with NULL never. */
    void (*free)(void *ptr, void *user);
    /** Handed back to each function. */
    void *user;
} pdw_allocator;

/**
 * @brief Free a buffer that pdwebhook handed to the caller (documented as "free with
 * pdw_free()").
 *
 * Such buffers are allocated with the system allocator, so that callers over FFI never
 * need to know which allocator an object used.
 * @param ptr the buffer, or NULL (nothing happens).
 * @par Thread safety: any thread.
 */
PDW_EXTERN void pdw_free(void *ptr);

/**
 * @brief The library's version at run time, "MAJOR.MINOR.PATCH".
 * @return a static string, never NULL; compare with ::PDW_VERSION_STRING.
 * @par Thread safety: any thread.
 */
PDW_EXTERN const char *pdw_version(void);

/**
 * @brief The library's version at run time as ::PDW_VERSION_NUMBER (0xMMmmpp).
 * @return the number.
 */
PDW_EXTERN unsigned pdw_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
