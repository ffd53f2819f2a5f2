/**
 * @file pdwebhook/deadletter.h
 * @brief Dead letters: the file of deliveries that were given up (libpdwebhook-durable).
 *
 * One JSON object per line, appended and `fdatasync`ed before the append returns, so a
 * delivery given up is on disk before it leaves its queue. Each line holds the caller's
 * fields (the worker: `id`, `delivery_key`, `received_ms`; the Redis consumer:
 * `stream_id`, `delivery_key`, `event`, `received_ms`, `consumer`) and `failed_at_ms`,
 * `attempts`, `error` and the `body` (as JSON; as a string if it is not JSON).
 * `pdwebhook deadletter replay` hands them on again. The file is created with mode 0600.
 */
#ifndef PDWEBHOOK_DEADLETTER_H
#define PDWEBHOOK_DEADLETTER_H

#include <jansson.h>

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief An open dead-letter file (opaque). */
typedef struct pdw_dead_letters pdw_dead_letters;

/**
 * @brief Open (create, 0600) a dead-letter file for appending.
 * @param[out] out the file, to be released with pdw_dead_letters_free(); NULL on failure.
 * @param path its path (copied).
 * @param err optional error detail (the message has the system's reason).
 * @return 0, ::PDW_EINVAL, ::PDW_ENOMEM or ::PDW_EIO (cannot open it).
 * @par Thread safety: any thread.
 */
PDW_EXTERN int pdw_dead_letters_open(pdw_dead_letters **out, const char *path,
                                     pdw_error *err);

/**
 * @brief Append one dead letter and `fdatasync` it.
 * @param dl the file.
 * @param fields a JSON object with the caller's fields, taken over (its reference is
 *   stolen, even on failure); NULL fails with ::PDW_ENOMEM (so that `json_object()` can be
 *   passed straight in).
 * @param body the delivery's body; @param body_len its length.
 * @param attempts how many times it was tried.
 * @param error the last error, as text (may be NULL).
 * @return 0, ::PDW_EINVAL, ::PDW_ENOMEM or ::PDW_EIO (the line may then be partly written).
 * @par Thread safety: any thread; lines from several threads never interleave.
 */
PDW_EXTERN int pdw_dead_letters_append(pdw_dead_letters *dl, json_t *fields,
                                       const char *body, size_t body_len, unsigned attempts,
                                       const char *error);

/** @brief Close the file. @param dl the file, or NULL. Not while another thread appends. */
PDW_EXTERN void pdw_dead_letters_free(pdw_dead_letters *dl);

#ifdef __cplusplus
}
#endif
#endif
