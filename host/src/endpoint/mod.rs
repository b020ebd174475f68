//! An endpoint: the plugin instances serving one route, each run as an
//! actor on a thread of its own.
//!
//! Connection tasks send [`Event`]s into their instance's bounded queue;
//! the instance's thread takes them in order and calls the plugin
//! synchronously (the cheapest way into wasm), and the plugin's writes go to
//! the sessions' outbound queues ([`crate::session`]) without blocking.
//! A plain session's task runs on its instance's thread too
//! ([`EndpointHandle::spawn`]), polled by the thread itself while no event
//! is queued, with its socket registered with the runtime the thread waits
//! in: its socket is read, its events handled and its replies
//! written by one thread, with no hand-over between threads per message (a
//! session over TLS stays on the server's runtime and hands over). A plugin
//! that loops stalls its own sessions, which wait for it anyway, and no
//! one else's.
//!
//! An endpoint runs `instances` of them (one by default). Each new session
//! is placed on one (by its first topic, so that a room's members share an
//! instance, else in turn) and stays there; each instance has its own store,
//! limits and trap recovery, and its own sessions. Topics are the
//! endpoint's: sizes and members are read from the directory they share,
//! and a fan-out reaches the other instances' sessions as a
//! [`Event::Deliver`] in their queues. A swap replaces every instance at an
//! event boundary, or none.
//!
//! - [`actor`]: the thread's event loop: dispatch, swap, retire.
//! - [`batch`]: queued client messages in one call, and a trap mid-batch.
//! - [`recovery`]: what a trap leads to: a fresh instance, or a back-off.
//! - [`queue`]: the endpoint's bounded event queue, the thread's runtime,
//!   and its batching policy.
//! - [`admission`]: who may connect (connection cap, back-off).
//! - [`event`]: what the instances' queues carry, and what a swap reports.
//! - [`versions`]: swaps and recycling.

mod actor;
mod admission;
mod batch;
mod event;
mod queue;
mod recovery;
mod versions;

pub use admission::{AdmissionControl, Admitted, Compressing, Refusal};
pub use event::{Event, SwapError, SwapReport};
pub use queue::NotQueued;

use crate::config::ServerConfig;
use crate::manifest::Limits;
use crate::metrics::RouteMetrics;
use crate::runtime::CompiledPlugin;
use crate::session::{Delivery, Directory, UpgradeDecision, UpgradeReject, UpgradeRequest, Uplink};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The endpoint's queue is gone (it has shut down).
#[derive(Debug, thiserror::Error)]
#[error("the endpoint is not running")]
pub struct EndpointGone;

/// A cheap, cloneable way to send events to an endpoint: to the instance a
/// session was placed on ([`place`](Self::place)), else to the first.
///
/// Two words: every session holds one (an idle session's memory).
#[derive(Clone)]
pub struct EndpointHandle {
    /// What every handle to the endpoint shares.
    parts: Arc<Parts>,
    /// The instance this handle sends to.
    instance: usize,
}

/// The endpoint as its handles see it.
struct Parts {
    /// The endpoint's admission control (and the plugin's name and limits).
    info: Arc<AdmissionControl>,
    /// Each instance's event queue.
    queues: Box<[Arc<queue::EventTx>]>,
    /// Each instance's runtime (on its thread), where its plain sessions'
    /// sockets and timers are registered.
    io: Box<[tokio::runtime::Handle]>,
    /// The endpoint's topics.
    directory: Arc<Directory>,
}

impl std::fmt::Debug for EndpointHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointHandle").field("name", &self.parts.info.name).finish_non_exhaustive()
    }
}

impl EndpointHandle {
    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.parts.info.name
    }

    /// The plugin's current limits.
    pub fn limits(&self) -> Arc<Limits> {
        self.parts.info.limits.load_full()
    }

    /// Connections admitted and not yet ended (its sessions).
    pub fn sessions(&self) -> usize {
        self.parts.info.connections.load(Ordering::Relaxed)
    }

    /// Whether the endpoint is backing off after repeated traps.
    pub fn backed_off(&self) -> bool {
        self.parts.info.backed_off()
    }

    /// Admits one more connection, unless the endpoint is full or backing
    /// off.
    pub fn admit(&self) -> Result<Admitted, Refusal> {
        self.parts.info.admit()
    }

    /// A place for one more compressed session, if fewer than `max` are.
    pub fn compress(&self, max: usize) -> Option<Compressing> {
        self.parts.info.compress(max)
    }

    /// The route's counters.
    pub fn metrics(&self) -> &RouteMetrics {
        &self.parts.info.metrics
    }

    /// Whether the plugin's upgrade hook must decide who connects.
    pub fn has_upgrade_hook(&self) -> bool {
        self.parts.info.upgrade_hook.load(Ordering::Acquire)
    }

    /// The endpoint's topics (what the cluster reports and is told).
    pub fn directory(&self) -> &Arc<Directory> {
        &self.parts.directory
    }

    /// Delivers a fan-out another node made to the sessions of every
    /// instance, without waiting (see [`actor`]'s forwarding); `false` if an
    /// instance's queue refused it.
    pub fn deliver_everywhere(&self, delivery: &Delivery) -> bool {
        let mut all = true;
        for queue in self.parts.queues.iter() {
            all &= queue.push_now(Event::Deliver(Box::new(delivery.clone())), queue.capacity() * actor::FORWARD_SLACK);
        }
        all
    }

    /// This handle, sending to `instance`.
    fn to_instance(&self, instance: usize) -> EndpointHandle {
        EndpointHandle { parts: self.parts.clone(), instance }
    }

    /// How many instances serve the endpoint.
    pub fn instances(&self) -> usize {
        self.parts.queues.len()
    }

    /// The handle a new session sends its events through: to the instance
    /// that serves the sessions of `key` (its first topic), or with no key
    /// to each instance in turn.
    pub fn place(&self, key: Option<&str>) -> EndpointHandle {
        let n = self.parts.queues.len();
        let instance = match key {
            _ if n == 1 => 0,
            Some(key) => {
                use std::hash::{BuildHasher, BuildHasherDefault};
                // Fixed keys (not randomized): a key's instance does not depend on the process.
                let hash = BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(key);
                (hash % n as u64) as usize
            }
            None => self.parts.info.next_instance.fetch_add(1, Ordering::Relaxed) % n,
        };
        self.to_instance(instance)
    }

    /// Asks the plugin's upgrade hook about `request` (in one instance,
    /// each in turn). An endpoint that went away answers 503.
    pub async fn upgrade(&self, request: UpgradeRequest) -> UpgradeDecision {
        let (reply, decision) = oneshot::channel();
        let gone = || {
            let body = "endpoint is not running\n".to_owned();
            UpgradeDecision::Reject(UpgradeReject { status: 503, headers: Vec::new(), body })
        };
        let instance = self.parts.info.next_upgrade.fetch_add(1, Ordering::Relaxed) % self.parts.queues.len();
        let hook = self.to_instance(instance);
        if hook.send(Event::Upgrade { request: Box::new(request), reply }).await.is_err() {
            return gone();
        }
        decision.await.unwrap_or_else(|_| gone())
    }

    /// Enters this handle's instance's runtime: a socket made meanwhile is
    /// registered with it (see [`spawn`](Self::spawn)).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.parts.io[self.instance].enter()
    }

    /// Runs `session` on this handle's instance's thread, beside its
    /// plugin: with its socket registered there ([`enter`](Self::enter)),
    /// its reads, its events and its replies never leave that thread.
    pub fn spawn<F>(&self, session: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.parts.queues[self.instance].spawn(session);
    }

    /// Queues an event for this handle's instance if its queue has room
    /// now; else hands it back, to wait with [`send`](Self::send).
    pub fn try_send(&self, event: Event) -> Result<(), NotQueued> {
        self.parts.queues[self.instance].try_send(event)
    }

    /// Queues an event for this handle's instance, waiting while its queue
    /// is full.
    pub fn send(&self, event: Event) -> impl Future<Output = Result<(), EndpointGone>> + Send + '_ {
        use futures_util::FutureExt;
        self.parts.queues[self.instance].send(event).map(|sent| sent.map_err(|_| EndpointGone))
    }
}

/// A running endpoint: the handle to its queues and its threads.
#[derive(Debug)]
pub struct Endpoint {
    /// What connection tasks and the supervisor send events through.
    handle: EndpointHandle,
    /// The actors' threads, joined when the endpoint stops.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    /// Instantiates `plugin` `instances` times (at most
    /// [`MAX_SHARDS`](crate::session::MAX_SHARDS)) and starts their threads;
    /// in a cluster, `cluster` is where its fan-outs go to the other nodes
    /// and the route they are for.
    /// Fails if a first instantiation fails (e.g. the component traps in its
    /// start function).
    pub fn start(
        plugin: &Arc<CompiledPlugin>,
        config: &ServerConfig,
        metrics: RouteMetrics,
        instances: usize,
        cluster: Option<(Uplink, Arc<str>)>,
    ) -> anyhow::Result<Self> {
        let instances = instances.clamp(1, crate::session::MAX_SHARDS);
        let mut queues = Vec::with_capacity(instances);
        let mut receivers = Vec::with_capacity(instances);
        for _ in 0..instances {
            let (tx, rx) = queue::channel(config.event_queue_capacity, queue::runtime()?);
            queues.push(Arc::new(tx));
            receivers.push(rx);
        }
        let io: Box<[tokio::runtime::Handle]> = receivers.iter().map(queue::EventRx::io).collect();
        let queues: Box<[Arc<queue::EventTx>]> = queues.into();
        let info = Arc::new(AdmissionControl {
            name: plugin.name.clone(),
            limits: arc_swap::ArcSwap::new(plugin.limits.clone()),
            connections: AtomicUsize::new(0),
            compressed: AtomicUsize::new(0),
            refusing_until: Mutex::new(None),
            upgrade_hook: AtomicBool::new(false),
            next_instance: AtomicUsize::new(0),
            next_upgrade: AtomicUsize::new(0),
            metrics,
        });
        let directory = Directory::clustered(instances, cluster);
        // Peers are held weakly: the queues end when the endpoint's handles do.
        let peers: Arc<[std::sync::Weak<queue::EventTx>]> = queues.iter().map(Arc::downgrade).collect();
        let mut actors = Vec::with_capacity(instances);
        for (shard, rx) in receivers.into_iter().enumerate() {
            let shared = actor::Shared { admission: info.clone(), directory: directory.clone(), peers: peers.clone() };

            actors.push(actor::Actor::new(plugin.clone(), shared, shard, rx)?);
        }
        let mut threads = Vec::with_capacity(instances);
        for actor in actors {
            let name = format!("wasock-ep-{}", info.name);
            threads.push(std::thread::Builder::new().name(name).spawn(move || actor.run())?);
        }
        let parts = Arc::new(Parts { info, queues, io, directory });
        Ok(Self { handle: EndpointHandle { parts, instance: 0 }, threads })
    }

    /// A handle for connection tasks.
    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }

    /// Swaps in a new version of the plugin at the next event boundary;
    /// events queued meanwhile go to the new version, in order. With several
    /// instances, each gets ready at its next event boundary (the new
    /// version started and restored beside the old) and waits until all
    /// are; then all switch, or, if one could not, none does.
    pub async fn swap(&self, plugin: Arc<CompiledPlugin>) -> Result<SwapReport, SwapError> {
        let queues = &self.handle.parts.queues;
        if queues.len() == 1 {
            let (done, outcome) = oneshot::channel();
            queues[0].send(Event::Swap { plugin, done, commit: None }).await.map_err(|_| SwapError::Gone)?;
            return outcome.await.unwrap_or(Err(SwapError::Gone));
        }
        // Dropping `commits` on an early return tells every waiting instance
        // to keep the old version.
        let (mut commits, mut outcomes) = (Vec::new(), Vec::new());
        for queue in queues.iter() {
            let (done, outcome) = oneshot::channel();
            let (commit, decision) = std::sync::mpsc::channel();
            let swap = Event::Swap { plugin: plugin.clone(), done, commit: Some(decision) };
            queue.send(swap).await.map_err(|_| SwapError::Gone)?;
            commits.push(commit);
            outcomes.push(outcome);
        }
        let mut total = SwapReport { sessions: 0, switch: std::time::Duration::ZERO };
        let mut failed = None;
        for outcome in outcomes {
            match outcome.await.unwrap_or(Err(SwapError::Gone)) {
                Ok(report) => {
                    total.sessions += report.sessions;
                    total.switch = total.switch.max(report.switch);
                }
                Err(err) => failed = failed.or(Some(err)),
            }
        }
        for commit in commits {
            let _ = commit.send(failed.is_none());
        }
        failed.map_or(Ok(total), Err)
    }

    /// Removes the endpoint: closes every session with 1001 (each gets its
    /// `on-disconnected`) and waits until the last has ended.
    pub async fn retire(self) {
        self.stop(|| Event::Retire).await;
    }

    /// Ends every remaining session (`on-disconnected` for each), then stops
    /// the thread and waits for it.
    pub async fn shutdown(self) {
        self.stop(|| Event::Shutdown).await;
    }

    /// Sends the last event to every instance and waits for their threads
    /// to finish.
    async fn stop(self, last: fn() -> Event) {
        for queue in self.handle.parts.queues.iter() {
            let _ = queue.send(last()).await;
        }
        let name = self.handle.parts.info.name.clone();
        for thread in self.threads {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!(plugin = %name, "endpoint thread panicked");
            }
        }
    }
}
