/* Dead letters: one JSON line per given-up delivery, appended and fdatasync'ed. Shared by
 * the worker (spool records) and the Redis consumer (stream entries). */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int pdw__dead_letter_append(int fd, json_t *o, const char *body, size_t body_len,
                            unsigned attempts, const char *error)
{
    if (!o)
        return PDW_ENOMEM;
    /* the body as JSON when it is (it was accepted, so it should be), else as a string */
    json_t *jb = json_loadb(body, body_len, 0, NULL);
    if (!jb)
        jb = json_stringn(body, body_len);
    json_object_set_new(o, "failed_at_ms", json_integer(pdw__wall_ms()));
    json_object_set_new(o, "attempts", json_integer(attempts));
    json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "body", jb ? jb : json_null());
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return PDW_ENOMEM;
    size_t len = strlen(line), off = 0;
    line[len] = '\n'; /* overwrite the NUL: the line is written by its length */
    int rc = 0;
    while (off < len + 1) {
        ssize_t k = write(fd, line + off, len + 1 - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = PDW_EIO;
            break;
        }
        off += (size_t)k;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = PDW_EIO;
    json_malloc_t jm;
    json_free_t jf;
    json_get_alloc_funcs(&jm, &jf); /* jansson's allocator is the host's, never ours */
    jf(line);
    return rc;
}
