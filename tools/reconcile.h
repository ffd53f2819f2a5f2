/* The reconciliation of the program (docs/GAP-FREE.md): read what changed in a window from
 * Pipedrive's API and hand each changed record on as a reconciled event. Shared by
 * `pdwebhook reconcile` and `serve --reconcile`. */
#ifndef PDW_RECONCILE_TOOL_H
#define PDW_RECONCILE_TOOL_H

#include <stdint.h>

#include "pdapi.h"

/* Every object reconciliation knows, in the order a window is read. */
#define RECONCILE_ALL_OBJECTS "deal,person,organization,activity,product,lead,note,pipeline,stage,user"

/* Hand on one reconciled event body: 1 handed on, 0 a duplicate, negative: failed (the
 * run stops). */
typedef int (*reconcile_emit_cb)(const char *body, size_t len, void *user);

typedef struct reconcile_counts {
    unsigned long read;       /* records the API returned */
    unsigned long outside;    /* of which changed outside the window */
    unsigned long handed;     /* handed on */
    unsigned long duplicates; /* already delivered or reconciled */
    unsigned long skipped;    /* records without an id or an update time */
} reconcile_counts;

/* Check a comma-separated object list: 0, or -1 after printing which one is unknown. */
int reconcile_check_objects(const char *prog, const char *objects);

/* Reconcile [from_ms, to_ms) for the objects: 0, or -1 with err filled. progress: print a
 * line per page read on stderr. Counts are added to *n. */
int reconcile_window(pdapi *c, const char *objects, int64_t from_ms, int64_t to_ms,
                     reconcile_emit_cb emit, void *user, reconcile_counts *n, int progress,
                     char *err, size_t errcap);

/* RFC 3339 (or "YYYY-MM-DD HH:MM:SS", UTC) to ms since the epoch; -1 when invalid. */
int64_t reconcile_parse_time(const char *s);
/* ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (sep 'T') or "YYYY-MM-DD HH:MM:SS" (' '). */
void reconcile_format_time(int64_t ms, char sep, char *out, size_t cap);

#endif
