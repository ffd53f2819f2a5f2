'use strict';
// The examples as a user runs them: a child process, a fixture posted over loopback.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { fixture, delivery, post, basic } = require('./helpers.js');

function start(t, file) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file), '0'],
    { env: { ...process.env, PDW_PASSWORD: 's3cret' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening: ${out}`)), 10000);
    const poll = setInterval(() => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) { clearTimeout(timer); clearInterval(poll); resolve({ port: Number(m[1]), child, output: () => out }); }
    }, 20);
  });
}

async function waitFor(fn) {
  const end = Date.now() + 5000;
  while (Date.now() < end && !fn()) await new Promise((r) => setTimeout(r, 20));
  return fn();
}

for (const [file, hook] of [['http.js', '/'], ['express.js', '/pipedrive']]) {
  test(`examples/${file}`, async (t) => {
    const s = await start(t, file);
    const res = await post(s.port, hook, fixture('v1-updated.deal-pipedream.json'));
    assert.strictEqual(res.status, 200, res.body.toString());
    assert.strictEqual((await post(s.port, hook, delivery(5), { auth: basic('x', 'y') })).status, 401);
    assert.ok(await waitFor(() => /event change\.deal/.test(s.output())), s.output());
    s.child.kill('SIGTERM');
    await new Promise((r) => s.child.once('exit', r));
  });
}
