"""{{name}}: a wasock plugin. Greets each client, answers every text
message with "You said: " and the text, and logs what it got. Define only
the events you use; wasock.py has the helpers (publish_text, accept...)."""


class Handler:
    def on_connected(self, session):
        session.write_text("Welcome to {{name}}!")

    def handle_text(self, session, text):
        print("Client says: " + text)
        session.write_text("You said: " + text)
