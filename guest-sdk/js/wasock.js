// wasock's JavaScript SDK for contract wasock:plugin@0.2.0: the one file
// that names the contract's version. A plugin module exports only what it
// uses:
//
//   export const handler = { onConnected(session) {...}, handleText(session, text) {...} };
//   export const upgrade = { onUpgrade(request) { return accept({ topics: ["lobby"] }); } };  // optional
//   export const lifecycle = { restore(sessions, state) {...} };                              // optional
//
// and imports helpers from here, e.g. `import { accept, reject, publishText } from "./wasock.js"`.
// The build wraps the module with `plugin()` below, which fills in every
// event and hook it leaves out. Session ids are BigInts (`5n`; use
// `String(id)` for JSON); the `...Except` helpers take a session or an id.
// Nothing here throws in a fan-out loop: writes and publishes report
// outcomes as strings ("queued", "closed", "queue-full").

import * as endpoint from "wasock:plugin/endpoint@0.2.0";
import * as topics from "wasock:plugin/topics@0.2.0";
import { getEnvironment } from "wasi:cli/environment@0.2.3";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const idOf = (session) => (typeof session === "bigint" ? session : session.id());
const bytes = (data) => (typeof data === "string" ? encoder.encode(data) : data);

/** The ids of every live session of this instance, oldest first. */
export const sessions = () => endpoint.sessions();
/** Sends `text` to every session of the endpoint (but `except`, a session or an id). */
export const broadcastText = (text) => endpoint.broadcastText(text);
export const broadcastTextExcept = (text, except) => endpoint.broadcastTextExcept(text, idOf(except));
export const broadcastData = (data) => endpoint.broadcastData(data);
export const broadcastDataExcept = (data, except) => endpoint.broadcastDataExcept(data, idOf(except));
/** Sends to every member of `topic` (but `except`). */
export const publishText = (topic, text) => topics.publishText(topic, text);
export const publishTextExcept = (topic, text, except) => topics.publishTextExcept(topic, text, idOf(except));
export const publishData = (topic, data) => topics.publishData(topic, data);
export const publishDataExcept = (topic, data, except) => topics.publishDataExcept(topic, data, idOf(except));
/** How many sessions are in `topic`. */
export const topicSize = (topic) => topics.size(topic);
/** The members of `topic` in join order: `{ id, attachment }` (attachment a Uint8Array or undefined). */
export const topicMembers = (topic) => topics.members(topic);

/**
 * The value of environment variable `name`, if the manifest grants it
 * (`[grants] env`); JavaScript's `process.env` does not exist here.
 */
export function envVar(name) {
  const found = getEnvironment().find(([key]) => key === name);
  return found === undefined ? undefined : found[1];
}

/** A session's attachment as text (undefined if none). */
export const attachmentText = (session) => {
  const data = session.attachment();
  return data === undefined ? undefined : decoder.decode(data);
};
/** Decodes an attachment's bytes (e.g. a member's) as text. */
export const decodeText = (data) => (data === undefined ? undefined : decoder.decode(data));

/**
 * Lets a client in: `protocol` (one it offered), `headers` ([[name, value]]),
 * `attachment` (a string or bytes), `topics` to join, `shardKey`.
 */
export function accept({ protocol, headers = [], attachment, topics = [], shardKey } = {}) {
  const val = { headers, topics };
  if (protocol !== undefined) val.protocol = protocol;
  if (attachment !== undefined) val.attachment = bytes(attachment);
  if (shardKey !== undefined) val.shardKey = shardKey;
  return { tag: "accept", val };
}

/** Turns a client away with an HTTP `status` (400-599) and a short `body`. */
export function reject(status, body = "", headers = []) {
  return { tag: "reject", val: { status, headers, body } };
}

/** The first value of query parameter `name` in an upgrade request, decoded. */
export function queryParam(request, name) {
  for (const pair of (request.query ?? "").split("&")) {
    const at = pair.indexOf("=");
    const [key, value] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    const decode = (s) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "));
      } catch {
        return s;
      }
    };
    if (decode(key) === name) return decode(value);
  }
  return undefined;
}

const none = () => {};
const method = (object, name, fallback) =>
  object && typeof object[name] === "function" ? object[name].bind(object) : fallback;

/** Every export the contract's world has, from what `app` (a module) exports. */
export function plugin(app) {
  const h = app.handler;
  const l = app.lifecycle;
  const u = app.upgrade;
  return {
    handler: {
      onConnected: method(h, "onConnected", none),
      handleText: method(h, "handleText", none),
      handleBinary: method(h, "handleBinary", none),
      onPong: method(h, "onPong", none),
      onDrain: method(h, "onDrain", none),
      onDisconnected: method(h, "onDisconnected", none),
    },
    lifecycle: {
      restore: method(l, "restore", none),
      snapshot: method(l, "snapshot", () => new Uint8Array()),
    },
    upgrade: {
      onUpgrade: method(u, "onUpgrade", () => accept()),
    },
  };
}
