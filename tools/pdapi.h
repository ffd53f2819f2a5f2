/* pdapi: the small Pipedrive API client of the program's reconciliation (pdwebhook
 * reconcile, serve --reconcile): GET with the token in a header, never in a URL or a
 * message; 429 answered by waiting Retry-After (bounded) and asking again; 5xx and
 * network errors retried a few times with backoff. libcurl; loopback or https. */
#ifndef PDW_PDAPI_H
#define PDW_PDAPI_H

#include <jansson.h>
#include <stddef.h>

#define PDAPI_DEFAULT_BASE_URL "https://api.pipedrive.com/v1"

typedef struct pdapi {
    const char *prog;        /* for messages */
    char base[2048];         /* the v1 base, no trailing slash: https://api.pipedrive.com/v1 */
    char base_v2[2048];      /* the v2 endpoints beside it: https://api.pipedrive.com/api/v2 */
    char auth_header[1024];  /* wiped by pdapi_fini() */
    long timeout_s;          /* per request */
    unsigned max_wait_s;     /* the longest Retry-After honoured (longer: this long) */
    unsigned long requests;  /* answered requests */
    unsigned long throttled; /* 429s waited out */
    volatile int *stop;      /* non-zero: give up waiting (a signal); may be NULL */
} pdapi;

/* Base URL and token (an API token or an OAuth token; NULL when absent). 0, or -1 after
 * printing why (never the token). */
int pdapi_init(pdapi *c, const char *prog, const char *base_url, const char *api_token,
               const char *oauth_token);
void pdapi_fini(pdapi *c);

/* GET url (absolute, built from base or base_v2): the parsed {"success":true,...} document
 * (json_decref it), or NULL with err filled (HTTP status and Pipedrive's reason; never the
 * token). Waits out 429s and retries 5xx and network errors. */
json_t *pdapi_get(pdapi *c, const char *url, char *err, size_t errcap);

/* One request, not retried (a POST must not be repeated blindly): method ("GET", "POST",
 * "DELETE"), body (JSON) or NULL. Returns the HTTP status, 0 when none came; *doc is the
 * parsed answer or NULL (json_decref it); err filled unless 2xx (never the token). */
long pdapi_request(pdapi *c, const char *method, const char *url, const char *body,
                   json_t **doc, char *err, size_t errcap);

/* Append s to url percent-encoded (pdapi_url_add) or as it is (pdapi_url_raw). 0, or -1
 * when it does not fit (url unchanged). */
int pdapi_url_add(char *url, size_t cap, const char *s);
int pdapi_url_raw(char *url, size_t cap, const char *s);

#endif
