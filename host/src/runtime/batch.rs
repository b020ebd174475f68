//! Several messages in one plugin call: the `messages` export (the Rust SDK
//! builds it), the state of the batch a call is handling, and the `batch`
//! imports the plugin calls to say which message it is on.
//!
//! Entering a component costs wasmtime 48 some 4 300 instructions of its
//! own (finding the export's function again, lowering the payload through
//! a second call into the guest's allocator, leaving), more than the
//! native server spends on a whole short message; a batch pays that once.
//! Nothing else changes for the plugin: each message still has the call
//! deadline to itself (given afresh when the plugin moves on), its own
//! entry in the handler-call histogram, and the skip a session closed
//! meanwhile gets. And since the host knows which message is being handled,
//! a trap loses that message only: the endpoint hands the rest to a fresh
//! instance one call each (`endpoint::batch`).
//!
//! A plugin moves on with `next`, or, after a message whose host calls were
//! all queued replies to its client, with the next message's first
//! `reply-*`: a write to the message's sender named by the message's index,
//! which saves the `next` call and the lift of a borrowed handle (measured:
//! 8 400-10 000 -> 7 400 user-space instructions per echoed message,
//! `bench/instructions.sh 6`). Between that reply's message and the next
//! one the host cannot tell where the plugin is: the deadline and the
//! histogram entry of the message that replied run on until the next one's
//! first call (so they hold its start), and `BatchEnd::or_next` tells the
//! endpoint that a trap then may be the next message's.

use super::bindings::v2::exports::wasock::plugin::messages::Kind;
use super::bindings::v2::wasock::plugin::{batch, types};
use super::host::HostState;
use crate::session::SessionId;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use wasmtime::UpdateDeadline;

/// The batch the running call handles.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Its messages' sessions and kinds, in order.
    messages: Vec<(SessionId, Kind)>,
    /// The message being handled or skipped.
    at: usize,
    /// When the message at `at` began, unless it is skipped.
    began: Option<Instant>,
    /// Whether the message at `at` made a `reply-*` call: then the plugin
    /// may have moved on to the next message without saying so yet.
    replied: bool,
    /// Whether the deadline of the message at `at` was extended once for
    /// the next message it may have moved on to.
    extended: bool,
}

impl Batch {
    /// Whether the plugin may be on the message after `at` without having
    /// said so: `at` replied, and there is a next one.
    fn may_be_on_next(&self) -> bool {
        self.replied && self.at + 1 < self.messages.len()
    }
}

/// Where a batch's call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEnd {
    /// The index of the message it was on (the whole batch if the plugin
    /// never said it moved on, as a plugin that handles them all at once
    /// would not).
    pub at: usize,
    /// The call may have been on the message after `at` instead: `at`
    /// replied, and a plugin moves on from such a message with no host call
    /// until the next one's first reply.
    pub or_next: bool,
}

/// The handler a message of `kind` stands for (in logs and metrics).
pub fn handler(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "handle-text",
        Kind::Binary => "handle-binary",
    }
}

impl HostState {
    /// A call handling `messages` (sessions and kinds, in order) starts at
    /// `now`, with the first message.
    pub fn begin_batch(&mut self, messages: impl IntoIterator<Item = (SessionId, Kind)>, now: Instant) {
        let batch = self.batch_mut();
        batch.messages.clear();
        batch.messages.extend(messages);
        batch.at = 0;
        batch.began = Some(now);
        (batch.replied, batch.extended) = (false, false);
    }

    /// The call handling the batch returned or trapped at `now`: where.
    pub fn end_batch(&mut self, now: Instant) -> BatchEnd {
        self.message_done(now);
        let batch = self.batch_mut();
        let end = BatchEnd { at: batch.at, or_next: batch.may_be_on_next() };
        // The calls that follow are single events.
        (batch.replied, batch.extended) = (false, false);
        end
    }

    /// The plugin is on the batch's message `message` (a `reply-*` says so):
    /// the ones before it are done, and it gets the call deadline. Returns
    /// its session; an error (a trap) for an index past the batch.
    fn reached(&mut self, message: u32) -> wasmtime::Result<SessionId> {
        let batch = self.batch_mut();
        let (at, len) = (message as usize, batch.messages.len());
        let Some(&(id, _)) = batch.messages.get(at) else {
            wasmtime::bail!("reply to message {at} of a batch of {len}");
        };
        if at > batch.at {
            let now = Instant::now();
            self.message_done(now);
            self.rearm(now);
            let batch = self.batch_mut();
            (batch.at, batch.began, batch.extended) = (at, Some(now), false);
        }
        // An index before the current message only writes.
        if at >= self.batch_mut().at {
            self.batch_mut().replied = true;
        }
        Ok(id)
    }

    /// Counts the message being handled as done at `now`.
    fn message_done(&mut self, now: Instant) {
        let batch = self.batch_mut();
        let (Some(began), Some(&(_, kind))) = (batch.began.take(), batch.messages.get(batch.at)) else {
            return;
        };
        if let Some(metrics) = self.sessions().metrics() {
            metrics.call(handler(kind)).observe(now.saturating_duration_since(began).as_secs_f64());
        }
    }

    /// What the epoch deadline does when it is reached: a batch's call runs
    /// on while the message it is on has time left (its deadline moved on
    /// when the plugin said it moved on), and traps otherwise, as any other
    /// call. After a message that replied, the plugin may be on the next
    /// one, whose deadline starts at its first host call: that message gets
    /// a whole deadline once more, so that no message that keeps within its
    /// own is stopped (a loop there is stopped one deadline later).
    pub(super) fn deadline_reached(&mut self) -> UpdateDeadline {
        let now = self.clock().now();
        if let Some(left) = self.call_ends().checked_sub(now).filter(|&left| left > 0) {
            return UpdateDeadline::Continue(left);
        }
        let batch = self.batch_mut();
        if batch.may_be_on_next() && !batch.extended {
            batch.extended = true;
            self.rearm(Instant::now());
            return UpdateDeadline::Continue(self.call_ends().saturating_sub(self.clock().now()).max(1));
        }
        UpdateDeadline::Interrupt
    }
}

impl batch::Host for HostState {
    fn next(&mut self) -> wasmtime::Result<bool> {
        let now = Instant::now();
        self.message_done(now);
        let batch = self.batch_mut();
        batch.at = (batch.at + 1).min(batch.messages.len());
        batch.replied = false;
        let Some(&(id, _)) = batch.messages.get(batch.at) else {
            return Ok(false);
        };
        if !self.sessions().is_open(id) {
            return Ok(false);
        }
        self.rearm(now);
        self.batch_mut().began = Some(now);
        Ok(true)
    }

    fn reply_text(&mut self, message: u32, text: String) -> wasmtime::Result<types::SendStatus> {
        let id = self.reached(message)?;
        Ok(self.send_to(id, Message::text(text)).into())
    }

    fn reply_data(&mut self, message: u32, data: Vec<u8>) -> wasmtime::Result<types::SendStatus> {
        let id = self.reached(message)?;
        Ok(self.send_to(id, Message::binary(data)).into())
    }
}
