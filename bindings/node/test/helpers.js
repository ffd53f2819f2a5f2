'use strict';
// Shared by the tests: fixtures, requests over loopback, servers that the tests stop.
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const net = require('node:net');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.PDW_FIXTURES || path.join(ROOT, 'tests', 'fixtures');
const USER = 'pipedrive';
const PASSWORD = 's3cret';
const basic = (u = USER, p = PASSWORD) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

const fixture = (name) => fs.readFileSync(path.join(FIXTURES, name));

function expectedRows() {
  const lines = fs.readFileSync(path.join(FIXTURES, 'expected.tsv'), 'utf8').split('\n');
  const cols = lines[0].replace(/^# /, '').split('\t');
  return lines.slice(1).filter((l) => l && !l.startsWith('#'))
    .map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i], v])));
}

// A distinct v2 delivery (its own event id) from a real fixture.
function delivery(n, entityId) {
  const d = JSON.parse(fixture('v2-change.deal-pipedrive-docs.json'));
  d.meta.id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  d.meta.entity_id = String(entityId ?? 100000 + n);
  return Buffer.from(JSON.stringify(d));
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

function close(server) {
  return new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); });
}

// POST (or another method) over loopback: { status, headers, body }; bounded by a timeout.
function post(port, urlPath, body, { auth = basic(), method = 'POST', type = 'application/json' } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (type) headers['Content-Type'] = type;
    if (auth) headers.Authorization = auth;
    if (body) headers['Content-Length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// A head declaring 50 MB and no body sent: the 413 must come without the body being read.
function declaredOnly(port, urlPath) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no answer: ${data}`)); }, 5000);
    c.on('connect', () => c.write(`POST ${urlPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Authorization: ${basic()}\r\nContent-Length: 50000000\r\n\r\n{`));
    c.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n')) { clearTimeout(timer); c.destroy(); resolve(data.split('\r\n')[0]); }
    });
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

module.exports = { FIXTURES, USER, PASSWORD, basic, fixture, expectedRows, delivery, listen, close, post, declaredOnly };
