/**
 * @file pdwebhook/receiver.h
 * @brief The request pipeline: one HTTP request in, the answer to send out.
 *
 * A server adapter (libmicrohttpd, evhttp, CGI, ...) hands the receiver a request as data
 * (::pdw_request); the receiver checks it, authenticates it, parses the event, drops
 * duplicates, hands the event on, and fills a ::pdw_verdict with the status, the reason
 * code and the headers to send. It never owns a socket, a thread or the process.
 *
 * ```
 *  method ─► Content-Type ─► size ─► auth ─► parse ─► dedup claim ─► accept hook ─► dispatch
 *   405         415           413     401     400        200 (dup)      503            200
 *                                                        503 (in flight)
 * ```
 *
 * Default status policy (every row configurable in ::pdw_receiver_options):
 * | situation                                   | status | reason                 |
 * |---------------------------------------------|--------|------------------------|
 * | accepted (handled, queued, or no handler)    | 200    | ::PDW_OK               |
 * | duplicate of an accepted delivery            | 200    | ::PDW_EDUPLICATE       |
 * | a retry (attempt >= 2) of a delivery still being accepted by another request | 503 + `Retry-After` | ::PDW_EINFLIGHT |
 * | a first attempt of a delivery still being accepted (another webhook's copy) | 200 | ::PDW_EDUPLICATE |
 * | method not POST                              | 405 + `Allow: POST` | ::PDW_EMETHOD |
 * | Content-Type not JSON                        | 415    | ::PDW_EMEDIATYPE       |
 * | body (or Content-Length) over the limit      | 413    | ::PDW_ETOOLARGE        |
 * | credentials missing / malformed / wrong      | 401 + `WWW-Authenticate: Basic` (403 for wrong: an option) | `PDW_EAUTH*` |
 * | not JSON, or not a Pipedrive event           | 400    | ::PDW_EJSON ... ::PDW_EFIELD |
 * | dedup store or accept hook failed            | 503 + `Retry-After` | ::PDW_ESTORE or the hook's code |
 * | a handler failed (synchronous dispatch)      | 200 (option: 500) | ::PDW_EHANDLER |
 *
 * Handler failures answer 200 by default: a non-2xx first attempt feeds Pipedrive's ban
 * counter (10 bans the webhook for 30 minutes and its events are lost).
 *
 * @par Dedup: claim, then confirm or release
 * The delivery key is claimed before the event is handed on. The claim is *confirmed*
 * exactly when the answer is 2xx and the claim is kept: the handlers succeeded (or failed
 * with a 2xx @c handler_error_status), or the accept hook returned 0 (any value >= 0 but
 * ::PDW_ACCEPT_DEFERRED). It is *released* when the answer asks for a retry: the accept
 * hook failed, or a handler failed with a non-2xx @c handler_error_status. A retry that
 * arrives in between (the first attempt still running: a handler slower than Pipedrive's
 * 10 s timeout) is answered 503 ::PDW_EINFLIGHT + `Retry-After`, never 200: had it been
 * answered 200 and the first attempt then failed, the event would be lost (see
 * pdwebhook/dedup.h). A *first* attempt that finds the claim in
 * flight is another webhook's copy of the same event (two subscriptions cover it): it is
 * answered 200 as a duplicate, because a 503 to a first attempt adds a point to Pipedrive's
 * ban counter of that webhook; the holder's own retries still cover a failure.
 *
 * @par The in-flight lease
 * A claim is made for a short lease
 * (::pdw_receiver_options::inflight_lease_ms, default 60 s) and its confirm keeps the key
 * for the whole dedup TTL (24 h). So a claim whose process crashed before it confirmed or
 * released it (in a journal flush, say), in a store that outlives the process (Redis), is
 * free again after the lease and a later retry of the delivery is handed on, instead of
 * being answered 503 ::PDW_EINFLIGHT until Pipedrive gives up and the event is lost. Why
 * 60 s: longer than any sane accept path or synchronous handler (Pipedrive itself gives up
 * on an answer after 10 s), and shorter than the gap to Pipedrive's last retry (150 s
 * after the first failure, so at least 150 s after the first attempt), which is therefore
 * taken as new after a crash. The price: a first attempt still running after the lease
 * (a synchronous handler slower than it) may be handed on a second time by a retry that
 * arrives after the lease, at least once, never lost.
 *
 * @par Thread safety
 * Register handlers on pdw_receiver_router() before the first request. After that,
 * pdw_receiver_handle() (and pdw_receiver_begin() / pdw_receiver_finish()) may be called
 * from many threads at once.
 */
#ifndef PDWEBHOOK_RECEIVER_H
#define PDWEBHOOK_RECEIVER_H

#include "allow.h"
#include "common.h"
#include "dedup.h"
#include "error.h"
#include "event.h"
#include "pipedrive.h"
#include "router.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A borrowed HTTP header: name and value spans (no NUL needed). */
typedef struct pdw_header {
    const char *name;  /**< header name, any case */
    size_t name_len;   /**< its length */
    const char *value; /**< header value, surrounding white space allowed */
    size_t value_len;  /**< its length */
} pdw_header;

/** @brief One HTTP request, all borrowed for the duration of the call. */
typedef struct pdw_request {
    unsigned version;          /**< ::PDW_REQUEST_VERSION */
    const char *method;        /**< "POST" (case-sensitive, as HTTP says) */
    size_t method_len;         /**< its length */
    const pdw_header *headers; /**< the request headers */
    size_t num_headers;        /**< their number */
    const char *query;         /**< the query string without '?', or NULL */
    size_t query_len;          /**< its length */
    const char *body;          /**< the body bytes (ignored by pdw_receiver_check_head()) */
    size_t body_len;           /**< their number */
    void *user;                /**< this request's context, handed to the
                                    accept hook (::pdw_accept_cb) as its @c request_user
                                    when the request reaches it: how the hook finds the
                                    request it runs for (a connection to suspend, a place
                                    for the journal's id) without thread-local state.
                                    pdw_receiver_begin() keeps it for
                                    pdw_receiver_finish(). NULL: none. Never dereferenced
                                    by the library */
    const char *peer;          /**< the address of the connection's other end, as text
                                    without port or brackets ("203.0.113.9",
                                    "2001:db8::1"); needed when the receiver has an
                                    @c allowlist (a request without it is then refused
                                    403); NULL: unknown */
    size_t peer_len;           /**< its length */
} pdw_request;

/** Version of ::pdw_request this header describes. */
#define PDW_REQUEST_VERSION 1
/** Initialiser for ::pdw_request. */
#define PDW_REQUEST_INIT PDW_STRUCT_INIT(pdw_request, PDW_REQUEST_VERSION)

/** Most headers a verdict carries. */
#define PDW_VERDICT_MAX_HEADERS 4

/** @brief The answer to send, filled by the receiver. Initialise with ::PDW_VERDICT_INIT. */
typedef struct pdw_verdict {
    unsigned version;     /**< ::PDW_VERDICT_VERSION, set by the caller */
    int status;           /**< HTTP status to send */
    int reason;           /**< ::PDW_OK or the `PDW_E*` code that decided it */
    size_t num_headers;   /**< headers to add to the response */
    pdw_header headers[PDW_VERDICT_MAX_HEADERS]; /**< borrowed from the receiver or the verdict */
    const char *body;     /**< a small JSON body (`{"ok":true}` or the error's name), static */
    size_t body_len;      /**< its length */
    const char *content_type; /**< "application/json", static */
    unsigned handlers_matched; /**< handlers that ran */
    unsigned handlers_failed;  /**< of which failed */
    int handler_rc;            /**< what the first failing handler returned, 0 if none */
    char event[2 * PDW_NAME_MAX + 2];       /**< canonical event name, "" when not parsed */
    char delivery_key[PDW_DELIVERY_KEY_MAX]; /**< "" when not parsed */
    char scratch_[32];    /**< private to the library (storage for header values); do not use */
    char webhook_id[PDW_ID_MAX + 1]; /**< `meta.webhook_id`, "" when unknown (for the ban model) */
    unsigned attempt;     /**< the delivery's 1-based attempt, 0 when not parsed */
} pdw_verdict;

/** Version of ::pdw_verdict this header describes. */
#define PDW_VERDICT_VERSION 1
/** Initialiser for ::pdw_verdict. */
#define PDW_VERDICT_INIT PDW_STRUCT_INIT(pdw_verdict, PDW_VERDICT_VERSION)

/** @brief One user/password pair; NUL-terminated UTF-8, neither empty, user without ':'. */
typedef struct pdw_credential {
    const char *user;     /**< the user name */
    const char *password; /**< the password */
} pdw_credential;

/**
 * @brief Accept hook return value: accepted, and the caller settles the dedup claim itself.
 *
 * The delivery is answered as accepted (200 ::PDW_OK) but its claim stays in flight:
 * retries meanwhile get 503 ::PDW_EINFLIGHT. The caller must end it, once it knows, with
 * pdw_receiver_confirm() (the delivery is safe: later retries are duplicates) or
 * pdw_receiver_release() (it is not: the next retry is handed on again), passing the
 * event's delivery key, or with pdw_receiver_settle(), which also turns the verdict into
 * the receiver's 503 when the delivery was not kept. For a program that answers only
 * after an asynchronous commit (e.g. a group-committed journal) and may still turn the
 * answer into a 503; pdwebhook/intake.h does all of it.
 */
#define PDW_ACCEPT_DEFERRED 1

/**
 * @brief The accept hook: take an accepted event somewhere durable before it is answered.
 *
 * Called after parsing and the dedup claim, instead of dispatching in-line. Return 0 and
 * the delivery is answered 200 and its dedup claim confirmed (hand the event to
 * pdw_receiver_dispatch_body() later, e.g. from a worker). Return ::PDW_ACCEPT_DEFERRED
 * and it is answered 200 but the claim stays in flight until the caller confirms or
 * releases it (see ::PDW_ACCEPT_DEFERRED). Any other value >= 0 is taken as 0. Return a
 * negative code (say ::PDW_ESTORE on a full disk) and the claim is released and the
 * delivery answered 503 with `Retry-After`, so Pipedrive retries.
 *
 * Called on the thread that called pdw_receiver_handle() or pdw_receiver_finish(), inside
 * that call, at most once per request.
 * @param ev the event, borrowed for the call (copy the body with pdw_event_body(), the key
 *   with pdw_event_delivery_key()).
 * @param request_user the request's own context: pdw_request::user of the request given
 *   to pdw_receiver_handle() or pdw_receiver_begin() (NULL when unset).
 * @param user as set in the options (@c accept_user): the same for every request.
 * @return 0, ::PDW_ACCEPT_DEFERRED, or a negative `PDW_E*` code (a negative value that is
 *   not one of ours is answered as ::PDW_ESTORE).
 */
typedef int (*pdw_accept_cb)(const pdw_event *ev, void *request_user, void *user);

/** @brief Clock for dedup expiry. @return milliseconds, monotonic enough for TTLs. */
typedef uint64_t (*pdw_clock_cb)(void *user);

/** @brief Receiver options. Initialise with ::PDW_RECEIVER_OPTIONS_INIT or pdw_receiver_options_init(). */
typedef struct pdw_receiver_options {
    unsigned version;                    /**< ::PDW_RECEIVER_OPTIONS_VERSION */
    const pdw_credential *credentials;   /**< accepted pairs (rotation); copied */
    size_t num_credentials;              /**< their number */
    const char *query_token;             /**< if set, the query must carry it; copied */
    const char *query_token_name;        /**< query parameter name; NULL: "token" */
    int insecure_no_auth;                /**< 1 to allow a receiver without any credential;
                                              0: refused (::PDW_ENOAUTH) */
    const char *realm;                   /**< WWW-Authenticate realm; NULL: "pdwebhook" */
    size_t max_body;                     /**< body limit in bytes; 0: 1 MiB */
    unsigned max_depth;                  /**< JSON depth limit; 0: ::PDW_DEFAULT_MAX_DEPTH */
    int wrong_credentials_status;        /**< 0: 401; 403 is the other sensible choice */
    int handler_error_status;            /**< 0: 200; 500 makes Pipedrive retry (ban risk) */
    int retry_after_seconds;             /**< Retry-After on 503; 0: 3 (when Pipedrive's
                                              first retry comes,
                                              ::PDW_PIPEDRIVE_RETRY1_DELAY_MS) */
    int allow_missing_content_type;      /**< 1 to accept a request without Content-Type;
                                              0: it is answered 415 */
    int disable_dedup;                   /**< 1 to hand on every delivery, retries too;
                                              0: dedup on */
    pdw_dedup_store *dedup;              /**< a store to use (pdw_dedup_memory_new(),
                                              pdw_redis_dedup_new(), your own): taken over
                                              by pdw_receiver_new() whatever it returns
                                              (also with @c disable_dedup), freed with the
                                              receiver or at once when it fails. NULL: a
                                              built-in memory store of @c dedup_capacity
                                              keys */
    size_t dedup_capacity;               /**< built-in store size; 0: 65536 keys */
    uint64_t dedup_ttl_ms;               /**< how long a confirmed key is kept; 0: 24 hours */
    pdw_accept_cb accept;                /**< NULL: dispatch synchronously */
    void *accept_user;                   /**< handed to @c accept as its last argument */
    pdw_clock_cb clock;                  /**< NULL: CLOCK_REALTIME in ms */
    void *clock_user;                    /**< handed to @c clock */
    const pdw_allocator *allocator;      /**< NULL: malloc/realloc/free; copied */
    uint64_t inflight_lease_ms;          /**< how long a claim in flight holds a key before
                                              it is confirmed (see "The in-flight lease"
                                              above); 0: 60000 (60 s); a value >= the dedup
                                              TTL: no lease, a claim holds the key for the
                                              full TTL */
    const pdw_allowlist *allowlist;      /**< NULL: any address may deliver. Otherwise only
                                              requests from an address in it (the peer,
                                              or the client a trusted proxy names) get
                                              further: the others are answered 403
                                              ::PDW_EFORBIDDEN before anything else is
                                              looked at. Borrowed: it must outlive the
                                              receiver and not change while in use */
    const pdw_allowlist *trusted_proxies; /**< NULL: the peer is the client. A peer in
                                              this list is a proxy whose
                                              `X-Forwarded-For` names the client: the
                                              rightmost address there that is not itself a
                                              trusted proxy (the header's other entries
                                              can be forged by the sender). Borrowed */
} pdw_receiver_options;

/** Version of ::pdw_receiver_options this header describes. */
#define PDW_RECEIVER_OPTIONS_VERSION 1
/** Initialiser for ::pdw_receiver_options: the version; every other member 0 / NULL, its
 *  default. */
#define PDW_RECEIVER_OPTIONS_INIT \
    PDW_STRUCT_INIT(pdw_receiver_options, PDW_RECEIVER_OPTIONS_VERSION)

/**
 * @brief Fill receiver options with defaults: every member 0 / NULL, the version set (what
 * ::PDW_RECEIVER_OPTIONS_INIT gives, for FFI, where the macro is out of reach).
 * @param[out] opts the options to fill.
 * @param version ::PDW_RECEIVER_OPTIONS_VERSION.
 * @return 0, ::PDW_EINVAL (@p opts NULL) or ::PDW_EVERSIONSTRUCT (another version: @p opts
 *   untouched).
 * @par Thread safety
 * Any thread.
 */
PDW_EXTERN int pdw_receiver_options_init(pdw_receiver_options *opts, unsigned version);

/** @brief Opaque receiver. */
typedef struct pdw_receiver pdw_receiver;

/**
 * @brief Create a receiver.
 *
 * Credentials, token and realm are copied (and wiped on free). A receiver without
 * credentials and without a query token is refused unless @c insecure_no_auth is 1.
 * @param[out] out the receiver, free with pdw_receiver_free().
 * @param opts options (credentials, policy); required (NULL gives ::PDW_EINVAL), of
 *   version ::PDW_RECEIVER_OPTIONS_VERSION.
 * @param err optional error detail, or NULL; never contains a secret.
 * @return 0, ::PDW_ENOAUTH, ::PDW_EINVAL (bad credential, realm, status, a dedup store
 *   without claim, release or confirm), ::PDW_ENOMEM, ::PDW_EVERSIONSTRUCT (options or
 *   dedup store of another version).
 */
PDW_EXTERN int pdw_receiver_new(pdw_receiver **out, const pdw_receiver_options *opts,
                                pdw_error *err);

/** @brief Free a receiver, its router and the dedup store it owns. @param r the receiver or NULL. */
PDW_EXTERN void pdw_receiver_free(pdw_receiver *r);

/** @brief The receiver's router, to register handlers on. Borrowed; never NULL. */
PDW_EXTERN pdw_router *pdw_receiver_router(pdw_receiver *r);

/**
 * @brief Check a request before reading its body: method, Content-Type, Content-Length
 * against the limit, and credentials.
 *
 * Lets an adapter refuse a 2 GiB upload without reading it.
 * @param r the receiver.
 * @param req the request; its body is ignored.
 * @param[out] verdict filled when the request is refused.
 * @return 0 to go on and read the body, or the negative reason (verdict filled).
 */
PDW_EXTERN int pdw_receiver_check_head(const pdw_receiver *r, const pdw_request *req,
                                       pdw_verdict *verdict);

/**
 * @brief Run the whole pipeline on one request and fill the answer.
 *
 * Handlers (or the accept hook) run inside this call, on the calling thread.
 * @param r the receiver.
 * @param req the request, borrowed for the duration of the call.
 * @param[out] verdict the answer to send; always filled, also on failure.
 * @param err optional detail (JSON byte offset, ...). Never contains a secret.
 * @return the verdict's reason: 0 (accepted), ::PDW_EDUPLICATE, ::PDW_EHANDLER, or the
 *   negative code that refused the request (::PDW_EINFLIGHT: the same delivery is being
 *   accepted by another request right now; 503 + `Retry-After`).
 */
PDW_EXTERN int pdw_receiver_handle(pdw_receiver *r, const pdw_request *req,
                                   pdw_verdict *verdict, pdw_error *err);

/**
 * @brief A request whose head passed pdw_receiver_begin(), waiting for its body. Opaque.
 *
 * It exists only for a request whose method, Content-Type, declared size and credentials
 * were accepted, so pdw_receiver_finish() does not check the credentials again: that is
 * what it saves over pdw_receiver_check_head() followed by pdw_receiver_handle(), which
 * checks the head twice.
 */
typedef struct pdw_receiver_pending pdw_receiver_pending;

/**
 * @brief Check a request's head, credentials included, and remember that it passed; the
 * body follows with pdw_receiver_finish().
 *
 * The two-step form of pdw_receiver_handle() for adapters that receive the body after the
 * headers (as pdw_receiver_check_head() does, it lets an adapter refuse a request before
 * reading its body), with the head checked once per request. The same checks and the same
 * verdicts as pdw_receiver_handle(), in the same order.
 * @param[out] out on success, the pending request: free it with
 *   pdw_receiver_pending_free() once the request is over (also when the body never came);
 *   NULL otherwise.
 * @param r the receiver; it must outlive the pending request.
 * @param req the request; its body is ignored. Borrowed for the call only: nothing of it
 *   is kept but its Content-Length.
 * @param[out] verdict filled when the request is refused.
 * @return 0 to go on and read the body; else the negative reason (verdict filled):
 *   ::PDW_EMETHOD, ::PDW_EMEDIATYPE, ::PDW_EHEADER, ::PDW_ETOOLARGE, `PDW_EAUTH*`,
 *   ::PDW_EVERSIONSTRUCT, ::PDW_ENOMEM; ::PDW_EINVAL for a NULL argument (verdict
 *   unchanged).
 * @par Thread safety
 * As pdw_receiver_handle(): from many threads at once. A pending request belongs to one
 * thread at a time.
 */
PDW_EXTERN int pdw_receiver_begin(pdw_receiver_pending **out, pdw_receiver *r,
                                  const pdw_request *req, pdw_verdict *verdict);

/**
 * @brief Run the rest of the pipeline (size, parse, dedup, accept hook or dispatch) on the
 * body of a request that passed pdw_receiver_begin(), and fill the answer.
 *
 * Good once per pending request: a second call is refused (::PDW_EINVAL, status 500)
 * without looking at the body, so that one authenticated head can never carry two bodies.
 * The body is checked against the limit and against the Content-Length the head declared.
 * @param p the pending request (not freed: call pdw_receiver_pending_free() after).
 * @param body the body bytes (no NUL needed), borrowed for the call.
 * @param len their number.
 * @param[out] verdict the answer to send; always filled when @p p and it are not NULL.
 * @param err optional detail, or NULL. Never contains a secret.
 * @return as pdw_receiver_handle(): 0, ::PDW_EDUPLICATE, ::PDW_EHANDLER, or the negative
 *   code that refused the request; ::PDW_EINVAL for a NULL argument or a second call.
 */
PDW_EXTERN int pdw_receiver_finish(pdw_receiver_pending *p, const char *body, size_t len,
                                   pdw_verdict *verdict, pdw_error *err);

/** @brief Free a pending request (finished or not). @param p the pending request or NULL. */
PDW_EXTERN void pdw_receiver_pending_free(pdw_receiver_pending *p);

/**
 * @brief Confirm the dedup claim of a delivery whose accept hook returned
 * ::PDW_ACCEPT_DEFERRED: it is safe now, later retries of it are duplicates.
 *
 * The key is confirmed for the receiver's dedup TTL from now (its clock): the claim held
 * it only for the in-flight lease.
 * @param r the receiver.
 * @param key the delivery key (pdw_event_delivery_key(), pdw_verdict::delivery_key), no
 *   NUL needed; borrowed for the call.
 * @param key_len its length.
 * @return 0 (also with dedup disabled: nothing to confirm),
 *   ::PDW_EINVAL (NULL argument), or the store's code (the built-in store:
 *   ::PDW_ENOTFOUND when the key is no longer held, e.g. released, or its lease ran out:
 *   a later retry is then handed on again).
 * @par Thread safety
 * From any thread, like pdw_receiver_handle().
 */
PDW_EXTERN int pdw_receiver_confirm(pdw_receiver *r, const char *key, size_t key_len);

/**
 * @brief Release the dedup claim of a delivery whose accept hook returned
 * ::PDW_ACCEPT_DEFERRED and which was not accepted after all (e.g. its journal flush
 * failed and it is answered 503): the next retry of it is handed on again.
 * @param r the receiver.
 * @param key the delivery key, no NUL needed; borrowed for the call.
 * @param key_len its length.
 * @return 0 (also with dedup disabled), ::PDW_EINVAL (NULL argument), or the store's code.
 * @par Thread safety
 * From any thread, like pdw_receiver_handle().
 */
PDW_EXTERN int pdw_receiver_release(pdw_receiver *r, const char *key, size_t key_len);

/**
 * @brief Settle the dedup claim of a delivery whose accept hook returned
 * ::PDW_ACCEPT_DEFERRED, and give its final answer, from its verdict.
 *
 * For a program that answers only after an asynchronous commit (a group-committed
 * journal: see pdwebhook/intake.h, which calls it for you): once the commit is over, call
 * it with the commit's outcome and the verdict pdw_receiver_handle() or
 * pdw_receiver_finish() filled (200 ::PDW_OK, deferred), and send what the verdict says
 * afterwards.
 * - @p outcome 0 (the delivery is safe): its claim is confirmed, as
 *   pdw_receiver_confirm() does; the verdict is left as it is (a failing confirm is
 *   ignored, as the receiver ignores it: the delivery was kept).
 * - @p outcome negative (say ::PDW_EIO: the flush failed): its claim is released, as
 *   pdw_receiver_release() does, so that Pipedrive's retry is taken as new, and the
 *   verdict is refilled exactly as the receiver answers an accept hook that failed with
 *   @p outcome: 503, `Retry-After` from the receiver's @c retry_after_seconds, the code's
 *   JSON body, @c reason @p outcome (a negative value that is not one of ours:
 *   ::PDW_ESTORE). The status policy stays in one place.
 *
 * The delivery key is read from @c verdict->delivery_key (an empty one: nothing was
 * claimed, nothing is released); the verdict's other members (event, attempt, webhook
 * id) are kept.
 * @param r the receiver that filled @p verdict.
 * @param outcome 0 or a negative `PDW_E*` code.
 * @param[in,out] verdict the deferred delivery's verdict.
 * @return 0 (@p outcome 0), the verdict's new reason (@p outcome negative), or
 *   ::PDW_EINVAL (NULL argument, @p outcome positive, or a verdict without a
 *   NUL-terminated key; nothing done).
 * @par Thread safety
 * From any thread, like pdw_receiver_handle(); one call per deferred delivery.
 */
PDW_EXTERN int pdw_receiver_settle(pdw_receiver *r, int outcome, pdw_verdict *verdict);

/**
 * @brief Remember a delivery accepted before, e.g. found in a journal at start: later
 * retries of it are duplicates.
 *
 * The key is claimed and confirmed in the receiver's dedup store as if the delivery had
 * been accepted at @p received_ms: it is kept for the receiver's dedup TTL
 * (::pdw_receiver_options::dedup_ttl_ms) from then. A key the store holds confirmed
 * already is left as it is. Nothing is handed on.
 * @param r the receiver.
 * @param key the delivery key, no NUL needed; borrowed for the call.
 * @param key_len its length.
 * @param received_ms when the delivery arrived, in the receiver's clock (ms since the
 *   epoch by default).
 * @return 0 (also with dedup disabled), ::PDW_EINVAL (NULL argument), or the store's
 *   negative code.
 * @par Thread safety
 * From any thread, like pdw_receiver_handle().
 */
PDW_EXTERN int pdw_receiver_remember(pdw_receiver *r, const char *key, size_t key_len,
                                     int64_t received_ms);

/**
 * @brief Claim a key in the receiver's dedup store for something that is not a delivery,
 * e.g. a reconciled record's update key (pdwebhook/reconcile.h), as a delivery's key is
 * claimed: held for the in-flight lease until pdw_receiver_confirm() (kept for the dedup
 * TTL) or pdw_receiver_release().
 * @param r the receiver.
 * @param key the key, no NUL needed; borrowed for the call.
 * @param key_len its length.
 * @return ::PDW_CLAIM_NEW (claimed: confirm or release it; also with dedup disabled),
 *   ::PDW_CLAIM_DUPLICATE (held and confirmed already), ::PDW_CLAIM_INFLIGHT (claimed by
 *   someone else, not settled yet), ::PDW_EINVAL, or the store's negative code.
 * @par Thread safety
 * From any thread, like pdw_receiver_handle().
 */
PDW_EXTERN int pdw_receiver_claim(pdw_receiver *r, const char *key, size_t key_len);

/**
 * @brief Parse and dispatch a body accepted earlier (by the accept hook) to the router.
 *
 * No authentication and no dedup: the body was checked when it arrived.
 * @param r the receiver.
 * @param body the body bytes (no NUL needed), borrowed for the call.
 * @param len their number.
 * @param[out] result what ran; may be NULL.
 * @param err optional error detail, or NULL.
 * @return 0, ::PDW_EHANDLER, or a parse error code.
 */
PDW_EXTERN int pdw_receiver_dispatch_body(pdw_receiver *r, const char *body, size_t len,
                                          pdw_dispatch_result *result, pdw_error *err);

#ifdef __cplusplus
}
#endif
#endif
