//! The endpoint's topic [`Directory`], which all its instances (shards)
//! share: each topic's members per shard, keyed by an endpoint-wide join
//! sequence number (so joining and leaving are O(log n) even in a topic of
//! many thousands, and the endpoint's join order is a merge by that
//! number), with their attachments; and, in a cluster, what the other
//! nodes reported and where this node's fan-outs go to reach them.

use super::remote::{Members, Remote, Uplink};
use crate::session::SessionId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Counts every change of membership or attachment, so the cluster
    /// reports this node's members only when they changed.
    version: AtomicU64,
    /// The other nodes' members, in a cluster.
    remote: Remote,
    /// In a cluster: where fan-outs for the other nodes go, and the route
    /// they are for.
    uplink: Option<(Uplink, Arc<str>)>,
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
        Self::clustered(shards, None)
    }

    /// An empty directory for an endpoint of `shards` instances whose
    /// fan-outs also go to `uplink` (route, for the other nodes).
    pub fn clustered(shards: usize, uplink: Option<(Uplink, Arc<str>)>) -> Arc<Self> {
        assert!((1..=MAX_SHARDS).contains(&shards), "1 to {MAX_SHARDS} shards");
        let remote = Remote::default();
        Arc::new(Self { topics: RwLock::default(), shards, version: AtomicU64::new(0), remote, uplink })
    }

    /// Where fan-outs for other nodes go, and their route.
    pub(super) fn uplink(&self) -> Option<&(Uplink, Arc<str>)> {
        self.uplink.as_ref()
    }

    /// What the other nodes reported.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Changes so far to this node's memberships (see
    /// [`local_members_by_topic`](Self::local_members_by_topic)).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Every topic's members on this node (all shards), with attachments.
    pub fn local_members_by_topic(&self) -> HashMap<String, Members> {
        let map = self.read();
        map.by_name.keys().map(|name| (name.to_string(), merged(&map, name))).collect()
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `topic` is known (it has members, here or elsewhere).
    #[cfg(test)]
    pub(super) fn knows(&self, topic: &str) -> bool {
        self.read().by_name.contains_key(topic)
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
    pub(super) fn join(&self, shard: Shard, topic: &str, id: SessionId, attachment: Option<Arc<[u8]>>) -> Membership {
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
        self.changed();
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
            self.changed();
        }
    }

    /// Updates the attachment a session's memberships show.
    pub(super) fn set_attachment(&self, shard: Shard, memberships: &[Membership], attachment: &Arc<[u8]>) {
        let mut map = self.write();
        for m in memberships {
            if let Some(member) = map.by_name.get_mut(&m.topic).and_then(|t| t.by_shard[shard].get_mut(&m.seq)) {
                member.attachment = Some(attachment.clone());
            }
        }
        self.changed();
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

    /// How many members of `topic` `shard` serves.
    pub(super) fn local_size(&self, shard: Shard, topic: &str) -> usize {
        self.read().by_name.get(topic).map_or(0, |t| t.by_shard[shard].len())
    }

    /// How many members `topic` has, in every shard (and node).
    pub(super) fn size(&self, topic: &str) -> usize {
        let here = self.read().by_name.get(topic).map_or(0, |t| t.size);
        if self.uplink.is_none() { here } else { here + self.remote.size(topic) }
    }

    /// The members of `topic` in every shard, in the order they joined, with
    /// their attachments; then the other nodes' members.
    pub(super) fn members(&self, topic: &str) -> Members {
        let mut members = merged(&self.read(), topic);
        if self.uplink.is_some() && !self.remote.is_empty() {
            self.remote.members(topic, &mut members);
        }
        members
    }

    /// Every shard but `shard`.
    pub(super) fn all_but(&self, shard: Shard) -> ShardSet {
        let all = if self.shards == MAX_SHARDS { ShardSet::MAX } else { (1 << self.shards) - 1 };
        all & !(1 << shard)
    }
}

/// The members of `topic` in every shard, in the order they joined.
fn merged(map: &TopicMap, topic: &str) -> Members {
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
