//! Batches of client messages. When messages are queued behind the one
//! taken, a plugin that takes batches (the Rust SDK's do; see
//! `runtime::batch`) gets them in one call, which pays wasmtime's per-call
//! machinery once. A batch is what the queue holds already: under light
//! load it is one message, handled as ever.
//!
//! Nothing a client can see changes. The plugin handles the messages in
//! order, each under its own deadline; it skips those of a session it closed
//! meanwhile, as separate calls would; their replies go out when the call
//! returns, as a flush's would. If it traps, the host knows which message it
//! was on: that one is lost, exactly as with one call per message, and the
//! rest are handed to the fresh instance one call each. After a message that
//! replied, the plugin moves on without a host call, so a trap may be in the
//! next message before its first one: that message is replayed first, and
//! if it traps again the trap was its own (counted once, lost once).

use super::Event;
use super::actor::{Actor, InstanceState};
use crate::runtime::batch::handler;
use crate::runtime::{Message, MessageKind};
use crate::session::SessionId;
use std::time::Instant;

/// Most messages in one call.
const MOST_MESSAGES: usize = 32;

/// Most payload bytes a batch takes after its first message: what it puts
/// into the plugin's memory at once. A longer message goes alone.
const MOST_BYTES: usize = 64 * 1024;

/// A message event's session, kind and payload.
fn parts(event: &Event) -> Option<(SessionId, MessageKind, &[u8])> {
    match event {
        Event::Text { id, text } => Some((*id, MessageKind::Text, text.as_bytes())),
        Event::Binary { id, data } => Some((*id, MessageKind::Binary, data)),
        _ => None,
    }
}

impl Actor {
    /// Handles client message `first`, with the messages queued right
    /// behind it if the plugin takes batches.
    pub(super) fn message(&mut self, first: Event) {
        let batches = matches!(&self.instance.state, InstanceState::Live(e) if e.takes_batches());
        let second = if batches { self.rx.next_message(MOST_BYTES) } else { None };
        let Some(second) = second else {
            return self.handle(first);
        };
        let mut bytes = parts(&second).map_or(0, |(_, _, b)| b.len());
        let mut events = Vec::with_capacity(8);
        events.extend([first, second]);
        while events.len() < MOST_MESSAGES
            && let Some(next) = self.rx.next_message(MOST_BYTES - bytes)
        {
            bytes += parts(&next).map_or(0, |(_, _, b)| b.len());
            events.push(next);
        }
        self.batch(events);
    }

    /// One call for `events` (client messages), each credited and checked
    /// as a call of its own would be; on a trap, the rest one call each.
    fn batch(&mut self, events: Vec<Event>) {
        let mut messages = Vec::with_capacity(events.len());
        let mut delivered = Vec::with_capacity(events.len());
        // Each session once, with the owned handle the plugin gets (and drops).
        let mut senders: Vec<(SessionId, u32)> = Vec::new();
        let (mut texts, mut data) = (String::new(), Vec::new());
        for event in events {
            let Some((id, kind, bytes)) = parts(&event) else { continue };
            if self.sessions().receive(id).is_none() {
                continue;
            }
            // At most MOST_MESSAGES senders: a scan is cheaper than a map.
            let sender = match senders.iter().position(|(s, _)| *s == id) {
                Some(at) => at,
                None => {
                    let Some(rep) = self.sessions().lookup(id) else { continue };
                    senders.push((id, rep));
                    senders.len() - 1
                }
            };
            match &event {
                Event::Text { text, .. } => texts.push_str(text),
                _ => data.extend_from_slice(bytes),
            }
            // A message is at most the route's limit, far below 4 GiB.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            messages.push(Message::new(sender as u32, kind, len));
            delivered.push(event);
        }
        if messages.is_empty() {
            return;
        }
        self.admission.metrics.batched.inc_by(messages.len() as u64);
        let sent_by = |event: &Event| parts(event).map(|(id, kind, _)| (id, kind));
        let Some((outcome, _)) = self.enter(|exports, store| {
            store.data_mut().begin_batch(delivered.iter().filter_map(sent_by), Instant::now());
            let handles = senders.iter().map(|&(_, rep)| rep);
            exports.handle_messages(store, handles, &messages, &texts, &data)
        }) else {
            return;
        };
        let end = self.instance.store.data_mut().end_batch(Instant::now());
        if let Err(err) = outcome {
            let at = end.at.min(delivered.len() - 1);
            // The call may have been on the message after `at` (see
            // `BatchEnd::or_next`), which made no host call yet: replayed
            // alone first, it traps again if the trap was its own, and that
            // is counted as the same trap.
            let next = end.or_next.then(|| delivered.get(at + 1).and_then(sent_by)).flatten();
            if let Some((id, kind)) = sent_by(&delivered[at]) {
                self.trapped(handler(kind), Some(id), next.map(|(id, _)| id), &err);
            }
            for (i, event) in delivered.into_iter().enumerate().skip(at + 1) {
                self.same_trap = next.is_some() && i == at + 1;
                self.replay(event);
            }
            self.same_trap = false;
        }
    }

    /// Hands a message of a trapped batch (credited already) to the fresh
    /// instance in a call of its own, if its session is still open.
    fn replay(&mut self, event: Event) {
        self.retry_if_due();
        let Some((id, ..)) = parts(&event) else { return };
        let sessions = self.sessions();
        let Some(rep) = sessions.is_open(id).then(|| sessions.borrow_rep(id)).flatten() else { return };
        match event {
            Event::Text { text, .. } => self.call("handle-text", Some(id), |e, s| e.handle_text(s, rep, &text)),
            Event::Binary { data, .. } => self.call("handle-binary", Some(id), |e, s| e.handle_binary(s, rep, &data)),
            _ => {}
        }
    }
}
