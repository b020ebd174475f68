//! The seed's integration example: "Connection established!" on connect and
//! every text broadcast to all clients, fanned out by the host in one call
//! (the host's session list drops clients as they disconnect).

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Broadcast;

impl Handler for Broadcast {
    fn on_connected(&mut self, session: Session) {
        println!("Client connected");
        session.write_text("Connection established!");
    }

    fn handle_text(&mut self, _session: &Session, text: String) {
        println!("Received: {text}");
        wasock_guest::broadcast_text(&format!("Broadcast: {text}"));
    }

    fn handle_binary(&mut self, _session: &Session, data: Vec<u8>) {
        println!("Received binary data: {}", data.len());
    }

    fn on_disconnected(&mut self, _session: &Session) {
        println!("Client disconnected");
    }
}

wasock_guest::export!(Broadcast);
