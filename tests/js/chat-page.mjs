// Drives plugins/chat's page (public/index.html) in a real Chromium through
// playwright-core: two people join, each sees the other's messages, one
// reloads and rejoins, the plugin is hot-swapped mid-conversation (the Rust
// test does it when this script prints SWAP and answers "swapped" on stdin)
// and both keep chatting on the connections they had, which Chromium
// negotiated permessage-deflate on.
//
//   node chat-page.mjs http://127.0.0.1:PORT/chat OUTPUT_DIR
//
// Prints "OK" last when every step held; any failure exits non-zero.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { join } from "node:path";

const [pageUrl, outDir] = process.argv.slice(2);
const WAIT = 10_000;

// The flags this machine's closed network needs (see the library's env notes).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const step = (what) => console.log(`step: ${what}`);

try {
  // Separate contexts: each person has their own storage (the saved name).
  const alice = await open("alice");
  const bob = await open("bob");
  await sees(alice, "bob joined");

  await say(alice, "alice", "hello bob");
  await sees(bob, "alice: hello bob");
  await say(bob, "bob", "hi alice");
  await sees(alice, "bob: hi alice");
  step("both see each other");

  await bob.reload();
  await online(bob);
  await sees(alice, "bob joined", 2);
  await say(bob, "bob", "back again");
  await sees(alice, "bob: back again");
  step("bob reloaded and rejoined under his saved name");

  console.log("SWAP");
  const answer = await lines.next();
  if (answer.value !== "swapped") throw new Error(`expected "swapped", got ${JSON.stringify(answer.value)}`);

  await say(alice, "alice", "after the swap");
  await sees(bob, "alice: after the swap");
  await say(bob, "bob", "still here");
  await sees(alice, "bob: still here");
  for (const [who, page] of [["alice", alice], ["bob", bob]]) {
    const opens = await page.evaluate(() => window.wasockChat.opens);
    if (opens !== 1) throw new Error(`${who} connected ${opens} times: the swap dropped the connection`);
    const status = await page.textContent("#status");
    if (status !== "online") throw new Error(`${who} is ${status}`);
    const extensions = await page.evaluate(() => window.wasockChat.extensions);
    if (!extensions.startsWith("permessage-deflate")) throw new Error(`${who} negotiated ${JSON.stringify(extensions)}`);
  }
  step("both kept chatting across the swap on the connections they had, compressed");

  await alice.screenshot({ path: join(outDir, "chat-alice.png") });
  await bob.screenshot({ path: join(outDir, "chat-bob.png") });
  console.log("OK");
} finally {
  await browser.close();
}
process.exit(0);

async function open(name) {
  const context = await browser.newContext({ viewport: { width: 720, height: 480 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`${name}: page error: ${err}`));
  const response = await page.goto(pageUrl);
  if (response.status() !== 200) throw new Error(`GET ${pageUrl}: ${response.status()}`);
  await page.fill("#name", name);
  await page.click("#join button");
  await online(page);
  await sees(page, "Welcome! There are");
  step(`${name} joined`);
  return page;
}

async function online(page) {
  await page.waitForSelector('#status[data-state="online"]', { timeout: WAIT });
}

async function say(page, name, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
  await sees(page, `${name}: ${text}`);
}

/** Waits until `page` has received `times` messages starting with `text`. */
async function sees(page, text, times = 1) {
  await page.waitForFunction(
    ([text, times]) => window.wasockChat.received.filter((m) => m.startsWith(text)).length >= times,
    [text, times],
    { timeout: WAIT },
  );
}
