//! Messages the host hands over several at a time (the contract's
//! `messages` export): under load one call carries the messages queued for
//! the plugin, which saves the host's cost of a call per message. Each still
//! reaches [`Handler::handle_text`] or [`Handler::handle_binary`] on its own,
//! in order.
//!
//! The host must know which message the plugin is on: each gets its own
//! deadline and its own entry in the handler-call histogram, and a trap
//! loses that one only. Before each message after the first the SDK says
//! so with `batch.next`, which also skips the messages of a session closed
//! meanwhile. A host call costs more than a short message, though, so after
//! a message whose host calls were all replies to its own client that the
//! host queued, the SDK moves on without saying so: the next message's
//! first reply (`batch.reply-*`, a write with the message's index) says it,
//! and any other host call, or a panic, is preceded by `next` if it has not
//! been said yet. Nothing the plugin did can have closed a session then;
//! a message of one its client (or the server) closed meanwhile is handled
//! as if the close came just after it, and its reply says
//! [`SendStatus::Closed`].

use crate::__bindings::exports::wasock::plugin::messages::{Kind, Message};
use crate::__bindings::wasock::plugin::batch;
use crate::{Handler, SendStatus, Session};
use std::cell::Cell;
use std::sync::Once;

/// What the message being handled has called so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calls {
    /// Nothing.
    None,
    /// Only replies to its client, each queued.
    Replies,
    /// Something else, or a reply that was not queued.
    Other,
}

/// Where the batch being handled stands.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// The message being handled: its index in the call's messages.
    at: u32,
    /// The handle of the session that sent it.
    sender: u32,
    /// Whether the host knows that the plugin is on `at`.
    told: bool,
    calls: Calls,
}

thread_local! {
    /// The batch being handled; `None` outside `handle-messages`.
    static PROGRESS: Cell<Option<Progress>> = const { Cell::new(None) };
}

/// Hands `messages`, sent by `sessions` (by index) and whose payloads are
/// cut from `texts` and `data` in turn, to `plugin` one at a time.
pub fn dispatch<H: Handler>(plugin: &mut H, sessions: &[Session], messages: &[Message], texts: &str, data: &[u8]) {
    tell_on_panic();
    let (mut text_at, mut data_at) = (0usize, 0usize);
    for (i, message) in messages.iter().enumerate() {
        let len = message.len as usize;
        let cursor = match message.kind {
            Kind::Text => &mut text_at,
            Kind::Binary => &mut data_at,
        };
        let at = *cursor;
        *cursor += len;
        // The first message is the one the host starts the call on.
        let quiet = i > 0 && PROGRESS.get().is_some_and(|p| p.calls == Calls::Replies);
        let told = i == 0 || !quiet;
        if !quiet && i > 0 && !batch::next() {
            PROGRESS.set(Some(Progress { at: i as u32, sender: u32::MAX, told, calls: Calls::None }));
            continue;
        }
        // Always in range from the host; a message it could not name is dropped.
        let Some(session) = sessions.get(message.session as usize) else {
            // The host must be here before the next message asks for `next`.
            let mut p = Progress { at: i as u32, sender: u32::MAX, told, calls: Calls::None };
            tell(&mut p);
            PROGRESS.set(Some(p));
            continue;
        };
        PROGRESS.set(Some(Progress { at: i as u32, sender: session.handle(), told, calls: Calls::None }));
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
    PROGRESS.set(None);
}

/// Before a host call other than a reply: tells the host which message
/// the plugin is on, if it does not know yet.
pub(crate) fn settle() {
    if let Some(mut p) = PROGRESS.get() {
        tell(&mut p);
        p.calls = Calls::Other;
        PROGRESS.set(Some(p));
    }
}

/// Tells the host that the plugin is on message `p.at`, if it does not
/// know. The host went to the message before it (a reply said so), so
/// `next` brings it here; what it says about the session does not matter
/// any more, the message being handled already.
fn tell(p: &mut Progress) {
    if !p.told {
        batch::next();
        p.told = true;
    }
}

/// A write to `session`: `reply` with the message's index when `session`
/// sent the message being handled, `write` otherwise.
pub(crate) fn reply(
    session: &Session,
    reply: impl FnOnce(u32) -> SendStatus,
    write: impl FnOnce() -> SendStatus,
) -> SendStatus {
    match PROGRESS.get() {
        Some(mut p) if p.sender == session.handle() => {
            let status = reply(p.at);
            p.told = true;
            if p.calls != Calls::Other {
                p.calls = if status == SendStatus::Queued { Calls::Replies } else { Calls::Other };
            }
            PROGRESS.set(Some(p));
            status
        }
        Some(_) => {
            settle();
            write()
        }
        None => write(),
    }
}

/// A panic traps the instance: before it does, the host learns which
/// message it happened in, so that it loses that one only.
fn tell_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(mut p) = PROGRESS.get() {
                tell(&mut p);
                PROGRESS.set(Some(p));
            }
            previous(info);
        }));
    });
}
