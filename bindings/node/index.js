'use strict';
// pdwebhook for Node.js: receive Pipedrive webhooks with libpdwebhook, over koffi (no
// native compilation). Everything the C receiver does is done by the C receiver: Basic
// auth, body checks, both payload versions, dedup of retries, the status policy.
//
// Threads: handlers run on the JS thread, inside receiver.handle(), synchronously. The
// binding registers its koffi callbacks with the router only, and the router calls them
// only inside pdw_receiver_handle(), on the thread that called it: the JS thread. It never
// gives C a callback that C could call from a thread of its own (no accept hook, no
// intake, no worker). As a guard, a callback that arrives while no handle() of this
// receiver is running on the JS thread is refused (counted as a failed handler, never
// run). test/receiver.test.js checks that a handler runs on the caller's OS thread.
const ffi = require('./lib/ffi.js');

const { koffi, C, types: T } = ffi;
const lib = () => ffi.load();

const version = () => lib().pdw_version();
const versionNumber = () => lib().pdw_version_number();
const strerror = (code) => lib().pdw_strerror(code);
const errName = (code) => lib().pdw_err_name(code);
const errHttpStatus = (code) => lib().pdw_err_http_status(code);

function errorCodes() {
  const out = {};
  for (let code = 0; code > -1000; code--) {
    const name = errName(code);
    if (name === 'PDW_EUNKNOWN') break;
    out[name] = code;
  }
  return out;
}

class PdwError extends Error {
  constructor(code, detail = '', offset = -1) {
    const name = errName(code);
    super(`${name}: ${detail || strerror(code)}`);
    this.code = code;
    this.pdwName = name;
    this.detail = detail || strerror(code);
    this.offset = offset;
  }

  static from(rc, err) {
    return new PdwError(rc, err && err.code ? err.message : '', err && err.code ? Number(err.offset) : -1);
  }
}

const latin1 = (s) => (Buffer.isBuffer(s) ? s : Buffer.from(String(s), 'latin1'));
const utf8 = (s) => (Buffer.isBuffer(s) ? s : s instanceof Uint8Array ? Buffer.from(s) : Buffer.from(String(s), 'utf8'));

// An Event is valid only while its handler runs: it wraps the C event, freed afterwards.
class Event {
  constructor(ptr) {
    this._ptr = ptr;
    this._cache = new Map();
  }

  _p() {
    if (this._ptr === null) {
      throw new Error('pdwebhook: an Event is only valid inside its handler; copy what you need while it runs');
    }
    return this._ptr;
  }

  _detach() { this._ptr = null; this._cache.clear(); }

  _s(fn) { const v = lib()[fn](this._p()); return v === null ? null : v; }

  get version() { return lib().pdw_event_version(this._p()); }
  get action() { return this._s('pdw_event_action'); }
  get deliveredAction() { return this._s('pdw_event_delivered_action'); }
  get object() { return this._s('pdw_event_object'); }
  get name() { return this._s('pdw_event_name'); }
  get deliveredName() { return this._s('pdw_event_delivered_name'); }
  get entityId() { return this._s('pdw_event_entity_id'); }
  get eventId() { return this._s('pdw_event_event_id'); }
  get webhookId() { return this._s('pdw_event_webhook_id'); }
  get companyId() { return this._s('pdw_event_company_id'); }
  get userId() { return this._s('pdw_event_user_id'); }
  get correlationId() { return this._s('pdw_event_correlation_id'); }
  get changeSource() { return this._s('pdw_event_change_source'); }
  get attempt() { return lib().pdw_event_attempt(this._p()); }
  get timestampMs() { const ms = Number(lib().pdw_event_timestamp_ms(this._p())); return ms < 0 ? null : ms; }
  get timestamp() { const ms = this.timestampMs; return ms === null ? null : new Date(ms); }
  get isBulk() { return lib().pdw_event_is_bulk(this._p()) !== 0; }
  get isMerge() { return lib().pdw_event_is_merge(this._p()) !== 0; }
  get mergedFromId() { return this._s('pdw_event_merged_from_id'); }
  get mergedToId() { return this._s('pdw_event_merged_to_id'); }
  get deliveryKey() { return this._s('pdw_event_delivery_key'); }

  get changed() {
    if (!this._cache.has('changed')) {
      const p = this._p();
      const n = Number(lib().pdw_event_changed_count(p));
      const out = [];
      for (let i = 0; i < n; i++) out.push(lib().pdw_event_changed_field(p, i));
      this._cache.set('changed', Object.freeze(out));
    }
    return this._cache.get('changed');
  }

  hasChanged(field) {
    const rc = lib().pdw_event_changed(this._p(), String(field));
    if (rc < 0) throw new PdwError(rc);
    return rc === 1;
  }

  get body() {
    if (!this._cache.has('body')) {
      const len = [0];
      const p = lib().pdw_event_body(this._p(), len);
      const n = Number(len[0]);
      this._cache.set('body', p && n ? Buffer.from(koffi.decode(p, koffi.array('uint8_t', n, 'Typed'))) : Buffer.alloc(0));
    }
    return this._cache.get('body');
  }

  get payload() {
    if (!this._cache.has('payload')) this._cache.set('payload', JSON.parse(this.body.toString('utf8')));
    return this._cache.get('payload');
  }

  // Whether there is a member is the C accessor's call (pdw_event_data / _previous: v2 key,
  // v1 key, a v1 array's first element, JSON null as none); its value is that member of the
  // body parsed with JSON.parse (koffi cannot read a json_t).
  _section(fn, v2, v1) {
    if (!lib()[fn](this._p())) return null;
    let value = this.payload[this.version === 2 ? v2 : v1];
    if (this.version === 1 && Array.isArray(value)) value = value.length ? value[0] : null;
    return value === undefined ? null : value;
  }

  /** The object's data: v2 `data`, v1 `current` (a v1 user event's first element); null when none. */
  get data() { return this._section('pdw_event_data', 'data', 'current'); }
  /** The previous values: v2 `previous`, v1 `previous`; null when none. */
  get previous() { return this._section('pdw_event_previous', 'previous', 'previous'); }

  toString() { return this._ptr === null ? '[pdwebhook.Event (outside its handler)]' : `[pdwebhook.Event ${this.name} ${this.entityId}]`; }
}

function headerPairs(headers) {
  if (!headers) return [];
  if (Array.isArray(headers)) {
    if (headers.length && !Array.isArray(headers[0])) { // node's rawHeaders: [n1, v1, n2, v2, ...]
      const out = [];
      for (let i = 0; i + 1 < headers.length; i += 2) out.push([headers[i], headers[i + 1]]);
      return out;
    }
    return headers;
  }
  if (typeof headers.entries === 'function' && !(headers.constructor === Object)) return [...headers.entries()];
  const out = [];
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const x of v) out.push([k, x]);
    else if (v !== undefined) out.push([k, v]);
  }
  return out;
}

function makeRequest(method, headers, body, query) {
  const hs = headerPairs(headers).map(([n, v]) => {
    const name = latin1(n);
    const value = latin1(v);
    return { name, name_len: name.length, value, value_len: value.length };
  });
  const m = latin1(method);
  let q = query === undefined || query === null ? null : latin1(query);
  if (q && q.length && q[0] === 0x3f) q = q.subarray(1);
  const b = body === undefined || body === null ? Buffer.alloc(0) : utf8(body);
  return {
    version: C.PDW_REQUEST_VERSION,
    method: m,
    method_len: m.length,
    headers: hs.length ? hs : null,
    num_headers: hs.length,
    query: q && q.length ? q : null,
    query_len: q ? q.length : 0,
    body: b.length ? b : null,
    body_len: b.length,
    user: null,
  };
}

function bytesAt(ptr, len) {
  const n = Number(len);
  if (!ptr || !n) return Buffer.alloc(0);
  return Buffer.from(koffi.decode(ptr, koffi.array('uint8_t', n, 'Typed')));
}

// The verdict is read member by member at its offsets (koffi.decode of the whole struct
// costs several times more: it converts every array); the header spans may point into the
// verdict itself, which is why it lives in memory we own until this is done.
let OFF = null;
function offsets() {
  if (OFF) return OFF;
  const o = (m) => koffi.offsetof(T.pdw_verdict, m);
  OFF = {
    status: o('status'), reason: o('reason'), num_headers: o('num_headers'), headers: o('headers'),
    body: o('body'), body_len: o('body_len'), content_type: o('content_type'),
    handlers_matched: o('handlers_matched'), handlers_failed: o('handlers_failed'),
    handler_rc: o('handler_rc'), event: o('event'), delivery_key: o('delivery_key'),
    webhook_id: o('webhook_id'), attempt: o('attempt'), header_size: koffi.sizeof(T.pdw_header),
  };
  return OFF;
}

function responseFrom(vp, errors = [], detail = '') {
  const O = offsets();
  const d = (off, type, len) => (len === undefined ? koffi.decode(vp, off, type) : koffi.decode(vp, off, type, len));
  const headers = [];
  const ct = d(O.content_type, 'const char *');
  if (ct) headers.push(['Content-Type', ct]);
  const nh = Math.min(Number(d(O.num_headers, 'size_t')), C.PDW_VERDICT_MAX_HEADERS);
  for (let i = 0; i < nh; i++) {
    const h = d(O.headers + i * O.header_size, T.pdw_header);
    headers.push([bytesAt(h.name, h.name_len).toString('latin1'), bytesAt(h.value, h.value_len).toString('latin1')]);
  }
  const status = d(O.status, 'int');
  const reason = d(O.reason, 'int');
  return {
    status,
    headers,
    body: bytesAt(d(O.body, 'void *'), d(O.body_len, 'size_t')),
    reason,
    reasonName: errName(reason),
    event: d(O.event, 'char', 2 * C.PDW_NAME_MAX + 2),
    deliveryKey: d(O.delivery_key, 'char', C.PDW_DELIVERY_KEY_MAX),
    webhookId: d(O.webhook_id, 'char', C.PDW_ID_MAX + 1),
    attempt: d(O.attempt, 'unsigned int'),
    handlersMatched: d(O.handlers_matched, 'unsigned int'),
    handlersFailed: d(O.handlers_failed, 'unsigned int'),
    handlerRc: d(O.handler_rc, 'int'),
    errors,
    detail,
    ok: status >= 200 && status < 300,
    peer: null,
  };
}

// One verdict per nesting level of a receiver's calls (a handler may call handle() again),
// allocated once and reused: the library resets it (all but its version) at every call.
function withVerdict(self, fn) {
  const pool = self._verdicts;
  const level = self._vdepth++;
  if (!pool[level]) {
    pool[level] = koffi.alloc(T.pdw_verdict, 1);
    koffi.encode(pool[level], T.pdw_verdict, { version: C.PDW_VERDICT_VERSION });
  }
  try {
    return [fn(pool[level]), pool[level]];
  } finally {
    self._vdepth--;
  }
}

/**
 * A webhook endpoint: one pdw_receiver (auth, parsing, dedup, status policy) and its
 * router, with JS handlers. A handler that throws is reported to onHandlerError(error) (the
 * option, or the method); without one the error is printed with console.error.
 */
class Receiver {
  constructor(options = {}) {
    const L = lib();
    const o = {};
    let rc = L.pdw_receiver_options_init(o, C.PDW_RECEIVER_OPTIONS_VERSION);
    if (rc) throw new PdwError(rc);
    let creds = options.credentials || [];
    if (creds.length === 2 && typeof creds[0] === 'string' && typeof creds[1] === 'string') creds = [creds];
    const pairs = creds.map((c) => (Array.isArray(c) ? { user: c[0], password: c[1] } : { user: c.user, password: c.password }));
    Object.assign(o, {
      version: C.PDW_RECEIVER_OPTIONS_VERSION,
      credentials: pairs.length ? pairs : null,
      num_credentials: pairs.length,
      query_token: options.queryToken ?? null,
      query_token_name: options.queryTokenName ?? null,
      insecure_no_auth: options.insecureNoAuth ? 1 : 0,
      realm: options.realm ?? null,
      max_body: options.maxBody || 0,
      max_depth: options.maxDepth || 0,
      wrong_credentials_status: options.wrongCredentialsStatus || 0,
      handler_error_status: options.handlerErrorStatus || 0,
      retry_after_seconds: options.retryAfterSeconds || 0,
      allow_missing_content_type: options.allowMissingContentType ? 1 : 0,
      disable_dedup: options.disableDedup ? 1 : 0,
      dedup_capacity: options.dedupCapacity || 0,
      dedup_ttl_ms: options.dedupTtlMs || 0,
      inflight_lease_ms: options.inflightLeaseMs || 0,
    });
    const out = [null];
    const err = {};
    rc = L.pdw_receiver_new(out, o, err);
    if (rc) throw PdwError.from(rc, err);
    this._ptr = out[0];
    this._router = L.pdw_receiver_router(this._ptr);
    this._callbacks = [];
    this._depth = 0; // handle() calls of this receiver running now, on this JS thread
    this._state = null;
    this._verdicts = [];
    this._vdepth = 0;
    this.maxBody = options.maxBody || 1 << 20;
    this.lastErrors = [];
    this._onHandlerError = options.onHandlerError || null;
  }

  /** Where a throwing handler's HandlerError goes (replaces the previous one). Returns this. */
  onHandlerError(fn) { this._onHandlerError = fn; return this; }

  _r() {
    if (this._ptr === null) throw new Error('pdwebhook: the receiver is closed');
    return this._ptr;
  }

  /** Free the C receiver. Idempotent; not from inside a handler. */
  close() {
    if (this._ptr === null) return;
    if (this._depth) throw new Error('pdwebhook: close() from inside a handler');
    lib().pdw_receiver_free(this._ptr);
    this._ptr = null;
    for (const vp of this._verdicts) koffi.free(vp);
    this._verdicts = [];
    for (const cb of this._callbacks) koffi.unregister(cb);
    this._callbacks = [];
  }

  _trampoline(fn, label) {
    return (evPtr) => {
      if (this._depth === 0 || this._state === null) {
        // Never outside handle()/dispatch on this thread: see the top of this file.
        return 1;
      }
      const event = new Event(evPtr);
      try {
        fn(event);
        return 0;
      } catch (error) {
        let name = null;
        let key = null;
        try { name = event.name; key = event.deliveryKey; } catch { /* detached */ }
        const he = new HandlerError(label, fn, error, name, key);
        this._state.errors.push(he);
        if (this._onHandlerError) {
          try { this._onHandlerError(he); } catch { /* the reporter's own failure */ }
        } else {
          console.error(`pdwebhook: handler for ${label} failed on ${name} (${key}):`, error);
        }
        return 1;
      } finally {
        event._detach();
      }
    };
  }

  /**
   * Register `handler(event)` for `pattern` ("updated.deal", "*.deal", "change.deal", "*.*";
   * either version's words); `{ changed: 'stage_id' }` runs it only when that field changed.
   * on(pattern, handler) or on(pattern, { changed }, handler). Returns this.
   */
  on(pattern, opts, handler) {
    if (typeof opts === 'function') { handler = opts; opts = {}; }
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    const changed = opts && opts.changed;
    const label = changed ? `${pattern} [${changed}]` : String(pattern);
    const cb = koffi.register(this._trampoline(handler, label), koffi.pointer(T.pdw_handler_cb));
    const err = {};
    const L = lib();
    const rc = changed
      ? L.pdw_router_on_change(this._routerP(), String(pattern), String(changed), cb, null, err)
      : L.pdw_router_on(this._routerP(), String(pattern), cb, null, err);
    if (rc) { koffi.unregister(cb); throw PdwError.from(rc, err); }
    this._callbacks.push(cb);
    return this;
  }

  /** The fallback handler, for events no handler matched. Returns this. */
  onUnhandled(handler) {
    const cb = koffi.register(this._trampoline(handler, 'unhandled'), koffi.pointer(T.pdw_handler_cb));
    const rc = lib().pdw_router_on_unhandled(this._routerP(), cb, null);
    if (rc) { koffi.unregister(cb); throw new PdwError(rc); }
    this._callbacks.push(cb);
    return this;
  }

  _routerP() { this._r(); return this._router; }

  get handlerCount() { return Number(lib().pdw_router_count(this._routerP())); }

  /**
   * Run the whole pipeline on one request and return the response to send:
   * { status, headers: [[name, value]], body: Buffer, reasonName, event, deliveryKey, errors, ... }.
   * Handlers run inside this call, on this thread.
   */
  handle(method, headers, body, query = null) {
    const req = makeRequest(method, headers, body, query);
    const err = {};
    const prev = this._state;
    this._state = { errors: [] };
    this._depth++;
    const level = this._vdepth;
    let state;
    try {
      withVerdict(this, (vp) => lib().pdw_receiver_handle(this._r(), req, vp, err));
    } finally {
      this._depth--;
      state = this._state;
      this._state = prev;
    }
    this.lastErrors = state.errors;
    return responseFrom(this._verdicts[level], state.errors, err.code ? err.message : '');
  }

  /** The checks that need no body (method, Content-Type, Content-Length against maxBody,
   * credentials): null to read the body and handle(), or the response to send instead. */
  checkHead(method, headers, query = null) {
    const req = makeRequest(method, headers, null, query);
    const [rc, vp] = withVerdict(this, (v) => lib().pdw_receiver_check_head(this._r(), req, v));
    return rc === 0 ? null : responseFrom(vp);
  }
}

class HandlerError extends Error {
  constructor(pattern, handler, error, eventName, deliveryKey) {
    super(`pdwebhook: handler for ${pattern} failed on ${eventName}: ${error && error.message}`);
    this.pattern = pattern;
    this.handler = handler;
    this.error = error;
    this.eventName = eventName;
    this.deliveryKey = deliveryKey;
  }
}

/**
 * A request handler for node:http — `http.createServer(createHandler(receiver))` — and an
 * Express middleware — `app.use('/pipedrive', createHandler(receiver))` (mount it before
 * any body parser; express.raw() in front is fine). The head is checked first and a refused
 * request (405, 415, 413 by its Content-Length, 401) is answered without its body being
 * read; then at most maxBody + 1 bytes are read and the receiver decides.
 * Options: path (serve only this path; others go to next() or get 404), onResponse(response,
 * peer). The peer address (req.socket.remoteAddress) is not part of the C request: the
 * handler keeps it, on response.peer and as onResponse's second argument.
 */
function createHandler(receiver, options = {}) {
  const { path = null, onResponse = null } = options;
  const send = (res, response, close) => {
    res.statusCode = response.status;
    for (const [n, v] of response.headers) res.setHeader(n, v);
    res.setHeader('Content-Length', response.body.length);
    if (close) res.setHeader('Connection', 'close');
    res.end(response.body);
  };
  const finished = (req, response) => {
    response.peer = (req.socket && req.socket.remoteAddress) || null;
    if (onResponse) {
      try { onResponse(response, response.peer); } catch (e) { console.error('pdwebhook: onResponse threw', e); }
    }
    return response;
  };
  return function pdwebhookHandler(req, res, next) {
    const url = req.url || '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? null : url.slice(q + 1);
    if (path !== null && pathname.replace(/\/+$/, '') !== path.replace(/\/+$/, '')) {
      if (typeof next === 'function') return next();
      res.statusCode = 404;
      res.end('not found\n');
      return undefined;
    }
    const headers = req.rawHeaders || req.headers;
    let early;
    try {
      early = receiver.checkHead(req.method, headers, query);
    } catch (e) {
      if (typeof next === 'function') return next(e);
      throw e;
    }
    if (early) {
      send(res, finished(req, early), true); // the body, if any, stays unread
      return undefined;
    }
    const done = (body) => {
      let response;
      try {
        response = receiver.handle(req.method, headers, body, query);
      } catch (e) {
        if (typeof next === 'function') return next(e);
        res.statusCode = 500;
        res.end();
        return undefined;
      }
      send(res, finished(req, response), over);
      return undefined;
    };
    if (Buffer.isBuffer(req.body)) return done(req.body); // express.raw() ran first
    if (req.body !== undefined && req.body !== null && typeof req.body === 'object' && Object.keys(req.body).length) {
      const e = new Error('pdwebhook: the body was parsed by another middleware; mount pdwebhook before express.json()');
      if (typeof next === 'function') return next(e);
      throw e;
    }
    const chunks = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk) => {
      if (over) return;
      chunks.push(chunk);
      size += chunk.length;
      if (size > receiver.maxBody) { // the receiver answers 413; read no further
        over = true;
        req.pause();
        done(Buffer.concat(chunks));
      }
    });
    req.on('end', () => { if (!over) done(Buffer.concat(chunks)); });
    req.on('error', () => { /* the client went away: nothing to answer */ });
    return undefined;
  };
}

module.exports = {
  Receiver,
  Event,
  PdwError,
  HandlerError,
  createHandler,
  express: createHandler,
  version,
  versionNumber,
  strerror,
  errName,
  errHttpStatus,
  errorCodes,
  load: (p) => { ffi.load(p); return ffi.libraryPath(); },
  libraryPath: ffi.libraryPath,
  SOVERSION: ffi.SOVERSION,
  LIBRARY_ENV: ffi.LIBRARY_ENV,
  __version__: require('./package.json').version,
};
