'use strict';
// The koffi mirrors in lib/ffi.js have exactly the C layout (the Python binding's layout
// helper prints what the C compiler says), and the constants are the headers'.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const ffi = require('../lib/ffi.js');

const helper = process.env.PDW_LAYOUT_HELPER;

test('struct layouts and constants', { skip: !helper && 'PDW_LAYOUT_HELPER not set (ctest sets it)' }, () => {
  const c = JSON.parse(execFileSync(helper, { encoding: 'utf8' }));
  for (const [name, type] of Object.entries(ffi.types)) {
    if (name === 'pdw_handler_cb') continue;
    const want = c.structs[name];
    assert.ok(want, `${name} described by the helper`);
    assert.strictEqual(ffi.koffi.sizeof(type), want.sizeof, `sizeof(${name})`);
    for (const [member, offset, size] of want.fields) {
      assert.strictEqual(ffi.koffi.offsetof(type, member), offset, `${name}.${member} offset`);
      void size;
    }
  }
  for (const [k, v] of Object.entries(ffi.C)) assert.strictEqual(v, c.constants[k], k);
});
