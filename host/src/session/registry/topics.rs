//! Topics held by the host: named groups of sessions, the unit of fan-out.
//!
//! An endpoint's topics live in one [`Directory`] that all its instances
//! share (each instance's registry holds it behind an `Arc`), so a topic's
//! size and member list are the endpoint's, whichever instance a member is
//! served by. Members are kept per instance (a *shard*), each in the order
//! they joined (keyed by an endpoint-wide join sequence number, so joining
//! and leaving are O(log n) even in a topic of many thousands, and the
//! endpoint's join order is a merge by that number); each session keeps the
//! topics it is in, so it leaves them all when it ends. Memberships outlive
//! any one plugin instance: a trap or a swap hands the registry, and with it
//! the same directory, to the next one.
//!
//! Nothing here assumes that a member is served by the instance asking: a
//! publish delivers to this shard's members and names the other shards that
//! have some ([`Directory::local_members`]), which the endpoint forwards to.

use super::Sessions;
use crate::session::SessionId;
use crate::session::upgrade::topic_name_ok;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One instance of an endpoint, by index (at most [`MAX_SHARDS`]).
pub type Shard = usize;

/// Most instances one endpoint may run: shard sets are bit masks.
pub const MAX_SHARDS: usize = crate::manifest::MAX_INSTANCES;

/// A set of shards, as a bit mask.
pub type ShardSet = u64;

/// Every topic of one endpoint with at least one member.
#[derive(Debug)]
pub struct Directory {
    topics: RwLock<TopicMap>,
    /// How many shards the endpoint runs.
    shards: usize,
}

#[derive(Debug, Default)]
struct TopicMap {
    by_name: HashMap<Arc<str>, Topic>,
    /// The next join's sequence number.
    next_join: u64,
}

/// One topic's members, per shard.
#[derive(Debug)]
struct Topic {
    /// Shard -> join sequence -> member.
    by_shard: Vec<BTreeMap<u64, Member>>,
    /// Members in all shards.
    size: usize,
}

/// What a topic keeps about a member.
#[derive(Debug, Clone)]
struct Member {
    id: SessionId,
    /// Its attachment, shared with its registry entry (for `members`).
    attachment: Option<Arc<[u8]>>,
}

/// One session's membership of one topic.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    /// The topic.
    pub(super) topic: Arc<str>,
    /// Its key in the topic's member map.
    seq: u64,
}

impl Directory {
    /// An empty directory for an endpoint of `shards` instances.
    pub fn new(shards: usize) -> Arc<Self> {
        assert!((1..=MAX_SHARDS).contains(&shards), "1 to {MAX_SHARDS} shards");
        Arc::new(Self { topics: RwLock::default(), shards })
    }

    /// How many shards share it.
    pub fn shards(&self) -> usize {
        self.shards
    }

    fn read(&self) -> RwLockReadGuard<'_, TopicMap> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, TopicMap> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds session `id` of `shard` to `topic`; its membership, for the
    /// session to keep.
    fn join(&self, shard: Shard, topic: &str, id: SessionId, attachment: Option<Arc<[u8]>>) -> Membership {
        let mut guard = self.write();
        let map = &mut *guard;
        let seq = map.next_join;
        map.next_join += 1;
        let name: Arc<str> = match map.by_name.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => topic.into(),
        };
        let shards = self.shards;
        let entry = map
            .by_name
            .entry(name.clone())
            .or_insert_with(|| Topic { by_shard: vec![BTreeMap::new(); shards], size: 0 });
        entry.by_shard[shard].insert(seq, Member { id, attachment });
        entry.size += 1;
        Membership { topic: name, seq }
    }

    /// Ends one membership of a session of `shard`; the topic goes with its
    /// last member.
    pub(super) fn leave(&self, shard: Shard, membership: &Membership) {
        let mut map = self.write();
        if let Some(topic) = map.by_name.get_mut(&membership.topic)
            && topic.by_shard[shard].remove(&membership.seq).is_some()
        {
            topic.size -= 1;
            if topic.size == 0 {
                map.by_name.remove(&membership.topic);
            }
        }
    }

    /// Updates the attachment a session's memberships show.
    fn set_attachment(&self, shard: Shard, memberships: &[Membership], attachment: &Arc<[u8]>) {
        let mut map = self.write();
        for m in memberships {
            if let Some(member) = map.by_name.get_mut(&m.topic).and_then(|t| t.by_shard[shard].get_mut(&m.seq)) {
                member.attachment = Some(attachment.clone());
            }
        }
    }

    /// Calls `each` for every member of `topic` served by `shard`, in join
    /// order; returns the other shards that have members of it.
    pub(super) fn local_members(&self, shard: Shard, topic: &str, mut each: impl FnMut(SessionId)) -> ShardSet {
        let map = self.read();
        let Some(topic) = map.by_name.get(topic) else {
            return 0;
        };
        for member in topic.by_shard[shard].values() {
            each(member.id);
        }
        others(&topic.by_shard, shard)
    }

    /// How many members `topic` has, in every shard.
    fn size(&self, topic: &str) -> usize {
        self.read().by_name.get(topic).map_or(0, |t| t.size)
    }

    /// The members of `topic` in every shard, in the order they joined, with
    /// their attachments.
    fn members(&self, topic: &str) -> Vec<(SessionId, Option<Vec<u8>>)> {
        let map = self.read();
        let Some(topic) = map.by_name.get(topic) else {
            return Vec::new();
        };
        let mut all: Vec<(u64, &Member)> =
            topic.by_shard.iter().flat_map(|m| m.iter().map(|(seq, member)| (*seq, member))).collect();
        if topic.by_shard.len() > 1 {
            all.sort_unstable_by_key(|(seq, _)| *seq);
        }
        all.into_iter().map(|(_, m)| (m.id, m.attachment.as_deref().map(<[u8]>::to_vec))).collect()
    }

    /// Every shard but `shard`.
    pub(super) fn all_but(&self, shard: Shard) -> ShardSet {
        let all = if self.shards == MAX_SHARDS { ShardSet::MAX } else { (1 << self.shards) - 1 };
        all & !(1 << shard)
    }
}

/// The shards other than `shard` with members in `by_shard`.
fn others(by_shard: &[BTreeMap<u64, Member>], shard: Shard) -> ShardSet {
    let mut set = 0;
    for (i, members) in by_shard.iter().enumerate() {
        if i != shard && !members.is_empty() {
            set |= 1 << i;
        }
    }
    set
}

/// What became of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// Now a member.
    Joined,
    /// A member already.
    AlreadyJoined,
    /// At `topics-per-session`.
    TooManyTopics,
    /// Empty or over `topic-name-bytes`.
    BadName,
    /// The session has ended (or is closing).
    Closed,
}

impl Sessions {
    /// Makes session `id` a member of `topic`.
    pub fn subscribe(&mut self, id: SessionId, topic: &str) -> Subscribed {
        if !topic_name_ok(topic, &self.policy.limits) {
            return Subscribed::BadName;
        }
        let Some(entry) = self.live.get_mut(&id).filter(|e| !e.closing) else {
            return Subscribed::Closed;
        };
        if entry.topics.iter().any(|m| &*m.topic == topic) {
            return Subscribed::AlreadyJoined;
        }
        if entry.topics.len() >= self.policy.limits.topics_per_session {
            return Subscribed::TooManyTopics;
        }
        entry.topics.push(self.directory.join(self.shard, topic, id, entry.attachment.clone()));
        Subscribed::Joined
    }

    /// Ends session `id`'s membership of `topic`; whether it was a member.
    pub fn unsubscribe(&mut self, id: SessionId, topic: &str) -> bool {
        let Some(entry) = self.live.get_mut(&id) else {
            return false;
        };
        let Some(at) = entry.topics.iter().position(|m| &*m.topic == topic) else {
            return false;
        };
        let membership = entry.topics.remove(at);
        self.directory.leave(self.shard, &membership);
        true
    }

    /// The topics session `id` is in, in the order it joined them.
    pub fn topics_of(&self, id: SessionId) -> Vec<String> {
        self.live.get(&id).map(|e| e.topics.iter().map(|m| m.topic.to_string()).collect()).unwrap_or_default()
    }

    /// How many sessions of the endpoint are in `topic`.
    pub fn topic_size(&self, topic: &str) -> usize {
        self.directory.size(topic)
    }

    /// The endpoint's members of `topic`, in join order, with their
    /// attachments.
    pub fn topic_members(&self, topic: &str) -> Vec<(SessionId, Option<Vec<u8>>)> {
        self.directory.members(topic)
    }

    /// Session `id` leaves every topic it is in (it is ending).
    pub fn leave_topics(&mut self, id: SessionId) {
        if let Some(entry) = self.live.get_mut(&id) {
            for membership in entry.topics.drain(..) {
                self.directory.leave(self.shard, &membership);
            }
        }
    }

    /// Shows a session's new attachment in the topics it is in.
    pub(super) fn attachment_changed(&self, id: SessionId) {
        if let Some(entry) = self.live.get(&id)
            && let Some(attachment) = &entry.attachment
            && !entry.topics.is_empty()
        {
            self.directory.set_attachment(self.shard, &entry.topics, attachment);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Limits;
    use crate::session::{NewSession, link};

    fn limits() -> Limits {
        Limits { topics_per_session: 2, topic_name_bytes: 8, ..Limits::default() }
    }

    fn add(s: &mut Sessions, ids: &[SessionId]) {
        for &id in ids {
            let (tx, rx) = link(8, 1024);
            std::mem::forget(rx);
            s.insert(NewSession::for_test(id, tx));
        }
    }

    fn registry(ids: &[SessionId]) -> Sessions {
        let mut s = Sessions::new("t".into(), &limits());
        add(&mut s, ids);
        s
    }

    fn ids(s: &Sessions, topic: &str) -> Vec<SessionId> {
        s.topic_members(topic).into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn members_keep_join_order_and_leave_with_their_session() {
        let mut s = registry(&[1, 2, 3]);
        assert_eq!(s.subscribe(3, "room"), Subscribed::Joined);
        assert_eq!(s.subscribe(1, "room"), Subscribed::Joined);
        assert_eq!(s.subscribe(1, "room"), Subscribed::AlreadyJoined);
        assert_eq!(s.subscribe(2, "other"), Subscribed::Joined);
        assert_eq!(ids(&s, "room"), [3, 1]);
        assert_eq!(s.topic_size("other"), 1);
        assert_eq!(s.subscribe(1, "b"), Subscribed::Joined);
        assert_eq!(s.subscribe(1, "c"), Subscribed::TooManyTopics);
        assert_eq!(s.subscribe(1, ""), Subscribed::BadName);
        assert_eq!(s.subscribe(1, "ninechars"), Subscribed::BadName);
        assert_eq!(s.topics_of(1), ["room", "b"]);
        assert!(s.unsubscribe(1, "room"));
        assert!(!s.unsubscribe(1, "room"));
        assert_eq!(ids(&s, "room"), [3]);
        s.leave_topics(3);
        assert!(s.topics_of(3).is_empty());
        assert_eq!(s.topic_size("room"), 0);
        assert!(!s.directory.read().by_name.contains_key("room"), "an empty topic is forgotten");
        let fork = s.fork("t".into(), &Limits::default());
        assert_eq!(ids(&fork, "b"), [1], "a fork keeps memberships");
        s.remove(1);
        assert_eq!(s.topic_size("b"), 0, "a removed session leaves its topics");
    }

    #[test]
    fn shards_share_sizes_members_and_attachments() {
        let directory = Directory::new(3);
        let mut a = Sessions::sharded("t".into(), &limits(), directory.clone(), 0);
        let mut c = Sessions::sharded("t".into(), &limits(), directory.clone(), 2);
        add(&mut a, &[1, 3]);
        add(&mut c, &[2]);
        assert_eq!(a.subscribe(1, "room"), Subscribed::Joined);
        assert_eq!(c.subscribe(2, "room"), Subscribed::Joined);
        assert_eq!(a.subscribe(3, "room"), Subscribed::Joined);
        assert_eq!(c.topic_size("room"), 3);
        assert_eq!(ids(&c, "room"), [1, 2, 3], "the endpoint's join order");
        c.set_attachment(2, b"bo".to_vec()).unwrap();
        assert_eq!(a.topic_members("room")[1].1.as_deref(), Some(&b"bo"[..]));
        let mut local = Vec::new();
        assert_eq!(directory.local_members(0, "room", |id| local.push(id)), 0b100);
        assert_eq!(local, [1, 3]);
        assert_eq!(directory.all_but(1), 0b101);
        c.remove(2);
        assert_eq!(directory.local_members(0, "room", |_| {}), 0, "shard 2 has no member left");
        assert_eq!(a.topic_size("room"), 2);
    }
}
