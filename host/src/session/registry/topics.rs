//! Topics held by the host: named groups of sessions, the unit of fan-out;
//! what a session's membership calls do to the endpoint's
//! [`Directory`](super::Directory).
//!
//! Each session keeps the topics it is in, so it leaves them all when it
//! ends. Memberships outlive any one plugin instance: a trap or a swap hands
//! the registry, and with it the same directory, to the next one.
//!
//! Nothing here assumes that a member is served by the instance asking: a
//! publish delivers to this shard's members and names the other shards that
//! have some ([`Directory::local_members`](super::Directory::local_members)), which the endpoint forwards to.
//! In a cluster, sizes and member lists add what the other nodes last
//! reported ([`super::remote`]), and a publish also leaves through the
//! endpoint's uplink.

use super::Sessions;
use crate::session::SessionId;
use crate::session::upgrade::topic_name_ok;

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
    use super::super::Directory;
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
        assert!(!s.directory.knows("room"), "an empty topic is forgotten");
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
