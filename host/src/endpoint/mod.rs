//! An endpoint: one plugin instance serving one route, run as an actor.
//!
//! Connection tasks send [`Event`]s into the endpoint's bounded queue; the
//! endpoint's own thread takes them in order and calls the plugin
//! synchronously (the cheapest way into wasm), and the plugin's writes go to
//! the sessions' outbound queues without blocking.
//!
//! - [`actor`]: the thread that owns the plugin's store and recovers from traps.
//! - [`sessions`]: the registry of live sessions and plugin-held handles.
//! - [`outbound`]: each session's bounded outbound queue.

mod actor;
pub mod outbound;
mod sessions;

pub use sessions::{Sessions, SessionId, close_frame};

use crate::config::ServerConfig;
use crate::runtime::CompiledPlugin;
use bytes::Bytes;
use outbound::OutboundTx;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Something that happened on one of the endpoint's connections.
#[derive(Debug)]
pub enum Event {
    /// A client completed the WebSocket handshake.
    Connected {
        /// The new session.
        id: SessionId,
        /// Request path.
        path: String,
        /// Request query, without `?`.
        query: Option<String>,
        /// Where the plugin's writes to this session go.
        out: OutboundTx,
    },
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
    /// The connection ended; always the session's last event.
    Disconnected {
        /// The session.
        id: SessionId,
    },
    /// The server is stopping: end every remaining session, then stop.
    Shutdown,
}

/// The endpoint's queue is gone (it has shut down).
#[derive(Debug, thiserror::Error)]
#[error("endpoint `{0}` is not running")]
pub struct EndpointGone(pub Arc<str>);

/// A cheap, cloneable way to send events to an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Event>,
}

impl EndpointHandle {
    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Queues an event, waiting while the endpoint's queue is full.
    pub async fn send(&self, event: Event) -> Result<(), EndpointGone> {
        self.tx
            .send(event)
            .await
            .map_err(|_| EndpointGone(self.name.clone()))
    }
}

/// A running endpoint: the handle to its queue and its thread.
pub struct Endpoint {
    handle: EndpointHandle,
    thread: std::thread::JoinHandle<()>,
}

impl Endpoint {
    /// Instantiates `plugin` and starts its thread. Fails if the first
    /// instantiation fails (e.g. the component traps in its start function).
    pub fn start(
        plugin: Arc<CompiledPlugin>,
        config: Arc<ServerConfig>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(config.event_queue_capacity);
        let name = plugin.name.clone();
        let actor = actor::Actor::new(plugin, config, rx)?;
        let thread = std::thread::Builder::new()
            .name(format!("wasock-ep-{name}"))
            .spawn(move || actor.run())?;
        Ok(Self {
            handle: EndpointHandle { name, tx },
            thread,
        })
    }

    /// A handle for connection tasks.
    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }

    /// Ends every remaining session (`on-disconnected` for each), then stops
    /// the thread and waits for it.
    pub async fn shutdown(self) {
        let _ = self.handle.tx.send(Event::Shutdown).await;
        let name = self.handle.name.clone();
        let joined = tokio::task::spawn_blocking(move || self.thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!(plugin = %name, "endpoint thread panicked");
        }
    }
}
