// A third column for the benchmarks: Node.js with the `ws` package, the
// same echo and broadcast logic as bench/src/bin/native.rs (greeting on
// connect; "You said: <text>" on /echo; "Broadcast: <text>" to every
// client on /broadcast, and to every member of topic `bench` on /topic,
// a Set, the `ws` idiom), the same listen backlog (4096), messages up to
// 1 MiB. ws sets TCP_NODELAY on every socket. No compression, unless
// DEFLATE=1: then permessage-deflate with wasock's defaults (threshold 128
// bytes, level 3, no context takeover on either side).
//
// node bench/node/server.js [PORT]   (default 0); prints `listening on ADDR`.
'use strict';
const http = require('node:http');
const { WebSocketServer } = require('ws');

const deflate = process.env.DEFLATE === '1' && {
  threshold: 128,
  zlibDeflateOptions: { level: 3 },
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
};
const options = { noServer: true, perMessageDeflate: deflate || false, maxPayload: 1 << 20 };
const echo = new WebSocketServer(options);
const broadcast = new WebSocketServer({ ...options, clientTracking: true });
const topic = new WebSocketServer(options);
const topics = new Map([['bench', new Set()]]);

echo.on('connection', (ws) => {
  ws.send('Welcome to the chat room!');
  ws.on('message', (data, isBinary) => {
    if (!isBinary) ws.send(`You said: ${data}`);
  });
});

broadcast.on('connection', (ws) => {
  ws.send('Connection established!');
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const out = `Broadcast: ${data}`;
    for (const peer of broadcast.clients) peer.send(out);
  });
});

topic.on('connection', (ws) => {
  const members = topics.get('bench');
  members.add(ws);
  ws.send('Connection established!');
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const out = `Broadcast: ${data}`;
    for (const member of members) member.send(out);
  });
  ws.on('close', () => members.delete(ws));
});

const server = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
server.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  const wss = { '/echo': echo, '/broadcast': broadcast, '/topic': topic }[path] ?? null;
  if (!wss) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen({ host: '127.0.0.1', port: Number(process.argv[2] || 0), backlog: 4096 }, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
