'use strict';
// Pipedrive webhooks in an Express app: the middleware takes /pipedrive, Express the rest.
//   npm install express && PDW_PASSWORD=s3cret node examples/express.js [PORT]
// Mount pdwebhook before any body parser (express.json() would consume the raw bytes the
// receiver authenticates and checks); express.raw() in front of it is fine.
const express = require('express');
const pdwebhook = require('..');

const receiver = new pdwebhook.Receiver({
  credentials: [[process.env.PDW_USER || 'pipedrive', process.env.PDW_PASSWORD]],
});
let events = 0;
receiver.on('*.*', (event) => {
  events++;
  console.log(`event ${event.name} id=${event.entityId}`);
});

const app = express();
app.use('/pipedrive', pdwebhook.express(receiver));
app.use(express.json());
app.get('/', (req, res) => res.json({ service: 'express + pdwebhook', events }));

const server = app.listen(Number(process.argv[2] || 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => { receiver.close(); process.exit(0); }));
