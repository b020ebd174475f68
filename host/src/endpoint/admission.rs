//! Who may connect to an endpoint: its connection cap, the compressed
//! sessions it allows, and the back-off after repeated traps. Shared by the
//! network side (which admits) and the endpoint's instances (which back
//! off).

use crate::manifest::Limits;
use crate::metrics::RouteMetrics;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Who may connect to an endpoint: its connection cap and back-off, shared
/// by the network side (which admits) and the actor (which backs off).
#[derive(Debug)]
pub struct AdmissionControl {
    /// The plugin's name.
    pub name: Arc<str>,
    /// The plugin's limits (replaced when a new version is swapped in).
    pub(super) limits: arc_swap::ArcSwap<Limits>,
    /// Connections admitted and not yet ended.
    pub(super) connections: AtomicUsize,
    /// Of those, the compressed ones (each holds deflate contexts).
    pub(super) compressed: AtomicUsize,
    /// While the endpoint backs off after repeated traps: until when.
    pub(super) refusing_until: Mutex<Option<Instant>>,
    /// Whether the running version has an upgrade hook: without one, the
    /// handshake does not wait for the endpoint's thread.
    pub(super) upgrade_hook: AtomicBool,
    /// Turns through the instances for new sessions without a topic.
    pub(super) next_instance: AtomicUsize,
    /// Turns through the instances for upgrade hook calls.
    pub(super) next_upgrade: AtomicUsize,
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

    /// Whether the endpoint is backing off after repeated traps.
    pub(super) fn backed_off(&self) -> bool {
        let until = self.refusing_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Admits one more connection, unless the endpoint is full or backing
    /// off.
    pub(super) fn admit(self: &Arc<Self>) -> Result<Admitted, Refusal> {
        {
            let mut until = self.refusing_until.lock().unwrap_or_else(|e| e.into_inner());
            match *until {
                Some(t) if Instant::now() < t => return Err(Refusal::BackingOff),
                Some(_) => *until = None,
                None => {}
            }
        }
        let max = self.limits.load().max_connections;
        let admitted =
            self.connections.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1));
        match admitted {
            Ok(_) => Ok(Admitted(self.clone())),
            Err(_) => Err(Refusal::Full),
        }
    }

    /// A place for one more compressed session, if fewer than `max` are.
    pub(super) fn compress(self: &Arc<Self>, max: usize) -> Option<Compressing> {
        let counted =
            self.compressed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1));
        counted.ok().map(|_| Compressing(self.clone()))
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
