/* Prints, as JSON, what the C compiler says about the structs and constants the Python
 * binding mirrors (pdwebhook/_lib.py): sizeof and the offset and size of every member, in
 * declaration order. tests/test_layout.py compares them with ctypes. */
#include <pdwebhook/durable.h>
#include <stddef.h>
#include <stdio.h>

static int first_struct = 1, first_field;

static void begin(const char *name, size_t size)
{
    printf("%s\n  \"%s\": {\"sizeof\": %zu, \"fields\": [", first_struct ? "" : ",", name, size);
    first_struct = 0;
    first_field = 1;
}

static void field(const char *name, size_t offset, size_t size)
{
    printf("%s[\"%s\", %zu, %zu]", first_field ? "" : ", ", name, offset, size);
    first_field = 0;
}

static void end(void) { printf("]}"); }

#define BEGIN(T) begin(#T, sizeof(T))
#define F(T, m) field(#m, offsetof(T, m), sizeof(((T *)0)->m))

int main(void)
{
    printf("{\"structs\": {");
    BEGIN(pdw_error);
    F(pdw_error, code); F(pdw_error, offset); F(pdw_error, message);
    end();
    BEGIN(pdw_header);
    F(pdw_header, name); F(pdw_header, name_len); F(pdw_header, value);
    F(pdw_header, value_len);
    end();
    BEGIN(pdw_request);
    F(pdw_request, version); F(pdw_request, method); F(pdw_request, method_len);
    F(pdw_request, headers); F(pdw_request, num_headers); F(pdw_request, query);
    F(pdw_request, query_len); F(pdw_request, body); F(pdw_request, body_len);
    F(pdw_request, user); F(pdw_request, peer); F(pdw_request, peer_len);
    end();
    BEGIN(pdw_verdict);
    F(pdw_verdict, version); F(pdw_verdict, status); F(pdw_verdict, reason);
    F(pdw_verdict, num_headers); F(pdw_verdict, headers); F(pdw_verdict, body);
    F(pdw_verdict, body_len); F(pdw_verdict, content_type); F(pdw_verdict, handlers_matched);
    F(pdw_verdict, handlers_failed); F(pdw_verdict, handler_rc); F(pdw_verdict, event);
    F(pdw_verdict, delivery_key); F(pdw_verdict, scratch_); F(pdw_verdict, webhook_id);
    F(pdw_verdict, attempt);
    end();
    BEGIN(pdw_credential);
    F(pdw_credential, user); F(pdw_credential, password);
    end();
    BEGIN(pdw_dispatch_result);
    F(pdw_dispatch_result, matched); F(pdw_dispatch_result, failed);
    F(pdw_dispatch_result, first_failure);
    end();
    BEGIN(pdw_receiver_options);
    F(pdw_receiver_options, version); F(pdw_receiver_options, credentials);
    F(pdw_receiver_options, num_credentials); F(pdw_receiver_options, query_token);
    F(pdw_receiver_options, query_token_name); F(pdw_receiver_options, insecure_no_auth);
    F(pdw_receiver_options, realm); F(pdw_receiver_options, max_body);
    F(pdw_receiver_options, max_depth); F(pdw_receiver_options, wrong_credentials_status);
    F(pdw_receiver_options, handler_error_status); F(pdw_receiver_options, retry_after_seconds);
    F(pdw_receiver_options, allow_missing_content_type); F(pdw_receiver_options, disable_dedup);
    F(pdw_receiver_options, dedup); F(pdw_receiver_options, dedup_capacity);
    F(pdw_receiver_options, dedup_ttl_ms); F(pdw_receiver_options, accept);
    F(pdw_receiver_options, accept_user); F(pdw_receiver_options, clock);
    F(pdw_receiver_options, clock_user); F(pdw_receiver_options, allocator);
    F(pdw_receiver_options, inflight_lease_ms); F(pdw_receiver_options, allowlist);
    F(pdw_receiver_options, trusted_proxies);
    end();
    BEGIN(pdw_spool_record);
    F(pdw_spool_record, id); F(pdw_spool_record, received_ms); F(pdw_spool_record, key);
    F(pdw_spool_record, key_len); F(pdw_spool_record, body); F(pdw_spool_record, body_len);
    end();
    BEGIN(pdw_worker_options);
    F(pdw_worker_options, version); F(pdw_worker_options, allocator);
    F(pdw_worker_options, spool); F(pdw_worker_options, receiver);
    F(pdw_worker_options, handle); F(pdw_worker_options, handle_user);
    F(pdw_worker_options, threads); F(pdw_worker_options, max_attempts);
    F(pdw_worker_options, backoff_base_ms); F(pdw_worker_options, backoff_max_ms);
    F(pdw_worker_options, dead_letter_path); F(pdw_worker_options, on_dead_letter);
    F(pdw_worker_options, dead_letter_user); F(pdw_worker_options, sync);
    F(pdw_worker_options, sync_user); F(pdw_worker_options, marker_flush_ms);
    F(pdw_worker_options, max_queued_bytes);
    end();
    BEGIN(pdw_intake_options);
    F(pdw_intake_options, version); F(pdw_intake_options, receiver);
    F(pdw_intake_options, spool_dir); F(pdw_intake_options, spool);
    F(pdw_intake_options, worker); F(pdw_intake_options, on_error);
    F(pdw_intake_options, error_user); F(pdw_intake_options, allocator);
    F(pdw_intake_options, dedup_change);
    end();
    printf("},\n \"constants\": {");
#define K(name) printf("\"" #name "\": %ld, ", (long)(name))
    K(PDW_ERROR_MESSAGE_MAX); K(PDW_NAME_MAX); K(PDW_ID_MAX); K(PDW_DELIVERY_KEY_MAX);
    K(PDW_VERDICT_MAX_HEADERS); K(PDW_RECEIVER_OPTIONS_VERSION); K(PDW_REQUEST_VERSION);
    K(PDW_VERDICT_VERSION); K(PDW_INTAKE_OPTIONS_VERSION); K(PDW_WORKER_OPTIONS_VERSION);
    K(PDW_INTAKE_PENDING); K(PDW_VERSION_MAJOR); K(PDW_VERSION_MINOR); K(PDW_VERSION_NUMBER);
#undef K
    printf("\"PDW_VERSION_STRING\": \"%s\"", PDW_VERSION_STRING);
    printf("},\n \"codes\": {");
    int first = 1;
#define PDW__PRINT(name, value, status, msg)                                                     \
    printf("%s\"PDW_" #name "\": %d", first ? "" : ", ", value);                                 \
    first = 0;
    PDW_ERRNO_MAP(PDW__PRINT)
#undef PDW__PRINT
    printf("}}\n");
    return 0;
}
