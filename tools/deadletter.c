/* pdwebhook deadletter list|replay: look at the events the worker gave up on, and put them
 * back into the spool to be handed on again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pdwebhook/durable.h>

#include "cli.h"
#include "options.h"

enum { L_SPOOL = 1, L_DEAD_LETTER, L_ID, L_ALL, L_JSON };

static const pdw_opt dl_opts[] = {
    { L_SPOOL, "spool", 0, "DIR", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "the spool of pdwebhook serve", 0 },
    { L_DEAD_LETTER, "dead-letter", 0, "FILE", PDW_OPT_STRING, 0, 0, 0, 0, 0,
      "the dead-letter file (default DIR/deadletter.jsonl)", 0 },
    { L_ID, "id", 0, "N", PDW_OPT_NUMBER, 0, ~0ull, 0, 0, PDW_OPT_REPEAT,
      "(replay) the event numbered N by list; repeatable", 0 },
    { L_ALL, "all", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "(replay) every dead letter", 0 },
    { L_JSON, "json", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "(list) as JSON lines", 0 },
};

static const pdw_opt_cmd dl_cmd = {
    "pdwebhook deadletter",
    "usage: pdwebhook deadletter list   --spool DIR [--dead-letter FILE] [--json]\n"
    "       pdwebhook deadletter replay --spool DIR [--dead-letter FILE] (--all | --id N...)\n",
    dl_opts, sizeof dl_opts / sizeof dl_opts[0],
    "list shows the events given up after their last attempt (newest last).\n"
    "replay appends them to the spool again and removes them from the dead-letter\n"
    "file; the server hands them on at its next start (stop it first: the spool is\n"
    "locked while it runs).\n",
};

typedef struct dl_args {
    const char *spool, *file;
    int json, all;
    unsigned long long ids[256];
    size_t nids;
} dl_args;

static int apply(const pdw_opt *o, const pdw_opt_value *v, void *user)
{
    dl_args *a = user;
    switch (o->id) {
    case L_SPOOL: a->spool = v->text; break;
    case L_DEAD_LETTER: a->file = v->text; break;
    case L_ID:
        if (a->nids == sizeof a->ids / sizeof a->ids[0])
            return pdw_opt_error(&dl_cmd, o, v, "at most 256 --id options");
        a->ids[a->nids++] = v->num;
        break;
    case L_ALL: a->all = 1; break;
    case L_JSON: a->json = 1; break;
    default: return pdw_opt_error(&dl_cmd, o, v, "not handled");
    }
    return 0;
}

/* Rename DIR/exec-markers/<old>.output to <new>.output, synced (nothing when absent). */
static void carry_markers(const char *spool, unsigned long long old_id,
                          unsigned long long new_id)
{
    char from[4300], to[4300], dir[4200];
    snprintf(dir, sizeof dir, "%s/exec-markers", spool);
    snprintf(from, sizeof from, "%s/%llu.output", dir, old_id);
    snprintf(to, sizeof to, "%s/%llu.output", dir, new_id);
    if (old_id == 0 || new_id == 0 || rename(from, to) != 0)
        return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

typedef struct entry {
    char *line;
    json_t *doc;
    int chosen;
} entry;

static int load(const char *path, entry **out, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    *out = NULL;
    *n_out = 0;
    if (!f)
        return errno == ENOENT ? 0 : -1;
    size_t n = 0, cap = 0;
    entry *v = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (n == cap) {
            entry *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[n].line = strdup(line);
        v[n].doc = json_loads(line, 0, NULL);
        v[n].chosen = 0;
        n++;
    }
    free(line);
    fclose(f);
    *out = v;
    *n_out = n;
    return 0;
}

static void unload(entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].line);
        json_decref(v[i].doc);
    }
    free(v);
}

int pdw_cmd_deadletter(int argc, char **argv)
{
    dl_args a;
    memset(&a, 0, sizeof a);
    char *pos[1];
    int npos = 1;
    int rc = pdw_opt_parse(&dl_cmd, argc, argv, 1, apply, &a, pos, &npos);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    const char *sub = npos ? pos[0] : NULL;
    if (!sub || (strcmp(sub, "list") != 0 && strcmp(sub, "replay") != 0)) {
        fprintf(stderr, "pdwebhook deadletter: %s%s%s (list or replay; pdwebhook deadletter "
                        "--help)\n", sub ? "unknown command '" : "a command is needed",
                sub ? sub : "", sub ? "'" : "");
        return 2;
    }
    const char *spool = a.spool, *file = a.file;
    int json = a.json, all = a.all;
    unsigned long long *ids = a.ids;
    size_t nids = a.nids;
    char deflt[4200];
    if (!file && spool) {
        snprintf(deflt, sizeof deflt, "%s/deadletter.jsonl", spool);
        file = deflt;
    }
    if (!file) {
        fprintf(stderr, "pdwebhook deadletter: --spool DIR (or --dead-letter FILE) is needed\n");
        return 2;
    }
    entry *v;
    size_t n;
    if (load(file, &v, &n) < 0) {
        fprintf(stderr, "pdwebhook deadletter: cannot read %s: %s\n", file, strerror(errno));
        return 2;
    }

    if (strcmp(sub, "list") == 0) {
        for (size_t i = 0; i < n; i++) {
            json_t *d = v[i].doc;
            if (json) {
                printf("%s\n", v[i].line);
                continue;
            }
            pdw_event *ev = NULL;
            char *body = d ? json_dumps(json_object_get(d, "body"), JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            if (body)
                pdw_event_parse(&ev, body, strlen(body), NULL, NULL);
            printf("%-8lld %-24s %-40s attempts=%lld  %s\n",
                   (long long)json_integer_value(json_object_get(d, "id")),
                   ev ? pdw_event_name(ev) : "?",
                   json_string_value(json_object_get(d, "delivery_key"))
                       ? json_string_value(json_object_get(d, "delivery_key")) : "?",
                   (long long)json_integer_value(json_object_get(d, "attempts")),
                   json_string_value(json_object_get(d, "error"))
                       ? json_string_value(json_object_get(d, "error")) : "");
            pdw_event_free(ev);
            free(body);
        }
        if (!json)
            printf("%zu dead letter(s) in %s\n", n, file);
        unload(v, n);
        return 0;
    }
    if (!spool || (!all && !nids)) {
        fprintf(stderr, "pdwebhook deadletter replay: --spool DIR and --all or --id N are needed\n");
        unload(v, n);
        return 2;
    }
    pdw_spool *sp = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_spool_open(&sp, spool, NULL, NULL, &err) != 0) {
        fprintf(stderr, "pdwebhook deadletter replay: %s%s\n", err.message,
                err.code == PDW_ELOCKED ? " (stop pdwebhook serve first)" : "");
        unload(v, n);
        return 1;
    }
    size_t replayed = 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *d = v[i].doc;
        long long id = json_integer_value(json_object_get(d, "id"));
        int want = all;
        for (size_t k = 0; k < nids; k++)
            want |= (unsigned long long)id == ids[k];
        if (!want || !d)
            continue;
        json_t *jb = json_object_get(d, "body");
        char *body = json_is_string(jb) ? strdup(json_string_value(jb))
                                         : json_dumps(jb, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *key = json_string_value(json_object_get(d, "delivery_key"));
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t new_id = 0;
        if (body && key &&
            pdw_spool_append(sp, key, strlen(key), (int64_t)now.tv_sec * 1000, body,
                             strlen(body), &new_id, &err) == 0) {
            v[i].chosen = 1;
            replayed++;
            /* the sinks that finished before it was given up (serve's --output: see
             * tools/sinks.h) carry over to the replayed delivery, which is then not
             * written to --output a second time */
            carry_markers(spool, (unsigned long long)id, (unsigned long long)new_id);
        } else {
            fprintf(stderr, "pdwebhook deadletter replay: id %lld: %s\n", id,
                    err.message[0] ? err.message : "unreadable entry");
            failed = 1;
        }
        free(body);
    }
    pdw_spool_close(sp);
    /* keep what was not replayed: write the rest to a new file and rename it over */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++)
        if (!v[i].chosen)
            ok = fprintf(f, "%s\n", v[i].line) >= 0;
    if (f) {
        ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
        ok = fclose(f) == 0 && ok;
    }
    if (!ok || rename(tmp, file) != 0) {
        fprintf(stderr, "pdwebhook deadletter replay: cannot rewrite %s: %s (the replayed "
                        "events are in the spool; remove them from the file by hand)\n",
                file, strerror(errno));
        failed = 1;
    }
    printf("replayed %zu dead letter(s) into %s; they are handed on at the next start\n",
           replayed, spool);
    unload(v, n);
    return failed ? 1 : 0;
}
