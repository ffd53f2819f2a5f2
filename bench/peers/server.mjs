// The HTTP peer: @octokit/webhooks' Node middleware on node:http, one handler that reads
// one field. Logging off (pdwebhook serve logs every request; this favours the peer).
//
//   node server.mjs PORT
import { createServer } from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const port = Number(process.argv[2] || 8093);
const webhooks = new Webhooks({ secret: "correct horse battery staple" });
let sink = 0;
webhooks.on("push", ({ payload }) => {
  sink += payload.meta && payload.meta.action ? payload.meta.action.length : 0;
});
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const middleware = createNodeMiddleware(webhooks, { path: "/", log: quiet });
const server = createServer(async (req, res) => {
  if (!(await middleware(req, res))) {
    res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 30000;
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${port}/ (@octokit/webhooks middleware)`);
});
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => server.close(() => process.exit(0)));
