/* What the subcommands share: reading a whole file, and the --credentials file format
 * (so that serve and subscriptions can never read it differently). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

char *pdw_cli_read_file(const char *path, size_t *len_out)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (len_out)
        *len_out = 0;
    if (!f)
        return NULL;
    size_t len = 0, cap = 0;
    char *buf = NULL;
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
        errno = EIO;
    }
    if (!is_stdin)
        fclose(f);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int pdw_cli_parse_credentials(char *text, const char *path, const char *prog,
                              int (*add)(char *user, char *password, void *ctx), void *ctx)
{
    int lineno = 0, pairs = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line || !colon[1]) {
            fprintf(stderr, "%s: %s line %d: expected user:password\n", prog, path, lineno);
            return -1;
        }
        *colon = '\0';
        if (add(line, colon + 1, ctx) < 0)
            return -1;
        pairs++;
    }
    if (!pairs) {
        fprintf(stderr, "%s: %s holds no user:password line\n", prog, path);
        return -1;
    }
    return pairs;
}
