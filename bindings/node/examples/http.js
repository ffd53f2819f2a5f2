'use strict';
// A Pipedrive webhook receiver on plain node:http.
//   PDW_PASSWORD=s3cret node examples/http.js [PORT]
// Point a Pipedrive webhook at http://HOST:PORT/ with HTTP auth pipedrive / s3cret (behind
// HTTPS in production). The first line printed says where it listens (PORT 0: any free port).
const http = require('node:http');
const pdwebhook = require('..');

const receiver = new pdwebhook.Receiver({
  credentials: [[process.env.PDW_USER || 'pipedrive', process.env.PDW_PASSWORD]],
});
receiver.on('*.*', (event) => {
  console.log(`event ${event.name} (delivered as ${event.deliveredName}, v${event.version}) ` +
    `id=${event.entityId} attempt=${event.attempt} changed=${event.changed.join(',') || '-'}`);
});
receiver.on('change.deal', { changed: 'stage_id' }, (event) => {
  console.log(`deal ${event.entityId} moved from stage ${(event.previous || {}).stage_id} ` +
    `to stage ${(event.data || {}).stage_id}`);
});

const server = http.createServer(pdwebhook.createHandler(receiver));
server.listen(Number(process.argv[2] || 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => { receiver.close(); process.exit(0); }));
