/* Tests for lib/subscriptions.c: the planner (translation, refusals, collapsing, warnings,
 * the limit), the POST bodies, the diff used by sync, secrecy of messages and allocation
 * failure. Pure: no network. */
#include "pdw_test.h"

#include <jansson.h>

#include "pdwebhook/pdwebhook.h"
#include "pdwebhook/subscriptions.h"

#define URL "https://hooks.example.com/pipedrive?token=TOPSECRET"
#define PW "hunter2-SECRETPW"

static pdw_plan *plan_v(const char *version)
{
    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    o.webhook_version = version;
    o.subscription_url = URL;
    o.http_auth_user = "pipedrive";
    o.http_auth_password = PW;
    pdw_plan *p = NULL;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_new(&p, &o, &err), 0);
    assert_non_null(p);
    return p;
}

/* The plan as "action.object action.object ..." in its order. */
static void plan_text(const pdw_plan *p, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < pdw_plan_count(p); i++) {
        int n = snprintf(buf + off, cap - off, "%s%s.%s", i ? " " : "", pdw_plan_action(p, i),
                         pdw_plan_object(p, i));
        assert_true(n > 0 && (size_t)n < cap - off);
        off += (size_t)n;
    }
}

static void assert_plan(const char *version, const char *list, const char *want)
{
    pdw_plan *p = plan_v(version);
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_plan_add_list(p, list, &err);
    if (rc)
        fail_msg("add_list(%s): %s", list, err.message);
    char got[1024];
    plan_text(p, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("version %s, triggers '%s': got '%s', want '%s'", version, list, got, want);
    pdw_plan_free(p);
}

static int has_warning(const pdw_plan *p, const char *needle)
{
    for (size_t i = 0; i < pdw_plan_warning_count(p); i++)
        if (strstr(pdw_plan_warning(p, i), needle))
            return 1;
    return 0;
}

/* ---- options ------------------------------------------------------------------------ */

static void test_options(void **state)
{
    (void)state;
    pdw_plan_options o;
    assert_int_equal(pdw_plan_options_init(&o, PDW_PLAN_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, PDW_PLAN_OPTIONS_VERSION);
    assert_null(o.subscription_url);
    assert_int_equal(pdw_plan_options_init(&o, 99), PDW_EVERSIONSTRUCT);
    assert_int_equal(pdw_plan_options_init(NULL, PDW_PLAN_OPTIONS_VERSION), PDW_EINVAL);

    pdw_plan *p = (pdw_plan *)1;
    assert_int_equal(pdw_plan_new(&p, NULL, NULL), PDW_EINVAL);
    assert_null(p);
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL); /* no URL */
    static const char *const bad_urls[] = { "ftp://x/", "hooks.example.com", "https://",
                                            "https:///path", "https://a b/", "http://x/\n" };
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        o.subscription_url = bad_urls[i];
        assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL);
    }
    o.subscription_url = URL;
    o.webhook_version = "3.0";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL);
    o.webhook_version = "1";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_string_equal(pdw_plan_version(p), "1.0");
    assert_string_equal(pdw_plan_url(p), URL);
    assert_int_equal(pdw_plan_count(p), 0);
    pdw_plan_free(p);
    o.webhook_version = NULL;
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_string_equal(pdw_plan_version(p), "2.0"); /* the default */
    pdw_plan_free(p);

    o.user_id = "12a";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL);
    o.user_id = "123";
    o.http_auth_user = "u";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL); /* user without password */
    o.http_auth_password = "p";
    o.http_auth_user = "a:b";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL);
    o.http_auth_user = "u";
    o.name_prefix = "";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EINVAL);
    o.name_prefix = "my app";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    pdw_plan_free(p);
    pdw_plan_free(NULL);

    o.version = 7;
    assert_int_equal(pdw_plan_new(&p, &o, NULL), PDW_EVERSIONSTRUCT);
}

/* ---- translation and refusals ------------------------------------------------------- */

static void test_translation(void **state)
{
    (void)state;
    /* either version's words in, the plan version's words out */
    assert_plan("2.0", "updated.deal", "change.deal");
    assert_plan("2.0", "added.person,deleted.note", "delete.note create.person");
    assert_plan("1.0", "change.deal", "updated.deal");
    assert_plan("1.0", "create.person delete.note", "deleted.note added.person");
    assert_plan("1.0", "merged.deal", "merged.deal");
    /* same trigger in both spellings: one subscription */
    assert_plan("2.0", "updated.deal change.deal", "change.deal");
    assert_plan("2.0", "change.lead", "change.lead");
    assert_plan("1.0", "*.activityType", "*.activityType");
    /* new v2 objects are welcome */
    assert_plan("2.0", "create.deal_product,*.task", "create.deal_product *.task");
}

static void expect_refusal(const char *version, const char *trigger, int code,
                           const char *needle)
{
    pdw_plan *p = plan_v(version);
    pdw_error err;
    pdw_error_clear(&err);
    int rc = pdw_plan_add(p, trigger, &err);
    if (rc != code)
        fail_msg("%s in %s: got %s, want %s", trigger, version, pdw_err_name(rc),
                 pdw_err_name(code));
    assert_int_equal(err.code, code);
    if (needle && !strstr(err.message, needle))
        fail_msg("%s: message '%s' lacks '%s'", trigger, err.message, needle);
    assert_int_equal(pdw_plan_count(p), 0); /* nothing added */
    pdw_plan_free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refusal("2.0", "merged.deal", PDW_EUNSUPPORTED, "change.deal");
    expect_refusal("2.0", "merged.*", PDW_EUNSUPPORTED, "merged");
    expect_refusal("1.0", "merged.activity", PDW_EUNSUPPORTED, "deal, person and organization");
    expect_refusal("1.0", "merged.note", PDW_EUNSUPPORTED, NULL);
    expect_refusal("1.0", "change.lead", PDW_EUNSUPPORTED, "2.0 only");
    expect_refusal("1.0", "*.deal_product", PDW_EUNSUPPORTED, "2.0 only");
    expect_refusal("1.0", "added.persons", PDW_EUNSUPPORTED, "not a webhooks 1.0 object");
    expect_refusal("2.0", "*.activityType", PDW_EUNSUPPORTED, "1.0 only");
    expect_refusal("2.0", "updated.activityType", PDW_EUNSUPPORTED, NULL);
    /* malformed */
    static const char *const bad[] = { "deal", "updated.", ".deal", "a.b.c", "moved.deal",
                                       "updated.de-al", "Updated.deal", "", "updated.deal ",
                                       "**.deal" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refusal("2.0", bad[i], PDW_EPATTERN, NULL);
    expect_refusal("2.0", "updated.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                   PDW_EPATTERN, NULL); /* 49 bytes */

    pdw_plan *p = plan_v("2.0");
    assert_int_equal(pdw_plan_add(p, NULL, NULL), PDW_EINVAL);
    assert_int_equal(pdw_plan_add(NULL, "updated.deal", NULL), PDW_EINVAL);
    assert_int_equal(pdw_plan_add_list(p, " , ,", NULL), PDW_EPATTERN);
    /* a list stops at the first bad trigger; earlier ones stay */
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_add_list(p, "create.deal,merged.person,delete.deal", &err),
                     PDW_EUNSUPPORTED);
    assert_int_equal(pdw_plan_count(p), 1);
    pdw_plan_free(p);
}

/* ---- collapsing --------------------------------------------------------------------- */

static void test_collapse_wildcards(void **state)
{
    (void)state;
    assert_plan("2.0", "updated.deal,*.deal", "*.deal");
    assert_plan("2.0", "*.deal,updated.deal", "*.deal");
    assert_plan("2.0", "create.*,create.deal,create.person", "create.*");
    assert_plan("2.0", "create.deal,*.*,delete.lead", "*.*");
    assert_plan("2.0", "create.*,*.deal", "create.* *.deal");
    assert_plan("1.0", "merged.*,merged.deal,merged.person", "merged.*");
    assert_plan("1.0", "*.*,merged.deal", "*.*");
    /* updated.deal does not get merges in v1: both stay */
    assert_plan("1.0", "updated.deal,merged.deal", "updated.deal merged.deal");

    pdw_plan *p = plan_v("2.0");
    assert_int_equal(pdw_plan_add_list(p, "updated.deal,*.deal", NULL), 0);
    assert_true(has_warning(p, "change.deal is covered by *.deal"));
    pdw_plan_free(p);
}

static void test_collapse_full_action_set(void **state)
{
    (void)state;
    assert_plan("2.0", "create.deal,change.deal,delete.deal", "*.deal");
    assert_plan("2.0", "create.deal,change.deal", "create.deal change.deal");
    /* v1: the full set of a mergeable object includes merged */
    assert_plan("1.0", "added.deal,updated.deal,deleted.deal",
                "added.deal updated.deal deleted.deal");
    assert_plan("1.0", "added.deal,updated.deal,deleted.deal,merged.deal", "*.deal");
    assert_plan("1.0", "added.note,updated.note,deleted.note", "*.note");
    /* a wildcard action supplies its part */
    assert_plan("2.0", "create.*,change.deal,delete.deal", "create.* *.deal");
    assert_plan("1.0", "merged.*,added.person,updated.person,deleted.person",
                "merged.* *.person");
}

/* The plan is a function of the set of triggers, not of their order. */
static void test_order_independent(void **state)
{
    (void)state;
    static const char *const v2[] = { "create.*", "change.deal", "delete.deal", "*.person",
                                      "updated.stage", "create.deal", "change.lead",
                                      "delete.*", "added.note" };
    static const char *const v1[] = { "merged.*", "added.deal", "updated.deal", "deleted.deal",
                                      "updated.person", "added.person", "deleted.person",
                                      "*.note", "updated.note", "added.stage" };
    struct { const char *version; const char *const *t; size_t n; } sets[] = {
        { "2.0", v2, sizeof v2 / sizeof v2[0] },
        { "1.0", v1, sizeof v1 / sizeof v1[0] },
    };
    srand(12345);
    for (size_t s = 0; s < 2; s++) {
        char first[1024] = "";
        for (int round = 0; round < 200; round++) {
            const char *order[16];
            memcpy(order, sets[s].t, sets[s].n * sizeof *order);
            for (size_t i = sets[s].n - 1; i > 0; i--) { /* Fisher-Yates */
                size_t j = (size_t)rand() % (i + 1);
                const char *t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            pdw_plan *p = plan_v(sets[s].version);
            for (size_t i = 0; i < sets[s].n; i++)
                assert_int_equal(pdw_plan_add(p, order[i], NULL), 0);
            char got[1024];
            plan_text(p, got, sizeof got);
            if (round == 0)
                memcpy(first, got, sizeof got);
            else
                assert_string_equal(got, first);
            pdw_plan_free(p);
        }
    }
}

/* ---- warnings ----------------------------------------------------------------------- */

static void test_stage_warning(void **state)
{
    (void)state;
    pdw_plan *p = plan_v("2.0");
    assert_int_equal(pdw_plan_add_list(p, "updated.deal,updated.stage,*.person", NULL), 0);
    char got[256];
    plan_text(p, got, sizeof got);
    assert_string_equal(got, "change.deal *.person change.stage");
    assert_true(has_warning(p, "change.stage fires when a stage itself is edited"));
    assert_true(has_warning(p, "stage_id"));
    assert_null(pdw_plan_warning(p, pdw_plan_warning_count(p)));
    pdw_plan_free(p);

    p = plan_v("1.0");
    assert_int_equal(pdw_plan_add(p, "*.stage", NULL), 0);
    assert_true(has_warning(p, "*.stage fires when a stage itself is edited"));
    assert_true(has_warning(p, "updated.deal"));
    pdw_plan_free(p);

    p = plan_v("2.0");
    assert_int_equal(pdw_plan_add_list(p, "create.stage,delete.stage", NULL), 0);
    assert_int_equal(pdw_plan_warning_count(p), 0);
    pdw_plan_free(p);
}

static void test_other_warnings(void **state)
{
    (void)state;
    pdw_plan *p = plan_v("2.0");
    assert_int_equal(pdw_plan_add(p, "create.persons", NULL), 0);
    assert_true(has_warning(p, "object 'persons' is not one pdwebhook knows"));
    assert_int_equal(pdw_plan_warning_count(p), 1);
    assert_int_equal(pdw_plan_add(p, "delete.persons", NULL), 0);
    assert_int_equal(pdw_plan_warning_count(p), 1); /* once per object */
    pdw_plan_free(p);

    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    o.subscription_url = "http://127.0.0.1:8080/";
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_true(has_warning(p, "plain http://"));
    pdw_plan_free(p);
}

/* ---- limit and bodies --------------------------------------------------------------- */

static void test_limit(void **state)
{
    (void)state;
    pdw_plan *p = plan_v("2.0");
    assert_int_equal(pdw_plan_check(p, 0, NULL), PDW_EINVAL); /* empty */
    char t[64];
    for (int i = 0; i < PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER; i++) {
        snprintf(t, sizeof t, "create.obj%d", i);
        assert_int_equal(pdw_plan_add(p, t, NULL), 0);
    }
    assert_int_equal(pdw_plan_check(p, 0, NULL), 0);
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_check(p, 1, &err), PDW_ELIMIT);
    assert_non_null(strstr(err.message, "40"));
    assert_int_equal(pdw_plan_add(p, "create.obj40", NULL), 0);
    assert_int_equal(pdw_plan_check(p, 0, NULL), PDW_ELIMIT);
    /* collapsing brings it back under the limit */
    assert_int_equal(pdw_plan_add(p, "create.*", NULL), 0);
    assert_int_equal(pdw_plan_count(p), 1);
    assert_int_equal(pdw_plan_check(p, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER - 1, NULL), 0);
    assert_int_equal(pdw_plan_check(p, (size_t)-1, NULL), PDW_ELIMIT);
    pdw_plan_free(p);
}

static void test_body_json(void **state)
{
    (void)state;
    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    o.subscription_url = URL;
    o.webhook_version = "1.0";
    o.user_id = "4242";
    o.http_auth_user = "pipedrive";
    o.http_auth_password = PW;
    o.name_prefix = "crm-sync";
    pdw_plan *p;
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_int_equal(pdw_plan_add(p, "change.deal", NULL), 0);
    char *body = NULL;
    assert_int_equal(pdw_plan_body_json(p, 0, &body, NULL), 0);
    json_error_t jerr;
    json_t *j = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "crm-sync updated.deal");
    assert_string_equal(json_string_value(json_object_get(j, "subscription_url")), URL);
    assert_string_equal(json_string_value(json_object_get(j, "event_action")), "updated");
    assert_string_equal(json_string_value(json_object_get(j, "event_object")), "deal");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "1.0");
    assert_true(json_is_integer(json_object_get(j, "user_id")));
    assert_int_equal(json_integer_value(json_object_get(j, "user_id")), 4242);
    assert_string_equal(json_string_value(json_object_get(j, "http_auth_user")), "pipedrive");
    assert_string_equal(json_string_value(json_object_get(j, "http_auth_password")), PW);
    json_decref(j);
    pdw_free(body);

    assert_int_equal(pdw_plan_body_json(p, 1, &body, NULL), PDW_ERANGE);
    assert_null(body);
    assert_int_equal(pdw_plan_body_json(p, 0, NULL, NULL), PDW_EINVAL);
    pdw_plan_free(p);

    /* no user id, no auth: the keys are absent; the version is still explicit */
    o.user_id = NULL;
    o.http_auth_user = o.http_auth_password = NULL;
    o.webhook_version = NULL;
    o.name_prefix = NULL;
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_int_equal(pdw_plan_add(p, "*.*", NULL), 0);
    assert_int_equal(pdw_plan_body_json(p, 0, &body, NULL), 0);
    j = json_loads(body, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "version")), "2.0");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "pdwebhook *.*");
    assert_null(json_object_get(j, "user_id"));
    assert_null(json_object_get(j, "http_auth_user"));
    assert_null(json_object_get(j, "http_auth_password"));
    json_decref(j);
    pdw_free(body);
    pdw_plan_free(p);
}

/* ---- diff --------------------------------------------------------------------------- */

static pdw_subscription sub(const char *id, const char *action, const char *object,
                            const char *url, const char *version)
{
    pdw_subscription s;
    memset(&s, 0, sizeof s);
    s.id = id;
    s.event_action = action;
    s.event_object = object;
    s.subscription_url = url;
    s.webhook_version = version;
    s.user_id = "7";
    s.http_auth_user = "pipedrive";
    s.http_auth_password = PW;
    return s;
}

static void test_diff(void **state)
{
    (void)state;
    pdw_plan *p = plan_v("2.0");
    /* plan: change.deal *.person change.stage */
    assert_int_equal(pdw_plan_add_list(p, "updated.deal,updated.stage,*.person", NULL), 0);
    pdw_subscription ex[] = {
        sub("1", "change", "deal", URL, "2.0"),           /* keep (plan 0) */
        sub("2", "updated", "deal", URL, "2.0"),          /* duplicate of 1: delete */
        sub("3", "*", "person", URL, "1.0"),              /* wrong version: delete */
        sub("4", "create", "deal", URL, "2.0"),           /* not planned: delete */
        sub("5", "*", "*", "https://other.example/", "2.0"), /* other URL: untouched */
        sub("6", "change", "stage", URL, "2.0"),          /* keep (plan 2) */
    };
    pdw_diff *d = NULL;
    assert_int_equal(pdw_plan_diff(&d, p, ex, sizeof ex / sizeof ex[0], NULL), 0);
    assert_int_equal(pdw_diff_keep_count(d), 2);
    assert_int_equal(pdw_diff_keep(d, 0), 0);
    assert_int_equal(pdw_diff_keep_plan_index(d, 0), 0);
    assert_int_equal(pdw_diff_keep(d, 1), 5);
    assert_int_equal(pdw_diff_keep_plan_index(d, 1), 2);
    assert_int_equal(pdw_diff_delete_count(d), 3);
    assert_int_equal(pdw_diff_delete(d, 0), 1);
    assert_int_equal(pdw_diff_delete(d, 1), 2);
    assert_int_equal(pdw_diff_delete(d, 2), 3);
    assert_int_equal(pdw_diff_create_count(d), 1);
    assert_int_equal(pdw_diff_create(d, 0), 1); /* *.person */
    assert_int_equal(pdw_diff_create(d, 1), (size_t)-1);
    assert_int_equal(pdw_diff_delete(d, 3), (size_t)-1);
    assert_int_equal(pdw_diff_keep(d, 2), (size_t)-1);
    pdw_diff_free(d);

    /* after the sync: kept + created; a second diff changes nothing (idempotent) */
    pdw_subscription after[] = {
        sub("1", "change", "deal", URL, "2.0"),
        sub("5", "*", "*", "https://other.example/", "2.0"),
        sub("6", "change", "stage", URL, "2.0"),
        sub("7", "*", "person", URL, "2.0"),
    };
    assert_int_equal(pdw_plan_diff(&d, p, after, 4, NULL), 0);
    assert_int_equal(pdw_diff_create_count(d), 0);
    assert_int_equal(pdw_diff_delete_count(d), 0);
    assert_int_equal(pdw_diff_keep_count(d), 3);
    pdw_diff_free(d);

    /* a changed password (or user) on Pipedrive's side means replace; not reported
     * (NULL) means not compared */
    after[0].http_auth_password = "old-password";
    after[2].http_auth_password = NULL;
    after[2].http_auth_user = NULL;
    after[3].webhook_version = NULL; /* listed without version: 1.0 */
    assert_int_equal(pdw_plan_diff(&d, p, after, 4, NULL), 0);
    assert_int_equal(pdw_diff_delete_count(d), 2);
    assert_int_equal(pdw_diff_delete(d, 0), 0);
    assert_int_equal(pdw_diff_delete(d, 1), 3);
    assert_int_equal(pdw_diff_create_count(d), 2);
    pdw_diff_free(d);

    /* nothing listed: create everything */
    assert_int_equal(pdw_plan_diff(&d, p, NULL, 0, NULL), 0);
    assert_int_equal(pdw_diff_create_count(d), 3);
    pdw_diff_free(d);

    pdw_subscription broken = sub(NULL, "change", "deal", URL, "2.0");
    assert_int_equal(pdw_plan_diff(&d, p, &broken, 1, NULL), PDW_EINVAL);
    assert_null(d);
    assert_int_equal(pdw_plan_diff(NULL, p, NULL, 0, NULL), PDW_EINVAL);
    pdw_diff_free(NULL);
    pdw_plan_free(p);
}

static void test_diff_user_and_limit(void **state)
{
    (void)state;
    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    o.subscription_url = URL;
    o.user_id = "7";
    pdw_plan *p;
    assert_int_equal(pdw_plan_new(&p, &o, NULL), 0);
    assert_int_equal(pdw_plan_add_list(p, "create.deal,create.person", NULL), 0);

    /* 39 webhooks of user 7 elsewhere, one of ours to delete: 39 + 2 = 41 */
    pdw_subscription ex[41];
    char ids[41][8];
    for (int i = 0; i < 39; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i + 100);
        ex[i] = sub(ids[i], "create", "deal", "https://elsewhere.example/", "2.0");
        ex[i].http_auth_user = ex[i].http_auth_password = NULL;
    }
    ex[39] = sub("900", "delete", "deal", URL, "2.0");
    ex[39].http_auth_user = ex[39].http_auth_password = NULL;
    pdw_diff *d;
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_diff(&d, p, ex, 40, &err), PDW_ELIMIT);
    assert_non_null(strstr(err.message, "41"));
    assert_null(strstr(err.message, "TOPSECRET"));
    /* webhooks of another user do not count */
    for (int i = 0; i < 39; i++)
        ex[i].user_id = "8";
    assert_int_equal(pdw_plan_diff(&d, p, ex, 40, NULL), 0);
    assert_int_equal(pdw_diff_create_count(d), 2);
    assert_int_equal(pdw_diff_delete_count(d), 1);
    pdw_diff_free(d);
    /* a listed webhook of another user for our URL is not "ours" as planned */
    ex[40] = sub("901", "create", "deal", URL, "2.0");
    ex[40].user_id = "8";
    ex[40].http_auth_user = ex[40].http_auth_password = NULL;
    assert_int_equal(pdw_plan_diff(&d, p, &ex[40], 1, NULL), 0);
    assert_int_equal(pdw_diff_keep_count(d), 0);
    assert_int_equal(pdw_diff_delete_count(d), 1);
    pdw_diff_free(d);
    /* listed without credentials while the plan has none: same */
    ex[40].user_id = "7";
    assert_int_equal(pdw_plan_diff(&d, p, &ex[40], 1, NULL), 0);
    assert_int_equal(pdw_diff_keep_count(d), 1);
    pdw_diff_free(d);
    pdw_plan_free(p);
}

/* ---- secrecy ------------------------------------------------------------------------ */

static void test_no_secret_in_messages(void **state)
{
    (void)state;
    pdw_plan *p = plan_v("2.0");
    static const char *const triggers[] = { "merged.deal", "x", "updated.persons!",
                                            "*.activityType", "create.foo" };
    for (size_t i = 0; i < sizeof triggers / sizeof triggers[0]; i++) {
        pdw_error err;
        pdw_error_clear(&err);
        pdw_plan_add(p, triggers[i], &err);
        assert_null(strstr(err.message, "SECRETPW"));
        assert_null(strstr(err.message, "TOPSECRET"));
    }
    for (size_t i = 0; i < pdw_plan_warning_count(p); i++) {
        assert_null(strstr(pdw_plan_warning(p, i), "SECRETPW"));
        assert_null(strstr(pdw_plan_warning(p, i), "TOPSECRET"));
    }
    pdw_plan_free(p);

    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    o.subscription_url = "https://x.example/?token=TOPSECRET bad";
    o.http_auth_user = "u";
    o.http_auth_password = "SECRETPW\n";
    pdw_error err;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_new(&p, &o, &err), PDW_EINVAL);
    assert_null(strstr(err.message, "TOPSECRET"));
    o.subscription_url = URL;
    pdw_error_clear(&err);
    assert_int_equal(pdw_plan_new(&p, &o, &err), PDW_EINVAL);
    assert_null(strstr(err.message, "SECRETPW"));
}

/* ---- allocation failure ------------------------------------------------------------- */


static void test_alloc_failure(void **state)
{
    (void)state;
    int completed = 0;
    for (long n = 0; n < 2000 && !completed; n++) {
        pdw_chaos c = { n, 0, 0 };
        pdw_allocator al = { pdw_chaos_malloc, pdw_chaos_realloc, pdw_chaos_free, &c };
        pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
        o.subscription_url = URL;
        o.http_auth_user = "pipedrive";
        o.http_auth_password = PW;
        o.allocator = &al;
        pdw_plan *p = NULL;
        int rc = pdw_plan_new(&p, &o, NULL);
        if (rc) {
            assert_int_equal(rc, PDW_ENOMEM);
            assert_null(p);
            assert_int_equal(c.live, 0);
            continue;
        }
        static const char *const t[] = { "updated.deal", "updated.stage", "*.person",
                                         "create.deal", "delete.deal", "create.*" };
        int failed = 0;
        for (size_t i = 0; i < sizeof t / sizeof t[0] && !failed; i++) {
            size_t before = pdw_plan_count(p);
            rc = pdw_plan_add(p, t[i], NULL);
            if (rc) {
                assert_int_equal(rc, PDW_ENOMEM);
                assert_int_equal(pdw_plan_count(p), before); /* unchanged, usable */
                failed = 1;
            }
        }
        if (!failed) {
            pdw_subscription ex = sub("1", "change", "deal", URL, "2.0");
            pdw_diff *d = NULL;
            rc = pdw_plan_diff(&d, p, &ex, 1, NULL);
            if (rc) {
                assert_int_equal(rc, PDW_ENOMEM);
                assert_null(d);
            } else {
                completed = 1;
                pdw_diff_free(d);
            }
        }
        pdw_plan_free(p);
        assert_int_equal(c.live, 0);
    }
    assert_true(completed);
}

/* Every call that takes a pdw_error resets it at entry: failure, success (no stale
 * message), another failure with its own message. */
static void test_error_reset_by_every_call(void **state)
{
    (void)state;
    pdw_error e = PDW_ERROR_INIT;
    pdw_plan_options o = PDW_PLAN_OPTIONS_INIT;
    pdw_plan *p = NULL;
    pdw_test_stale_error(&e);
    assert_int_equal(pdw_plan_new(&p, &o, &e), PDW_EINVAL); /* no URL */
    assert_error_own(e, PDW_EINVAL);
    o.subscription_url = URL;
    assert_int_equal(pdw_plan_new(&p, &o, &e), 0);
    assert_error_reset(e);

    assert_int_equal(pdw_plan_check(p, 0, &e), PDW_EINVAL); /* empty */
    assert_error_own(e, PDW_EINVAL);
    assert_int_equal(pdw_plan_add(p, "bogus.deal", &e), PDW_EPATTERN);
    assert_error_own(e, PDW_EPATTERN);
    assert_int_equal(pdw_plan_add(p, "change.deal", &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_plan_add_list(p, " , ", &e), PDW_EPATTERN);
    assert_error_own(e, PDW_EPATTERN);
    assert_int_equal(pdw_plan_add_list(p, "create.person,delete.person", &e), 0);
    assert_error_reset(e);
    assert_int_equal(pdw_plan_check(p, PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER, &e), PDW_ELIMIT);
    assert_error_own(e, PDW_ELIMIT);
    assert_int_equal(pdw_plan_check(p, 0, &e), 0);
    assert_error_reset(e);

    char *body = NULL;
    assert_int_equal(pdw_plan_body_json(p, 99, &body, &e), PDW_ERANGE);
    assert_error_own(e, PDW_ERANGE);
    assert_int_equal(pdw_plan_body_json(p, 0, &body, &e), 0);
    assert_error_reset(e);
    pdw_free(body);

    pdw_diff *d = NULL;
    pdw_subscription bad = sub(NULL, "change", "deal", URL, "2.0");
    assert_int_equal(pdw_plan_diff(&d, p, &bad, 1, &e), PDW_EINVAL); /* no id */
    assert_error_own(e, PDW_EINVAL);
    pdw_subscription ex = sub("1", "change", "deal", URL, "2.0");
    assert_int_equal(pdw_plan_diff(&d, p, &ex, 1, &e), 0);
    assert_error_reset(e);
    pdw_diff_free(d);
    pdw_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_translation),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_collapse_wildcards),
        cmocka_unit_test(test_collapse_full_action_set),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_stage_warning),
        cmocka_unit_test(test_other_warnings),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_body_json),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_user_and_limit),
        cmocka_unit_test(test_no_secret_in_messages),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_error_reset_by_every_call),
    };
    PDW_RUN_GROUP(tests);
}
