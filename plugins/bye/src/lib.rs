//! The seed's `close` example: "bye" is answered with "Goodbye!" and the
//! session is closed.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Bye;

impl Handler for Bye {
    fn handle_text(&mut self, session: &Session, text: String) {
        if text == "bye" {
            session.write_text("Goodbye!");
            session.close();
        }
    }
}

wasock_guest::export!(Bye);
