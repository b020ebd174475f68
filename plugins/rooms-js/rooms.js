// Chat rooms with identity at the door, all state held by the host: the
// same behaviour as plugins/rooms (Rust). The upgrade hook turns away an
// unknown token (401) or a bad room (400) and lets the client in with its
// name and room as the session's attachment and its room as a topic, so a
// hot swap or a trap loses nobody's room.
import {
  accept, reject, queryParam, envVar, publishText, topicSize, topicMembers, attachmentText, decodeText,
} from "./wasock.js";

function nameFor(token) {
  for (const pair of (envVar("ROOMS_TOKENS") ?? "").split(",")) {
    const [name, secret] = pair.split("=");
    if (secret !== undefined && secret === token) return name;
  }
  return undefined;
}

// "name\nroom", as the attachment holds it.
const member = (text) => {
  if (text === undefined) return undefined;
  const [name, room] = text.split("\n");
  return { name, room };
};

export const upgrade = {
  onUpgrade(request) {
    const name = nameFor(queryParam(request, "token"));
    if (name === undefined) return reject(401, "unauthorized");
    const room = queryParam(request, "room") ?? "lobby";
    if (!/^[a-z0-9-]{1,32}$/.test(room)) return reject(400, "bad room");
    const protocol = request.protocols.includes("rooms.v1") ? "rooms.v1" : undefined;
    return accept({ protocol, attachment: name + "\n" + room, topics: [room] });
  },
};

export const handler = {
  onConnected(session) {
    const { name, room } = member(attachmentText(session));
    publishText(room, `* ${name} joined ${room} (${topicSize(room)} online)`);
  },
  handleText(session, text) {
    const { name, room } = member(attachmentText(session));
    if (text === "/who") {
      const names = topicMembers(room).map((m) => member(decodeText(m.attachment)).name);
      session.writeText("online: " + [...new Set(names)].sort().join(", "));
    } else {
      publishText(room, `${name}: ${text}`);
    }
  },
  onDisconnected(session) {
    const { name, room } = member(attachmentText(session));
    publishText(room, `* ${name} left ${room} (${topicSize(room)} online)`);
  },
};
