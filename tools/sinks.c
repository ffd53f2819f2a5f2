/* --output and --exec, exactly once per spooled event (see sinks.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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
    FILE *out;            /* stdout ("-"), or NULL with fd for a file */
    int fd;               /* --output FILE, O_APPEND; -1 when none */
    pthread_mutex_t lock; /* output writes, the id set, the counters */
    /* Ids whose line is written but whose event is not finished yet (an --exec still to
     * succeed), and the ids found in the file's tail at start: an event comes back to the
     * sinks only through a retry of this run or a restart, so an id is forgotten once its
     * event was handed on, and the set holds the unfinished tail, not the history. */
    idset written;
    uint64_t write_errors;     /* failed --output writes (each retried by the worker) */
    int failing;               /* the last write failed */
    pdw_recency *recency;      /* --skip-stale: the newest change handed on per entity */
    atomic_ullong stale_skipped;
    int64_t last_error_ms;     /* when the last one failed; 0: never */
    char last_error[160];
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

/* Forget id (linear probing: later entries of its run shift back into the hole). */
static void idset_del(idset *s, uint64_t id)
{
    if (!s->cap)
        return;
    size_t mask = s->cap - 1, i = (size_t)(id * 0x9E3779B97F4A7C15ULL) & mask;
    while (s->slots[i] != id) {
        if (s->slots[i] == 0)
            return;
        i = (i + 1) & mask;
    }
    s->slots[i] = 0;
    s->n--;
    for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)(s->slots[j] * 0x9E3779B97F4A7C15ULL) & mask;
        /* move slots[j] into the hole at i unless its home lies in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slots[i] = s->slots[j];
            s->slots[j] = 0;
            i = j;
        }
    }
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

/* Ids whose output line a dead letter already had (MARKERS/<id>.output, see sinks.h). */
static void read_output_markers(sinks *s)
{
    DIR *d = opendir(s->cfg.marker_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        uint64_t id = strtoull(e->d_name, &end, 10);
        if (id && strcmp(end, ".output") == 0)
            idset_add(&s->written, id);
    }
    closedir(d);
}

/* Record, durably, that event id's output line is written, before it is dead-lettered. */
static void mark_output_done(sinks *s, uint64_t id)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%llu.output", s->cfg.marker_dir, (unsigned long long)id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* a replay would write the line again: at least once, never lost */
    fsync(fd);
    close(fd);
    int dfd = open(s->cfg.marker_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int sinks_open(sinks **out, const sinks_config *c)
{
    sinks *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->cfg = *c;
    s->fd = -1;
    if (c->skip_stale && pdw_recency_new(&s->recency, NULL, NULL) != 0) {
        fprintf(stderr, "pdwebhook serve: --skip-stale: out of memory\n");
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (c->output) {
        if (strcmp(c->output, "-") == 0) {
            s->out = stdout;
        } else {
            if (c->marker_dir)
                read_tail(s, c->output);
            /* 0600: the lines carry whole bodies (customer data) */
            s->fd = open(c->output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (s->fd < 0) {
                fprintf(stderr, "pdwebhook serve: cannot open %s: %s\n", c->output,
                        strerror(errno));
                free(s->written.slots);
                free(s);
                return -1;
            }
        }
    }
    if (c->output && c->marker_dir)
        read_output_markers(s);
    if ((c->exec || c->output) && c->marker_dir && mkdir(c->marker_dir, 0700) != 0 &&
        errno != EEXIST) {
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
    if (s->fd >= 0)
        close(s->fd);
    else if (s->out)
        fflush(stdout);
    free(s->written.slots);
    pdw_recency_free(s->recency);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

unsigned long long sinks_stale_skipped(sinks *s)
{
    return s ? atomic_load(&s->stale_skipped) : 0;
}

void sinks_clean_markers(sinks *s, int (*is_pending)(uint64_t, void *), void *user)
{
    /* ids read from the output's tail whose events are handled will never come back */
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->written.cap;) {
        uint64_t id = s->written.slots[i];
        if (id && !is_pending(id, user))
            idset_del(&s->written, id); /* may shift another id into slot i: look again */
        else
            i++;
    }
    pthread_mutex_unlock(&s->lock);
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
    if (s->out) /* stdout: nothing to make durable */
        return fflush(s->out) == 0 ? 0 : -1;
    if (s->fd < 0)
        return 0;
    return fsync(s->fd) == 0 ? 0 : -1;
}

int sinks_health(sinks *s, json_t *o)
{
    if (!s || (s->fd < 0 && !s->out))
        return 0;
    pthread_mutex_lock(&s->lock);
    /* failing: the last write failed, or one failed in the last 5 s (on a full disk a
     * short line may still fit between two failures of longer ones) */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int failing = s->failing || (s->last_error_ms && now_ms - s->last_error_ms < 5000);
    json_t *j = json_object();
    json_object_set_new(j, "write_errors", json_integer((json_int_t)s->write_errors));
    if (s->last_error_ms) {
        json_object_set_new(j, "last_error", json_string(s->last_error));
        json_object_set_new(j, "last_error_ms", json_integer(s->last_error_ms));
    }
    json_object_set_new(j, "unfinished", json_integer((json_int_t)s->written.n));
    json_object_set_new(j, "failing", json_boolean(failing));
    pthread_mutex_unlock(&s->lock);
    json_object_set_new(o, "output", j);
    return failing;
}

/* Open --output again at its path (a new file if it was moved or deleted). Lock held.
 * 0, or -1 with errno (the old descriptor is kept). */
static int reopen_locked(sinks *s)
{
    int fd = open(s->cfg.output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(s->fd);
    s->fd = fd;
    return 0;
}

int sinks_reopen(sinks *s)
{
    if (!s || s->fd < 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    int rc = reopen_locked(s);
    int e = errno;
    pthread_mutex_unlock(&s->lock);
    errno = e;
    return rc;
}

/* A file deleted under us would swallow every line: notice it (no name links to it any
 * more) and write a new one at the path. Lock held. */
static void check_deleted_locked(sinks *s)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0 || st.st_nlink > 0)
        return;
    if (reopen_locked(s) == 0)
        fprintf(stderr, "pdwebhook serve: --output %s was deleted: writing to a new file "
                        "there\n", s->cfg.output);
}

/* Append line[0..len) to the file as one record: a failed or short write is cut back to
 * where the file ended, so that a full disk never leaves half a line for the retry to be
 * glued to. Lock held. 0 or -1 with errno. */
static int append_record(sinks *s, const char *line, size_t len)
{
    off_t end = lseek(s->fd, 0, SEEK_END); /* O_APPEND: every write goes here */
    if (end < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(s->fd, line + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            /* nothing but us writes the file: cut our fragment off */
            while (ftruncate(s->fd, end) != 0 && errno == EINTR)
                ;
            errno = e;
            return -1;
        }
        off += (size_t)k;
    }
    return 0;
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
    size_t len = strlen(line);
    line[len++] = '\n'; /* replaces the NUL; the line goes by its length */
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->fd >= 0)
        check_deleted_locked(s);
    if (!id || !idset_has(&s->written, id)) {
        int failed = s->fd >= 0 ? append_record(s, line, len) != 0
                                : fwrite(line, 1, len, s->out) != len || fflush(s->out) != 0;
        if (failed) {
            int e = errno;
            snprintf(errbuf, cap, "cannot write the output: %s", strerror(e));
            s->write_errors++;
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            s->last_error_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
            snprintf(s->last_error, sizeof s->last_error, "%s", strerror(e));
            /* said once per failure; the worker retries with backoff */
            fprintf(stderr, "pdwebhook serve: --output %s: cannot write event %llu: %s "
                            "(nothing half-written is left; it is retried)\n",
                    s->cfg.output, (unsigned long long)id, strerror(e));
            rc = -1;
        } else {
            s->failing = 0;
            if (id && idset_add(&s->written, id) < 0)
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
    char marker[4096] = "", env[5][2 * PDW_DELIVERY_KEY_MAX + 64];
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
    /* the key comes from the body (anything a sender put in an id: "../", "$(...)"); its
     * hexadecimal form is safe in a file name or a shell word */
    {
        static const char hex[] = "0123456789abcdef";
        const char *k = pdw_event_delivery_key(ev);
        size_t n = (size_t)snprintf(env[4], sizeof env[4], "PDWEBHOOK_DELIVERY_KEY_HEX=");
        for (; *k && n + 3 <= sizeof env[4]; k++) {
            env[4][n++] = hex[(unsigned char)*k >> 4];
            env[4][n++] = hex[(unsigned char)*k & 15];
        }
        env[4][n] = '\0';
    }
    /* a reconciled event (re-read from Pipedrive's API) says so: PDWEBHOOK_RECONCILED=1 */
    const char *const extra[] = { env[0], env[1], env[2], env[3], env[4],
                                  pdw_event_is_reconciled(ev) ? "PDWEBHOOK_RECONCILED=1" : NULL,
                                  NULL };
    pdw_cli_exec x = { s->cfg.exec, marker[0] ? marker : NULL, "pdwebhook-exec",
                       s->cfg.exec_timeout_s, extra };
    int rc = pdw_cli_exec_run(&x, line, len, errbuf, cap);
    free(line);
    return rc;
}

int sinks_event(sinks *s, const pdw_event *ev, uint64_t id, unsigned attempt, char *errbuf,
                size_t errcap)
{
    if ((s->out || s->fd >= 0) && write_output(s, ev, id, errbuf, errcap) != 0)
        return -1;
    if (s->cfg.exec && run_exec(s, ev, id, attempt, errbuf, errcap) != 0) {
        /* the last attempt: the event is dead-lettered next, its output line written */
        if (id && s->cfg.marker_dir && (s->out || s->fd >= 0) && s->cfg.max_attempts &&
            attempt >= s->cfg.max_attempts)
            mark_output_done(s, id);
        return -1;
    }
    if (id && (s->out || s->fd >= 0)) { /* finished: it never comes back in this run */
        pthread_mutex_lock(&s->lock);
        idset_del(&s->written, id);
        pthread_mutex_unlock(&s->lock);
    }
    return 0;
}

int sinks_handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
                 void *user)
{
    sinks *s = user;
    if (!s->out && s->fd < 0 && !s->cfg.exec)
        return 0; /* no sink: nothing to parse the body for */
    pdw_event *ev = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_event_parse(&ev, rec->body, rec->body_len, NULL, &err) != 0) {
        snprintf(errbuf, errcap, "spooled body does not parse: %s", err.message);
        return -1;
    }
    /* A change older than one already handed on for the same entity (a late retry, or a
     * reconciled copy of an older state): skipped when asked, so a handler never goes
     * back in time. A retry of the same event reads "same", not stale. */
    if (s->recency && pdw_recency_check(s->recency, ev) == PDW_RECENCY_STALE) {
        atomic_fetch_add(&s->stale_skipped, 1);
        fprintf(stderr, "pdwebhook serve: skipped stale %s %s (spool id %llu): a newer change "
                        "of %s %s was handed on already\n",
                pdw_event_name(ev), pdw_event_delivery_key(ev), (unsigned long long)rec->id,
                pdw_event_object(ev), pdw_event_entity_id(ev) ? pdw_event_entity_id(ev) : "-");
        pdw_event_free(ev);
        return 0;
    }
    int rc = sinks_event(s, ev, rec->id, attempt, errbuf, errcap);
    pdw_event_free(ev);
    return rc;
}
