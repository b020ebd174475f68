// {{name}}: a wasock plugin. Greets each client, answers every text
// message with "You said: " and the text, and logs what it got.
export const handler = {
  onConnected(session) {
    session.writeText("Welcome to {{name}}!");
  },
  handleText(session, text) {
    console.log("Client says: " + text);
    session.writeText("You said: " + text);
  },
  handleBinary(session, data) {},
  onPong(session, data) {},
  onDisconnected(session) {},
};
