//! The host-owned state of every session, below both the wasm runtime and
//! the endpoint: the registry of live sessions and plugin-held handles, each
//! session's outbound queue, its read credits, and close frames.
//!
//! It depends only on the manifest's limits, tungstenite's message types
//! and the codec's framing (for the writes a flush makes itself), so the
//! runtime's host functions ([`crate::runtime`]) and the endpoint's event
//! loop ([`crate::endpoint`]) both build on it without knowing each other.
//!
//! - [`registry`]: live sessions, handles, attachments, the full-queue policy.
//! - [`link`]: what a session's endpoint side and connection side share.
//! - `outbound`: the bounded outbound queue.
//! - `direct`: a plain session's socket written from the endpoint thread.
//! - `credit`: inbound flow control (read credits).
//! - `close`: close frames and named close codes.
//! - [`upgrade`]: the upgrade hook's request and answer.

mod close;
mod credit;
mod direct;
pub mod link;
mod outbound;
pub mod registry;
pub mod upgrade;

pub use close::{CloseCode, close_frame, plugin_close_frame};
pub use link::{Sent, SessionRx, SessionTx, SessionWaker, Signal, SocketGuard, Wakes, link, link_to};
pub use outbound::QueueError;
pub use registry::remote::{Members, NodeId, Outgoing, PRESENCE_EXPIRES, Uplink};
pub use registry::{
    AttachError, Audience, Delivery, Directory, Forward, MAX_SHARDS, Sessions, Shard, ShardSet, Subscribed, Target,
};
pub use upgrade::{Header, UpgradeAccept, UpgradeDecision, UpgradeReject, UpgradeRequest};

/// Identifies one connection for the life of the server; never reused, and
/// never 0.
pub type SessionId = u64;

/// A session that has just completed its handshake.
#[derive(Debug)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// Request path.
    pub path: String,
    /// Request query, without `?`.
    pub query: Option<String>,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The subprotocol chosen at the upgrade.
    pub protocol: Option<String>,
    /// Where the plugin's writes to it go.
    pub tx: SessionTx,
    /// Its first attachment, from the upgrade hook.
    pub attachment: Option<Vec<u8>>,
    /// Topics it joins on arrival, from the upgrade hook.
    pub topics: Vec<String>,
}

impl NewSession {
    /// A session on `/a` from 127.0.0.1, with nothing from an upgrade hook.
    #[cfg(test)]
    pub(crate) fn for_test(id: SessionId, tx: SessionTx) -> Self {
        Self {
            id,
            path: "/a".into(),
            query: None,
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            protocol: None,
            tx,
            attachment: None,
            topics: Vec::new(),
        }
    }
}
