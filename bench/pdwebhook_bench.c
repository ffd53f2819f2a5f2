/* pdwebhook-bench: in-process throughput of pdwebhook against its floors and limits.
 *
 *   pdwebhook-bench [options] CORPUS_DIR SECONDS
 *
 * CORPUS_DIR holds the webhook bodies (*.json; tests/fixtures). Each is compacted once
 * with jansson before anything is timed. SECONDS is the time given to each row. Every row
 * is one JSON line on stdout:
 *
 *   {"name":..., "events_per_s":..., "MB_per_s":..., "ns_per_event":..., ...}
 *
 * Rows (see docs/BENCHMARKS.md):
 *   jansson_floor      json_loadb(JSON_REJECT_DUPLICATES) + json_decref
 *   pdwebhook_accept   pdw_receiver_handle: method/headers, Basic auth, validating scan,
 *                      event fields, route decision (a `*.*` handler that reads nothing)
 *   pdwebhook_full     the same, and the handler builds the DOM (pdw_event_json) and reads
 *                      one field from it
 *   simdjson_limit     simdjson's validating DOM parse (when built with libsimdjson)
 *   accept_body_*      pdwebhook_accept on one synthetic body of 1 KB ... 1 MB
 *   accept_patterns_*  pdwebhook_accept with 1 ... 1000 registered patterns
 *   accept_threads_*   pdwebhook_accept on 1 and 2 threads sharing one receiver
 *   spool_*            deliveries/s made durable: N threads each with its own
 *                      write + fdatasync (baseline) vs N threads on pdw_spool_append
 *                      (group commit)
 * The four core rows run interleaved in rounds and report the median round, so that a
 * neighbour's load shifts them alike; ratios within one run are what to compare.
 * Dedup is off in the in-process rows (the corpus repeats; serve's HTTP benchmark covers
 * dedup with bodies that differ).
 *
 * Options: --only NAME[,NAME...] (rows whose name starts with one of them), --rounds N,
 * --iters N (fixed passes over the corpus per round instead of time; for callgrind),
 * --spool-dir DIR (default: a fresh directory under $TMPDIR or /tmp), --spool-threads N. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pdwebhook/durable.h>

#ifdef PDW_BENCH_SIMDJSON
#include "simdjson_row.h"
#endif

#define PAD 64 /* zeroed bytes after every body: simdjson's padding */

typedef struct body {
    char *p; /* len bytes + PAD zero bytes */
    size_t len;
    char clen[24];
    const char *name;
} body;

typedef struct corpus {
    body *b;
    size_t n;
    size_t bytes; /* one pass */
} corpus;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *msg)
{
    fprintf(stderr, "pdwebhook-bench: %s\n", msg);
    exit(1);
}

static body make_body(const char *text, size_t len, const char *name)
{
    body b;
    b.p = calloc(1, len + PAD);
    if (!b.p)
        die("out of memory");
    memcpy(b.p, text, len);
    b.len = len;
    snprintf(b.clen, sizeof b.clen, "%zu", len);
    b.name = name;
    return b;
}

static void corpus_add(corpus *c, body b)
{
    body *nb = realloc(c->b, (c->n + 1) * sizeof *nb);
    if (!nb)
        die("out of memory");
    c->b = nb;
    c->b[c->n++] = b;
    c->bytes += b.len;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the receiver under test ------------------------------------------------------ */

static const char USER[] = "pipedrive", PASSWORD[] = "correct horse battery staple";
static char auth_header[128];

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, k = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[k++] = t[v >> 18 & 63];
        out[k++] = t[v >> 12 & 63];
        out[k++] = t[v >> 6 & 63];
        out[k++] = t[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0u);
        out[k++] = t[v >> 18 & 63];
        out[k++] = t[v >> 12 & 63];
        out[k++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
}

static int noop_handler(const pdw_event *ev, void *user)
{
    (void)ev, (void)user;
    return 0;
}

static volatile long long sink; /* keeps the field read alive */

static int dom_handler(const pdw_event *ev, void *user)
{
    (void)user;
    json_t *root = pdw_event_json(ev);
    if (!root)
        return 1;
    json_t *meta = json_object_get(root, "meta");
    sink += (long long)json_string_length(json_object_get(meta, "action"));
    return 0;
}

/* A receiver as pdwebhook serve sets it up (credentials, default limits), dedup off.
 * Patterns: `*.*` -> handler, plus (patterns - 1) that no corpus event matches. */
static pdw_receiver *make_receiver(pdw_handler_cb handler, unsigned patterns)
{
    pdw_credential cred = { USER, PASSWORD };
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    o.credentials = &cred;
    o.num_credentials = 1;
    o.disable_dedup = 1;
    o.max_body = 4u << 20;
    pdw_receiver *r;
    pdw_error err;
    pdw_error_clear(&err);
    if (pdw_receiver_new(&r, &o, &err) != 0)
        die(err.message);
    pdw_router *rt = pdw_receiver_router(r);
    static const char *const acts[] = { "create", "change", "delete", "*" };
    for (unsigned i = 1; i < patterns; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "%s.bench_object_%u", acts[i % 4], i);
        if (pdw_router_on(rt, pat, noop_handler, NULL, &err) != 0)
            die(err.message);
    }
    if (pdw_router_on(rt, "*.*", handler, NULL, &err) != 0)
        die(err.message);
    pdw_router_freeze(rt);
    return r;
}

static int handle(pdw_receiver *r, const body *b)
{
    pdw_header h[3] = {
        { "Content-Type", 12, "application/json", 16 },
        { "Content-Length", 14, b->clen, strlen(b->clen) },
        { "Authorization", 13, auth_header, strlen(auth_header) },
    };
    pdw_request req = PDW_REQUEST_INIT;
    req.method = "POST";
    req.method_len = 4;
    req.headers = h;
    req.num_headers = 3;
    req.body = b->p;
    req.body_len = b->len;
    pdw_verdict v = PDW_VERDICT_INIT;
    return pdw_receiver_handle(r, &req, &v, NULL);
}

/* ---- rows ---------------------------------------------------------------------------- */

typedef enum kind { K_JANSSON, K_ACCEPT, K_FULL, K_SIMDJSON } kind;

typedef struct job {
    kind k;
    const corpus *c;
    pdw_receiver *r;
    void *sj; /* simdjson parser */
    double seconds;
    unsigned long long iters; /* fixed passes, 0: by time */
    unsigned long long events;
    size_t bytes;
    int failures;
} job;

static int one(job *j, const body *b)
{
    switch (j->k) {
    case K_JANSSON: {
        json_error_t e;
        json_t *x = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &e);
        if (!x)
            return 1;
        json_decref(x);
        return 0;
    }
    case K_ACCEPT:
    case K_FULL:
        return handle(j->r, b) != 0;
    case K_SIMDJSON:
#ifdef PDW_BENCH_SIMDJSON
        return pdw_bench_simdjson_parse(j->sj, b->p, b->len) != 0;
#else
        return 1;
#endif
    }
    return 1;
}

static void *run_job(void *arg)
{
    job *j = arg;
    const corpus *c = j->c;
    double deadline = now_s() + j->seconds;
    unsigned long long pass = 0;
    for (;;) {
        for (size_t i = 0; i < c->n; i++)
            j->failures += one(j, &c->b[i]);
        j->events += c->n;
        j->bytes += c->bytes;
        pass++;
        if (j->iters ? pass >= j->iters : now_s() >= deadline)
            break;
    }
    return NULL;
}

typedef struct result {
    double eps; /* events per second */
    double bytes_per_event;
    unsigned long long events;
    int failures;
} result;

/* One round: `threads` jobs in parallel on the same receiver; events/s over wall time. */
static result run_round(kind k, const corpus *c, pdw_receiver *r, void *sj, double seconds,
                        unsigned long long iters, unsigned threads)
{
    job jobs[8];
    pthread_t tid[8];
    result res = { 0, 0, 0, 0 };
    if (threads > 8)
        threads = 8;
    /* warm-up: one pass, not timed */
    job w = { k, c, r, sj, 0, 1, 0, 0, 0 };
    run_job(&w);
    double t0 = now_s();
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (job){ k, c, r, sj, seconds, iters, 0, 0, 0 };
        if (threads == 1)
            run_job(&jobs[t]);
        else if (pthread_create(&tid[t], NULL, run_job, &jobs[t]) != 0)
            die("pthread_create");
    }
    if (threads > 1)
        for (unsigned t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    double el = now_s() - t0;
    size_t bytes = 0;
    for (unsigned t = 0; t < threads; t++) {
        res.events += jobs[t].events;
        bytes += jobs[t].bytes;
        res.failures += jobs[t].failures + w.failures;
    }
    res.eps = (double)res.events / el;
    res.bytes_per_event = (double)bytes / (double)res.events;
    return res;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_row(const char *name, result r, const char *extra)
{
    printf("{\"name\":\"%s\",\"events_per_s\":%.0f,\"MB_per_s\":%.1f,\"ns_per_event\":%.0f,"
           "\"bytes_per_event\":%.0f%s%s}\n",
           name, r.eps, r.eps * r.bytes_per_event / 1e6, 1e9 / r.eps, r.bytes_per_event,
           extra && *extra ? "," : "", extra ? extra : "");
    fflush(stdout);
    if (r.failures)
        fprintf(stderr, "pdwebhook-bench: %s: %d event(s) failed\n", name, r.failures);
}

/* ---- options ------------------------------------------------------------------------- */

static const char *only;
static unsigned rounds = 5;
static unsigned long long iters;
static const char *spool_dir;
static unsigned spool_threads = 32;

static int wanted(const char *name)
{
    if (!only)
        return 1;
    const char *p = only;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n && strncmp(name, p, n) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- the corpus ------------------------------------------------------------------------ */

static corpus load_corpus(const char *dir)
{
    corpus c = { NULL, 0, 0 };
    DIR *d = opendir(dir);
    if (!d)
        die("cannot open the corpus directory");
    char **names = NULL;
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
            char **x = realloc(names, (nn + 1) * sizeof *x);
            if (!x)
                die("out of memory");
            names = x;
            names[nn++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_name);
    pdw_receiver *r = make_receiver(noop_handler, 1);
    for (size_t i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_error_t je;
        json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!j) {
            fprintf(stderr, "pdwebhook-bench: skipping %s: %s\n", names[i], je.text);
            continue;
        }
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
            die("out of memory");
        body b = make_body(text, strlen(text), names[i]);
        free(text);
        int rc = handle(r, &b);
        if (rc != 0) {
            fprintf(stderr, "pdwebhook-bench: skipping %s: %s\n", names[i], pdw_err_name(rc));
            free(b.p);
            continue;
        }
        corpus_add(&c, b);
    }
    pdw_receiver_free(r);
    free(names);
    if (c.n == 0)
        die("no usable *.json body in the corpus directory");
    return c;
}

/* A synthetic body of about `target` bytes: a real v2 event whose `data` carries an array
 * of realistic records (strings with escapes and non-ASCII, numbers, nested objects). */
static body synthetic(size_t target)
{
    static const char base_head[] =
        "{\"data\":{\"id\":42,\"title\":\"Synthetic deal\",\"value\":1250.5,\"currency\":\"EUR\","
        "\"stage_id\":3,\"status\":\"open\",\"items\":[";
    static const char base_tail[] =
        "]},\"previous\":{\"stage_id\":2},\"meta\":{\"action\":\"change\",\"company_id\":\"123\","
        "\"correlation_id\":\"c0ffee00-1111-2222-3333-444455556666\",\"entity_id\":\"42\","
        "\"entity\":\"deal\",\"id\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\",\"is_bulk_edit\":"
        "false,\"timestamp\":\"2025-01-01T12:00:00.000Z\",\"type\":\"general\",\"user_id\":"
        "\"7\",\"version\":\"2.0\",\"webhook_id\":\"99\",\"attempt\":1}}";
    size_t cap = target + 4096;
    char *buf = malloc(cap), item[512];
    if (!buf)
        die("out of memory");
    size_t len = 0;
    memcpy(buf, base_head, sizeof base_head - 1);
    len = sizeof base_head - 1;
    for (unsigned i = 0;; i++) {
        int n = snprintf(item, sizeof item,
                         "%s{\"id\":%u,\"name\":\"Product \\\"%u\\\" \xc3\xa9t\xc3\xa9 \xe5\x90\x8d\","
                         "\"price\":%u.%02u,\"quantity\":%u,\"active\":%s,\"discount\":null,"
                         "\"tags\":[\"a\",\"b\",\"c\"],\"custom_fields\":{\"note\":\"line\\nnext\","
                         "\"rank\":%u}}",
                         i ? "," : "", i + 1, i, i * 7 % 1000, i % 100, i % 9 + 1,
                         i % 2 ? "true" : "false", i % 5);
        if (len + (size_t)n + sizeof base_tail > target && i > 0)
            break;
        if (len + (size_t)n + sizeof base_tail > cap)
            break;
        memcpy(buf + len, item, (size_t)n);
        len += (size_t)n;
    }
    memcpy(buf + len, base_tail, sizeof base_tail - 1);
    len += sizeof base_tail - 1;
    body b = make_body(buf, len, "synthetic");
    free(buf);
    return b;
}

/* ---- spool rows ---------------------------------------------------------------------- */

typedef struct spool_job {
    int raw_fd;          /* baseline: write + fdatasync on this fd */
    pdw_spool *spool;    /* group commit */
    const corpus *c;
    double deadline;
    unsigned idx;
    unsigned long long events;
    int failures;
} spool_job;

static void *spool_worker(void *arg)
{
    spool_job *j = arg;
    char key[64];
    size_t i = j->idx % j->c->n;
    while (now_s() < j->deadline) {
        const body *b = &j->c->b[i];
        i = (i + 1) % j->c->n;
        if (j->spool) {
            int n = snprintf(key, sizeof key, "bench:%u:%llu", j->idx, j->events);
            if (pdw_spool_append(j->spool, key, (size_t)n, 0, b->p, b->len, NULL, NULL) != 0)
                j->failures++;
        } else {
            if (write(j->raw_fd, b->p, b->len) != (ssize_t)b->len || fdatasync(j->raw_fd) != 0)
                j->failures++;
        }
        j->events++;
    }
    return NULL;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* threads appenders for `seconds`; spool != 0: pdw_spool_append, else write+fdatasync. */
static void spool_row(const char *name, const corpus *c, const char *base, int use_spool,
                      unsigned threads, double seconds)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", base, name);
    rm_tree(dir);
    if (mkdir(dir, 0700) != 0)
        die("cannot create a spool directory");
    pdw_spool *sp = NULL;
    int fd = -1;
    if (use_spool) {
        pdw_spool_options so = PDW_SPOOL_OPTIONS_INIT;
        pdw_error err;
        pdw_error_clear(&err);
        if (pdw_spool_open(&sp, dir, &so, NULL, &err) != 0)
            die(err.message);
    } else {
        char f[4200];
        snprintf(f, sizeof f, "%s/raw.log", dir);
        fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            die("cannot create the baseline file");
    }
    spool_job *jobs = calloc(threads, sizeof *jobs);
    pthread_t *tid = calloc(threads, sizeof *tid);
    if (!jobs || !tid)
        die("out of memory");
    double t0 = now_s();
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (spool_job){ fd, sp, c, t0 + seconds, t, 0, 0 };
        if (pthread_create(&tid[t], NULL, spool_worker, &jobs[t]) != 0)
            die("pthread_create");
    }
    result r = { 0, 0, 0, 0 };
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        r.events += jobs[t].events;
        r.failures += jobs[t].failures;
    }
    double el = now_s() - t0;
    r.eps = (double)r.events / el;
    r.bytes_per_event = (double)c->bytes / (double)c->n;
    char extra[160];
    if (sp) {
        pdw_spool_stats st;
        pdw_spool_get_stats(sp, &st);
        snprintf(extra, sizeof extra,
                 "\"threads\":%u,\"fdatasyncs\":%llu,\"events_per_fdatasync\":%.1f", threads,
                 (unsigned long long)st.flushes,
                 st.flushes ? (double)st.appended / (double)st.flushes : 0.0);
        pdw_spool_close(sp);
    } else {
        snprintf(extra, sizeof extra,
                 "\"threads\":%u,\"fdatasyncs\":%llu,\"events_per_fdatasync\":1.0", threads,
                 r.events);
        close(fd);
    }
    print_row(name, r, extra);
    rm_tree(dir);
    free(jobs);
    free(tid);
}

/* ---- main ------------------------------------------------------------------------------ */

static result median_of(kind k, const corpus *c, pdw_receiver *r, void *sj, double seconds,
                        unsigned threads)
{
    result best[16];
    double eps[16];
    unsigned n = rounds > 16 ? 16 : rounds;
    for (unsigned i = 0; i < n; i++) {
        best[i] = run_round(k, c, r, sj, seconds / n, iters, threads);
        eps[i] = best[i].eps;
    }
    qsort(eps, n, sizeof eps[0], cmp_double);
    for (unsigned i = 0; i < n; i++)
        if (best[i].eps == eps[n / 2])
            return best[i];
    return best[0];
}

static void usage(void)
{
    fprintf(stderr, "usage: pdwebhook-bench [--only NAME[,NAME]] [--rounds N] [--iters N]\n"
                    "                       [--spool-dir DIR] [--spool-threads N] CORPUS_DIR "
                    "SECONDS\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (strcmp(a, "--only") == 0)
            only = v;
        else if (strcmp(a, "--rounds") == 0)
            rounds = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--iters") == 0)
            iters = strtoull(v, NULL, 10);
        else if (strcmp(a, "--spool-dir") == 0)
            spool_dir = v;
        else if (strcmp(a, "--spool-threads") == 0)
            spool_threads = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
        i++;
    }
    if (argc - i != 2)
        usage();
    const char *dir = argv[i];
    char *end;
    double seconds = strtod(argv[i + 1], &end);
    if (*end || seconds < 0)
        usage();
    if (rounds == 0)
        rounds = 1;
    if (spool_threads == 0 || spool_threads > 1024)
        spool_threads = 32;

    char raw[sizeof USER + sizeof PASSWORD];
    snprintf(raw, sizeof raw, "%s:%s", USER, PASSWORD);
    char b64[sizeof raw * 2];
    base64((const unsigned char *)raw, strlen(raw), b64);
    snprintf(auth_header, sizeof auth_header, "Basic %s", b64);

    corpus c = load_corpus(dir);
    fprintf(stderr, "pdwebhook-bench: %zu bodies, %zu bytes compact (%.0f per body), %.2f s "
                    "per row, pdwebhook %s, jansson %s\n",
            c.n, c.bytes, (double)c.bytes / (double)c.n, seconds, pdw_version(),
            JANSSON_VERSION);

    pdw_receiver *racc = make_receiver(noop_handler, 1);
    pdw_receiver *rfull = make_receiver(dom_handler, 1);
    void *sj = NULL;
#ifdef PDW_BENCH_SIMDJSON
    sj = pdw_bench_simdjson_new();
#endif

    /* core rows, interleaved by rounds, median round reported */
    static const char *const core_names[] = { "jansson_floor", "pdwebhook_accept",
                                              "pdwebhook_full", "simdjson_limit" };
    static const kind core_kinds[] = { K_JANSSON, K_ACCEPT, K_FULL, K_SIMDJSON };
    unsigned ncore = sj ? 4 : 3;
    result rs[4][16];
    unsigned nr = rounds > 16 ? 16 : rounds;
    for (unsigned r = 0; r < nr; r++)
        for (unsigned k = 0; k < ncore; k++)
            if (wanted(core_names[k]))
                rs[k][r] = run_round(core_kinds[k], &c, k == 2 ? rfull : racc, sj,
                                     seconds / nr, iters, 1);
    double core_eps[4] = { 0, 0, 0, 0 };
    for (unsigned k = 0; k < ncore; k++) {
        if (!wanted(core_names[k]))
            continue;
        double eps[16];
        for (unsigned r = 0; r < nr; r++)
            eps[r] = rs[k][r].eps;
        qsort(eps, nr, sizeof eps[0], cmp_double);
        result med = rs[k][0];
        for (unsigned r = 0; r < nr; r++)
            if (rs[k][r].eps == eps[nr / 2])
                med = rs[k][r];
        char extra[96];
        snprintf(extra, sizeof extra, "\"threads\":1,\"rounds\":%u,\"min_events_per_s\":%.0f,"
                 "\"max_events_per_s\":%.0f", nr, eps[0], eps[nr - 1]);
        print_row(core_names[k], med, extra);
        core_eps[k] = med.eps;
    }

    /* body size: cost per byte should stay flat */
    static const size_t sizes[] = { 1024, 4096, 16384, 65536, 262144, 1048576 };
    static const char *const size_names[] = { "1KB", "4KB", "16KB", "64KB", "256KB", "1MB" };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char name[64];
        snprintf(name, sizeof name, "accept_body_%s", size_names[s]);
        if (!wanted(name))
            continue;
        corpus one = { NULL, 0, 0 };
        corpus_add(&one, synthetic(sizes[s]));
        if (handle(racc, &one.b[0]) != 0)
            die("a synthetic body is refused");
        result r = median_of(K_ACCEPT, &one, racc, sj, seconds, 1);
        char extra[64];
        snprintf(extra, sizeof extra, "\"threads\":1,\"ns_per_byte\":%.3f",
                 1e9 / r.eps / r.bytes_per_event);
        print_row(name, r, extra);
        free(one.b[0].p);
        free(one.b);
    }

    /* registered patterns: dispatch cost should stay flat */
    static const unsigned pats[] = { 1, 10, 100, 1000 };
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        char name[64];
        snprintf(name, sizeof name, "accept_patterns_%u", pats[p]);
        if (!wanted(name))
            continue;
        pdw_receiver *r = make_receiver(noop_handler, pats[p]);
        result res = median_of(K_ACCEPT, &c, r, sj, seconds, 1);
        char extra[64];
        snprintf(extra, sizeof extra, "\"threads\":1,\"patterns\":%u", pats[p]);
        print_row(name, res, extra);
        pdw_receiver_free(r);
    }

    /* threads */
    for (unsigned t = 1; t <= 2; t++) {
        char name[64];
        snprintf(name, sizeof name, "accept_threads_%u", t);
        if (!wanted(name))
            continue;
        result res = median_of(K_ACCEPT, &c, racc, sj, seconds, t);
        char extra[64];
        snprintf(extra, sizeof extra, "\"threads\":%u", t);
        print_row(name, res, extra);
    }

    /* durable spool: one fdatasync per event vs group commit, same threads, same disk */
    if (wanted("spool_")) {
        char tmpl[4096];
        const char *base = spool_dir;
        int made = 0;
        if (!base) {
            const char *tmp = getenv("TMPDIR");
            snprintf(tmpl, sizeof tmpl, "%s/pdwebhook-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(tmpl))
                die("cannot create a temporary directory");
            base = tmpl;
            made = 1;
        }
        char name[64];
        snprintf(name, sizeof name, "spool_fsync_per_event_%ut", spool_threads);
        if (wanted(name))
            spool_row(name, &c, base, 0, spool_threads, seconds);
        snprintf(name, sizeof name, "spool_group_commit_%ut", spool_threads);
        if (wanted(name))
            spool_row(name, &c, base, 1, spool_threads, seconds);
        if (wanted("spool_group_commit_1t"))
            spool_row("spool_group_commit_1t", &c, base, 1, 1, seconds);
        if (made)
            rmdir(base);
    }

    if (core_eps[0] > 0 && core_eps[1] > 0 && core_eps[2] > 0) {
        fprintf(stderr, "pdwebhook-bench: full / jansson_floor = %.2f (target >= 0.9)\n",
                core_eps[2] / core_eps[0]);
        if (core_eps[3] > 0)
            fprintf(stderr, "pdwebhook-bench: accept / simdjson_limit = %.2f (target >= 0.5)\n",
                    core_eps[1] / core_eps[3]);
    }
#ifdef PDW_BENCH_SIMDJSON
    pdw_bench_simdjson_free(sj);
#endif
    pdw_receiver_free(racc);
    pdw_receiver_free(rfull);
    for (size_t k = 0; k < c.n; k++)
        free(c.b[k].p);
    free(c.b);
    return 0;
}
