// The Bun column of the benchmarks: the same echo and broadcast logic as
// bench/src/bin/native.rs and bench/node/server.js (greeting on connect;
// "You said: <text>" on /echo; "Broadcast: <text>" to every client on
// /broadcast and to every member of topic `bench` on /topic), written the
// Bun way: Bun.serve's websocket handlers (uWebSockets underneath) and its
// own `server.publish` for both fan-outs. Messages up to 1 MiB. No
// compression, unless DEFLATE=1: then permessage-deflate with Bun's
// shared compressor and decompressor (no context takeover, as wasock's
// default), and every send asks for compression (Bun compresses only the
// sends that pass `compress = true`).
//
// bun bench/bun/server.js [PORT]   (default 0); prints `listening on ADDR`.
const deflate = process.env.DEFLATE === "1" ? { compress: "shared", decompress: "shared" } : false;
const compress = deflate !== false;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.argv[2] || 0),
  fetch(req, server) {
    const path = new URL(req.url).pathname;
    if (!["/echo", "/broadcast", "/topic"].includes(path)) return new Response(null, { status: 404 });
    if (server.upgrade(req, { data: { path } })) return undefined;
    return new Response("upgrade required", { status: 426 });
  },
  websocket: {
    maxPayloadLength: 1 << 20,
    perMessageDeflate: deflate,
    open(ws) {
      const { path } = ws.data;
      if (path === "/echo") {
        ws.send("Welcome to the chat room!", compress);
        return;
      }
      ws.subscribe(path === "/topic" ? "bench" : "broadcast");
      ws.send("Connection established!", compress);
    },
    message(ws, message) {
      if (typeof message !== "string") return;
      const { path } = ws.data;
      if (path === "/echo") ws.send(`You said: ${message}`, compress);
      else server.publish(path === "/topic" ? "bench" : "broadcast", `Broadcast: ${message}`, compress);
    },
  },
});
console.log(`listening on ${server.hostname}:${server.port}`);
