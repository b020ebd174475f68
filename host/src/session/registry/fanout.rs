//! Writes into sessions' queues: to one session, to every session of the
//! endpoint, to a topic's members; and the full-queue policy they all apply
//! (`on-queue-full = "close"`: a queue that refuses writes for longer than
//! the grace closes its session with 1008, on its own timer).

use super::{Entry, Policy, Sessions};
use crate::manifest::QueueFull;
use crate::session::SessionId;
use crate::session::close::{CloseCode, close_frame};
use crate::session::outbound::QueueError;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Who a fan-out goes to.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every open session of the endpoint.
    All,
    /// Every member of a topic.
    Topic(&'a str),
}

impl Sessions {
    /// Queues a message to one session, applying the full-queue policy. A
    /// refusal for a full queue asks the connection for an `on-drain`.
    pub fn send(&mut self, id: SessionId, msg: Message) -> Result<(), QueueError> {
        let Some(entry) = self.live.get_mut(&id).filter(|e| !e.closing) else {
            return Err(QueueError::Closed);
        };
        let result = entry.tx.try_send(msg, &mut self.wakes);
        if result == Err(QueueError::Full) {
            entry.tx.want_drain(&mut self.wakes);
            if let Some(metrics) = &self.metrics {
                metrics.writes_refused.inc();
            }
        }
        match stays_full(entry, &result, &self.policy) {
            Full::Over => self.close_slow(id),
            Full::Since(since) => self.note_full(since),
            Full::No => {}
        }
        result
    }

    /// Queues a message to every open session of `audience` but `except`;
    /// returns how many took it.
    pub fn fan_out(&mut self, audience: Audience<'_>, msg: &Message, except: Option<SessionId>) -> u32 {
        let (mut sent, mut refused) = (0, 0u32);
        let (mut slow, mut first_full) = (Vec::new(), None);
        let mut deliver = |id: SessionId, entry: &mut Entry, wakes: &mut _| {
            if entry.closing || Some(id) == except {
                return;
            }
            let result = entry.tx.try_send(msg.clone(), wakes);
            match result {
                Ok(()) => sent += 1,
                Err(QueueError::Full) => refused += 1,
                Err(QueueError::Closed) => {}
            }
            match stays_full(entry, &result, &self.policy) {
                Full::Over => slow.push(id),
                Full::Since(since) => first_full = Some(first_full.map_or(since, |f: Instant| f.min(since))),
                Full::No => {}
            }
        };
        match audience {
            Audience::All => {
                for (id, entry) in self.live.iter_mut() {
                    deliver(*id, entry, &mut self.wakes);
                }
            }
            Audience::Topic(topic) => {
                for id in self.topics.members(topic) {
                    if let Some(entry) = self.live.get_mut(&id) {
                        deliver(id, entry, &mut self.wakes);
                    }
                }
            }
        }
        if let Some(since) = first_full {
            self.note_full(since);
        }
        if let Some(metrics) = &self.metrics {
            metrics.writes_refused.inc_by(u64::from(refused));
        }
        for id in slow {
            self.close_slow(id);
        }
        sent
    }

    /// A queue refused a write at `since`: its grace runs out then.
    fn note_full(&mut self, since: Instant) {
        let due = since + self.policy.full_grace;
        self.full_deadline = Some(self.full_deadline.map_or(due, |d| d.min(due)));
    }

    /// When [`police`](Self::police) has something to check next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.full_deadline
    }

    /// Closes (1008) every session whose queue refused a write more than
    /// the grace ago and is still backed up, even if the plugin has not
    /// written to it since; forgets the refusal of those that drained.
    pub fn police(&mut self, now: Instant) {
        if self.full_deadline.is_none_or(|d| now < d) {
            return;
        }
        let grace = self.policy.full_grace;
        let mut slow = Vec::new();
        for (id, entry) in self.live.iter_mut() {
            let Some(since) = entry.full_since else { continue };
            if entry.closing || !entry.tx.backed_up() {
                entry.full_since = None;
            } else if now >= since + grace {
                slow.push(*id);
            }
        }
        for id in slow {
            self.close_slow(id);
            if let Some(entry) = self.live.get_mut(&id) {
                entry.full_since = None;
            }
        }
        self.full_deadline = self.earliest_full_deadline();
    }

    pub(super) fn earliest_full_deadline(&self) -> Option<Instant> {
        if self.policy.on_full != QueueFull::Close {
            return None;
        }
        self.live.values().filter_map(|e| e.full_since).min().map(|since| since + self.policy.full_grace)
    }

    fn close_slow(&mut self, id: SessionId) {
        tracing::warn!(plugin = %self.plugin, session = id, "outbound queue stayed full; closing the session with 1008");
        self.close(id, close_frame(CloseCode::Policy, "client too slow: outbound queue full"));
    }
}

/// What a write's outcome says about a session's full queue.
enum Full {
    /// Not full (or the policy lets it be).
    No,
    /// Refusing writes since then, within the grace.
    Since(Instant),
    /// Refusing writes for longer than the grace: the session must go.
    Over,
}

/// Tracks how long a session's queue has refused writes under the `close`
/// policy.
fn stays_full(entry: &mut Entry, result: &Result<(), QueueError>, policy: &Policy) -> Full {
    match result {
        Err(QueueError::Full) if policy.on_full == QueueFull::Close => {
            let since = *entry.full_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= policy.full_grace { Full::Over } else { Full::Since(since) }
        }
        Err(QueueError::Full) => Full::No,
        _ => {
            entry.full_since = None;
            Full::No
        }
    }
}
