'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { isMainThread } = require('node:worker_threads');
const pdw = require('..');
const { koffi } = require('../lib/ffi.js');
const { basic, fixture, expectedRows, delivery } = require('./helpers.js');

const H = (body, auth = basic()) => ({ 'content-type': 'application/json', authorization: auth, 'content-length': String(body.length) });

// The OS thread id, from libc, to compare the handler's thread with the caller's.
const gettid = koffi.load('libc.so.6').func('long syscall(long number)').bind(null, 186);

test('version: the package is the library it loads, major checked', () => {
  assert.strictEqual(pdw.__version__, pdw.version());
  assert.strictEqual(pdw.versionNumber() >> 16, pdw.SOVERSION);
  assert.match(pdw.libraryPath(), /libpdwebhook\.so\.1$/);
});

test('every fixture, as tests/fixtures/expected.tsv says', () => {
  const rows = expectedRows();
  assert.ok(rows.length >= 40);
  for (const row of rows) {
    const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']] });
    const got = [];
    r.on('*.*', (e) => got.push({ version: String(e.version), event: e.name, delivered: e.deliveredName,
      entity_id: e.entityId, webhook_id: e.webhookId, attempt: String(e.attempt),
      changed: e.changed.join(',') || null, data: e.data, payload: e.payload }));
    const body = fixture(row.file);
    const res = r.handle('POST', H(body), body);
    assert.strictEqual(res.reasonName, row.result, row.file);
    if (row.result === 'PDW_OK') {
      assert.strictEqual(res.status, 200);
      assert.strictEqual(got.length, 1, row.file);
      const dash = (v) => (v === '-' ? null : v);
      assert.strictEqual(got[0].event, row.event, row.file);
      assert.strictEqual(got[0].delivered, row.delivered, row.file);
      assert.strictEqual(got[0].version, row.version, row.file);
      assert.strictEqual(got[0].entity_id, dash(row.entity_id), row.file);
      assert.strictEqual(got[0].attempt, row.attempt, row.file);
      assert.strictEqual(got[0].changed, dash(row.changed), row.file);
      assert.deepStrictEqual(got[0].payload, JSON.parse(body));
    } else {
      assert.strictEqual(res.status, pdw.errHttpStatus(res.reason));
      assert.strictEqual(got.length, 0);
    }
    r.close();
  }
});

test('a handler runs on the JS thread, inside handle(), on the caller\'s OS thread', () => {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']] });
  const seen = [];
  let inCall = false;
  r.on('*.*', () => seen.push({ main: isMainThread, tid: gettid(), inCall }));
  const body = delivery(1);
  inCall = true;
  const res = r.handle('POST', H(body), body);
  inCall = false;
  assert.strictEqual(res.status, 200);
  assert.deepStrictEqual(seen, [{ main: true, tid: gettid(), inCall: true }]);
  assert.strictEqual(gettid(), process.pid, 'the main thread\'s tid is the pid');
  r.close();
});

test('a callback outside handle() is refused: the guard', () => {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']] });
  let ran = 0;
  const fn = r._trampoline(() => { ran++; }, 'x');
  assert.strictEqual(fn(null), 1);
  assert.strictEqual(ran, 0);
  r.close();
});

test('a throwing handler: 200, reported, the other handlers still run', () => {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']] });
  const reported = [];
  r.onHandlerError((e) => reported.push(e));
  let other = 0;
  r.on('change.deal', () => { throw new Error('boom'); });
  r.on('*.*', () => { other++; });
  const body = delivery(2);
  const res = r.handle('POST', H(body), body);
  assert.strictEqual(res.status, 200);
  assert.strictEqual(res.reasonName, 'PDW_EHANDLER');
  assert.strictEqual(res.errors.length, 1);
  assert.strictEqual(res.errors[0].error.message, 'boom');
  assert.strictEqual(res.errors[0].pattern, 'change.deal');
  assert.strictEqual(reported.length, 1);
  assert.strictEqual(other, 1);
  assert.deepStrictEqual(r.lastErrors, res.errors);
  r.close();
});

test('handlerErrorStatus 500 makes Pipedrive retry', () => {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']], handlerErrorStatus: 500 });
  r.onHandlerError(() => {});
  r.on('*.*', () => { throw new Error('x'); });
  const body = delivery(3);
  assert.strictEqual(r.handle('POST', H(body), body).status, 500);
  r.close();
});

test('on(pattern, {changed}) and the event accessors', () => {
  const r = new pdw.Receiver({ credentials: ['pipedrive', 's3cret'] });
  const hits = [];
  let kept;
  r.on('change.deal', { changed: 'stage_id' }, (e) => { hits.push('stage'); kept = e; });
  r.on('change.deal', { changed: 'no_such_field' }, () => hits.push('never'));
  r.on('updated.deal', (e) => {
    hits.push(`v${e.version} ${e.action} ${e.object} ${e.deliveredName}`);
    assert.ok(e.hasChanged('stage_id'));
    assert.ok(e.changed.includes('stage_id'));
    assert.ok(e.data && typeof e.data === 'object');
    assert.ok(e.previous && typeof e.previous === 'object');
    assert.ok(e.timestamp instanceof Date);
    assert.strictEqual(typeof e.deliveryKey, 'string');
    assert.strictEqual(e.body.length > 0, true);
  });
  assert.throws(() => r.on('not a pattern', () => {}), (e) => e instanceof pdw.PdwError && e.pdwName === 'PDW_EPATTERN');
  const d = JSON.parse(fixture('v2-change.deal-pipedrive-docs.json'));
  d.previous = { stage_id: 1 };
  d.data.stage_id = 2;
  const body = Buffer.from(JSON.stringify(d));
  const res = r.handle('POST', H(body), body);
  assert.strictEqual(res.status, 200, res.body.toString());
  assert.deepStrictEqual(hits.sort(), ['stage', 'v2 change deal change.deal'].sort());
  assert.throws(() => kept.name, /only valid inside its handler/);
  assert.throws(() => r.on('*.*', () => {}), (e) => e.pdwName === 'PDW_EFROZEN');
  r.close();
});

test('refusals: wrong password 401, retry duplicate, size 413, method 405, checkHead', () => {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']], maxBody: 4096 });
  let n = 0;
  r.on('*.*', () => { n++; });
  const body = delivery(4);
  const wrong = r.handle('POST', H(body, basic('pipedrive', 'nope')), body);
  assert.strictEqual(wrong.status, 401);
  assert.ok(wrong.headers.some(([k]) => k === 'WWW-Authenticate'));
  assert.strictEqual(r.handle('POST', H(body), body).reasonName, 'PDW_OK');
  const again = r.handle('POST', H(body), body);
  assert.strictEqual(again.status, 200);
  assert.strictEqual(again.reasonName, 'PDW_EDUPLICATE');
  assert.strictEqual(n, 1);
  const big = Buffer.alloc(5000, 0x20);
  assert.strictEqual(r.handle('POST', H(big), big).status, 413);
  assert.strictEqual(r.checkHead('POST', { ...H(body), 'content-length': '999999' }).status, 413);
  assert.strictEqual(r.checkHead('GET', H(body)).status, 405);
  assert.strictEqual(r.checkHead('POST', H(body)), null);
  assert.deepStrictEqual(Object.keys(pdw.errorCodes()).slice(0, 2), ['PDW_OK', 'PDW_ENOMEM']);
  r.close();
  assert.throws(() => r.handle('POST', H(body), body), /closed/);
});
