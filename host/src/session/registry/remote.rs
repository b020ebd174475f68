//! What one endpoint knows of the other nodes of a cluster: where its own
//! fan-outs go to reach them ([`Uplink`]), and the topic members each of
//! them last reported ([`Remote`]), which topic sizes and member lists add
//! to this node's own.
//!
//! Both are plain data here; the cluster's connection (NATS) lives above
//! the endpoint and fills them. A report older than [`PRESENCE_EXPIRES`] is
//! ignored: a node that stops reporting (killed, cut off) drops out of every
//! count within that bound.

use crate::session::SessionId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A node of the cluster (random per process).
pub type NodeId = u64;

/// How long a node's report of its members counts.
pub const PRESENCE_EXPIRES: Duration = Duration::from_secs(1);

/// A fan-out this node's plugin made, for the other nodes.
#[derive(Debug)]
pub struct Outgoing {
    /// The route whose endpoint made it.
    pub route: Arc<str>,
    /// The topic, or `None` for a broadcast to every session.
    pub topic: Option<Arc<str>>,
    /// The message.
    pub msg: Message,
}

/// Where an endpoint's fan-outs for other nodes go: a bounded queue the
/// cluster's task drains. Sending never waits (local delivery must not wait
/// for the network): a full queue drops the fan-out for the other nodes.
#[derive(Debug, Clone)]
pub struct Uplink {
    tx: tokio::sync::mpsc::Sender<Outgoing>,
}

impl Uplink {
    /// An uplink into `tx`.
    pub fn new(tx: tokio::sync::mpsc::Sender<Outgoing>) -> Self {
        Self { tx }
    }

    /// Hands a fan-out to the cluster; `false` if it was dropped.
    pub fn send(&self, outgoing: Outgoing) -> bool {
        self.tx.try_send(outgoing).is_ok()
    }
}

/// One topic's members as a node reports them: ids with attachments.
pub type Members = Vec<(SessionId, Option<Vec<u8>>)>;

/// The other nodes' last reports, by node.
#[derive(Debug, Default)]
pub struct Remote {
    nodes: Mutex<BTreeMap<NodeId, Report>>,
}

#[derive(Debug)]
struct Report {
    at: Instant,
    topics: HashMap<String, Members>,
}

impl Remote {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Report>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `node`'s report of its topics' members (received at `now`), in
    /// place of its last one; forgets nodes whose reports expired.
    pub fn report(&self, node: NodeId, topics: HashMap<String, Members>, now: Instant) {
        let mut nodes = self.lock();
        nodes.retain(|_, r| now.duration_since(r.at) < PRESENCE_EXPIRES);
        nodes.insert(node, Report { at: now, topics });
    }

    /// How many members the other nodes have in `topic`.
    pub(super) fn size(&self, topic: &str) -> usize {
        let now = Instant::now();
        let nodes = self.lock();
        let fresh = nodes.values().filter(|r| now.duration_since(r.at) < PRESENCE_EXPIRES);
        fresh.filter_map(|r| r.topics.get(topic)).map(Vec::len).sum()
    }

    /// Appends the other nodes' members of `topic` (by node) to `into`.
    pub(super) fn members(&self, topic: &str, into: &mut Members) {
        let now = Instant::now();
        let nodes = self.lock();
        for report in nodes.values().filter(|r| now.duration_since(r.at) < PRESENCE_EXPIRES) {
            if let Some(members) = report.topics.get(topic) {
                into.extend(members.iter().cloned());
            }
        }
    }

    /// Whether any node reported.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_until_they_expire() {
        let remote = Remote::default();
        let long_ago = Instant::now() - PRESENCE_EXPIRES * 2;
        remote.report(7, HashMap::from([("room".to_owned(), vec![(1, None)])]), long_ago);
        assert_eq!(remote.size("room"), 0, "an expired report counts");
        let now = Instant::now();
        remote.report(8, HashMap::from([("room".to_owned(), vec![(2, Some(b"b".to_vec())), (3, None)])]), now);
        assert_eq!(remote.size("room"), 2);
        let mut members = Vec::new();
        remote.members("room", &mut members);
        assert_eq!(members, [(2, Some(b"b".to_vec())), (3, None)]);
        assert_eq!(remote.lock().len(), 1, "node 7 was forgotten");
    }
}
