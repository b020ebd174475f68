//! An instance's thread: owns the plugin's store, takes events in order and
//! calls the plugin synchronously; swaps in new versions and retires the
//! endpoint at event boundaries, and hands the fan-outs its plugin made to
//! the endpoint's other instances.
//!
//! The session registry lives in the store ([`HostState`]), live or dead:
//! after a trap the dead store still holds it, and [`super::recovery`]
//! moves it into the fresh instance's store.

use super::queue::{EventRx, EventTx};
use super::recovery::TrapWindow;
use super::{AdmissionControl, Event};
use crate::log_limit::LogLimit;
use crate::runtime::{CompiledPlugin, Exports, HostState, arm_call};
use crate::session::{
    CloseCode, Directory, Forward, NewSession, SessionId, Sessions, UpgradeDecision, UpgradeReject, UpgradeRequest,
    Wakes, close_frame,
};
use std::sync::{Arc, Weak};
use std::time::Instant;
use wasmtime::Store;

/// A plugin instance's store and whether it can be called.
pub(super) struct Instance {
    /// The store; it holds the session registry even once dead.
    pub(super) store: Box<Store<HostState>>,
    /// The instance's state.
    pub(super) state: InstanceState,
}

/// Whether an instance can be called.
#[allow(clippy::large_enum_variant, reason = "one per instance, and it is live nearly always")]
pub(super) enum InstanceState {
    /// Running: its exports.
    Live(Exports),
    /// Trapped or backing off: no calls until `retry_at`, then a fresh
    /// instance.
    Down {
        /// When to try a fresh instance.
        retry_at: Instant,
    },
}

impl Instance {
    /// The sessions, whatever the instance's state.
    pub(super) fn sessions(&mut self) -> &mut Sessions {
        self.store.data_mut().sessions()
    }
}

/// What an endpoint's instances share.
pub(super) struct Shared {
    /// The endpoint's admission control, told about back-offs.
    pub(super) admission: Arc<AdmissionControl>,
    /// The endpoint's topics.
    pub(super) directory: Arc<Directory>,
    /// Every instance's queue, by shard.
    pub(super) peers: Arc<[Weak<EventTx>]>,
}

/// The actor's state.
pub(super) struct Actor {
    /// The version running.
    pub(super) plugin: Arc<CompiledPlugin>,
    /// The endpoint's admission control, told about back-offs.
    pub(super) admission: Arc<AdmissionControl>,
    /// The instance, live or down.
    pub(super) instance: Instance,
    /// The endpoint's events.
    pub(super) rx: EventRx,
    /// Recent traps, for the back-off decision.
    pub(super) traps: TrapWindow,
    /// The next trap is one already counted: the call replays a batch's
    /// message the last trap may have been in (`endpoint::batch`).
    pub(super) same_trap: bool,
    /// The endpoint is being removed: sessions are closing, and the actor
    /// stops once the last one has ended.
    retiring: bool,
    /// The live instance's memory once started, for `recycle-above-mib`.
    pub(super) memory_at_start: usize,
    /// Every instance's queue, for fan-outs to their sessions.
    peers: Arc<[Weak<EventTx>]>,
}

/// Fan-outs another instance's queue refused are logged at most once a
/// second.
static FORWARD_REFUSED: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

/// How many times its capacity an instance's queue may hold of fan-outs
/// forwarded by the others before it refuses more (they never wait).
pub(super) const FORWARD_SLACK: usize = 4;

/// Upgrade answers the host cannot honour are logged at most once a second.
static BAD_UPGRADE: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

/// The message a panic carries, if it is text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

/// What the endpoint thread does at each flush point: the full-queue
/// policy's timers; then the wake-ups of every connection written to, and
/// when it is due again.
fn at_flush(sessions: &mut Sessions, now: Instant) -> (Wakes, Option<Instant>) {
    sessions.police(now);
    (sessions.take_wakes(), sessions.next_deadline())
}

impl Actor {
    /// Makes the first instance of shard `shard`; fails if it cannot be
    /// made.
    pub(super) fn new(plugin: Arc<CompiledPlugin>, shared: Shared, shard: usize, rx: EventRx) -> anyhow::Result<Self> {
        let Shared { admission, directory, peers } = shared;
        let mut sessions = Sessions::sharded(plugin.name.clone(), &plugin.limits, directory, shard);
        sessions.set_metrics(admission.metrics.clone());
        let mut store = plugin.store(sessions);
        let exports = plugin.start(&mut store).map_err(|e| anyhow::anyhow!("instantiation failed: {e:#}"))?;
        admission.set_upgrade_hook(plugin.has_upgrade_hook());
        Ok(Self {
            memory_at_start: store.data().memory_bytes(),
            instance: Instance { store: Box::new(store), state: InstanceState::Live(exports) },
            traps: TrapWindow::default(),
            same_trap: false,
            plugin,
            admission,
            rx,
            retiring: false,
            peers,
        })
    }

    /// Handles events until told to shut down, retired with no session
    /// left, or every sender is gone.
    pub(super) fn run(mut self) {
        let span = tracing::info_span!("endpoint", plugin = %self.plugin.name);
        let _entered = span.enter();
        while let Some(event) = self.rx.next_batched(|now| at_flush(self.instance.sessions(), now)) {
            match event {
                Event::Shutdown => break,
                Event::Swap { plugin, done, commit } => self.swap(plugin, done, commit),
                Event::Retire => self.retire(),
                Event::Deliver(delivery) => self.sessions().deliver(&delivery),
                event @ (Event::Text { .. } | Event::Binary { .. }) => self.message(event),
                event => self.handle(event),
            }
            self.forward();
            if self.grown_too_far() && self.rx.is_idle() {
                self.recycle();
            }
            if self.retiring && self.sessions().is_empty() {
                tracing::info!("endpoint removed");
                self.sessions().flush_wakes();
                return;
            }
        }
        self.end_all();
        self.sessions().flush_wakes();
    }

    /// A down instance is retried before the next event once its back-off
    /// is over, so that a fresh instance's `restore` covers only the
    /// sessions that came before.
    pub(super) fn retry_if_due(&mut self) {
        if let InstanceState::Down { retry_at } = &self.instance.state
            && Instant::now() >= *retry_at
        {
            self.restart();
        }
    }

    pub(super) fn handle(&mut self, event: Event) {
        self.retry_if_due();
        match event {
            Event::Upgrade { request, reply } => {
                let _ = reply.send(self.upgrade(&request));
            }
            Event::Connected(session) => self.connect(*session),
            Event::Text { id, text } => {
                if let Some(rep) = self.sessions().receive(id) {
                    self.call("handle-text", Some(id), |e, s| e.handle_text(s, rep, &text));
                }
            }
            Event::Binary { id, data } => {
                if let Some(rep) = self.sessions().receive(id) {
                    self.call("handle-binary", Some(id), |e, s| e.handle_binary(s, rep, &data));
                }
            }
            Event::Pong { id, data } => {
                if let Some(rep) = self.sessions().receive(id) {
                    self.call("on-pong", Some(id), |e, s| e.on_pong(s, rep, &data));
                }
            }
            Event::Drain { id } => {
                if self.sessions().is_open(id)
                    && let Some(rep) = self.sessions().borrow_rep(id)
                {
                    self.call("on-drain", Some(id), |e, s| e.on_drain(s, rep));
                }
            }
            Event::Disconnected { id } => self.disconnect(id),
            Event::Shutdown | Event::Swap { .. } | Event::Retire | Event::Deliver(_) => {}
        }
    }

    /// Registers a new session and tells the plugin, unless the endpoint is
    /// being removed.
    fn connect(&mut self, session: NewSession) {
        let id = session.id;
        if self.retiring {
            self.sessions().refuse(session, close_frame(CloseCode::Away, "plugin removed"));
            tracing::debug!(session = id, "refused: endpoint is being removed");
            return;
        }
        let rep = self.sessions().insert(session);
        self.call("on-connected", Some(id), |e, s| e.on_connected(s, rep));
    }

    /// Asks the plugin's upgrade hook, and checks its answer. A trap, an
    /// overrun, an answer the host cannot honour, or no instance to ask
    /// answers with an error status; nothing is registered either way.
    fn upgrade(&mut self, request: &UpgradeRequest) -> UpgradeDecision {
        let mut decision = None;
        self.call("on-upgrade", None, |e, s| {
            decision = Some(e.on_upgrade(s, request)?);
            Ok(())
        });
        let Some(decision) = decision else {
            let live = matches!(self.instance.state, InstanceState::Live(_));
            return UpgradeDecision::Reject(if live {
                UpgradeReject::internal()
            } else {
                UpgradeReject::unavailable()
            });
        };
        match decision.check(request, &self.plugin.limits) {
            Ok(()) => decision,
            Err(problem) => {
                if let Some(held_back) = BAD_UPGRADE.allow() {
                    tracing::warn!(
                        held_back,
                        "upgrade hook answered what the host cannot honour ({problem}); answering 500"
                    );
                }
                UpgradeDecision::Reject(UpgradeReject::internal())
            }
        }
    }

    /// Closes every session with 1001; the actor ends with the last one.
    fn retire(&mut self) {
        self.retiring = true;
        self.sessions().close_all(&close_frame(CloseCode::Away, "plugin removed"));
    }

    /// Hands the fan-outs of the last event to the other instances, in
    /// order. A queue that refuses (far past its capacity) loses them for
    /// its sessions: fan-out is best effort, as a full session queue is.
    fn forward(&mut self) {
        let sessions = self.instance.store.data_mut().sessions();
        if !sessions.has_forwards() {
            return;
        }
        for Forward { mut shards, delivery } in sessions.take_forwards() {
            while shards != 0 {
                let shard = shards.trailing_zeros() as usize;
                shards &= shards - 1;
                let Some(peer) = self.peers.get(shard).and_then(Weak::upgrade) else { continue };
                let limit = peer.capacity() * FORWARD_SLACK;
                if !peer.push_now(super::Event::Deliver(Box::new(delivery.clone())), limit)
                    && let Some(held_back) = FORWARD_REFUSED.allow()
                {
                    tracing::warn!(
                        held_back,
                        instance = shard,
                        "an instance's queue is full; a fan-out skipped its sessions"
                    );
                }
            }
        }
    }

    /// Calls `on-disconnected` for a live session (out of its topics
    /// already), then forgets it.
    fn disconnect(&mut self, id: SessionId) {
        if let Some(rep) = self.sessions().borrow_rep(id) {
            self.sessions().leave_topics(id);
            self.call("on-disconnected", Some(id), |e, s| e.on_disconnected(s, rep));
            self.sessions().remove(id);
        }
    }

    /// Server shutdown: every session still registered ends here.
    fn end_all(&mut self) {
        for id in self.sessions().ids() {
            self.disconnect(id);
        }
    }

    pub(super) fn sessions(&mut self) -> &mut Sessions {
        self.instance.sessions()
    }

    /// Calls into the plugin under the call deadline; on a trap, replaces
    /// the instance. Without an instance (backing off), does nothing.
    #[tracing::instrument(level = "debug", name = "call", skip(self, f))]
    pub(super) fn call(
        &mut self,
        handler: &'static str,
        session: Option<SessionId>,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<()>,
    ) {
        let Some((outcome, started)) = self.enter(f) else {
            return;
        };
        self.admission.metrics.call(handler).observe(started.elapsed().as_secs_f64());
        if let Err(err) = outcome {
            self.trapped(handler, session, None, &err);
        }
    }

    /// Runs `f` on the live instance under the call deadline: its outcome
    /// (a host panic becomes an error) and when it started; `None` without
    /// a live instance.
    pub(super) fn enter(
        &mut self,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<()>,
    ) -> Option<(wasmtime::Result<()>, Instant)> {
        let InstanceState::Live(exports) = &self.instance.state else {
            return None;
        };
        let store = &mut *self.instance.store;
        let started = Instant::now();
        let call = arm_call(store, started);
        // A panic in host code during the call (a bug, or a resource the
        // host could not get) must not end the endpoint's thread: like a
        // trap, it costs the instance, and the sessions stay.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(exports, store))).unwrap_or_else(|panic| {
                Err(wasmtime::format_err!("the host panicked during the call: {}", panic_message(&*panic)))
            });
        drop(call);
        Some((outcome, started))
    }
}
