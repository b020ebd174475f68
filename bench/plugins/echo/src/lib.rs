//! The benchmark's echo: the native baseline's logic, a greeting on connect
//! and "You said: <text>" for every text message, without the bundled
//! `plugins/echo`'s per-message logging (the baseline does not log).

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Echo;

impl Handler for Echo {
    fn on_connected(&mut self, session: Session) {
        session.write_text("Welcome to the chat room!");
    }

    fn handle_text(&mut self, session: &Session, text: String) {
        session.write_text(&format!("You said: {text}"));
    }
}

wasock_guest::export!(Echo);
