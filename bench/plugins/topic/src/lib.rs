//! The benchmark's topic fan-out: the native baseline's `/topic` logic.
//! Every client joins topic `bench` at the upgrade and is greeted; every
//! text is published to the topic as "Broadcast: <text>", fanned out by the
//! host in one call.

use wasock_guest::{Decision, Handler, Session, UpgradeRequest, accept};

#[derive(Default)]
struct Topic;

impl Handler for Topic {
    fn on_upgrade(&mut self, _request: UpgradeRequest) -> Decision {
        accept().topic("bench").into()
    }

    fn on_connected(&mut self, session: Session) {
        session.write_text("Connection established!");
    }

    fn handle_text(&mut self, _session: &Session, text: String) {
        wasock_guest::publish_text("bench", &format!("Broadcast: {text}"));
    }
}

wasock_guest::export!(Topic);
