// {{name}}: a wasock plugin. Greets each client, answers every text
// message with "You said: " and the text, and logs what it got. Export
// only the events you use; wasock.js has the helpers (publishText, accept...).
export const handler = {
  onConnected(session) {
    session.writeText("Welcome to {{name}}!");
  },
  handleText(session, text) {
    console.log("Client says: " + text);
    session.writeText("You said: " + text);
  },
};
