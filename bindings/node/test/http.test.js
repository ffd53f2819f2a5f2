'use strict';
// A real node:http server on loopback with createHandler, and Express with the middleware.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const pdw = require('..');
const { basic, fixture, expectedRows, delivery, listen, close, post, declaredOnly } = require('./helpers.js');

const MAX_BODY = 64 * 1024;

function makeReceiver(log) {
  const r = new pdw.Receiver({ credentials: [['pipedrive', 's3cret']], maxBody: MAX_BODY });
  r.onHandlerError((e) => log.errors.push(e));
  r.on('*.*', (e) => {
    if (e.entityId === '424242') throw new Error('boom-424242');
    log.handled.push(e.deliveryKey);
  });
  return r;
}

async function exercise(t, port, urlPath, log, responses) {
  for (const row of expectedRows()) {
    const res = await post(port, urlPath, fixture(row.file));
    assert.strictEqual(res.status, row.result === 'PDW_OK' ? 200 : 400, `${row.file}: ${res.body}`);
  }
  assert.ok(log.handled.length >= 40, `handled ${log.handled.length}`);

  const body = delivery(1);
  const wrong = await post(port, urlPath, body, { auth: basic('pipedrive', 'nope') });
  assert.strictEqual(wrong.status, 401);
  assert.match(wrong.headers['www-authenticate'], /^Basic /);
  assert.strictEqual((await post(port, urlPath, body, { auth: null })).status, 401);

  const first = await post(port, urlPath, body);
  assert.strictEqual(first.status, 200);
  const again = await post(port, urlPath, body);
  assert.strictEqual(again.status, 200);
  assert.match(again.body.toString(), /PDW_EDUPLICATE/);
  const key = responses.at(-1).deliveryKey;
  assert.strictEqual(log.handled.filter((k) => k === key).length, 1, 'handed on once');

  const big = await post(port, urlPath, Buffer.alloc(MAX_BODY + 1024, 0x20)).catch((e) => ({ status: e.message }));
  assert.strictEqual(big.status, 413);
  assert.strictEqual(await declaredOnly(port, urlPath), 'HTTP/1.1 413 Payload Too Large');

  const boom = await post(port, urlPath, delivery(2, 424242));
  assert.strictEqual(boom.status, 200);
  assert.strictEqual(log.errors.length, 1);
  assert.strictEqual(log.errors[0].error.message, 'boom-424242');
  assert.strictEqual(responses.at(-1).errors[0].error.message, 'boom-424242');
  assert.strictEqual(responses.at(-1).peer.replace('::ffff:', ''), '127.0.0.1');

  assert.strictEqual((await post(port, urlPath, null, { method: 'GET' })).status, 405);
}

test('node:http: every fixture, 401, duplicate, 413, a throwing handler', async (t) => {
  const log = { handled: [], errors: [] };
  const responses = [];
  const handler = pdw.createHandler(makeReceiver(log), { onResponse: (r) => responses.push(r) });
  const server = http.createServer(handler);
  const port = await listen(server);
  t.after(() => close(server));
  await exercise(t, port, '/', log, responses);
});

test('express: the middleware on /pipedrive, the app\'s own routes still served', async (t) => {
  const express = require('express');
  const log = { handled: [], errors: [] };
  const responses = [];
  const app = express();
  app.use('/pipedrive', pdw.express(makeReceiver(log), { onResponse: (r) => responses.push(r) }));
  app.use(express.json());
  app.get('/', (req, res) => res.json({ handled: log.handled.length }));
  app.post('/other', (req, res) => res.json({ echo: req.body }));
  const server = http.createServer(app);
  const port = await listen(server);
  t.after(() => close(server));
  await exercise(t, port, '/pipedrive', log, responses);
  const page = await post(port, '/', null, { method: 'GET' });
  assert.strictEqual(page.status, 200);
  assert.ok(JSON.parse(page.body).handled >= 40);
  const other = await post(port, '/other', Buffer.from('{"a":1}'));
  assert.deepStrictEqual(JSON.parse(other.body), { echo: { a: 1 } });
});

test('createHandler with a path: other paths 404 (no next)', async (t) => {
  const log = { handled: [], errors: [] };
  const server = http.createServer(pdw.createHandler(makeReceiver(log), { path: '/hook' }));
  const port = await listen(server);
  t.after(() => close(server));
  assert.strictEqual((await post(port, '/elsewhere', delivery(9))).status, 404);
  assert.strictEqual((await post(port, '/hook', delivery(9))).status, 200);
  assert.strictEqual((await post(port, '/hook?x=1', delivery(10))).status, 200);
});
