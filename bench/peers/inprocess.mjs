// The in-process peer: @octokit/webhooks' verifyAndReceive (HMAC-SHA256 check, JSON.parse,
// dispatch to a handler that reads one field) over the same compact bodies as
// pdwebhook-bench. Prints rows in pdwebhook-bench's format.
//
//   node inprocess.mjs CORPUS_DIR SECONDS [ROUNDS]
//
// Two ways of driving it, both reported: one await per event (sequential), and one pass of
// the corpus in flight at once (Promise.all; this lets the async HMAC overlap). The faster
// one is the peer's figure in docs/BENCHMARKS.md.
import { readFileSync, readdirSync } from "node:fs";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { Webhooks } from "@octokit/webhooks";

const [dir, secondsArg, roundsArg] = process.argv.slice(2);
if (!dir || !secondsArg) {
  console.error("usage: node inprocess.mjs CORPUS_DIR SECONDS [ROUNDS]");
  process.exit(2);
}
const seconds = Number(secondsArg);
const rounds = Number(roundsArg || 5);
const secret = "correct horse battery staple";

const bodies = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.stringify(JSON.parse(readFileSync(join(dir, f), "utf8"))))
  .map((payload, i) => ({
    id: `delivery-${i}`,
    name: "push",
    payload,
    // signed once, as the sender would
    signature: "sha256=" + createHmac("sha256", secret).update(payload).digest("hex"),
    bytes: Buffer.byteLength(payload),
  }));
const passBytes = bodies.reduce((a, b) => a + b.bytes, 0);

const webhooks = new Webhooks({ secret });
let sink = 0;
webhooks.on("push", ({ payload }) => {
  sink += payload.meta && payload.meta.action ? payload.meta.action.length : 0;
});

async function sequential(deadline) {
  let n = 0;
  do {
    for (const b of bodies) await webhooks.verifyAndReceive(b);
    n += bodies.length;
  } while (performance.now() < deadline);
  return n;
}

async function batched(deadline) {
  let n = 0;
  do {
    await Promise.all(bodies.map((b) => webhooks.verifyAndReceive(b)));
    n += bodies.length;
  } while (performance.now() < deadline);
  return n;
}

async function measure(fn) {
  const eps = [];
  await fn(performance.now() + 200); // warm-up (JIT)
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const n = await fn(t0 + (seconds * 1000) / rounds);
    eps.push(n / ((performance.now() - t0) / 1000));
  }
  eps.sort((a, b) => a - b);
  return eps;
}

function row(name, eps) {
  const med = eps[Math.floor(eps.length / 2)];
  const per = passBytes / bodies.length;
  console.log(
    JSON.stringify({
      name,
      events_per_s: Math.round(med),
      MB_per_s: Number(((med * per) / 1e6).toFixed(1)),
      ns_per_event: Math.round(1e9 / med),
      bytes_per_event: Math.round(per),
      threads: 1,
      rounds: eps.length,
      min_events_per_s: Math.round(eps[0]),
      max_events_per_s: Math.round(eps[eps.length - 1]),
    }),
  );
}

const seq = await measure(sequential);
row("octokit_verify_and_receive_seq", seq);
const bat = await measure(batched);
row("octokit_verify_and_receive_batch", bat);
console.error(
  `inprocess: @octokit/webhooks ${JSON.parse(readFileSync(new URL("./node_modules/@octokit/webhooks/package.json", import.meta.url))).version}, node ${process.version}, ${bodies.length} bodies (sink ${sink > 0})`,
);
