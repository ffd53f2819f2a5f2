/* The ban model: Pipedrive's ban counter kept per webhook, predicted bans recorded as
 * possible losses, and the time since the last successful delivery. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "pdwebhook/pipedrive.h"

#define MAX_LOSSES 64

typedef struct book {
    pdw_health_webhook w;
    int64_t last_seen_ms;
} book;

typedef struct loss {
    char webhook_id[72];
    int64_t from_ms, to_ms;
} loss;

struct pdw_health {
    pdw_allocator alloc;
    pthread_mutex_t lock;
    unsigned threshold;
    uint64_t ban_ms, timeout_ms, stale_ms;
    size_t max;
    pdw_possible_loss_cb on_loss;
    void *user;
    book *books;
    size_t count;
    loss losses[MAX_LOSSES]; /* a ring of the most recent predicted bans */
    size_t nlosses, loss_head;
};

int pdw_health_options_init(pdw_health_options *opts, unsigned version)
{
    return pdw__struct_init(opts, sizeof *opts, version, PDW_HEALTH_OPTIONS_VERSION);
}

int pdw_health_new(pdw_health **out, const pdw_health_options *opts, pdw_error *err)
{
    pdw__error_reset(err);
    pdw_allocator a;
    if (!out)
        return pdw__error_set(err, PDW_EINVAL, -1, "out is NULL");
    *out = NULL;
    if (opts && opts->version != PDW_HEALTH_OPTIONS_VERSION)
        return pdw__error_set(err, PDW_EVERSIONSTRUCT, -1, "health options version %u",
                              opts->version);
    if (pdw__alloc_set(&a, opts ? opts->allocator : NULL) < 0)
        return pdw__error_set(err, PDW_EINVAL, -1, "incomplete allocator");
    pdw_health *h = pdw__calloc(&a, 1, sizeof *h);
    if (!h)
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    h->alloc = a;
    h->threshold = opts && opts->ban_threshold ? opts->ban_threshold
                                                : PDW_PIPEDRIVE_BAN_THRESHOLD;
    h->ban_ms = opts && opts->ban_ms ? opts->ban_ms : PDW_PIPEDRIVE_BAN_MS;
    h->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : PDW_PIPEDRIVE_TIMEOUT_MS;
    h->stale_ms = opts && opts->stale_ms ? opts->stale_ms : 48ull * 3600 * 1000;
    h->max = opts && opts->max_webhooks ? opts->max_webhooks : 1024;
    h->on_loss = opts ? opts->on_possible_loss : NULL;
    h->user = opts ? opts->user : NULL;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        pdw__free(&a, h);
        return pdw__error_set(err, PDW_ENOMEM, -1, NULL);
    }
    *out = h;
    return 0;
}

void pdw_health_free(pdw_health *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->lock);
    pdw_allocator a = h->alloc;
    pdw__free(&a, h->books);
    pdw__free(&a, h);
}

/* The webhook's book, made when first seen; the least recently seen one gives way when
 * the table is full. NULL on out-of-memory. */
static book *find(pdw_health *h, const char *id, int64_t now_ms)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcmp(h->books[i].w.webhook_id, id) == 0)
            return &h->books[i];
    if (h->count == h->max) {
        size_t old = 0;
        for (size_t i = 1; i < h->count; i++)
            if (h->books[i].last_seen_ms < h->books[old].last_seen_ms)
                old = i;
        memmove(&h->books[old], &h->books[old + 1], (h->count - old - 1) * sizeof *h->books);
        h->count--;
    } else if (h->count % 16 == 0) {
        book *b = pdw__realloc(&h->alloc, h->books, (h->count + 16) * sizeof *b);
        if (!b)
            return NULL;
        h->books = b;
    }
    book *b = &h->books[h->count++];
    memset(b, 0, sizeof *b);
    snprintf(b->w.webhook_id, sizeof b->w.webhook_id, "%s", id);
    b->last_seen_ms = now_ms;
    return b;
}

int pdw_health_record(pdw_health *h, const char *webhook_id, unsigned attempt, int status,
                      uint64_t latency_ms, int64_t now_ms)
{
    int banned = 0;
    int failed = status < 200 || status > 299 || latency_ms > h->timeout_ms;
    pthread_mutex_lock(&h->lock);
    book *b = find(h, webhook_id && *webhook_id ? webhook_id : "unknown", now_ms);
    if (!b) {
        pthread_mutex_unlock(&h->lock);
        return PDW_ENOMEM;
    }
    b->last_seen_ms = now_ms;
    b->w.deliveries++;
    if (failed) {
        b->w.failures++;
        /* only first attempts feed Pipedrive's counter */
        if (attempt <= 1 && ++b->w.failed_first_attempts >= h->threshold) {
            b->w.failed_first_attempts = 0;
            b->w.bans++;
            b->w.ban_from_ms = now_ms;
            b->w.ban_to_ms = now_ms + (int64_t)h->ban_ms;
            loss *l = &h->losses[h->loss_head];
            memcpy(l->webhook_id, b->w.webhook_id, sizeof l->webhook_id);
            l->from_ms = b->w.ban_from_ms;
            l->to_ms = b->w.ban_to_ms;
            h->loss_head = (h->loss_head + 1) % MAX_LOSSES;
            if (h->nlosses < MAX_LOSSES)
                h->nlosses++;
            if (h->on_loss)
                h->on_loss(b->w.webhook_id, b->w.ban_from_ms, b->w.ban_to_ms, h->user);
            banned = 1;
        }
    } else {
        b->w.last_success_ms = now_ms;
    }
    pthread_mutex_unlock(&h->lock);
    return banned;
}

size_t pdw_health_count(pdw_health *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->count;
    pthread_mutex_unlock(&h->lock);
    return n;
}

static void judge(const pdw_health *h, const book *b, int64_t now_ms, pdw_health_webhook *out)
{
    *out = b->w;
    out->banned = b->w.bans && now_ms >= b->w.ban_from_ms && now_ms < b->w.ban_to_ms;
    int64_t since = b->w.last_success_ms ? b->w.last_success_ms : b->last_seen_ms;
    out->stale = b->w.failures && now_ms - since >= (int64_t)h->stale_ms;
}

int pdw_health_get(pdw_health *h, size_t i, int64_t now_ms, pdw_health_webhook *out)
{
    pthread_mutex_lock(&h->lock);
    if (i >= h->count) {
        pthread_mutex_unlock(&h->lock);
        return PDW_ENOTFOUND;
    }
    judge(h, &h->books[i], now_ms, out);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

/* A growing string; ok = 0 after an allocation failure. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int ok;
} sbuf;

static void put(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    for (int tries = 0; s->ok && tries < 2; tries++) {
        va_start(ap, fmt);
        int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->ok = 0;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = (s->cap + (size_t)n + 1) * 2;
        char *p = realloc(s->p, cap); /* handed out: freed with pdw_free() */
        if (!p) {
            s->ok = 0;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
}

/* Webhook ids come from request bodies: keep them printable and JSON-safe. */
static void put_raw_id(sbuf *s, const char *id)
{
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        put(s, "%c", (*c < 0x20 || *c == '"' || *c == '\\' || *c >= 0x7f) ? '?' : *c);
}

static void put_id(sbuf *s, const char *id)
{
    put(s, "\"");
    put_raw_id(s, id);
    put(s, "\"");
}

char *pdw_health_json(pdw_health *h, int64_t now_ms)
{
    sbuf s = { malloc(1024), 0, 1024, 1 };
    if (!s.p)
        return NULL;
    s.p[0] = '\0';
    pthread_mutex_lock(&h->lock);
    put(&s, "{\"webhooks\":[");
    for (size_t i = 0; i < h->count; i++) {
        pdw_health_webhook w;
        judge(h, &h->books[i], now_ms, &w);
        put(&s, "%s{\"webhook_id\":", i ? "," : "");
        put_id(&s, w.webhook_id);
        put(&s,
            ",\"failed_first_attempts\":%u,\"bans\":%u,\"banned\":%s,\"ban_from_ms\":%lld,"
            "\"ban_to_ms\":%lld,\"last_success_ms\":%lld,\"stale\":%s,\"deliveries\":%llu,"
            "\"failures\":%llu}",
            w.failed_first_attempts, w.bans, w.banned ? "true" : "false",
            (long long)w.ban_from_ms, (long long)w.ban_to_ms, (long long)w.last_success_ms,
            w.stale ? "true" : "false", (unsigned long long)w.deliveries,
            (unsigned long long)w.failures);
    }
    put(&s, "],\"possible_losses\":[");
    for (size_t k = 0; k < h->nlosses; k++) {
        const loss *l = &h->losses[(h->loss_head + MAX_LOSSES - h->nlosses + k) % MAX_LOSSES];
        put(&s, "%s{\"webhook_id\":", k ? "," : "");
        put_id(&s, l->webhook_id);
        put(&s, ",\"from_ms\":%lld,\"to_ms\":%lld}", (long long)l->from_ms, (long long)l->to_ms);
    }
    put(&s, "],\"warnings\":[");
    int first = 1;
    for (size_t i = 0; i < h->count; i++) {
        pdw_health_webhook w;
        judge(h, &h->books[i], now_ms, &w);
        if (w.banned) {
            put(&s, "%s\"webhook ", first ? "" : ",");
            put_raw_id(&s, w.webhook_id);
            put(&s, " is predicted banned until %lld: its events in that window may be lost\"",
                (long long)w.ban_to_ms);
            first = 0;
        }
        if (w.stale) {
            put(&s, "%s\"webhook ", first ? "" : ",");
            put_raw_id(&s, w.webhook_id);
            put(&s, ": no successful delivery for 48 hours; Pipedrive deletes a webhook after "
                    "3 days without one\"");
            first = 0;
        }
    }
    put(&s, "]}");
    pthread_mutex_unlock(&h->lock);
    if (!s.ok) {
        free(s.p);
        return NULL;
    }
    return s.p;
}
