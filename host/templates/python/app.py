"""{{name}}: a wasock plugin. Greets each client, answers every text
message with "You said: " and the text, and logs what it got."""
from wit_world import exports


class Handler(exports.Handler):
    def on_connected(self, session):
        session.write_text("Welcome to {{name}}!")

    def handle_text(self, session, text):
        print("Client says: " + text)
        session.write_text("You said: " + text)

    def handle_binary(self, session, data):
        pass

    def on_pong(self, session, data):
        pass

    def on_disconnected(self, session):
        pass
