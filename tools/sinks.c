/* --output and --exec, exactly once per spooled event (see sinks.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "execrun.h"
#include "sinks.h"

#define TAIL_BYTES (16u * 1024u * 1024u)

/* A set of spool ids whose output line is written (this run, or found in the file). */
typedef struct idset {
    uint64_t *slots; /* 0 = empty */
    size_t cap, n;
} idset;

struct sinks {
    sinks_config cfg;
    FILE *out;
    pthread_mutex_t lock; /* output writes and the id set */
    idset written;
};

static int idset_has(const idset *s, uint64_t id)
{
    if (!s->cap)
        return 0;
    for (size_t i = (size_t)(id * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == id)
            return 1;
        if (s->slots[i] == 0)
            return 0;
    }
}

static int idset_add(idset *s, uint64_t id)
{
    if (idset_has(s, id))
        return 0;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        idset bigger = { slots, cap, 0 };
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                idset_add(&bigger, s->slots[i]);
        free(s->slots);
        *s = bigger;
    }
    size_t i = (size_t)(id * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
    while (s->slots[i])
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = id;
    s->n++;
    return 0;
}

/* Read the "spool_id" of the lines at the end of the output file. */
static void read_tail(sinks *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        close(fd);
        return;
    }
    off_t from = st.st_size > (off_t)TAIL_BYTES ? st.st_size - (off_t)TAIL_BYTES : 0;
    size_t len = (size_t)(st.st_size - from);
    char *buf = malloc(len + 1);
    ssize_t got = buf ? pread(fd, buf, len, from) : -1;
    close(fd);
    if (got <= 0) {
        free(buf);
        return;
    }
    buf[got] = '\0';
    static const char tag[] = "\"spool_id\":";
    for (char *p = strstr(buf, tag); p; p = strstr(p + 1, tag)) {
        uint64_t id = strtoull(p + sizeof tag - 1, NULL, 10);
        if (id)
            idset_add(&s->written, id);
    }
    free(buf);
}

int sinks_open(sinks **out, const sinks_config *c)
{
    sinks *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->cfg = *c;
    pthread_mutex_init(&s->lock, NULL);
    if (c->output) {
        if (strcmp(c->output, "-") == 0) {
            s->out = stdout;
        } else {
            if (c->marker_dir)
                read_tail(s, c->output);
            s->out = fopen(c->output, "ae"); /* e: O_CLOEXEC, kept from handlers */
            if (!s->out) {
                fprintf(stderr, "pdwebhook serve: cannot open %s: %s\n", c->output,
                        strerror(errno));
                free(s->written.slots);
                free(s);
                return -1;
            }
        }
    }
    if (c->exec && c->marker_dir && mkdir(c->marker_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "pdwebhook serve: cannot create %s: %s\n", c->marker_dir,
                strerror(errno));
        sinks_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sinks_close(sinks *s)
{
    if (!s)
        return;
    if (s->out && s->out != stdout)
        fclose(s->out);
    else if (s->out)
        fflush(stdout);
    free(s->written.slots);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void sinks_clean_markers(sinks *s, int (*is_pending)(uint64_t, void *), void *user)
{
    if (!s->cfg.exec || !s->cfg.marker_dir)
        return;
    DIR *d = opendir(s->cfg.marker_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        uint64_t id = strtoull(e->d_name, &end, 10);
        if (!id || (strcmp(end, ".done") != 0 && strcmp(end, ".pid") != 0 &&
                    strcmp(end, ".json") != 0) || is_pending(id, user))
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", s->cfg.marker_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

int sinks_sync(void *user)
{
    sinks *s = user;
    if (!s->out)
        return 0;
    pthread_mutex_lock(&s->lock);
    int rc = fflush(s->out);
    if (rc == 0 && s->out != stdout && fsync(fileno(s->out)) != 0)
        rc = -1;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- --output ---------------------------------------------------------------------- */

static int write_output(sinks *s, const pdw_event *ev, uint64_t id, char *errbuf, size_t cap)
{
    json_t *o = pdw_cli_event_json(ev, 1);
    if (o && id)
        json_object_set_new(o, "spool_id", json_integer((json_int_t)id));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (!id || !idset_has(&s->written, id)) {
        if (fputs(line, s->out) < 0 || fputc('\n', s->out) < 0 || fflush(s->out) != 0) {
            snprintf(errbuf, cap, "cannot write the output: %s", strerror(errno));
            rc = -1;
        } else if (id && idset_add(&s->written, id) < 0) {
            rc = 0; /* written; a retry of a failing --exec could write it again */
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(line);
    return rc;
}

/* ---- --exec -------------------------------------------------------------------------- */

static int run_exec(sinks *s, const pdw_event *ev, uint64_t id, unsigned attempt,
                    char *errbuf, size_t cap)
{
    char marker[4096] = "", env[4][256];
    if (s->cfg.marker_dir && id)
        snprintf(marker, sizeof marker, "%s/%llu", s->cfg.marker_dir, (unsigned long long)id);
    json_t *o = pdw_cli_event_json(ev, 1);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    size_t len = strlen(line);
    line[len++] = '\n'; /* replaces the NUL; the line goes by its length */
    snprintf(env[0], sizeof env[0], "PDWEBHOOK_DELIVERY_KEY=%s", pdw_event_delivery_key(ev));
    snprintf(env[1], sizeof env[1], "PDWEBHOOK_EVENT=%s", pdw_event_name(ev));
    snprintf(env[2], sizeof env[2], "PDWEBHOOK_ATTEMPT=%u", attempt);
    snprintf(env[3], sizeof env[3], "PDWEBHOOK_SPOOL_ID=%llu", (unsigned long long)id);
    const char *const extra[] = { env[0], env[1], env[2], env[3], NULL };
    pdw_cli_exec x = { s->cfg.exec, marker[0] ? marker : NULL, "pdwebhook-exec",
                       s->cfg.exec_timeout_s, extra };
    int rc = pdw_cli_exec_run(&x, line, len, errbuf, cap);
    free(line);
    return rc;
}

int sinks_event(sinks *s, const pdw_event *ev, uint64_t id, unsigned attempt, char *errbuf,
                size_t errcap)
{
    if (s->out && write_output(s, ev, id, errbuf, errcap) != 0)
        return -1;
    if (s->cfg.exec && run_exec(s, ev, id, attempt, errbuf, errcap) != 0)
        return -1;
    return 0;
}

int sinks_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
                 void *user)
{
    sinks *s = user;
    if (!s->out && !s->cfg.exec)
        return 0; /* no sink: nothing to parse the body for */
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_event_parse(&ev, rec->body, rec->body_len, NULL, &err) != 0) {
        snprintf(errbuf, errcap, "spooled body does not parse: %s", err.message);
        return -1;
    }
    int rc = sinks_event(s, ev, rec->id, attempt, errbuf, errcap);
    pdw_event_free(ev);
    return rc;
}
