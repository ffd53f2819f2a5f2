/* --output and --exec, exactly once per spooled event (see sinks.h). */
#define _GNU_SOURCE /* pipe2(): a pipe made while another thread spawns must not leak */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
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

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A command from before a crash may still run: it is ours if its argv names our wrapper. */
static int still_running(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1 || kill((pid_t)pid, 0) != 0)
        return 0;
    char path[64], cmd[4096];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    cmd[n] = '\0';
    return strstr(cmd, "pdwebhook-exec") != NULL;
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* The wrapper: record our pid, run the user's command on the event read from a file (not
 * a pipe: if the server dies while writing, a pipe would end early and the command could
 * succeed on half an event), record success (synced). */
static const char wrapper[] =
    "echo $$ > \"$PDWEBHOOK_MARKER.pid\" || exit 125\n"
    "eval \"$PDWEBHOOK_EXEC\" < \"$PDWEBHOOK_MARKER.json\" || exit $?\n"
    ": > \"$PDWEBHOOK_MARKER.done\" && sync \"$PDWEBHOOK_MARKER.done\" 2>/dev/null\n"
    "exit 0\n";

static char **make_env(const pdw_event *ev, const char *cmd, const char *marker,
                       unsigned attempt, uint64_t id, char store[6][4200])
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 7, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PDWEBHOOK_", 10) != 0)
            env[k++] = environ[i];
    snprintf(store[0], 4200, "PDWEBHOOK_EXEC=%s", cmd);
    snprintf(store[1], 4200, "PDWEBHOOK_MARKER=%s", marker ? marker : "");
    snprintf(store[2], 4200, "PDWEBHOOK_DELIVERY_KEY=%s", pdw_event_delivery_key(ev));
    snprintf(store[3], 4200, "PDWEBHOOK_EVENT=%s", pdw_event_name(ev));
    snprintf(store[4], 4200, "PDWEBHOOK_ATTEMPT=%u", attempt);
    snprintf(store[5], 4200, "PDWEBHOOK_SPOOL_ID=%llu", (unsigned long long)id);
    for (int i = 0; i < 6; i++)
        env[k++] = store[i];
    env[k] = NULL;
    return env;
}

static int run_exec(sinks *s, const pdw_event *ev, uint64_t id, unsigned attempt,
                    char *errbuf, size_t cap)
{
    char marker[4096] = "", done[4200], pidfile[4200];
    if (s->cfg.marker_dir && id) {
        snprintf(marker, sizeof marker, "%s/%llu", s->cfg.marker_dir, (unsigned long long)id);
        snprintf(done, sizeof done, "%s.done", marker);
        snprintf(pidfile, sizeof pidfile, "%s.pid", marker);
        /* a command started before a crash: let it finish, then believe its marker */
        for (unsigned waited = 0; still_running(pidfile) && waited < s->cfg.exec_timeout_s * 50u + 250u; waited++)
            sleep_ms(20);
        if (file_exists(done))
            return 0;
    }
    /* the event line, for the command's stdin */
    json_t *o = pdw_cli_event_json(ev, 1);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    size_t len = strlen(line);
    line[len++] = '\n';
    if (marker[0]) {
        char input[4200];
        snprintf(input, sizeof input, "%s.json", marker);
        int fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int ok = fd >= 0 && write_all(fd, line, len) == 0;
        if (fd >= 0 && close(fd) != 0)
            ok = 0;
        if (!ok) {
            free(line);
            snprintf(errbuf, cap, "cannot write %s: %s", input, strerror(errno));
            return -1;
        }
    }
    char store[6][4200];
    char **env = make_env(ev, s->cfg.exec, marker[0] ? marker : NULL, attempt, id, store);
    int fds[2] = { -1, -1 };
    /* O_CLOEXEC: a command spawned by another worker thread at the same moment must not
     * inherit our pipe's write end, or our command would never see the end of its input */
    if (!env || (!marker[0] && pipe2(fds, O_CLOEXEC) != 0)) {
        free(env);
        free(line);
        snprintf(errbuf, cap, "cannot start the command: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    if (marker[0])
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    else
        posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* the command's output goes to the log */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0); /* its own group, so a timeout kills it all */
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = { "sh", "-c",
                     marker[0] ? (char *)(uintptr_t)wrapper : (char *)(uintptr_t)s->cfg.exec,
                     "pdwebhook-exec", NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    if (fds[0] >= 0)
        close(fds[0]);
    if (rc != 0) {
        if (fds[1] >= 0)
            close(fds[1]);
        free(line);
        snprintf(errbuf, cap, "cannot start the command: %s", strerror(rc));
        return -1;
    }
    if (fds[1] >= 0) { /* the command may not read it all: SIGPIPE is ignored */
        write_all(fds[1], line, len);
        close(fds[1]);
    }
    free(line);
    int status = 0;
    long waited = 0, step = 1;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(errbuf, cap, "lost the command: %s", strerror(errno));
            return -1;
        }
        if (waited >= (long)s->cfg.exec_timeout_s * 1000) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(errbuf, cap, "command timed out after %u s", s->cfg.exec_timeout_s);
            return -1;
        }
        sleep_ms(step);
        waited += step;
        if (step < 50)
            step *= 2;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(errbuf, cap, "command exited with %d", WEXITSTATUS(status));
    else
        snprintf(errbuf, cap, "command killed by signal %d", WTERMSIG(status));
    return -1;
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
