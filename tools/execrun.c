/* Running a handler command per event (serve --exec, consume --exec), exactly once when a
 * marker path is given. See execrun.h. */
#define _GNU_SOURCE /* pipe2(): a pipe made while another thread spawns must not leak */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "execrun.h"

static pdw_cli_exec_sink out_sink;
static void *out_user;
static size_t out_cap;

void pdw_cli_exec_set_sink(pdw_cli_exec_sink sink, void *user, size_t cap)
{
    out_sink = sink;
    out_user = user;
    out_cap = cap;
}

/* A run's output on its way to the sink: lines cut at '\n', bytes over the cap counted. */
typedef struct outbuf {
    char id[32];
    char line[4096];
    size_t n, total, dropped;
    int eof; /* the command (and its children) closed the pipe */
} outbuf;

static void out_bytes(outbuf *o, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o->total >= out_cap) {
            o->dropped += n - i;
            return;
        }
        o->total++;
        if (p[i] == '\n' || o->n == sizeof o->line) {
            out_sink(o->id, o->line, o->n, out_user);
            o->n = 0;
            if (p[i] == '\n')
                continue;
        }
        o->line[o->n++] = p[i];
    }
}

/* Read what the command wrote so far (the pipe is non-blocking). */
static void out_drain(outbuf *o, int rfd)
{
    char buf[8192];
    for (;;) {
        ssize_t k = read(rfd, buf, sizeof buf);
        if (k > 0)
            out_bytes(o, buf, (size_t)k);
        else if (k < 0 && errno == EINTR)
            continue;
        else {
            if (k == 0)
                o->eof = 1;
            return;
        }
    }
}

static void out_end(outbuf *o)
{
    if (o->n)
        out_sink(o->id, o->line, o->n, out_user);
    if (o->dropped)
        out_sink(o->id, NULL, o->dropped, out_user);
}

static void out_init(outbuf *o, const pdw_cli_exec *x)
{
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "-");
    for (size_t i = 0; x->env && x->env[i]; i++) {
        const char *e = x->env[i];
        if (strncmp(e, "PDWEBHOOK_SPOOL_ID=", 19) == 0)
            snprintf(o->id, sizeof o->id, "%s", e + 19);
        else if (strncmp(e, "PDWEBHOOK_STREAM_ID=", 20) == 0)
            snprintf(o->id, sizeof o->id, "%s", e + 20);
    }
}

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

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A command from before a crash may still run: it is ours if its argv names our wrapper. */
static int still_running(const char *pidfile, const char *argv0)
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
    return strstr(cmd, argv0) != NULL;
}

/* The wrapper: record its pid, run the command on the event read from a file (not a pipe:
 * if the server dies while writing, a pipe would end early and the command could succeed
 * on half an event), record success, synced. */
static const char wrapper[] =
    "echo $$ > \"$PDWEBHOOK_MARKER.pid\" || exit 125\n"
    "eval \"$PDWEBHOOK_EXEC\" < \"$PDWEBHOOK_MARKER.json\" || exit $?\n"
    ": > \"$PDWEBHOOK_MARKER.done\" && sync \"$PDWEBHOOK_MARKER.done\" 2>/dev/null\n"
    "exit 0\n";

/* Our environment without PDWEBHOOK_*, then the command's, then the extras. */
static char **make_env(const pdw_cli_exec *x, char store[2][4200])
{
    extern char **environ;
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (x->env && x->env[extra])
        extra++;
    char **env = calloc(n + extra + 3, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PDWEBHOOK_", 10) != 0)
            env[k++] = environ[i];
    snprintf(store[0], 4200, "PDWEBHOOK_EXEC=%s", x->cmd);
    snprintf(store[1], 4200, "PDWEBHOOK_MARKER=%s", x->marker ? x->marker : "");
    env[k++] = store[0];
    env[k++] = store[1];
    for (size_t i = 0; i < extra; i++)
        env[k++] = (char *)(uintptr_t)x->env[i];
    env[k] = NULL;
    return env;
}

int pdw_cli_exec_run(const pdw_cli_exec *x, const char *line, size_t len, char *errbuf,
                     size_t cap)
{
    if (x->marker) {
        char done[4200], pidfile[4200], input[4200];
        snprintf(done, sizeof done, "%s.done", x->marker);
        snprintf(pidfile, sizeof pidfile, "%s.pid", x->marker);
        /* a command started before a crash: let it finish, then believe its marker */
        for (unsigned waited = 0;
             still_running(pidfile, x->argv0) && waited < x->timeout_s * 50u + 250u; waited++)
            sleep_ms(20);
        if (file_exists(done))
            return 0;
        snprintf(input, sizeof input, "%s.json", x->marker);
        int fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int ok = fd >= 0 && write_all(fd, line, len) == 0;
        if (fd >= 0 && close(fd) != 0)
            ok = 0;
        if (!ok) {
            snprintf(errbuf, cap, "cannot write %s: %s", input, strerror(errno));
            return -1;
        }
    }
    char store[2][4200];
    char **env = make_env(x, store);
    int fds[2] = { -1, -1 }, ofds[2] = { -1, -1 };
    /* O_CLOEXEC: a command spawned by another thread at the same moment must not inherit
     * our pipe's write end, or our command would never see the end of its input */
    if (!env || (!x->marker && pipe2(fds, O_CLOEXEC) != 0) ||
        (out_sink && pipe2(ofds, O_CLOEXEC | O_NONBLOCK) != 0)) {
        free(env);
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0)
                close(fds[i]);
            if (ofds[i] >= 0)
                close(ofds[i]);
        }
        snprintf(errbuf, cap, "cannot start the command: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    if (x->marker)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    else
        posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    if (out_sink) { /* both through our pipe, to the log line by line */
        posix_spawn_file_actions_adddup2(&fa, ofds[1], 1);
        posix_spawn_file_actions_adddup2(&fa, ofds[1], 2);
    } else {
        posix_spawn_file_actions_adddup2(&fa, 2, 1); /* the command's output goes to the log */
    }
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0); /* its own group: a timeout kills it all, and a
                                            server killed meanwhile leaves it running */
    sigset_t none, dfl;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigemptyset(&dfl); /* what the server ignores or waits for, the command gets as usual */
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    char *argv[] = { "sh", "-c",
                     x->marker ? (char *)(uintptr_t)wrapper : (char *)(uintptr_t)x->cmd,
                     (char *)(uintptr_t)x->argv0, NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    if (fds[0] >= 0)
        close(fds[0]);
    if (ofds[1] >= 0)
        close(ofds[1]);
    outbuf ob;
    int rfd = ofds[0];
    out_init(&ob, x);
    if (rc != 0) {
        if (fds[1] >= 0)
            close(fds[1]);
        if (rfd >= 0)
            close(rfd);
        snprintf(errbuf, cap, "cannot start the command: %s", strerror(rc));
        return -1;
    }
    /* One deadline covers writing the event to the command's stdin and waiting for it:
     * the pipe is non-blocking, so a command that does not read (or a background child of
     * it that holds stdin open) cannot wedge us past the timeout. Once the command has
     * exited, whatever it did not read is dropped and its exit status decides. */
    int wfd = fds[1];
    size_t off = 0;
    if (wfd >= 0 && fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK) != 0) {
        close(wfd);
        wfd = -1; /* cannot happen on a fresh pipe; then the command reads an empty stdin */
    }
    uint64_t deadline = now_ms() + (uint64_t)x->timeout_s * 1000u;
    int status = 0;
    long step = 1;
    for (;;) {
        while (wfd >= 0 && off < len) { /* our SIGPIPE is ignored: EPIPE ends the input */
            ssize_t k = write(wfd, line + off, len - off);
            if (k > 0)
                off += (size_t)k;
            else if (k < 0 && errno == EINTR)
                continue;
            else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            else
                off = len;
        }
        if (wfd >= 0 && off >= len) {
            close(wfd); /* the end of its input */
            wfd = -1;
        }
        if (rfd >= 0)
            out_drain(&ob, rfd);
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            int e = errno;
            if (wfd >= 0)
                close(wfd);
            if (rfd >= 0) {
                out_end(&ob);
                close(rfd);
            }
            snprintf(errbuf, cap, "lost the command: %s", strerror(e));
            return -1;
        }
        uint64_t now = now_ms();
        if (now >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            if (wfd >= 0)
                close(wfd);
            if (rfd >= 0) {
                out_drain(&ob, rfd);
                out_end(&ob);
                close(rfd);
            }
            snprintf(errbuf, cap, "command timed out after %u s%s", x->timeout_s,
                     off < len ? " (it had not read all of its input)" : "");
            return -1;
        }
        long wait = (long)(deadline - now) < step ? (long)(deadline - now) : step;
        if (wfd >= 0 || (rfd >= 0 && !ob.eof)) { /* until it can take more input or has
                                                     output, or the next look at waitpid */
            struct pollfd pf[2];
            nfds_t np = 0;
            if (wfd >= 0)
                pf[np++] = (struct pollfd){ wfd, POLLOUT, 0 };
            if (rfd >= 0 && !ob.eof)
                pf[np++] = (struct pollfd){ rfd, POLLIN, 0 };
            poll(pf, np, (int)wait);
        } else {
            sleep_ms(wait);
        }
        if (step < 20)
            step *= 2;
    }
    if (wfd >= 0)
        close(wfd);
    if (rfd >= 0) { /* what it wrote last (a child left holding the pipe is not waited for) */
        out_drain(&ob, rfd);
        out_end(&ob);
        close(rfd);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(errbuf, cap, "command exited with %d", WEXITSTATUS(status));
    else
        snprintf(errbuf, cap, "command killed by signal %d", WTERMSIG(status));
    return -1;
}
