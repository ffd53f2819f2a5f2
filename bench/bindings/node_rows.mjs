// The Node binding in process: Receiver.handle() (koffi into libpdwebhook: Basic auth,
// strict parse, dispatch to a handler that reads one field) over the same compact bodies
// as pdwebhook-bench and bench/peers/inprocess.mjs, and a plain JSON.parse + object
// dispatch for scale. Prints rows in pdwebhook-bench's format.
//
//   PDWEBHOOK_LIBRARY=build/lib node bench/bindings/node_rows.mjs CORPUS_DIR SECONDS [ROUNDS]
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const pdw = require("../../bindings/node/index.js");

const [dir, secondsArg, roundsArg] = process.argv.slice(2);
if (!dir || !secondsArg) {
  console.error("usage: node node_rows.mjs CORPUS_DIR SECONDS [ROUNDS]");
  process.exit(2);
}
const seconds = Number(secondsArg);
const rounds = Number(roundsArg || 5);
const bodies = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => Buffer.from(JSON.stringify(JSON.parse(readFileSync(join(dir, f), "utf8")))));
const passBytes = bodies.reduce((a, b) => a + b.length, 0);
const headers = [
  ["Content-Type", "application/json"],
  ["Authorization", "Basic " + Buffer.from("pipedrive:correct horse battery staple").toString("base64")],
];

// dedup off: every pass hands every body on again (as the peer does)
const receiver = new pdw.Receiver({
  credentials: [["pipedrive", "correct horse battery staple"]],
  disableDedup: true,
});
let sink = 0;
receiver.on("*.*", (event) => { sink += event.action.length; });

const table = { deal: (m) => { sink += m.action.length; } };
function plain(body) {
  const p = JSON.parse(body);
  const m = p.meta || {};
  const obj = m.entity || m.object;
  const h = table[obj] || ((x) => { sink += x.action ? x.action.length : 0; });
  h(m);
}

function measure(fn) {
  const eps = [];
  const pass = () => { for (const b of bodies) fn(b); return bodies.length; };
  const warm = performance.now() + 200;
  while (performance.now() < warm) pass();
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const deadline = t0 + (seconds * 1000) / rounds;
    let n = 0;
    do n += pass(); while (performance.now() < deadline);
    eps.push(n / ((performance.now() - t0) / 1000));
  }
  return eps.sort((a, b) => a - b);
}

function row(name, eps) {
  const med = eps[Math.floor(eps.length / 2)];
  const per = passBytes / bodies.length;
  console.log(JSON.stringify({
    name,
    events_per_s: Math.round(med),
    MB_per_s: Number(((med * per) / 1e6).toFixed(1)),
    ns_per_event: Math.round(1e9 / med),
    bytes_per_event: Math.round(per),
    threads: 1,
    rounds: eps.length,
    min_events_per_s: Math.round(eps[0]),
    max_events_per_s: Math.round(eps[eps.length - 1]),
  }));
}

row("node_pdwebhook_handle", measure((b) => receiver.handle("POST", headers, b)));
row("node_json_parse_dispatch", measure(plain));
console.error(`node_rows: pdwebhook ${pdw.version()} via koffi ${require("../../bindings/node/lib/ffi.js").koffi.version}, node ${process.version}, ${bodies.length} bodies (sink ${sink > 0})`);
receiver.close();
