// The public API used from C++11: every initialiser macro, the handler typedefs, jansson's
// json_t next to event.h's forward declaration, and a request through the shared library
// (which links only if every declaration has C linkage). Built and run by ctest.
#include <jansson.h>
#include <pdwebhook/pdwebhook.h>
#include <jansson.h>

#include <cstdio>
#include <cstring>

static int passed, failed;

static void check(bool ok, const char *what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passed : failed)++;
}

extern "C" int on_deal(const pdw_event *ev, void *user)
{
    json_t *body = pdw_event_json(ev); // jansson's json_t and event.h's are one type
    json_t *meta = json_object_get(body, "meta");
    if (meta && json_is_object(meta))
        ++*static_cast<int *>(user);
    return 0;
}

int main()
{
    pdw_parse_options po = PDW_PARSE_OPTIONS_INIT;
    pdw_router_options ro = PDW_ROUTER_OPTIONS_INIT;
    pdw_dedup_memory_options mo = PDW_DEDUP_MEMORY_OPTIONS_INIT;
    pdw_receiver_options o = PDW_RECEIVER_OPTIONS_INIT;
    pdw_request req = PDW_REQUEST_INIT;
    pdw_verdict v = PDW_VERDICT_INIT;
    pdw_error err = pdw_error();
    (void)po;
    (void)ro;
    (void)mo;
    check(std::strcmp(pdw_version(), PDW_VERSION_STRING) == 0, "pdw_version() from C++");

    pdw_credential creds[] = {{"pipedrive", "s3cret"}};
    o.credentials = creds;
    o.num_credentials = 1;
    pdw_receiver *r = nullptr;
    check(pdw_receiver_new(&r, &o, &err) == PDW_OK && r, "pdw_receiver_new");
    int seen = 0;
    check(pdw_router_on(pdw_receiver_router(r), "change.deal", on_deal, &seen, &err) == 0,
          "pdw_router_on with a C++ handler");

    static const char body[] =
        "{\"meta\":{\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":\"8\","
        "\"id\":\"df47d877-b58c-4886-91cd-1aa83e1d7366\",\"timestamp\":"
        "\"2022-11-24T15:11:55.724Z\",\"version\":\"2.0\"},\"data\":{\"id\":8},"
        "\"previous\":{\"stage_id\":1}}";
    // "pipedrive:s3cret" in base64.
    pdw_header h[] = {{"Content-Type", 12, "application/json", 16},
                      {"Authorization", 13, "Basic cGlwZWRyaXZlOnMzY3JldA==", 30}};
    req.method = "POST";
    req.method_len = 4;
    req.headers = h;
    req.num_headers = 2;
    req.body = body;
    req.body_len = sizeof body - 1;
    int rc = pdw_receiver_handle(r, &req, &v, &err);
    check(rc == PDW_OK && v.status == 200, "a v2 change.deal is accepted with 200");
    check(seen == 1, "the handler ran and read the jansson DOM");
    check(std::strcmp(v.event, "change.deal") == 0, "verdict names the event");
    pdw_receiver_free(r);

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
