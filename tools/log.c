/* The log of pdwebhook serve (see log.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int g_json, g_level = LL_INFO;
static const char *g_file;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LL_WARN;
    return -1;
}

int log_enabled(int level)
{
    return level <= g_level;
}

static int open_onto_stderr(const char *file)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (fd != 2) {
        if (dup2(fd, 2) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        close(fd);
    }
    return 0;
}

int log_setup(int json, int level, const char *file)
{
    g_json = json;
    g_level = level;
    g_file = file;
    if (file && open_onto_stderr(file) != 0) {
        fprintf(stderr, "pdwebhook serve: --log-file %s: %s\n", file, strerror(errno));
        return -1;
    }
    return 0;
}

int log_reopen(void)
{
    if (!g_file)
        return 0;
    if (open_onto_stderr(g_file) != 0) {
        int e = errno;
        log_msg(LL_ERROR, "SIGHUP: cannot reopen the log file %s: %s (still writing to the "
                          "old one)", g_file, strerror(e));
        return -1;
    }
    return 0;
}

/* ---- a line ---------------------------------------------------------------------------- */

typedef struct lbuf {
    char p[4096];
    size_t n;
} lbuf;

static void lb_mem(lbuf *b, const char *s, size_t n)
{
    size_t room = sizeof b->p - 2 - b->n; /* room for "}\n" */
    if (n > room)
        n = room;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void lb_str(lbuf *b, const char *s)
{
    lb_mem(b, s, strlen(s));
}

static void lb_uint(lbuf *b, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lb_mem(b, d + i, sizeof d - i);
}

/* s[0..n) escaped: printable ASCII stays (in JSON '"' becomes \"), anything else and the
 * backslash become \xNN (in JSON \\xNN: the decoded string is the text form). At most cap
 * bytes of input; more is marked with "...". */
static void lb_esc(lbuf *b, const char *s, size_t n, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t m = n > cap ? cap : n;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && !(g_json && c == '"')) {
            if (b->n < sizeof b->p - 2)
                b->p[b->n++] = (char)c;
        } else if (c == '"') {
            lb_mem(b, "\\\"", 2);
        } else {
            char e[5] = { '\\', 'x', hex[c >> 4], hex[c & 15], 0 };
            if (g_json)
                lb_mem(b, "\\", 1);
            lb_mem(b, e, 4);
        }
    }
    if (n > cap)
        lb_mem(b, "...", 3);
}

static void stamp(lbuf *b)
{
    static _Thread_local time_t ts_sec = (time_t)-1;
    static _Thread_local char ts[24];
    static _Thread_local size_t ts_len;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != ts_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        ts_len = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        ts_sec = now.tv_sec;
    }
    long ms = now.tv_nsec / 1000000;
    char t[40];
    memcpy(t, ts, ts_len);
    size_t k = ts_len;
    t[k++] = '.';
    t[k++] = (char)('0' + ms / 100);
    t[k++] = (char)('0' + ms / 10 % 10);
    t[k++] = (char)('0' + ms % 10);
    t[k++] = 'Z';
    if (g_json) {
        lb_str(b, "{\"ts\":\"");
        lb_mem(b, t, k);
        lb_str(b, "\"");
    } else {
        lb_mem(b, t, k);
        lb_mem(b, " ", 1);
    }
}

static void begin(lbuf *b, int level, const char *msg, size_t msglen)
{
    b->n = 0;
    stamp(b);
    if (g_json) {
        lb_str(b, ",\"level\":\"");
        lb_str(b, level_names[level]);
        lb_str(b, "\",\"msg\":\"");
        lb_esc(b, msg, msglen, 2048);
        lb_str(b, "\"");
    } else {
        lb_esc(b, msg, msglen, 2048);
    }
}

/* ,"name":"value" (JSON) or " name=value" (text); NULL: left out. */
static void field_str(lbuf *b, const char *name, const char *v, size_t n, size_t cap)
{
    if (!v)
        return;
    if (g_json) {
        lb_str(b, ",\"");
        lb_str(b, name);
        lb_str(b, "\":\"");
        lb_esc(b, v, n, cap);
        lb_str(b, "\"");
    } else {
        lb_str(b, " ");
        lb_str(b, name);
        lb_str(b, "=");
        lb_esc(b, v, n, cap);
    }
}

static void field_uint(lbuf *b, const char *name, unsigned long long v)
{
    lb_str(b, g_json ? ",\"" : " ");
    lb_str(b, name);
    lb_str(b, g_json ? "\":" : "=");
    lb_uint(b, v);
}

static void put(lbuf *b)
{
    if (g_json)
        b->p[b->n++] = '}';
    b->p[b->n++] = '\n';
    const char *p = b->p;
    size_t n = b->n;
    while (n) { /* one write, unless the file is full */
        ssize_t k = write(2, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

void log_msg(int level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    lbuf b;
    begin(&b, level, msg, (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1);
    put(&b);
}

/* ---- refusals, rate-limited ------------------------------------------------------------ */

#define RL_SLOTS 64

typedef struct rl_slot {
    int status;
    char reason[40];
    time_t second;
    unsigned count;          /* lines this second */
    unsigned long long suppressed;
    time_t since;            /* the first suppressed line's second */
} rl_slot;

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static rl_slot rl[RL_SLOTS];

static void suppressed_line(const rl_slot *s, time_t now)
{
    lbuf b;
    char msg[160];
    int m = snprintf(msg, sizeof msg, "suppressed %llu similar lines (%d %s) in %llds",
                     s->suppressed, s->status, s->reason,
                     (long long)(now - s->since < 1 ? 1 : now - s->since));
    begin(&b, LL_WARN, msg, m > 0 ? (size_t)m : 0);
    field_uint(&b, "suppressed", s->suppressed);
    field_uint(&b, "status", (unsigned long long)s->status);
    field_str(&b, "reason", s->reason, strlen(s->reason), 40);
    put(&b);
}

/* 1: log this refusal; 0: suppressed (counted). */
static int rate_ok(int status, const char *reason)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&rl_lock);
    rl_slot *s = NULL, *empty = NULL;
    for (int i = 0; i < RL_SLOTS; i++) {
        if (rl[i].status == status && strcmp(rl[i].reason, reason) == 0) {
            s = &rl[i];
            break;
        }
        if (!rl[i].status && !empty)
            empty = &rl[i];
    }
    if (!s && !empty) {
        pthread_mutex_unlock(&rl_lock);
        return 1; /* more kinds than slots: not limited */
    }
    if (!s) {
        s = empty;
        s->status = status;
        snprintf(s->reason, sizeof s->reason, "%s", reason);
    }
    if (s->second != now) {
        if (s->suppressed) {
            suppressed_line(s, now);
            s->suppressed = 0;
        }
        s->second = now;
        s->count = 0;
    }
    int ok = ++s->count <= LOG_REFUSALS_PER_S;
    if (!ok && !s->suppressed++)
        s->since = now;
    pthread_mutex_unlock(&rl_lock);
    return ok;
}

void log_tick(int all)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&rl_lock);
    for (int i = 0; i < RL_SLOTS; i++)
        if (rl[i].status && rl[i].suppressed && (all || rl[i].second != now)) {
            suppressed_line(&rl[i], now);
            rl[i].suppressed = 0;
        }
    pthread_mutex_unlock(&rl_lock);
}

void log_access_line(const log_access *a)
{
    int refusal = a->status >= 400;
    int level = refusal ? LL_WARN : LL_INFO;
    if (a->status == 404 || a->status == 401)
        level = LL_INFO; /* the internet's noise: not a warning */
    if (!log_enabled(level))
        return;
    const char *reason = a->reason ? a->reason : "-";
    if (refusal && !rate_ok(a->status, reason))
        return;
    lbuf b;
    unsigned long long tenths =
        a->duration_ms > 0 ? (unsigned long long)(a->duration_ms * 10.0 + 0.5) : 0;
    char dur[32];
    snprintf(dur, sizeof dur, "%llu.%llu", tenths / 10, tenths % 10);
    const char *method = a->method ? a->method : "-";
    if (g_json) {
        begin(&b, level, "request", 7);
        field_str(&b, "method", method, strlen(method), 32);
        field_str(&b, "path", a->path ? a->path : "", a->path ? a->path_len : 0, 1024);
        field_uint(&b, "status", (unsigned long long)(a->status > 0 ? a->status : 0));
        field_str(&b, "reason", reason, strlen(reason), 40);
        if (a->event)
            field_str(&b, "event", a->event, strlen(a->event), 80);
        if (a->webhook_id)
            field_str(&b, "webhook_id", a->webhook_id, strlen(a->webhook_id), 80);
        if (a->delivery_key)
            field_str(&b, "delivery_key", a->delivery_key, strlen(a->delivery_key), 300);
        lb_str(&b, ",\"duration_ms\":");
        lb_str(&b, dur);
        if (a->peer)
            field_str(&b, "peer", a->peer, strlen(a->peer), 80);
        if (a->error)
            field_str(&b, "error", a->error, strlen(a->error), 512);
        if (a->offset >= 0)
            field_uint(&b, "offset", (unsigned long long)a->offset);
    } else {
        /* "METHOD PATH STATUS REASON event=E key=K 1.2ms", then the extras */
        b.n = 0;
        stamp(&b);
        lb_esc(&b, method, strlen(method), 32);
        lb_str(&b, " ");
        lb_esc(&b, a->path ? a->path : "", a->path ? a->path_len : 0, 1024);
        lb_str(&b, " ");
        lb_uint(&b, (unsigned long long)(a->status > 0 ? a->status : 0));
        lb_str(&b, " ");
        lb_esc(&b, reason, strlen(reason), 40);
        field_str(&b, "event", a->event ? a->event : "-", a->event ? strlen(a->event) : 1, 80);
        field_str(&b, "key", a->delivery_key ? a->delivery_key : "-",
                  a->delivery_key ? strlen(a->delivery_key) : 1, 300);
        lb_str(&b, " ");
        lb_str(&b, dur);
        lb_str(&b, "ms");
        if (a->webhook_id)
            field_str(&b, "webhook", a->webhook_id, strlen(a->webhook_id), 80);
        if (a->peer)
            field_str(&b, "peer", a->peer, strlen(a->peer), 80);
        if (a->error) {
            lb_str(&b, " error=\"");
            lb_esc(&b, a->error, strlen(a->error), 512);
            lb_str(&b, "\"");
        }
        if (a->offset >= 0)
            field_uint(&b, "offset", (unsigned long long)a->offset);
    }
    put(&b);
}

void log_exec_output(const char *id, const char *line, size_t len, void *user)
{
    (void)user;
    if (!log_enabled(LL_INFO))
        return;
    lbuf b;
    char msg[160];
    if (!line) {
        int m = snprintf(msg, sizeof msg,
                         "exec spool_id=%s: %zu more bytes of output dropped (at most %u "
                         "bytes are logged per run)", id, len, LOG_EXEC_CAP);
        begin(&b, LL_WARN, msg, m > 0 ? (size_t)m : 0);
        if (g_json) {
            field_str(&b, "spool_id", id, strlen(id), 40);
            field_uint(&b, "dropped", len);
        }
        put(&b);
        return;
    }
    if (g_json) {
        begin(&b, LL_INFO, "exec output", 11);
        field_str(&b, "spool_id", id, strlen(id), 40);
        field_str(&b, "line", line, len, 2048);
    } else {
        b.n = 0;
        stamp(&b);
        lb_str(&b, "exec spool_id=");
        lb_esc(&b, id, strlen(id), 40);
        lb_str(&b, ": ");
        lb_esc(&b, line, len, 2048);
    }
    put(&b);
}
