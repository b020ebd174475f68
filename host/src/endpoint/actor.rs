//! The endpoint's thread: owns the plugin's store, takes events in order and
//! calls the plugin synchronously.
//!
//! A trap (a panic, `unreachable`, a deadline hit, memory exhaustion, a stack
//! overflow) kills the whole store, so the actor discards it, keeps the
//! session registry and starts a fresh instance from the precompiled plugin;
//! a plugin with the `lifecycle` export is handed the live sessions through
//! `restore`. Connected clients stay connected. A plugin that traps
//! `max-traps` times within `trap-window-secs` is backed off instead of
//! restarted in a loop: its sessions are closed with 1011 and the endpoint
//! refuses connections (503) for `backoff-secs`, then starts afresh.

use super::queue::{EventRx, TryRecvError};
use super::{EndpointInfo, Event, SessionId, Sessions, SwapError, SwapReport};
use crate::runtime::{CompiledPlugin, Exports, HostState, deadline_ticks};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Resource;
use wasmtime::{Store, Trap};

/// How often an idle endpoint thread yields before it sleeps.
const SPIN_YIELDS: u32 = 32;

/// Most events handled before the connections they answered are woken.
const WAKE_BATCH: u32 = 64;

/// Longest a reply waits for its connection to be woken under load (checked
/// every [`CLOCK_EVERY`] events).
const WAKE_AFTER: Duration = Duration::from_millis(1);

/// How many events pass between looks at the clock for [`WAKE_AFTER`].
const CLOCK_EVERY: u32 = 4;

/// How long an endpoint whose instance could not be made waits to retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The plugin instance, or just the sessions while there is none.
enum Slot {
    Live(Box<Store<HostState>>, Exports),
    Down { sessions: Sessions, retry_at: Instant },
}

/// The actor's state.
pub(super) struct Actor {
    plugin: Arc<CompiledPlugin>,
    info: Arc<EndpointInfo>,
    slot: Slot,
    rx: EventRx,
    deadline: u64,
    /// When recent traps happened, oldest first, within the trap window.
    traps: VecDeque<Instant>,
    /// The endpoint is being removed: sessions are closing, and the actor
    /// stops once the last one has ended.
    retiring: bool,
    /// Events handled since connection tasks were last woken.
    since_wake: u32,
    /// When connection tasks were last woken.
    woken_at: Instant,
}

impl Actor {
    /// Makes the first instance; fails if it cannot be made.
    pub(super) fn new(
        plugin: Arc<CompiledPlugin>,
        info: Arc<EndpointInfo>,
        rx: EventRx,
    ) -> anyhow::Result<Self> {
        let sessions = Sessions::new(plugin.name.clone(), &plugin.limits);
        let (store, exports) = plugin
            .instantiate(sessions)
            .map_err(|(e, _)| anyhow::anyhow!("plugin `{}`: instantiation failed: {e:#}", plugin.name))?;
        Ok(Self {
            deadline: deadline_ticks(plugin.limits.call_deadline()),
            plugin,
            info,
            slot: Slot::Live(Box::new(store), exports),
            rx,
            traps: VecDeque::new(),
            retiring: false,
            since_wake: 0,
            woken_at: Instant::now(),
        })
    }

    /// Handles events until told to shut down, retired with no session
    /// left, or every sender is gone.
    pub(super) fn run(mut self) {
        super::outbound::defer_wakes();
        while let Some(event) = self.next_event() {
            match event {
                Event::Shutdown => break,
                Event::Swap { plugin, done } => {
                    let _ = done.send(self.swap(plugin));
                }
                Event::Retire => self.retire(),
                event => self.handle(event),
            }
            if self.retiring && self.sessions().is_empty() {
                tracing::info!(plugin = %self.plugin.name, "endpoint removed");
                super::outbound::wake_deferred();
                return;
            }
        }
        self.end_all();
        super::outbound::wake_deferred();
    }

    /// The next event. When the queue is empty the thread yields the CPU a
    /// few times before it sleeps: connection tasks that run meanwhile (on
    /// this core, when the server has one) queue their events without
    /// having to wake it, so the thread takes them as one batch instead of
    /// a wake-up and two context switches per message.
    ///
    /// Replies wake their connection tasks when the queue runs dry, or under
    /// constant load every [`WAKE_BATCH`] events or [`WAKE_AFTER`] (a slow
    /// plugin's replies do not wait for a whole batch), once per connection.
    fn next_event(&mut self) -> Option<Event> {
        self.since_wake += 1;
        // The clock is read every few events only: it costs as much as
        // queueing an event.
        let fresh = self.since_wake < WAKE_BATCH
            && (!self.since_wake.is_multiple_of(CLOCK_EVERY) || self.woken_at.elapsed() < WAKE_AFTER);
        if fresh {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
        }
        self.since_wake = 0;
        self.woken_at = Instant::now();
        super::outbound::wake_deferred();
        for _ in 0..SPIN_YIELDS {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
        self.rx.blocking_recv()
    }

    fn handle(&mut self, event: Event) {
        // A down instance is retried before the event, so that a fresh
        // instance's `restore` covers only the sessions that came before.
        if let Slot::Down { retry_at, .. } = &self.slot
            && Instant::now() >= *retry_at
        {
            self.restart();
        }
        match event {
            Event::Connected { id, out, .. } if self.retiring => {
                let _ = out.send_control(tokio_tungstenite::tungstenite::Message::Close(Some(
                    super::close_frame(Some(1001), "plugin removed"),
                )));
                tracing::debug!(session = id, "refused: endpoint is being removed");
            }
            Event::Connected { id, path, query, out } => {
                let rep = self.sessions().insert(id, path, query, out);
                self.call("on-connected", id, |e, s| {
                    e.handler.call_on_connected(s, Resource::new_own(rep))
                });
            }
            Event::Text { id, text } => {
                if let Some(rep) = self.sessions().event_done(id) {
                    self.call("handle-text", id, |e, s| {
                        e.handler.call_handle_text(s, Resource::new_borrow(rep), &text)
                    });
                }
            }
            Event::Binary { id, data } => {
                if let Some(rep) = self.sessions().event_done(id) {
                    self.call("handle-binary", id, |e, s| {
                        e.handler.call_handle_binary(s, Resource::new_borrow(rep), &data)
                    });
                }
            }
            Event::Pong { id, data } => {
                if let Some(rep) = self.sessions().event_done(id) {
                    self.call("on-pong", id, |e, s| {
                        e.handler.call_on_pong(s, Resource::new_borrow(rep), &data)
                    });
                }
            }
            Event::Disconnected { id } => self.disconnect(id),
            Event::Shutdown | Event::Swap { .. } | Event::Retire => {}
        }
    }

    /// Closes every session with 1001; the actor ends with the last one.
    fn retire(&mut self) {
        self.retiring = true;
        let sessions = self.sessions();
        for id in sessions.ids() {
            sessions.close(id, Some(1001), "plugin removed");
        }
    }

    /// Replaces the running version with `new` at this event boundary: the
    /// old instance's `snapshot` goes to the new one's `restore` with the
    /// live sessions. If the new version cannot start or traps in
    /// `restore`, the old one keeps serving, untouched.
    fn swap(&mut self, new: Arc<CompiledPlugin>) -> Result<SwapReport, SwapError> {
        let started = Instant::now();
        let state = self.snapshot();
        let sessions = self.sessions().fork(new.name.clone(), &new.limits);
        let (mut store, exports) = new
            .instantiate(sessions)
            .map_err(|(e, _)| SwapError::Start(format!("{e:#}")))?;
        let deadline = deadline_ticks(new.limits.call_deadline());
        restore(&mut store, &exports, state, deadline).map_err(|e| SwapError::Restore(format!("{e:#}")))?;
        let sessions = store.data().sessions.len();
        self.slot = Slot::Live(Box::new(store), exports);
        self.plugin = new;
        self.deadline = deadline;
        self.traps.clear();
        self.info.replace_limits(self.plugin.limits.clone());
        self.info.stop_refusing();
        Ok(SwapReport { sessions, switch: started.elapsed() })
    }

    /// The running instance's state for its successor; `None` if it has no
    /// `lifecycle` export, is down, or traps while taking the snapshot.
    fn snapshot(&mut self) -> Option<Vec<u8>> {
        let Slot::Live(store, exports) = &mut self.slot else {
            return None;
        };
        let lifecycle = exports.lifecycle.as_ref()?;
        store.set_epoch_deadline(self.deadline);
        match lifecycle.call_snapshot(&mut **store) {
            Ok(state) => Some(state),
            Err(err) => {
                tracing::error!(plugin = %self.plugin.name, error = format!("{err:#}"), "snapshot trapped; the new version starts without the old state");
                let sessions = self.take_sessions();
                self.slot = Slot::Down { sessions, retry_at: Instant::now() };
                None
            }
        }
    }

    /// Calls `on-disconnected` for a live session, then forgets it.
    fn disconnect(&mut self, id: SessionId) {
        if let Some(rep) = self.sessions().borrow_rep(id) {
            self.call("on-disconnected", id, |e, s| {
                e.handler.call_on_disconnected(s, Resource::new_borrow(rep))
            });
            self.sessions().remove(id);
        }
    }

    /// Server shutdown: every session still registered ends here.
    fn end_all(&mut self) {
        for id in self.sessions().ids() {
            self.disconnect(id);
        }
    }

    fn sessions(&mut self) -> &mut Sessions {
        match &mut self.slot {
            Slot::Live(store, _) => &mut store.data_mut().sessions,
            Slot::Down { sessions, .. } => sessions,
        }
    }

    /// Calls into the plugin under the call deadline; on a trap, replaces
    /// the instance. Without an instance (backing off), does nothing.
    fn call(
        &mut self,
        handler: &'static str,
        session: SessionId,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<()>,
    ) {
        let Slot::Live(store, exports) = &mut self.slot else {
            return;
        };
        store.set_epoch_deadline(self.deadline);
        if let Err(err) = f(exports, store) {
            self.trapped(handler, Some(session), &err);
        }
    }

    /// Logs the trap, then restarts or backs off.
    fn trapped(&mut self, handler: &str, session: Option<SessionId>, err: &wasmtime::Error) {
        let limits = self.plugin.limits.clone();
        let cause = match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!("exceeded its {} ms call deadline", limits.call_deadline_ms),
            Some(Trap::StackOverflow) => "overflowed its stack".to_owned(),
            Some(trap) => format!("trapped: {trap}"),
            None => match err.root_cause().to_string() {
                root if root.contains("growing memory") => {
                    format!("hit its {} MiB memory limit ({root})", limits.memory_mib)
                }
                root => format!("failed: {root}"),
            },
        };
        let now = Instant::now();
        let window = Duration::from_secs(limits.trap_window_secs);
        self.traps.push_back(now);
        while self.traps.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.traps.pop_front();
        }
        let sessions = self.take_sessions();
        if self.traps.len() >= limits.max_traps as usize {
            let backoff = Duration::from_secs(limits.backoff_secs);
            tracing::error!(
                plugin = %self.plugin.name, handler, session, error = format!("{err:#}"),
                "plugin {cause}; {} traps within {window:?}: closing its sessions with 1011 and refusing connections for {backoff:?}",
                self.traps.len()
            );
            self.traps.clear();
            self.back_off(sessions, backoff);
        } else {
            tracing::error!(
                plugin = %self.plugin.name, handler, session, error = format!("{err:#}"),
                "plugin {cause}; discarding the instance and starting a fresh one"
            );
            self.slot = Slot::Down { sessions, retry_at: now };
            self.restart();
        }
    }

    /// Closes every session with 1011 and refuses connections for `backoff`.
    fn back_off(&mut self, mut sessions: Sessions, backoff: Duration) {
        // Refuse first: a client told of the close must not get back in.
        let retry_at = Instant::now() + backoff;
        self.info.refuse_until(retry_at);
        for id in sessions.ids() {
            sessions.close(id, Some(1011), "plugin keeps crashing");
        }
        self.slot = Slot::Down { sessions, retry_at };
    }

    fn take_sessions(&mut self) -> Sessions {
        let placeholder = Slot::Down {
            sessions: Sessions::new(self.plugin.name.clone(), &self.plugin.limits),
            retry_at: Instant::now(),
        };
        match std::mem::replace(&mut self.slot, placeholder) {
            Slot::Live(store, _) => store.into_data().into_sessions(),
            Slot::Down { sessions, .. } => sessions,
        }
    }

    /// Replaces a dead instance with a fresh one from the compiled plugin and
    /// hands it the live sessions.
    fn restart(&mut self) {
        let mut sessions = self.take_sessions();
        sessions.reset_handles();
        match self.plugin.instantiate(sessions) {
            Ok((store, exports)) => {
                self.slot = Slot::Live(Box::new(store), exports);
                let live = self.sessions().len();
                tracing::info!(plugin = %self.plugin.name, sessions = live, "fresh plugin instance started");
                self.restore(None);
            }
            Err((err, sessions)) => {
                tracing::error!(plugin = %self.plugin.name, error = format!("{err:#}"), "cannot start a fresh plugin instance; retrying in {RETRY_AFTER:?}");
                self.slot = Slot::Down {
                    sessions,
                    retry_at: Instant::now() + RETRY_AFTER,
                };
            }
        }
    }

    /// Tells a fresh instance about the live sessions, if it wants to know.
    fn restore(&mut self, state: Option<Vec<u8>>) {
        let Slot::Live(store, exports) = &mut self.slot else {
            return;
        };
        if let Err(err) = restore(store, exports, state, self.deadline) {
            self.trapped("restore", None, &err);
        }
    }
}

/// Calls `restore` on an instance with `lifecycle`, handing it an owned
/// handle to every live session, unless there is nothing to restore.
fn restore(
    store: &mut Store<HostState>,
    exports: &Exports,
    state: Option<Vec<u8>>,
    deadline: u64,
) -> wasmtime::Result<()> {
    let Some(lifecycle) = &exports.lifecycle else {
        return Ok(());
    };
    let sessions = &mut store.data_mut().sessions;
    if sessions.is_empty() && state.is_none() {
        return Ok(());
    }
    let handles: Vec<_> = sessions
        .ids()
        .into_iter()
        .filter_map(|id| sessions.open(id).map(Resource::new_own))
        .collect();
    store.set_epoch_deadline(deadline);
    lifecycle.call_restore(store, &handles, state.as_deref())
}
