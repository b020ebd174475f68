//! The endpoint's registry of live sessions and of the handles the plugin
//! holds on them.
//!
//! The host owns the truth about who is connected: this registry outlives any
//! one plugin instance (it moves to the fresh instance after a trap or an
//! upgrade). The plugin sees sessions only through resource handles, whose
//! `rep` indexes `handles`; a handle maps to a session id, never to a slot
//! that could be reused, so a stale handle can only ever report `closed`.
//!
//! Every write, close and returned credit goes through here and notes the
//! session's connection in [`Wakes`]; the endpoint decides when to
//! [`flush_wakes`](Sessions::flush_wakes) (which writes a plain session's
//! messages to its socket itself, counted in the route's `sent`).
//!
//! - `fanout`: writes to one session, the endpoint or a topic, and the
//!   full-queue policy.
//! - [`remote`]: what an endpoint knows of a cluster's other nodes.
//! - `topics`: topic memberships, in the [`Directory`] the endpoint's
//!   instances share (`directory`).
//!
//! An endpoint may run several instances (shards), each with a registry of
//! its own sessions; what crosses them goes through the shared directory
//! (topic sizes, members and their attachments) or is left in
//! [`Sessions::take_forwards`] for the endpoint to hand to the other shards
//! (fan-out to their members).

mod directory;
mod fanout;
pub mod remote;
mod topics;

pub use directory::{Directory, MAX_SHARDS, Shard, ShardSet};
pub use fanout::{Audience, Delivery, Forward, Target};
pub use topics::Subscribed;

use super::close::plugin_close_frame;
use super::link::{Sent, SessionTx, Wakes};
use super::{NewSession, SessionId};
use crate::manifest::{Limits, QueueFull};
use crate::metrics::RouteMetrics;
use directory::Membership;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// What the host keeps about one live session.
#[derive(Debug, Clone)]
struct Entry {
    /// Where it came from (shared by the copies a swap makes).
    origin: Arc<Origin>,
    /// Its outbound queue.
    tx: SessionTx,
    /// The handle rep passed as `borrow<session>` in this session's events.
    borrow_rep: u32,
    /// `close` was called: writes fail and events are no longer delivered.
    closing: bool,
    /// The plugin's per-session bytes, kept across instances (and shared
    /// with the topic directory, which shows them to every shard).
    attachment: Option<Arc<[u8]>>,
    /// Since when the outbound queue has been refusing writes.
    full_since: Option<Instant>,
    /// The topics it is in, in join order.
    topics: Vec<Membership>,
}

/// Where a session came from: read only when the plugin asks, so kept out
/// of [`Entry`]. The live map's nodes are about half full (ids only grow),
/// so each byte of an entry costs two per session: 176 -> 80 bytes made an
/// idle session ~45 bytes smaller with the origin's own allocation
/// counted (`load idle`: 2.14 -> 2.09 KiB).
#[derive(Debug)]
struct Origin {
    /// Request path it connected with.
    path: Box<str>,
    /// Request query, without `?`.
    query: Option<Box<str>>,
    /// The client's address.
    peer: SocketAddr,
    /// The subprotocol chosen at the upgrade.
    protocol: Option<Box<str>>,
}

/// The per-session policies taken from the plugin's limits.
#[derive(Debug, Clone)]
struct Policy {
    /// What a queue that stays full leads to.
    on_full: QueueFull,
    /// How long it may stay full under `QueueFull::Close`.
    full_grace: Duration,
    /// The rest of the plugin's limits (attachment and topic bounds).
    limits: Limits,
}

/// Live sessions by id (ids grow, so iteration is oldest first), the handle
/// table, and the per-session policies from the plugin's limits.
#[derive(Debug)]
pub struct Sessions {
    /// Every live session.
    live: BTreeMap<SessionId, Entry>,
    /// Handle rep -> session id, for every handle the instance holds.
    handles: slab::Slab<SessionId>,
    /// The endpoint's topics, shared with its other shards.
    directory: Arc<Directory>,
    /// Which of the endpoint's instances this registry serves.
    shard: Shard,
    /// Fan-outs that other shards must deliver to their members.
    forwards: Vec<Forward>,
    /// Connections to wake once the current batch of events is done.
    wakes: Wakes,
    /// When the earliest full queue's grace may run out (under
    /// `on-queue-full = "close"`); see [`police`](Self::police).
    full_deadline: Option<Instant>,
    policy: Policy,
    /// The plugin's name, for log lines.
    plugin: Arc<str>,
    /// The route's counters (writes refused), once the endpoint set them.
    metrics: Option<RouteMetrics>,
}

/// Why an attachment was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// Over the plugin's `attachment-bytes`.
    TooLarge,
    /// The session has ended.
    Closed,
}

impl Sessions {
    /// An empty registry of an endpoint with one instance, applying
    /// `limits` (for `plugin`'s log lines).
    pub fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        Self::sharded(plugin, limits, Directory::new(1), 0)
    }

    /// An empty registry for instance `shard` of an endpoint whose topics
    /// are in `directory`.
    pub fn sharded(plugin: Arc<str>, limits: &Limits, directory: Arc<Directory>, shard: Shard) -> Self {
        Self {
            live: BTreeMap::new(),
            handles: slab::Slab::new(),
            directory,
            shard,
            forwards: Vec::new(),
            wakes: Wakes::default(),
            full_deadline: None,
            policy: Policy {
                on_full: limits.on_queue_full,
                full_grace: limits.queue_full_grace(),
                limits: limits.clone(),
            },
            plugin,
            metrics: None,
        }
    }

    /// Counts into the route's metrics from now on (a fork keeps them).
    pub fn set_metrics(&mut self, metrics: RouteMetrics) {
        self.wakes.count_in(Sent { messages: metrics.sent.clone(), bytes: metrics.sent_bytes.clone() });
        self.metrics = Some(metrics);
    }

    /// The route's metrics, if counted.
    pub fn metrics(&self) -> Option<&RouteMetrics> {
        self.metrics.as_ref()
    }

    /// Registers a new session, with the attachment and topics its upgrade
    /// gave it (checked against the limits then); returns the rep of a
    /// fresh owned handle to it.
    pub fn insert(&mut self, session: NewSession) -> u32 {
        let NewSession { id, path, query, peer, protocol, tx, attachment, topics } = session;
        let borrow_rep = self.new_handle(id);
        let attachment = attachment.map(Arc::from);
        let origin = Origin {
            path: path.into_boxed_str(),
            query: query.map(String::into_boxed_str),
            peer,
            protocol: protocol.map(String::into_boxed_str),
        };
        let entry = Entry {
            origin: Arc::new(origin),
            tx,
            borrow_rep,
            closing: false,
            attachment,
            full_since: None,
            topics: Vec::new(),
        };
        self.live.insert(id, entry);
        for topic in topics {
            self.subscribe(id, &topic);
        }
        self.new_handle(id)
    }

    /// A copy of this registry for a new plugin version: the same sessions
    /// (and outbound queues and attachments) with a fresh handle table, under
    /// the new version's limits, sharing the topic directory. The original
    /// stays intact, so the old version can keep serving if the new one
    /// fails to start (topics joined or left by a `restore` that then traps
    /// stay as it left them: the directory is the endpoint's).
    pub fn fork(&self, plugin: Arc<str>, limits: &Limits) -> Self {
        let mut fork = Self::sharded(plugin, limits, self.directory.clone(), self.shard);
        fork.live = self.live.clone();
        fork.wakes = self.wakes.fresh();
        fork.metrics = self.metrics.clone();
        fork.reset_handles();
        fork.full_deadline = fork.earliest_full_deadline();
        fork
    }

    /// Forgets a session and its borrow handle. Owned handles the plugin
    /// still holds stay valid and report `closed`.
    pub fn remove(&mut self, id: SessionId) {
        if let Some(entry) = self.live.remove(&id) {
            self.handles.try_remove(entry.borrow_rep as usize);
            for membership in &entry.topics {
                self.directory.leave(self.shard, membership);
            }
        }
    }

    /// A new handle rep for `id`, whether or not it is live.
    fn new_handle(&mut self, id: SessionId) -> u32 {
        insert_handle(&mut self.handles, id)
    }

    /// A fresh owned handle to a live session.
    pub fn lookup(&mut self, id: SessionId) -> Option<u32> {
        self.live.contains_key(&id).then(|| self.new_handle(id))
    }

    /// Releases an owned handle the plugin dropped.
    pub fn drop_handle(&mut self, rep: u32) {
        self.handles.try_remove(rep as usize);
    }

    /// The session a handle refers to; `None` for a rep this registry never
    /// handed out (a host bug, reported as a trap).
    pub fn resolve(&self, rep: u32) -> Option<SessionId> {
        self.handles.get(rep as usize).copied()
    }

    /// One client message of `id` has left the endpoint's queue: its read
    /// credit returns. Returns the borrow rep to deliver the message with,
    /// unless the session is gone or closed by the plugin.
    pub fn receive(&mut self, id: SessionId) -> Option<u32> {
        let entry = self.live.get(&id)?;
        entry.tx.give_credit(&mut self.wakes);
        (!entry.closing).then_some(entry.borrow_rep)
    }

    /// The rep of a live session's borrow handle, closing or not.
    pub fn borrow_rep(&self, id: SessionId) -> Option<u32> {
        self.live.get(&id).map(|e| e.borrow_rep)
    }

    /// Whether `id` is live and not closing.
    pub fn is_open(&self, id: SessionId) -> bool {
        self.live.get(&id).is_some_and(|e| !e.closing)
    }

    /// The request path a live session connected with.
    pub fn path(&self, id: SessionId) -> Option<&str> {
        self.live.get(&id).map(|e| &*e.origin.path)
    }

    /// The request query a live session connected with.
    pub fn query(&self, id: SessionId) -> Option<&str> {
        self.live.get(&id)?.origin.query.as_deref()
    }

    /// The client address of a live session.
    pub fn peer(&self, id: SessionId) -> Option<SocketAddr> {
        self.live.get(&id).map(|e| e.origin.peer)
    }

    /// The subprotocol a live session chose.
    pub fn protocol(&self, id: SessionId) -> Option<&str> {
        self.live.get(&id)?.origin.protocol.as_deref()
    }

    /// Bytes queued for a live session and not yet written (0 if gone).
    pub fn buffered_amount(&self, id: SessionId) -> usize {
        self.live.get(&id).map_or(0, |e| e.tx.queued_bytes())
    }

    /// Ids of every live session, oldest first.
    pub fn ids(&self) -> Vec<SessionId> {
        self.live.keys().copied().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The session's attachment.
    pub fn attachment(&self, id: SessionId) -> Option<Vec<u8>> {
        self.live.get(&id)?.attachment.as_deref().map(<[u8]>::to_vec)
    }

    /// Stores the session's attachment.
    pub fn set_attachment(&mut self, id: SessionId, data: Vec<u8>) -> Result<(), AttachError> {
        if data.len() > self.policy.limits.attachment_bytes {
            return Err(AttachError::TooLarge);
        }
        let entry = self.live.get_mut(&id).ok_or(AttachError::Closed)?;
        entry.attachment = Some(data.into());
        self.attachment_changed(id);
        Ok(())
    }

    /// The plugin closes a session, with its code (if the wire allows it)
    /// and reason.
    pub fn close_by_plugin(&mut self, id: SessionId, code: Option<u16>, reason: &str) {
        self.close(id, plugin_close_frame(code, reason));
    }

    /// Starts closing a session: queues the close frame after what is already
    /// queued and stops delivering its events. Closing twice does nothing.
    pub fn close(&mut self, id: SessionId, frame: CloseFrame) {
        let Some(entry) = self.live.get_mut(&id).filter(|e| !e.closing) else {
            return;
        };
        entry.closing = true;
        // A closed queue means the connection is already going away.
        let _ = entry.tx.send_control(Message::Close(Some(frame)), &mut self.wakes);
    }

    /// Closes every session with `frame`.
    pub fn close_all(&mut self, frame: &CloseFrame) {
        for id in self.ids() {
            self.close(id, frame.clone());
        }
    }

    /// Refuses a session that connected as the endpoint went away: it is
    /// told with `frame` and never registered.
    pub fn refuse(&mut self, session: NewSession, frame: CloseFrame) {
        let NewSession { tx, .. } = session;
        let _ = tx.send_control(Message::Close(Some(frame)), &mut self.wakes);
    }

    /// Wakes every connection that a write, close or returned credit since
    /// the last flush concerns.
    pub fn flush_wakes(&mut self) {
        self.wakes.flush();
    }

    /// The connections to wake, for whoever flushes them (the endpoint
    /// thread, inside its runtime, where a wake costs no system call).
    pub fn take_wakes(&mut self) -> Wakes {
        let fresh = self.wakes.fresh();
        std::mem::replace(&mut self.wakes, fresh)
    }

    /// Drops every handle (the plugin instance that held them is gone) and
    /// makes new borrow handles for the live sessions.
    pub fn reset_handles(&mut self) {
        self.handles.clear();
        for (id, entry) in self.live.iter_mut() {
            entry.borrow_rep = insert_handle(&mut self.handles, *id);
        }
    }
}

/// A new handle rep for `id` in `handles`.
fn insert_handle(handles: &mut slab::Slab<SessionId>, id: SessionId) -> u32 {
    u32::try_from(handles.insert(id)).expect("fewer than 2^32 session handles")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{QueueError, link};

    fn new_session(id: SessionId, tx: SessionTx) -> NewSession {
        NewSession::for_test(id, tx)
    }

    #[test]
    fn stale_handles_never_reach_a_new_session() {
        let mut s = Sessions::new("t".into(), &Limits::default());
        let (tx, _rx) = link(8, 1024);
        let own = s.insert(new_session(1, tx.clone()));
        assert_eq!(s.resolve(own), Some(1));
        s.remove(1);
        let own2 = s.insert(new_session(2, tx));
        assert_ne!(own, own2);
        assert_eq!(s.resolve(own), Some(1));
        assert_eq!(s.send(1, Message::text("x")), Err(QueueError::Closed));
        assert!(s.send(2, Message::text("x")).is_ok());
    }
}
