//! {{name}}: a wasock plugin. Greets each client, answers every text
//! message with "You said: " and the text, and logs what it got.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Plugin;

impl Handler for Plugin {
    fn on_connected(&mut self, session: Session) {
        session.write_text("Welcome to {{name}}!");
    }

    fn handle_text(&mut self, session: &Session, text: String) {
        println!("Client says: {text}");
        session.write_text(&format!("You said: {text}"));
    }
}

wasock_guest::export!(Plugin);
