'use strict';
// Loading libpdwebhook and declaring its C API for koffi. The structs mirror the public
// headers (include/pdwebhook/receiver.h, router.h, error.h); test/layout.test.js compares
// their sizes and offsets with what the C compiler says.
const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

const SOVERSION = 1;
const LIBRARY_ENV = 'PDWEBHOOK_LIBRARY';
const FILE = `libpdwebhook.so.${SOVERSION}`;

const C = {
  PDW_ERROR_MESSAGE_MAX: 160,
  PDW_NAME_MAX: 48,
  PDW_ID_MAX: 64,
  PDW_DELIVERY_KEY_MAX: 320,
  PDW_VERDICT_MAX_HEADERS: 4,
  PDW_RECEIVER_OPTIONS_VERSION: 1,
  PDW_REQUEST_VERSION: 1,
  PDW_VERDICT_VERSION: 1,
};

const pdw_error = koffi.struct('pdw_error', {
  code: 'int',
  offset: 'long long',
  message: koffi.array('char', C.PDW_ERROR_MESSAGE_MAX, 'String'),
});
// Spans, not C strings: the pointers are Buffers going in and raw pointers coming out.
const pdw_header = koffi.struct('pdw_header', {
  name: 'const uint8_t *',
  name_len: 'size_t',
  value: 'const uint8_t *',
  value_len: 'size_t',
});
const pdw_request = koffi.struct('pdw_request', {
  version: 'unsigned int',
  method: 'const uint8_t *',
  method_len: 'size_t',
  headers: 'pdw_header *',
  num_headers: 'size_t',
  query: 'const uint8_t *',
  query_len: 'size_t',
  body: 'const uint8_t *',
  body_len: 'size_t',
  user: 'void *',
  peer: 'const char *',
  peer_len: 'size_t',
});
const pdw_verdict = koffi.struct('pdw_verdict', {
  version: 'unsigned int',
  status: 'int',
  reason: 'int',
  num_headers: 'size_t',
  headers: koffi.array(pdw_header, C.PDW_VERDICT_MAX_HEADERS),
  body: 'void *',
  body_len: 'size_t',
  content_type: 'const char *',
  handlers_matched: 'unsigned int',
  handlers_failed: 'unsigned int',
  handler_rc: 'int',
  event: koffi.array('char', 2 * C.PDW_NAME_MAX + 2, 'String'),
  delivery_key: koffi.array('char', C.PDW_DELIVERY_KEY_MAX, 'String'),
  scratch_: koffi.array('char', 32, 'Array'),
  webhook_id: koffi.array('char', C.PDW_ID_MAX + 1, 'String'),
  attempt: 'unsigned int',
});
const pdw_credential = koffi.struct('pdw_credential', {
  user: 'const char *',
  password: 'const char *',
});
const pdw_dispatch_result = koffi.struct('pdw_dispatch_result', {
  matched: 'unsigned int',
  failed: 'unsigned int',
  first_failure: 'int',
});
// The callbacks C calls: only ever inside a call made from the JS thread (see index.js).
const pdw_handler_cb = koffi.proto('int pdw_handler_cb(const void *ev, void *user)');
const pdw_receiver_options = koffi.struct('pdw_receiver_options', {
  version: 'unsigned int',
  credentials: 'pdw_credential *',
  num_credentials: 'size_t',
  query_token: 'const char *',
  query_token_name: 'const char *',
  insecure_no_auth: 'int',
  realm: 'const char *',
  max_body: 'size_t',
  max_depth: 'unsigned int',
  wrong_credentials_status: 'int',
  handler_error_status: 'int',
  retry_after_seconds: 'int',
  allow_missing_content_type: 'int',
  disable_dedup: 'int',
  dedup: 'void *',
  dedup_capacity: 'size_t',
  dedup_ttl_ms: 'uint64_t',
  accept: 'void *', // no accept hook from JS (it would be a second way in)
  accept_user: 'void *',
  clock: 'void *',
  clock_user: 'void *',
  allocator: 'void *',
  inflight_lease_ms: 'uint64_t',
  allowlist: 'void *',
  trusted_proxies: 'void *',
});

const PROTOTYPES = [
  'void pdw_free(void *p)',
  'const char *pdw_version(void)',
  'unsigned int pdw_version_number(void)',
  'const char *pdw_strerror(int code)',
  'const char *pdw_err_name(int code)',
  'int pdw_err_http_status(int code)',
  // event.h
  'int pdw_event_version(const void *ev)',
  'const char *pdw_event_action(const void *ev)',
  'const char *pdw_event_delivered_action(const void *ev)',
  'const char *pdw_event_object(const void *ev)',
  'const char *pdw_event_name(const void *ev)',
  'const char *pdw_event_delivered_name(const void *ev)',
  'const char *pdw_event_entity_id(const void *ev)',
  'const char *pdw_event_event_id(const void *ev)',
  'const char *pdw_event_webhook_id(const void *ev)',
  'const char *pdw_event_company_id(const void *ev)',
  'const char *pdw_event_user_id(const void *ev)',
  'const char *pdw_event_correlation_id(const void *ev)',
  'const char *pdw_event_change_source(const void *ev)',
  'unsigned int pdw_event_attempt(const void *ev)',
  'int64_t pdw_event_timestamp_ms(const void *ev)',
  'int pdw_event_is_bulk(const void *ev)',
  'int pdw_event_is_merge(const void *ev)',
  'const char *pdw_event_merged_from_id(const void *ev)',
  'const char *pdw_event_merged_to_id(const void *ev)',
  'const char *pdw_event_delivery_key(const void *ev)',
  'const void *pdw_event_body(const void *ev, _Out_ size_t *len)',
  // json_t * borrowed from the event's DOM; only tested for NULL here (koffi cannot read it)
  'const void *pdw_event_data(const void *ev)',
  'const void *pdw_event_previous(const void *ev)',
  'size_t pdw_event_changed_count(const void *ev)',
  'const char *pdw_event_changed_field(const void *ev, size_t i)',
  'int pdw_event_changed(const void *ev, const char *field)',
  // router.h
  'int pdw_router_on(void *r, const char *pattern, pdw_handler_cb *cb, void *user, _Out_ pdw_error *err)',
  'int pdw_router_on_change(void *r, const char *pattern, const char *field, pdw_handler_cb *cb, void *user, _Out_ pdw_error *err)',
  'int pdw_router_on_unhandled(void *r, pdw_handler_cb *cb, void *user)',
  'size_t pdw_router_count(void *r)',
  // receiver.h
  'int pdw_receiver_options_init(_Inout_ pdw_receiver_options *opts, unsigned int version)',
  'int pdw_receiver_new(_Out_ void **out, const pdw_receiver_options *opts, _Out_ pdw_error *err)',
  'void pdw_receiver_free(void *r)',
  'void *pdw_receiver_router(void *r)',
  'int pdw_receiver_check_head(void *r, const pdw_request *req, void *verdict)',
  'int pdw_receiver_handle(void *r, const pdw_request *req, void *verdict, _Out_ pdw_error *err)',
];

function multiarch() {
  const m = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf',
    s390x: 's390x-linux-gnu', ppc64: 'powerpc64le-linux-gnu', ia32: 'i386-linux-gnu' };
  return m[process.arch];
}

// Where to look, in order: $PDWEBHOOK_LIBRARY (a file or a directory, ':'-separated), the
// package's own directory, $LD_LIBRARY_PATH, the prefix next to node (node's ../lib), the
// usual directories (/usr/local/lib, /usr/lib/<multiarch>, /usr/lib), then the dynamic
// linker's own search by SONAME.
function candidates(file = FILE) {
  const out = [];
  const env = process.env[LIBRARY_ENV];
  if (env) {
    for (const e of env.split(':').filter(Boolean)) {
      let isDir = false;
      try { isDir = fs.statSync(e).isDirectory(); } catch { /* named, tried, reported */ }
      out.push(isDir ? path.join(e, file) : e);
    }
  }
  const dirs = [path.join(__dirname, '..'), path.join(__dirname, '..', 'lib')];
  for (const d of (process.env.LD_LIBRARY_PATH || '').split(':').filter(Boolean)) dirs.push(d);
  const arch = multiarch();
  for (const prefix of [path.dirname(path.dirname(process.execPath)), '/usr/local', '/usr', '/']) {
    if (arch) dirs.push(path.join(prefix, 'lib', arch));
    dirs.push(path.join(prefix, 'lib64'), path.join(prefix, 'lib'));
  }
  for (const d of [...new Set(dirs)]) out.push(path.join(d, file));
  out.push(file);
  return out;
}

let lib = null;
let libPath = null;
const fns = {};

function load(explicit) {
  if (lib) return fns;
  const tried = [];
  const absent = [];
  for (const cand of explicit ? [explicit, ...candidates()] : candidates()) {
    if (cand.includes('/') && !fs.existsSync(cand)) { absent.push(cand); continue; }
    let l;
    try {
      l = koffi.load(cand);
    } catch (e) {
      tried.push(`${cand} (${e.message})`);
      continue;
    }
    const f = {};
    try {
      for (const proto of PROTOTYPES) {
        const fn = l.func(proto);
        const name = /(\w+)\s*\(/.exec(proto)[1];
        f[name] = fn;
      }
    } catch (e) {
      tried.push(`${cand} (missing function: ${e.message})`);
      continue;
    }
    const n = f.pdw_version_number();
    if (n >> 16 !== SOVERSION) {
      tried.push(`${cand} (version ${f.pdw_version()}; this binding needs ${SOVERSION}.x)`);
      continue;
    }
    lib = l;
    libPath = cand;
    Object.assign(fns, f);
    return fns;
  }
  const err = new Error(`pdwebhook: cannot load ${FILE} (the pdwebhook C library, version ` +
    `${SOVERSION}.x). Install it (cmake --install build, or the libpdwebhook1 package), or set ` +
    `${LIBRARY_ENV} to the file or its directory. Tried: ${tried.join('; ') || '-'}; not found ` +
    `in: ${absent.map((a) => path.dirname(a)).join(', ')}`);
  err.code = 'PDW_ENOLIBRARY';
  err.tried = [...tried, ...absent.map((a) => `${a} (no such file)`)];
  throw err;
}

module.exports = {
  koffi, C, SOVERSION, LIBRARY_ENV, FILE, load, candidates,
  libraryPath: () => libPath,
  types: { pdw_error, pdw_header, pdw_request, pdw_verdict, pdw_credential,
    pdw_dispatch_result, pdw_receiver_options, pdw_handler_cb },
};
