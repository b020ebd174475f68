//! What an endpoint's queues carry: the sessions' events, and the
//! supervisor's commands (swap, retire, shut down) between them; and what
//! a swap reports.

use crate::runtime::CompiledPlugin;
use crate::session::{Delivery, NewSession, SessionId, UpgradeDecision, UpgradeRequest};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Something that happened on one of the endpoint's connections.
#[derive(Debug)]
pub enum Event {
    /// A client asks to connect: the plugin's upgrade hook decides.
    Upgrade {
        /// The request.
        request: Box<UpgradeRequest>,
        /// Where the decision goes.
        reply: oneshot::Sender<UpgradeDecision>,
    },
    /// A client completed the WebSocket handshake. Boxed: every event
    /// moves through the queue at the size of the largest.
    Connected(Box<NewSession>),
    /// A text message arrived.
    Text {
        /// The session.
        id: SessionId,
        /// The message.
        text: Utf8Bytes,
    },
    /// A binary message arrived.
    Binary {
        /// The session.
        id: SessionId,
        /// The message.
        data: Bytes,
    },
    /// A pong arrived.
    Pong {
        /// The session.
        id: SessionId,
        /// Its payload.
        data: Bytes,
    },
    /// A queue that refused a write has room again.
    Drain {
        /// The session.
        id: SessionId,
    },
    /// The connection ended; always the session's last event.
    Disconnected {
        /// The session.
        id: SessionId,
    },
    /// A fan-out another instance of the endpoint made, for this
    /// instance's sessions.
    Deliver(Box<Delivery>),
    /// Replace the plugin with a new version at this event boundary.
    Swap {
        /// The new version.
        plugin: Arc<CompiledPlugin>,
        /// Where the outcome goes (with several instances: whether this one
        /// is ready to switch).
        done: oneshot::Sender<Result<SwapReport, SwapError>>,
        /// With several instances: whether to switch, once every instance
        /// is ready (the thread waits for it; `false` or a dropped sender
        /// keeps the old version).
        commit: Option<std::sync::mpsc::Receiver<bool>>,
    },
    /// The plugin is being removed: close every session with 1001, then stop.
    Retire,
    /// The server is stopping: end every remaining session, then stop.
    Shutdown,
}

/// What a successful swap did.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// Sessions the new version took over.
    pub sessions: usize,
    /// How long the endpoint was switching (snapshot, instantiate, restore).
    pub switch: std::time::Duration,
}

/// Why a swap did not happen; the old version keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The new version could not be instantiated.
    #[error("the new version cannot start: {0:#}")]
    Start(wasmtime::Error),
    /// The new version trapped in `restore`.
    #[error("the new version trapped in restore: {0:#}")]
    Restore(wasmtime::Error),
    /// The endpoint is not running.
    #[error("the endpoint is not running")]
    Gone,
}
