/* Dead letters (pdwebhook/deadletter.h): one JSON line per given-up delivery, appended and
 * fdatasync'ed. Shared by the worker (spool records) and the Redis consumer (stream
 * entries). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable/durable.h"

struct pdw_dead_letters {
    int fd;
    pthread_mutex_t lock; /* one line at a time */
};

int pdw_dead_letters_open(pdw_dead_letters **out, const char *path, pdw_error *err)
{
    pdw__error_reset(err);
    if (out)
        *out = NULL;
    if (!out || !path)
        return pdw__error_set(err, PDW_EINVAL, -1, "the dead-letter path is required");
    pdw_dead_letters *dl = calloc(1, sizeof *dl);
    if (!dl)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    dl->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (dl->fd < 0) {
        int e = errno;
        free(dl);
        return pdw__error_set(err, PDW_EIO, -1, "cannot open the dead-letter file %s: %s",
                              path, strerror(e));
    }
    pthread_mutex_init(&dl->lock, NULL);
    *out = dl;
    return 0;
}

void pdw_dead_letters_free(pdw_dead_letters *dl)
{
    if (!dl)
        return;
    close(dl->fd);
    pthread_mutex_destroy(&dl->lock);
    free(dl);
}

int pdw_dead_letters_append(pdw_dead_letters *dl, json_t *o, const char *body,
                            size_t body_len, unsigned attempts, const char *error)
{
    if (!o)
        return PDW_ENOMEM;
    if (!dl || (!body && body_len)) {
        json_decref(o);
        return PDW_EINVAL;
    }
    /* the body as JSON when it is (it was accepted, so it should be), else as a string */
    json_t *jb = json_loadb(body ? body : "", body_len, 0, NULL);
    if (!jb)
        jb = json_stringn(body ? body : "", body_len);
    json_object_set_new(o, "failed_at_ms", json_integer(pdw__wall_ms()));
    json_object_set_new(o, "attempts", json_integer(attempts));
    json_object_set_new(o, "error", error ? json_string(error) : json_null());
    json_object_set_new(o, "body", jb ? jb : json_null());
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return PDW_ENOMEM;
    size_t len = strlen(line), off = 0;
    line[len] = '\n'; /* overwrite the NUL: the line is written by its length */
    int rc = 0;
    pthread_mutex_lock(&dl->lock);
    while (off < len + 1) {
        ssize_t k = write(dl->fd, line + off, len + 1 - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = PDW_EIO;
            break;
        }
        off += (size_t)k;
    }
    if (rc == 0 && fdatasync(dl->fd) != 0)
        rc = PDW_EIO;
    pthread_mutex_unlock(&dl->lock);
    json_malloc_t jm;
    json_free_t jf;
    json_get_alloc_funcs(&jm, &jf); /* jansson's allocator is the host's, never ours */
    jf(line);
    return rc;
}
