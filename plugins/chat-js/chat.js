// The seed's chat server in JavaScript: the plugin keeps its own list of
// sessions and writes every message to each of them.
const sessions = [];

export const handler = {
  onConnected(session) {
    sessions.push(session);
    session.writeText("Welcome! There are " + sessions.length + " users online.");
  },
  handleText(session, text) {
    for (const s of sessions) {
      s.writeText(text); // Broadcast message to all connected clients
    }
  },
  onDisconnected(session) {
    // A borrowed handle is a new object: compare ids, not objects.
    const index = sessions.findIndex((s) => s.id() === session.id());
    if (index !== -1) sessions.splice(index, 1);
  },
};

// After a restart or an upgrade, the host hands back everyone still here.
export const lifecycle = {
  restore(list) {
    sessions.splice(0, sessions.length, ...list);
  },
};
