//! Topics held by the host: named groups of sessions, the unit of fan-out.
//!
//! Each topic keeps its members in the order they joined (keyed by a join
//! sequence number, so joining and leaving are O(log n) even in a topic of
//! many thousands); each session keeps the topics it is in, so it leaves
//! them all when it ends. Both live in the registry, so memberships move to
//! a new instance with the sessions after a trap or a swap.

use super::Sessions;
use crate::session::SessionId;
use crate::session::upgrade::topic_name_ok;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Every topic with at least one member.
#[derive(Debug, Clone, Default)]
pub(super) struct Topics {
    /// Topic -> join sequence -> member.
    by_name: HashMap<Arc<str>, BTreeMap<u64, SessionId>>,
    /// The next join's sequence number.
    next_join: u64,
}

/// One session's membership of one topic.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    /// The topic.
    pub(super) topic: Arc<str>,
    /// Its key in the topic's member map.
    seq: u64,
}

impl Topics {
    /// Adds `id` to `topic`; its membership, for the session to keep.
    fn join(&mut self, topic: &str, id: SessionId) -> Membership {
        let topic: Arc<str> = match self.by_name.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => topic.into(),
        };
        let seq = self.next_join;
        self.next_join += 1;
        self.by_name.entry(topic.clone()).or_default().insert(seq, id);
        Membership { topic, seq }
    }

    /// Ends one membership; the topic goes with its last member.
    pub(super) fn leave(&mut self, membership: &Membership) {
        if let Some(members) = self.by_name.get_mut(&membership.topic) {
            members.remove(&membership.seq);
            if members.is_empty() {
                self.by_name.remove(&membership.topic);
            }
        }
    }

    /// The members of `topic`, in join order.
    pub(super) fn members(&self, topic: &str) -> impl Iterator<Item = SessionId> + '_ {
        self.by_name.get(topic).into_iter().flat_map(|m| m.values().copied())
    }

    /// How many members `topic` has.
    fn size(&self, topic: &str) -> usize {
        self.by_name.get(topic).map_or(0, BTreeMap::len)
    }
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
        entry.topics.push(self.topics.join(topic, id));
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
        self.topics.leave(&membership);
        true
    }

    /// The topics session `id` is in, in the order it joined them.
    pub fn topics_of(&self, id: SessionId) -> Vec<String> {
        self.live.get(&id).map(|e| e.topics.iter().map(|m| m.topic.to_string()).collect()).unwrap_or_default()
    }

    /// How many sessions are in `topic`.
    pub fn topic_size(&self, topic: &str) -> usize {
        self.topics.size(topic)
    }

    /// The members of `topic`, in join order, with their attachments.
    pub fn topic_members(&self, topic: &str) -> Vec<(SessionId, Option<Vec<u8>>)> {
        self.topics.members(topic).map(|id| (id, self.attachment(id))).collect()
    }

    /// Session `id` leaves every topic it is in (it is ending).
    pub fn leave_topics(&mut self, id: SessionId) {
        if let Some(entry) = self.live.get_mut(&id) {
            for membership in entry.topics.drain(..) {
                self.topics.leave(&membership);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Limits;
    use crate::session::{NewSession, link};

    fn registry(ids: &[SessionId]) -> Sessions {
        let limits = Limits { topics_per_session: 2, topic_name_bytes: 8, ..Limits::default() };
        let mut s = Sessions::new("t".into(), &limits);
        for &id in ids {
            let (tx, rx) = link(8, 1024);
            std::mem::forget(rx);
            s.insert(NewSession::for_test(id, tx));
        }
        s
    }

    #[test]
    fn members_keep_join_order_and_leave_with_their_session() {
        let mut s = registry(&[1, 2, 3]);
        assert_eq!(s.subscribe(3, "room"), Subscribed::Joined);
        assert_eq!(s.subscribe(1, "room"), Subscribed::Joined);
        assert_eq!(s.subscribe(1, "room"), Subscribed::AlreadyJoined);
        assert_eq!(s.subscribe(2, "other"), Subscribed::Joined);
        let ids = |s: &Sessions, t| s.topic_members(t).into_iter().map(|(id, _)| id).collect::<Vec<_>>();
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
        assert!(!s.topics.by_name.contains_key("room"), "an empty topic is forgotten");
        let fork = s.fork("t".into(), &Limits::default());
        assert_eq!(ids(&fork, "b"), [1], "a fork keeps memberships");
        s.remove(1);
        assert_eq!(s.topic_size("b"), 0, "a removed session leaves its topics");
    }
}
