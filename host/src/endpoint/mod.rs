//! An endpoint: one plugin instance serving one route, run as an actor.
//!
//! Connection tasks send [`Event`]s into the endpoint's bounded queue; the
//! endpoint's own thread takes them in order and calls the plugin
//! synchronously (the cheapest way into wasm), and the plugin's writes go to
//! the sessions' outbound queues ([`crate::session`]) without blocking.
//!
//! - [`actor`]: the thread's event loop: dispatch, swap, retire.
//! - [`recovery`]: what a trap leads to: a fresh instance, or a back-off.
//! - [`queue`]: the endpoint's bounded event queue and its batching policy.

mod actor;
mod queue;
mod recovery;

use crate::config::ServerConfig;
use crate::manifest::Limits;
use crate::metrics::RouteMetrics;
use crate::runtime::CompiledPlugin;
use crate::session::{NewSession, SessionId, UpgradeDecision, UpgradeReject, UpgradeRequest};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    /// Replace the plugin with a new version at this event boundary.
    Swap {
        /// The new version.
        plugin: Arc<CompiledPlugin>,
        /// Where the outcome goes.
        done: oneshot::Sender<Result<SwapReport, SwapError>>,
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

/// The endpoint's queue is gone (it has shut down).
#[derive(Debug, thiserror::Error)]
#[error("the endpoint is not running")]
pub struct EndpointGone;

/// Who may connect to an endpoint: its connection cap and back-off, shared
/// by the network side (which admits) and the actor (which backs off).
#[derive(Debug)]
pub struct AdmissionControl {
    /// The plugin's name.
    pub name: Arc<str>,
    /// The plugin's limits (replaced when a new version is swapped in).
    limits: arc_swap::ArcSwap<Limits>,
    /// Connections admitted and not yet ended.
    connections: AtomicUsize,
    /// Of those, the compressed ones (each holds deflate contexts).
    compressed: AtomicUsize,
    /// While the endpoint backs off after repeated traps: until when.
    refusing_until: Mutex<Option<Instant>>,
    /// Whether the running version has an upgrade hook: without one, the
    /// handshake does not wait for the endpoint's thread.
    upgrade_hook: AtomicBool,
    /// The route's counters.
    pub metrics: RouteMetrics,
}

impl AdmissionControl {
    /// The new version's limits, for connections made from now on.
    pub(crate) fn replace_limits(&self, limits: Arc<Limits>) {
        self.limits.store(limits);
    }

    /// Accepts connections again (a new version replaced a crashing one).
    pub(crate) fn stop_refusing(&self) {
        *self.refusing_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Notes whether the version now running has an upgrade hook.
    pub(crate) fn set_upgrade_hook(&self, hook: bool) {
        self.upgrade_hook.store(hook, Ordering::Release);
    }

    /// Refuses new connections until `until`.
    pub(crate) fn refuse_until(&self, until: Instant) {
        *self.refusing_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
    }
}

/// Why a connection was not admitted (answered with 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The endpoint has `max-connections` live connections.
    #[error("endpoint is at its connection limit")]
    Full,
    /// The plugin kept crashing; the endpoint is backing off.
    #[error("endpoint is backing off after repeated plugin crashes")]
    BackingOff,
}

/// Counts one admitted connection until dropped.
#[derive(Debug)]
pub struct Admitted(Arc<AdmissionControl>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one compressed session until dropped.
#[derive(Debug)]
pub struct Compressing(Arc<AdmissionControl>);

impl Drop for Compressing {
    fn drop(&mut self) {
        self.0.compressed.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A cheap, cloneable way to send events to an endpoint.
#[derive(Clone)]
pub struct EndpointHandle {
    /// The endpoint's admission control (and the plugin's name and limits).
    info: Arc<AdmissionControl>,
    /// Its event queue.
    tx: Arc<queue::EventTx>,
}

impl std::fmt::Debug for EndpointHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointHandle").field("name", &self.info.name).finish_non_exhaustive()
    }
}

impl EndpointHandle {
    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.info.name
    }

    /// The plugin's current limits.
    pub fn limits(&self) -> Arc<Limits> {
        self.info.limits.load_full()
    }

    /// Connections admitted and not yet ended (its sessions).
    pub fn sessions(&self) -> usize {
        self.info.connections.load(Ordering::Relaxed)
    }

    /// Whether the endpoint is backing off after repeated traps.
    pub fn backed_off(&self) -> bool {
        let until = self.info.refusing_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Admits one more connection, unless the endpoint is full or backing
    /// off.
    pub fn admit(&self) -> Result<Admitted, Refusal> {
        {
            let mut until = self.info.refusing_until.lock().unwrap_or_else(|e| e.into_inner());
            match *until {
                Some(t) if Instant::now() < t => return Err(Refusal::BackingOff),
                Some(_) => *until = None,
                None => {}
            }
        }
        let max = self.info.limits.load().max_connections;
        let admitted =
            self.info.connections.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1));
        match admitted {
            Ok(_) => Ok(Admitted(self.info.clone())),
            Err(_) => Err(Refusal::Full),
        }
    }

    /// A place for one more compressed session, if fewer than `max` are.
    pub fn compress(&self, max: usize) -> Option<Compressing> {
        let counted =
            self.info.compressed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1));
        counted.ok().map(|_| Compressing(self.info.clone()))
    }

    /// The route's counters.
    pub fn metrics(&self) -> &RouteMetrics {
        &self.info.metrics
    }

    /// Whether the plugin's upgrade hook must decide who connects.
    pub fn has_upgrade_hook(&self) -> bool {
        self.info.upgrade_hook.load(Ordering::Acquire)
    }

    /// Asks the plugin's upgrade hook about `request`. An endpoint that
    /// went away answers 503.
    pub async fn upgrade(&self, request: UpgradeRequest) -> UpgradeDecision {
        let (reply, decision) = oneshot::channel();
        let gone = || {
            let body = "endpoint is not running\n".to_owned();
            UpgradeDecision::Reject(UpgradeReject { status: 503, headers: Vec::new(), body })
        };
        if self.send(Event::Upgrade { request: Box::new(request), reply }).await.is_err() {
            return gone();
        }
        decision.await.unwrap_or_else(|_| gone())
    }

    /// Queues an event, waiting while the endpoint's queue is full.
    pub async fn send(&self, event: Event) -> Result<(), EndpointGone> {
        self.tx.send(event).await.map_err(|_| EndpointGone)
    }
}

/// A running endpoint: the handle to its queue and its thread.
#[derive(Debug)]
pub struct Endpoint {
    /// What connection tasks and the supervisor send events through.
    handle: EndpointHandle,
    /// The actor's thread, joined when the endpoint stops.
    thread: std::thread::JoinHandle<()>,
}

impl Endpoint {
    /// Instantiates `plugin` and starts its thread. Fails if the first
    /// instantiation fails (e.g. the component traps in its start function).
    pub fn start(plugin: Arc<CompiledPlugin>, config: &ServerConfig, metrics: RouteMetrics) -> anyhow::Result<Self> {
        let (tx, rx) = queue::channel(config.event_queue_capacity);
        let info = Arc::new(AdmissionControl {
            name: plugin.name.clone(),
            limits: arc_swap::ArcSwap::new(plugin.limits.clone()),
            connections: AtomicUsize::new(0),
            compressed: AtomicUsize::new(0),
            refusing_until: Mutex::new(None),
            upgrade_hook: AtomicBool::new(false),
            metrics,
        });
        let actor = actor::Actor::new(plugin, info.clone(), rx)?;
        let thread = std::thread::Builder::new().name(format!("wasock-ep-{}", info.name)).spawn(move || actor.run())?;
        Ok(Self { handle: EndpointHandle { info, tx: Arc::new(tx) }, thread })
    }

    /// A handle for connection tasks.
    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }

    /// Swaps in a new version of the plugin at the next event boundary;
    /// events queued meanwhile go to the new version, in order.
    pub async fn swap(&self, plugin: Arc<CompiledPlugin>) -> Result<SwapReport, SwapError> {
        let (done, outcome) = oneshot::channel();
        self.handle.tx.send(Event::Swap { plugin, done }).await.map_err(|_| SwapError::Gone)?;
        outcome.await.unwrap_or(Err(SwapError::Gone))
    }

    /// Removes the endpoint: closes every session with 1001 (each gets its
    /// `on-disconnected`) and waits until the last has ended.
    pub async fn retire(self) {
        self.stop(Event::Retire).await;
    }

    /// Ends every remaining session (`on-disconnected` for each), then stops
    /// the thread and waits for it.
    pub async fn shutdown(self) {
        self.stop(Event::Shutdown).await;
    }

    /// Sends the last event and waits for the thread to finish.
    async fn stop(self, last: Event) {
        let _ = self.handle.tx.send(last).await;
        let name = self.handle.info.name.clone();
        let joined = tokio::task::spawn_blocking(move || self.thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!(plugin = %name, "endpoint thread panicked");
        }
    }
}
