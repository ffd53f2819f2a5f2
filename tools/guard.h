/* pdwebhook serve's connection guard: what keeps one client from shutting everyone out.
 *
 * - a limit of connections per client address (the accept policy refuses more);
 * - a header deadline: the whole head of a request must arrive within header_ms of the
 *   connection's start (or of the previous answer on a kept-alive connection), whatever
 *   trickles in meanwhile; libmicrohttpd's own timeout is one of inactivity, reset by
 *   every byte, so a client sending a byte a second would hold its connection forever;
 * - a body deadline: the body must be complete within body_ms of the head.
 * A watchdog thread shuts down (shutdown(2)) the sockets past their deadline; libmicrohttpd
 * then closes them. Each time a limit bites it is counted, and logged (at most one line a
 * second per kind). See docs/SERVING.md for what a reverse proxy in front should do. */
#ifndef PDW_GUARD_H
#define PDW_GUARD_H

#include <jansson.h>
#include <microhttpd.h>

typedef struct conn_guard conn_guard;

typedef struct guard_config {
    unsigned per_ip;       /* connections per client address; 0: no limit */
    unsigned header_ms;    /* 0: no header deadline */
    unsigned body_ms;      /* 0: no body deadline */
    void (*log)(const char *line); /* one line, no newline; NULL: none */
} guard_config;

/* Start the watchdog. 0, or -1 (out of memory, no thread). */
int guard_new(conn_guard **out, const guard_config *c);
/* Stop the watchdog and free (after MHD_stop_daemon()). */
void guard_free(conn_guard *g);

/* libmicrohttpd callbacks (cls: the guard). */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);

/* The request's head is in (the body deadline starts), its body is complete (no deadline
 * while it is answered), its answer is sent (the next head's deadline starts). */
void guard_head_done(struct MHD_Connection *c);
void guard_body_done(struct MHD_Connection *c);
void guard_request_over(struct MHD_Connection *c);

/* Add "limits" (the counters) to a /healthz object. */
void guard_health(conn_guard *g, json_t *o);

#endif
