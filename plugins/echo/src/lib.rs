//! The seed's `writeText` example: a welcome on connect, and every text
//! message answered with "You said: " and the text.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Echo;

impl Handler for Echo {
    fn on_connected(&mut self, session: Session) {
        session.write_text("Welcome to the chat room!");
    }

    fn handle_text(&mut self, session: &Session, text: String) {
        println!("Client says: {text}");
        session.write_text(&format!("You said: {text}"));
    }
}

wasock_guest::export!(Echo);
