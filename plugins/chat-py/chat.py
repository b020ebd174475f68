"""The seed's chat server in Python: the plugin keeps its own list of
sessions and writes every message to each of them."""

sessions = []


class Handler:
    def on_connected(self, session):
        sessions.append(session)
        session.write_text(f"Welcome! There are {len(sessions)} users online.")

    def handle_text(self, session, text):
        for s in sessions:
            s.write_text(text)  # Broadcast message to all connected clients

    def on_disconnected(self, session):
        # A borrowed handle is a new object: compare ids, not objects.
        sessions[:] = [s for s in sessions if s.id() != session.id()]


# After a restart or an upgrade, the host hands back everyone still here.
class Lifecycle:
    def restore(self, restored, state):
        sessions[:] = restored
