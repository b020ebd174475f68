//! Messages the host hands over several at a time (the contract's
//! `messages` export): under load one call carries the messages queued for
//! the plugin, which saves the host's cost of a call per message. Each still
//! reaches [`Handler::handle_text`] or [`Handler::handle_binary`] on its own,
//! in order; before each one after the first the SDK asks the host whether
//! to go on (`batch.next`: it skips the messages of a session closed
//! meanwhile, and gives each message its own deadline).

use crate::__bindings::exports::wasock::plugin::messages::{Kind, Message};
use crate::__bindings::wasock::plugin::batch;
use crate::{Handler, Session};

/// Hands `messages`, sent by `sessions` (by index) and whose payloads are
/// cut from `texts` and `data` in turn, to `plugin` one at a time.
pub fn dispatch<H: Handler>(plugin: &mut H, sessions: &[Session], messages: &[Message], texts: &str, data: &[u8]) {
    let (mut text_at, mut data_at) = (0usize, 0usize);
    for (i, message) in messages.iter().enumerate() {
        let len = message.len as usize;
        let cursor = match message.kind {
            Kind::Text => &mut text_at,
            Kind::Binary => &mut data_at,
        };
        let at = *cursor;
        *cursor += len;
        if i > 0 && !batch::next() {
            continue;
        }
        // Always in range from the host; a message it could not name is dropped.
        let Some(session) = sessions.get(message.session as usize) else { continue };
        match message.kind {
            Kind::Text => {
                let text = texts.get(at..at + len).unwrap_or_default();
                plugin.handle_text(session, text.to_owned());
            }
            Kind::Binary => {
                let bytes = data.get(at..at + len).unwrap_or_default();
                plugin.handle_binary(session, bytes.to_vec());
            }
        }
    }
}
