//! What a trap leads to.
//!
//! A trap (a panic, `unreachable`, a deadline hit, memory exhaustion, a stack
//! overflow) kills the whole store, so the actor discards it, keeps the
//! session registry and starts a fresh instance from the precompiled plugin;
//! a plugin with the `lifecycle` export is handed the live sessions through
//! `restore`. Connected clients stay connected. A plugin that traps
//! `max-traps` times within `trap-window-secs` is backed off instead of
//! restarted in a loop: its sessions are closed with 1011 and the endpoint
//! refuses connections (503) for `backoff-secs`, then starts afresh.

use super::actor::{Actor, Instance, InstanceState};
use crate::runtime::{Exports, HostState, arm_call};
use crate::session::{CloseCode, SessionId, Sessions, close_frame};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap};

/// How long an endpoint whose instance could not be made waits to retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When recent traps happened, oldest first.
#[derive(Debug, Default)]
pub(super) struct TrapWindow(VecDeque<Instant>);

impl TrapWindow {
    /// Counts a trap at `now`, forgets those older than `window`, and
    /// returns how many are left.
    fn record(&mut self, now: Instant, window: Duration) -> usize {
        self.0.push_back(now);
        while self.0.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.0.pop_front();
        }
        self.0.len()
    }

    /// How many traps are counted now.
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Forgets every trap (a new version, or a back-off, starts afresh).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

impl Actor {
    /// Logs the trap in `handler` for `session` (or in the next message of
    /// a batch, from `or_next`), then restarts or backs off.
    pub(super) fn trapped(
        &mut self,
        handler: &str,
        session: Option<SessionId>,
        or_next: Option<SessionId>,
        err: &wasmtime::Error,
    ) {
        let limits = self.plugin.limits.clone();
        let cause = cause(err, limits.call_deadline_ms, limits.memory_mib);
        self.admission.metrics.trapped(kind(err));
        let now = Instant::now();
        let window = Duration::from_secs(limits.trap_window_secs);
        // A batch's message replayed to find the trap that could have been
        // its own: one fault, one count towards the back-off.
        let traps = if std::mem::take(&mut self.same_trap) { self.traps.len() } else { self.traps.record(now, window) };
        let (error, plugin) = (format!("{err:#}"), &self.plugin.name);
        // The trap line stands alone (no endpoint span around it): it names
        // the plugin, the handler and the session itself, in that order.
        if traps >= limits.max_traps as usize {
            let backoff = Duration::from_secs(limits.backoff_secs);
            tracing::error!(
                parent: None, plugin = %plugin, handler, session, or_next, cause = kind(err), error,
                "plugin {cause}; {traps} traps within {window:?}: closing its sessions with 1011 and refusing connections for {backoff:?}"
            );
            self.traps.clear();
            self.back_off(backoff);
        } else {
            tracing::error!(
                parent: None, plugin = %plugin, handler, session, or_next, cause = kind(err), error,
                "plugin {cause}; discarding the instance and starting a fresh one"
            );
            self.restart();
        }
    }

    /// Closes every session with 1011 and refuses connections for `backoff`.
    fn back_off(&mut self, backoff: Duration) {
        // Refuse first: a client told of the close must not get back in.
        let retry_at = Instant::now() + backoff;
        self.admission.metrics.backoffs.inc();
        self.admission.refuse_until(retry_at);
        self.sessions().close_all(&close_frame(CloseCode::Error, "plugin keeps crashing"));
        self.instance.state = InstanceState::Down { retry_at };
    }

    /// Replaces a dead instance with a fresh one from the compiled plugin,
    /// moving the sessions over, and hands it the live sessions.
    pub(super) fn restart(&mut self) {
        // The dead store keeps an empty registry; it goes with the store.
        let empty = Sessions::new(self.plugin.name.clone(), &self.plugin.limits);
        let mut sessions = std::mem::replace(self.sessions(), empty);
        sessions.reset_handles();
        let mut store = self.plugin.store(sessions);
        match self.plugin.start(&mut store) {
            Ok(exports) => {
                tracing::info!(sessions = store.data_mut().sessions().len(), "fresh plugin instance started");
                self.memory_at_start = store.data().memory_bytes();
                self.instance = Instance { store: Box::new(store), state: InstanceState::Live(exports) };
                self.restore();
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "cannot start a fresh plugin instance; retrying in {RETRY_AFTER:?}"
                );
                let retry_at = Instant::now() + RETRY_AFTER;
                self.instance = Instance { store: Box::new(store), state: InstanceState::Down { retry_at } };
            }
        }
    }

    /// Tells a fresh instance about the live sessions, if it wants to know.
    fn restore(&mut self) {
        let InstanceState::Live(exports) = &self.instance.state else {
            return;
        };
        if let Err(err) = call_restore(&mut self.instance.store, exports, None) {
            self.trapped("restore", None, None, &err);
        }
    }
}

/// What a trap was, as the `cause` label of `wasock_traps_total`.
fn kind(err: &wasmtime::Error) -> &'static str {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "deadline",
        Some(_) => "trap",
        None if err.root_cause().to_string().contains("growing memory") => "memory",
        None => "trap",
    }
}

/// What a trap was, in words, for the log.
fn cause(err: &wasmtime::Error, deadline_ms: u64, memory_mib: u32) -> String {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("exceeded its {deadline_ms} ms call deadline"),
        Some(Trap::StackOverflow) => "overflowed its stack".to_owned(),
        Some(trap) => format!("trapped: {trap}"),
        None => match err.root_cause().to_string() {
            root if root.contains("growing memory") => format!("hit its {memory_mib} MiB memory limit ({root})"),
            root => format!("failed: {root}"),
        },
    }
}

/// Calls `restore` on an instance with `lifecycle`, handing it an owned
/// handle to every live session, unless there is nothing to restore.
pub(super) fn call_restore(
    store: &mut Store<HostState>,
    exports: &Exports,
    state: Option<&[u8]>,
) -> wasmtime::Result<()> {
    if !exports.has_lifecycle() {
        return Ok(());
    }
    let sessions = store.data_mut().sessions();
    if sessions.is_empty() && state.is_none() {
        return Ok(());
    }
    let reps: Vec<u32> = sessions.ids().into_iter().filter_map(|id| sessions.lookup(id)).collect();
    let _call = arm_call(store, Instant::now());
    exports.restore(store, &reps, state)
}
