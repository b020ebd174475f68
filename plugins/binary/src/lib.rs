//! The seed's `writeData` example: the bytes of "Binary hello" on connect;
//! every binary message is answered with its length as a little-endian u32.

use wasock_guest::{Handler, Session};

#[derive(Default)]
struct Binary;

impl Handler for Binary {
    fn on_connected(&mut self, session: Session) {
        session.write_data(b"Binary hello");
    }

    fn handle_binary(&mut self, session: &Session, data: Vec<u8>) {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        session.write_data(&len.to_le_bytes());
    }
}

wasock_guest::export!(Binary);
