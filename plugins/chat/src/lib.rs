//! The seed's chat server, written the seed's way: the plugin keeps its own
//! list of sessions and writes every message to each of them.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Chat {
    sessions: Vec<Session>,
}

impl Handler for Chat {
    fn on_connected(&mut self, session: Session) {
        let welcome = format!("Welcome! There are {} users online.", self.sessions.len() + 1);
        session.write_text(&welcome);
        self.sessions.push(session);
    }

    fn handle_text(&mut self, _session: &Session, text: String) {
        for s in &self.sessions {
            s.write_text(&text); // Broadcast message to all connected clients
        }
    }

    fn on_disconnected(&mut self, session: &Session) {
        self.sessions.retain(|s| s != session);
    }

    // After a restart or an upgrade, the host hands back everyone still here.
    fn on_restore(&mut self, sessions: Vec<Session>, _state: Option<Vec<u8>>) {
        self.sessions = sessions;
    }
}

wasock_guest::export!(Chat);
