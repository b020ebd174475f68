//! Writes into sessions' queues: to one session, to every session of the
//! endpoint, to a topic's members; and the full-queue policy they all apply
//! (`on-queue-full = "close"`: a queue that refuses writes for longer than
//! the grace closes its session with 1008, on its own timer).
//!
//! A fan-out reaches this shard's sessions at once and leaves a [`Forward`]
//! for every other shard with sessions in its audience; each shard writes to
//! its own sessions only, so the full-queue policy stays with the registry
//! that owns the session, and the messages of one publisher reach a shard
//! in the order they were published.

use super::remote::Outgoing;
use super::{Entry, Policy, Sessions, ShardSet};
use crate::log_limit::LogLimit;
use crate::manifest::QueueFull;
use crate::session::SessionId;
use crate::session::close::{CloseCode, close_frame};
use crate::session::outbound::QueueError;
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How many steps along the live map cost about as much as looking one
/// session up in it (a B-tree descent: `bench/instructions.sh 6 topic`
/// counted ~170 instructions of a 2 400-instruction delivery in the
/// lookups of a topic's members).
const LOOKUP_COST: usize = 16;

/// Finds a topic's members in the live map by walking it once, in id order,
/// instead of a descent per member: members join mostly in the order their
/// sessions came (ids grow). One that comes after a higher id is kept for a
/// lookup after the walk ([`passed`](Self::passed)).
struct Walk<'a> {
    live: std::iter::Peekable<std::collections::btree_map::IterMut<'a, SessionId, Entry>>,
    /// The last id asked for.
    last: Option<SessionId>,
    /// Ids asked for out of order.
    passed: Vec<SessionId>,
}

impl<'a> Walk<'a> {
    fn new(live: &'a mut std::collections::BTreeMap<SessionId, Entry>) -> Self {
        Self { live: live.iter_mut().peekable(), last: None, passed: Vec::new() }
    }

    /// The live session `id`, if it is ahead of the walk; an id behind it
    /// is kept for later.
    fn find(&mut self, id: SessionId) -> Option<&mut Entry> {
        if self.last.is_some_and(|last| id <= last) {
            self.passed.push(id);
            return None;
        }
        self.last = Some(id);
        while self.live.next_if(|(live, _)| **live < id).is_some() {}
        self.live.next_if(|(live, _)| **live == id).map(|(_, entry)| entry)
    }

    /// The ids asked for behind the walk, to look up one by one.
    fn passed(self) -> Vec<SessionId> {
        self.passed
    }
}

/// Who a fan-out goes to.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every open session of the endpoint.
    All,
    /// Every member of a topic.
    Topic(&'a str),
}

/// Fan-outs the cluster's full queue dropped are logged at most once a
/// second.
static UPLINK_FULL: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

/// Who a fan-out forwarded to another shard goes to there.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every open session.
    All,
    /// Every member of a topic.
    Topic(Arc<str>),
}

/// A fan-out for the sessions of one shard.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its audience.
    pub target: Target,
    /// The message.
    pub msg: Message,
    /// A session it skips.
    pub except: Option<SessionId>,
}

/// A fan-out that other shards must deliver.
#[derive(Debug)]
pub struct Forward {
    /// The shards.
    pub shards: ShardSet,
    /// What each delivers.
    pub delivery: Delivery,
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

    /// Queues a message to every open session of `audience` but `except`,
    /// in every shard: to this shard's sessions now, to the others' through
    /// a [`Forward`]. Returns how many of this shard's sessions took it.
    pub fn fan_out(&mut self, audience: Audience<'_>, msg: &Message, except: Option<SessionId>) -> u32 {
        let (sent, others) = self.deliver_here(audience, msg, except);
        if others != 0 {
            let target = match audience {
                Audience::All => Target::All,
                Audience::Topic(topic) => Target::Topic(topic.into()),
            };
            let delivery = Delivery { target, msg: msg.clone(), except };
            self.forwards.push(Forward { shards: others, delivery });
        }
        if let Some((uplink, route)) = self.directory.uplink() {
            // `except` names a session of this node: the others have none by that id.
            let topic = match audience {
                Audience::All => None,
                Audience::Topic(topic) => Some(topic.into()),
            };
            if !uplink.send(Outgoing { route: route.clone(), topic, msg: msg.clone() })
                && let Some(held_back) = UPLINK_FULL.allow()
            {
                tracing::warn!(held_back, plugin = %self.plugin, "the cluster's queue is full; a fan-out did not reach the other nodes");
            }
        }
        sent
    }

    /// Delivers a fan-out another shard forwarded to this shard's sessions.
    pub fn deliver(&mut self, delivery: &Delivery) {
        let audience = match &delivery.target {
            Target::All => Audience::All,
            Target::Topic(topic) => Audience::Topic(topic),
        };
        self.deliver_here(audience, &delivery.msg, delivery.except);
    }

    /// The fan-outs other shards must deliver, oldest first.
    pub fn take_forwards(&mut self) -> impl Iterator<Item = Forward> + '_ {
        self.forwards.drain(..)
    }

    /// Whether fan-outs wait to be forwarded.
    pub fn has_forwards(&self) -> bool {
        !self.forwards.is_empty()
    }

    /// Queues a message to this shard's open sessions of `audience` but
    /// `except`; returns how many took it, and the other shards that have
    /// sessions in the audience.
    fn deliver_here(&mut self, audience: Audience<'_>, msg: &Message, except: Option<SessionId>) -> (u32, ShardSet) {
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
        let others = match audience {
            Audience::All => {
                for (id, entry) in self.live.iter_mut() {
                    deliver(*id, entry, &mut self.wakes);
                }
                self.directory.all_but(self.shard)
            }
            Audience::Topic(topic) => {
                let (live, wakes) = (&mut self.live, &mut self.wakes);
                let members = self.directory.local_size(self.shard, topic);
                if members.saturating_mul(LOOKUP_COST) < live.len() {
                    self.directory.local_members(self.shard, topic, |id| {
                        if let Some(entry) = live.get_mut(&id) {
                            deliver(id, entry, wakes);
                        }
                    })
                } else {
                    let mut walk = Walk::new(live);
                    let others = self.directory.local_members(self.shard, topic, |id| {
                        if let Some(entry) = walk.find(id) {
                            deliver(id, entry, wakes);
                        }
                    });
                    for id in walk.passed() {
                        if let Some(entry) = live.get_mut(&id) {
                            deliver(id, entry, wakes);
                        }
                    }
                    others
                }
            }
        };
        if let Some(since) = first_full {
            self.note_full(since);
        }
        if let Some(metrics) = &self.metrics {
            metrics.writes_refused.inc_by(u64::from(refused));
        }
        for id in slow {
            self.close_slow(id);
        }
        (sent, others)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Limits;
    use crate::session::{NewSession, SessionRx, link};

    /// A registry of sessions `1..=n`, with their receiving ends.
    fn registry(n: SessionId) -> (Sessions, Vec<SessionRx>) {
        let mut s = Sessions::new("t".into(), &Limits::default());
        let mut rxs = Vec::new();
        for id in 1..=n {
            let (tx, rx) = link(8, 1024);
            s.insert(NewSession::for_test(id, tx));
            rxs.push(rx);
        }
        (s, rxs)
    }

    /// The sessions (ids) that have a message queued, each taken once.
    fn reached(rxs: &mut [SessionRx]) -> Vec<SessionId> {
        let mut ids = Vec::new();
        for (at, rx) in rxs.iter_mut().enumerate() {
            if rx.try_recv().is_some() {
                ids.push(at as SessionId + 1);
            }
            assert!(rx.try_recv().is_none(), "session {} got it twice", at + 1);
        }
        ids
    }

    #[test]
    fn a_topic_reaches_its_members_joined_in_any_order_once() {
        // Six sessions, four members (walked: 4 x LOOKUP_COST >= 6), two of
        // which joined after a session with a higher id.
        let (mut s, mut rxs) = registry(6);
        for id in [4, 2, 5, 1] {
            s.subscribe(id, "room");
        }
        assert_eq!(s.fan_out(Audience::Topic("room"), &Message::text("hi"), Some(5)), 3);
        assert_eq!(reached(&mut rxs), [1, 2, 4]);
        // Few members among many sessions: looked up one by one.
        let (mut s, mut rxs) = registry(40);
        for id in [30, 7] {
            s.subscribe(id, "room");
        }
        assert_eq!(s.fan_out(Audience::Topic("room"), &Message::text("hi"), None), 2);
        assert_eq!(reached(&mut rxs), [7, 30]);
    }
}
