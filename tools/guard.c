/* pdwebhook serve's connection guard (see guard.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "guard.h"

enum { PHASE_HEAD, PHASE_BODY, PHASE_ANSWER };
enum { KIND_PER_IP, KIND_HEADER, KIND_BODY, KINDS };

typedef struct addr_key {
    unsigned char a[16];
    int family;
} addr_key;

typedef struct entry {
    struct entry *prev, *next;
    conn_guard *g;
    int fd;
    int phase;
    uint64_t since_ms; /* start of the phase */
    int killed;
    addr_key key;
    char peer[INET6_ADDRSTRLEN];
} entry;

typedef struct addr_count {
    addr_key key;
    unsigned n;
} addr_count;

struct conn_guard {
    guard_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    entry *head;
    addr_count *addrs; /* one per address with open connections */
    size_t naddrs, capaddrs;
    int stopping;
    pthread_t thread;
    uint64_t counts[KINDS];
    uint64_t last_log_ms[KINDS];
    uint64_t suppressed[KINDS];
};

static const char *const kind_name[KINDS] = { "per_ip_refused", "header_timeouts",
                                               "body_timeouts" };

static uint64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int key_of(const struct sockaddr *sa, addr_key *k, char *text, size_t cap)
{
    memset(k, 0, sizeof *k);
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(k->a, &in->sin_addr, 4);
        k->family = AF_INET;
        if (text)
            inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)cap);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(k->a, &in6->sin6_addr, 16);
        k->family = AF_INET6;
        if (text)
            inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)cap);
        return 0;
    }
    return -1;
}

static addr_count *find_addr(conn_guard *g, const addr_key *k)
{
    for (size_t i = 0; i < g->naddrs; i++)
        if (g->addrs[i].key.family == k->family && memcmp(g->addrs[i].key.a, k->a, 16) == 0)
            return &g->addrs[i];
    return NULL;
}

/* Count a limit that bit; log it unless one line of its kind went out in the last second.
 * Lock held. */
static void bite(conn_guard *g, int kind, const char *peer)
{
    g->counts[kind]++;
    if (!g->cfg.log)
        return;
    uint64_t now = mono_ms();
    if (g->last_log_ms[kind] && now - g->last_log_ms[kind] < 1000) {
        g->suppressed[kind]++;
        return;
    }
    char line[300];
    const char *what = kind == KIND_PER_IP
                           ? "refused a connection: too many from this address "
                             "(--max-connections-per-ip)"
                       : kind == KIND_HEADER
                           ? "closed a connection that did not send its request head in "
                             "time (--header-timeout)"
                           : "closed a connection that did not send its body in time "
                             "(--body-timeout)";
    if (g->suppressed[kind])
        snprintf(line, sizeof line, "%s from %s (and %llu more in the last second)", what, peer,
                 (unsigned long long)g->suppressed[kind]);
    else
        snprintf(line, sizeof line, "%s from %s", what, peer);
    g->suppressed[kind] = 0;
    g->last_log_ms[kind] = now;
    g->cfg.log(line);
}

static void *watch(void *arg)
{
    conn_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 200 * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cond, &g->lock, &t);
        uint64_t now = mono_ms();
        for (entry *e = g->head; e; e = e->next) {
            if (e->killed || e->phase == PHASE_ANSWER)
                continue;
            unsigned limit = e->phase == PHASE_HEAD ? g->cfg.header_ms : g->cfg.body_ms;
            if (!limit || now - e->since_ms < limit)
                continue;
            /* libmicrohttpd sees the socket end and closes the connection; the fd is ours
             * to touch until its CLOSED notification, which takes this lock */
            shutdown(e->fd, SHUT_RDWR);
            e->killed = 1;
            bite(g, e->phase == PHASE_HEAD ? KIND_HEADER : KIND_BODY, e->peer);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int guard_new(conn_guard **out, const guard_config *c)
{
    conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->cfg = *c;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    if (pthread_create(&g->thread, NULL, watch, g) != 0) {
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void guard_free(conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    while (g->head) { /* only if the daemon was not stopped first */
        entry *e = g->head;
        g->head = e->next;
        free(e);
    }
    free(g->addrs);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    conn_guard *g = cls;
    addr_key k;
    char peer[INET6_ADDRSTRLEN] = "?";
    if (!g->cfg.per_ip || key_of(addr, &k, peer, sizeof peer) != 0)
        return MHD_YES;
    pthread_mutex_lock(&g->lock);
    addr_count *a = find_addr(g, &k);
    int over = a && a->n >= g->cfg.per_ip;
    if (over)
        bite(g, KIND_PER_IP, peer);
    pthread_mutex_unlock(&g->lock);
    return over ? MHD_NO : MHD_YES;
}

void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    conn_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        entry *e = calloc(1, sizeof *e);
        if (!e)
            return; /* unguarded: libmicrohttpd's own timeout still applies */
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        e->g = g;
        e->fd = fi ? fi->connect_fd : -1;
        e->phase = PHASE_HEAD;
        e->since_ms = mono_ms();
        snprintf(e->peer, sizeof e->peer, "?");
        int keyed = ai && key_of(ai->client_addr, &e->key, e->peer, sizeof e->peer) == 0;
        pthread_mutex_lock(&g->lock);
        if (keyed) {
            addr_count *a = find_addr(g, &e->key);
            if (!a && g->naddrs == g->capaddrs) {
                size_t cap = g->capaddrs ? g->capaddrs * 2 : 64;
                addr_count *na = realloc(g->addrs, cap * sizeof *na);
                if (na) {
                    g->addrs = na;
                    g->capaddrs = cap;
                }
            }
            if (!a && g->naddrs < g->capaddrs) {
                a = &g->addrs[g->naddrs++];
                a->key = e->key;
                a->n = 0;
            }
            if (a)
                a->n++;
            else
                e->key.family = 0; /* not counted */
        }
        if (e->fd < 0)
            e->killed = 1; /* nothing to shut down: counted, never timed */
        e->next = g->head;
        if (g->head)
            g->head->prev = e;
        g->head = e;
        pthread_mutex_unlock(&g->lock);
        *socket_context = e;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        entry *e = *socket_context;
        if (!e)
            return;
        pthread_mutex_lock(&g->lock);
        if (e->key.family) {
            addr_count *a = find_addr(g, &e->key);
            if (a && --a->n == 0)
                *a = g->addrs[--g->naddrs];
        }
        if (e->prev)
            e->prev->next = e->next;
        else
            g->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        pthread_mutex_unlock(&g->lock);
        free(e);
        *socket_context = NULL;
    }
}

static void set_phase(struct MHD_Connection *c, int phase)
{
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    entry *e = si ? si->socket_context : NULL;
    if (!e)
        return;
    pthread_mutex_lock(&e->g->lock);
    e->phase = phase;
    e->since_ms = mono_ms();
    pthread_mutex_unlock(&e->g->lock);
}

void guard_head_done(struct MHD_Connection *c)
{
    set_phase(c, PHASE_BODY);
}

void guard_body_done(struct MHD_Connection *c)
{
    set_phase(c, PHASE_ANSWER);
}

void guard_request_over(struct MHD_Connection *c)
{
    set_phase(c, PHASE_HEAD);
}

void guard_health(conn_guard *g, json_t *o)
{
    if (!g)
        return;
    json_t *j = json_object();
    pthread_mutex_lock(&g->lock);
    for (int k = 0; k < KINDS; k++)
        json_object_set_new(j, kind_name[k], json_integer((json_int_t)g->counts[k]));
    json_object_set_new(j, "addresses", json_integer((json_int_t)g->naddrs));
    pthread_mutex_unlock(&g->lock);
    json_object_set_new(o, "limits", j);
}
