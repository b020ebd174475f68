//! Versions of an instance: swapping in a new one at an event boundary
//! (alone, or with the endpoint's other instances: ready, then all switch or
//! none), and recycling one whose memory grew too far. Either way the fresh
//! instance gets a copy of the live sessions and the old one's `snapshot`.

use super::actor::{Actor, Instance, InstanceState};
use super::{SwapError, SwapReport};
use crate::runtime::{CompiledPlugin, arm_call};
use std::sync::Arc;
use std::time::Instant;

impl Actor {
    /// Replaces the running version with `new` at this event boundary: the
    /// old instance's `snapshot` goes to the new one's `restore` with the
    /// live sessions. If the new version cannot start or traps in
    /// `restore`, the old one keeps serving, untouched. With `commit` (an
    /// endpoint of several instances), the new instance is made and
    /// reported ready, and put in service only if `commit` says so.
    pub(super) fn swap(
        &mut self,
        new: Arc<CompiledPlugin>,
        done: tokio::sync::oneshot::Sender<Result<SwapReport, SwapError>>,
        commit: Option<std::sync::mpsc::Receiver<bool>>,
    ) {
        let started = Instant::now();
        let fresh = match self.fresh_instance(&new) {
            Ok(fresh) => fresh,
            Err(err) => {
                let _ = done.send(Err(err));
                return;
            }
        };
        let report = SwapReport { sessions: self.sessions().len(), switch: started.elapsed() };
        match commit {
            None => {
                self.put_in_service(new, fresh);
                let _ = done.send(Ok(report));
            }
            Some(commit) => {
                let _ = done.send(Ok(report));
                // Blocks this instance only, for as long as the others take
                // to get ready: none of them waits for this one.
                if commit.recv() == Ok(true) {
                    self.put_in_service(new, fresh);
                }
            }
        }
    }

    /// Makes `fresh` (of version `new`) the running instance.
    fn put_in_service(&mut self, new: Arc<CompiledPlugin>, fresh: Instance) {
        self.install(fresh);
        self.plugin = new;
        self.admission.set_upgrade_hook(self.plugin.has_upgrade_hook());
        self.traps.clear();
        self.admission.replace_limits(self.plugin.limits.clone());
        self.admission.stop_refusing();
    }

    /// A fresh instance of `plugin` in place of the running one, handed the
    /// live sessions and the old one's `snapshot`.
    fn replace_instance(&mut self, plugin: &CompiledPlugin) -> Result<(), SwapError> {
        let fresh = self.fresh_instance(plugin)?;
        self.install(fresh);
        Ok(())
    }

    /// A new instance of `plugin` beside the running one, handed a copy of
    /// the live sessions and the running one's `snapshot`.
    fn fresh_instance(&mut self, plugin: &CompiledPlugin) -> Result<Instance, SwapError> {
        let state = self.snapshot();
        let mut store = plugin.store(self.sessions().fork(plugin.name.clone(), &plugin.limits));
        let exports = plugin.start(&mut store).map_err(SwapError::Start)?;
        super::recovery::call_restore(&mut store, &exports, state.as_deref()).map_err(SwapError::Restore)?;
        Ok(Instance { store: Box::new(store), state: InstanceState::Live(exports) })
    }

    /// Makes `fresh` the running instance.
    fn install(&mut self, fresh: Instance) {
        self.memory_at_start = fresh.store.data().memory_bytes();
        // The old store goes: its pending wake-ups are flushed as it drops.
        self.instance = fresh;
    }

    /// Whether the live instance's memory has grown `recycle-above-mib` past
    /// its size after start.
    pub(super) fn grown_too_far(&self) -> bool {
        let above = self.plugin.limits.recycle_above_mib as usize * (1 << 20);
        above > 0
            && matches!(self.instance.state, InstanceState::Live(_))
            && self.instance.store.data().memory_bytes() > self.memory_at_start + above
    }

    /// Replaces an instance whose memory grew too far with a fresh one of
    /// the same version (the endpoint is idle); the sessions and the
    /// `snapshot` state carry over.
    pub(super) fn recycle(&mut self) {
        let grown = self.instance.store.data().memory_bytes() >> 20;
        let plugin = self.plugin.clone();
        match self.replace_instance(&plugin) {
            Ok(()) => tracing::info!(
                memory_mib = grown,
                fresh_mib = self.memory_at_start >> 20,
                "recycled the instance: its memory grew past limits.recycle-above-mib"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "cannot recycle the instance; it keeps serving");
                // Not again until it grows further.
                self.memory_at_start = self.instance.store.data().memory_bytes();
            }
        }
    }

    /// The running instance's state for its successor; `None` if it has no
    /// `lifecycle` export, is down, or traps while taking the snapshot.
    fn snapshot(&mut self) -> Option<Vec<u8>> {
        let InstanceState::Live(exports) = &self.instance.state else {
            return None;
        };
        let store = &mut *self.instance.store;
        let call = arm_call(store, Instant::now());
        let snapshot = exports.snapshot(store);
        drop(call);
        match snapshot? {
            Ok(state) => Some(state),
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "snapshot trapped; the new version starts without the old state"
                );
                self.instance.state = InstanceState::Down { retry_at: Instant::now() };
                None
            }
        }
    }
}
