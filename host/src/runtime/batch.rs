//! Several messages in one plugin call: the `messages` export (the Rust SDK
//! builds it), the state of the batch a call is handling, and the
//! `batch.next` import the plugin calls between its messages.
//!
//! Entering a component costs wasmtime 48 some 4 300 instructions of its
//! own (finding the export's function again, lowering the payload through
//! a second call into the guest's allocator, leaving), more than the
//! native server spends on a whole short message; a batch pays that once.
//! Nothing else changes for the plugin: each message still has the call
//! deadline to itself (`next` gives it a fresh one), its own entry in the
//! handler-call histogram, and the skip a session closed meanwhile gets.
//! And since the host always knows which message is being handled, a trap
//! loses that message only: the endpoint hands the rest to a fresh instance
//! one call each (`endpoint::batch`).

use super::bindings::v2::exports::wasock::plugin::messages::Kind;
use super::bindings::v2::wasock::plugin::batch;
use super::host::HostState;
use crate::session::SessionId;
use std::time::Instant;
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
    }

    /// The call handling the batch returned or trapped at `now`: the index
    /// of the message it was on (the whole batch if the plugin never said
    /// `next`, as a plugin that handles them all at once would not).
    pub fn end_batch(&mut self, now: Instant) -> usize {
        self.message_done(now);
        self.batch_mut().at
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
    /// at `next`), and traps otherwise, as any other call.
    pub(super) fn deadline_reached(&self) -> UpdateDeadline {
        let now = self.clock().now();
        match self.call_ends().checked_sub(now) {
            Some(left) if left > 0 => UpdateDeadline::Continue(left),
            _ => UpdateDeadline::Interrupt,
        }
    }
}

impl batch::Host for HostState {
    fn next(&mut self) -> wasmtime::Result<bool> {
        let now = Instant::now();
        self.message_done(now);
        let batch = self.batch_mut();
        batch.at = (batch.at + 1).min(batch.messages.len());
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
}
