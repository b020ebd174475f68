// Drives every bundled plugin with the WHATWG WebSocket API that browsers
// have (Node's built-in WebSocket), checking the seed document's behaviour.
// Usage: node --experimental-websocket seed-clients.mjs ws://HOST:PORT
const base = process.argv[2];
setTimeout(() => fail(new Error("timed out")), 20000).unref();

function fail(err) {
  console.error(err);
  process.exit(1);
}

function expect(got, want, what) {
  if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// Opens a WebSocket and queues what it receives, like a page would.
function open(path) {
  const ws = new WebSocket(base + path);
  ws.binaryType = "arraybuffer";
  const queue = [];
  const waiters = [];
  ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : queue.push(e.data));
  const closed = new Promise((resolve) => (ws.onclose = resolve));
  const opened = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot open ${path}`));
  });
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
  return opened.then(() => ({ ws, next, closed }));
}

async function main() {
  const echo = await open("/echo");
  expect(await echo.next(), "Welcome to the chat room!", "echo welcome");
  echo.ws.send("hi");
  expect(await echo.next(), "You said: hi", "echo reply");

  const binary = await open("/binary");
  expect(new TextDecoder().decode(await binary.next()), "Binary hello", "binary hello");
  binary.ws.send(new Uint8Array(5));
  expect(new DataView(await binary.next()).getUint32(0, true), 5, "binary length");

  const bye = await open("/bye");
  bye.ws.send("bye");
  expect(await bye.next(), "Goodbye!", "bye reply");
  expect((await bye.closed).code, 1000, "bye close code");

  const alice = await open("/chat");
  expect(await alice.next(), "Welcome! There are 1 users online.", "chat welcome 1");
  const bob = await open("/chat");
  expect(await bob.next(), "Welcome! There are 2 users online.", "chat welcome 2");
  bob.ws.send("Hello everyone!");
  expect(await alice.next(), "Hello everyone!", "chat to alice");
  expect(await bob.next(), "Hello everyone!", "chat to bob");

  const one = await open("/broadcast");
  expect(await one.next(), "Connection established!", "broadcast welcome");
  const two = await open("/broadcast");
  expect(await two.next(), "Connection established!", "broadcast welcome");
  one.ws.send("news");
  expect(await one.next(), "Broadcast: news", "broadcast to sender");
  expect(await two.next(), "Broadcast: news", "broadcast to other");

  for (const c of [echo, binary, alice, bob, one, two]) c.ws.close();
  console.log("browser API client: every plugin behaves as the seed says");
}

main().then(() => process.exit(0), fail);
