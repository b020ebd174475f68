//! The benchmark's CPU-bound echo: for every text, `WORK_ROUNDS` (granted
//! in the manifest) rounds of an FNV-style hash over it, then the reply
//! "<hash> <text>". A greeting on connect, like the benchmark's echo.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Work {
    rounds: Option<u32>,
}

impl Handler for Work {
    fn on_connected(&mut self, session: Session) {
        session.write_text("Welcome to the chat room!");
    }

    fn handle_text(&mut self, session: &Session, text: String) {
        let rounds = *self
            .rounds
            .get_or_insert_with(|| std::env::var("WORK_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1000));
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for round in 0..rounds {
            for b in text.bytes() {
                hash = (hash ^ u64::from(b) ^ u64::from(round)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        session.write_text(&format!("{hash:016x} {text}"));
    }
}

wasock_guest::export!(Work);
