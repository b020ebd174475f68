//! What one plugin instance's store holds ([`HostState`]): the endpoint's
//! session registry, the sandbox's WASI context and limits, and the clock
//! of the current call. The imports over it are in [`super::imports`]
//! (0.2) and [`super::compat`] (0.1).

use super::batch::Batch;
use super::epoch::{CallSlot, RunningCall};
use super::{EpochClock, deadline_ticks};
use crate::manifest::Limits;
use crate::session::{QueueError, SessionId, Sessions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Marker type for the 0.2 `session` resource; its rep indexes the
/// registry's handle table.
#[derive(Debug)]
pub struct SessionResource;

/// Marker type for the 0.1 `session` resource; the same handle table.
#[derive(Debug)]
pub struct SessionV1;

/// wasmtime's store limits, noting how far memory has grown.
struct GrowthLimiter {
    /// The caps.
    limits: StoreLimits,
    /// The largest size a memory was allowed to grow to.
    memory_bytes: usize,
}

impl ResourceLimiter for GrowthLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self.memory_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState").field("sessions", &self.sessions.len()).finish_non_exhaustive()
    }
}

/// Everything one plugin instance's `Store` holds.
pub struct HostState {
    /// The endpoint's sessions. Moved to the next store when the instance is
    /// replaced, so it survives traps and upgrades.
    sessions: Sessions,
    /// WASI context: only what the manifest grants; stdio to the log. Set
    /// when the instance starts.
    wasi: WasiCtx,
    /// Resource table for WASI's own resources.
    table: ResourceTable,
    /// Memory and instance caps, and how far memory has grown.
    store_limits: GrowthLimiter,
    /// The plugin's limits (call deadline for host waits).
    limits: Arc<Limits>,
    /// The epoch ticker's count.
    clock: Arc<EpochClock>,
    /// Where the epoch ticker sees this store's running call.
    call: Arc<CallSlot>,
    /// The tick by which the current call (or a batch's current message)
    /// must end (see [`arm_call`]).
    call_ends: u64,
    /// The messages the running call handles, if it handles a batch.
    batch: Batch,
}

/// Starts the clock on one plugin call at `now`: wasm code traps at the
/// epoch deadline, and a host wait may take only what is left of it. The
/// call counts as running (for the epoch ticker) until the guard drops.
pub fn arm_call(store: &mut Store<HostState>, now: Instant) -> RunningCall {
    let state = store.data_mut();
    let (running, ends) = state.clock.arm(&state.call, now);
    state.call_ends = ends;
    let ticks = state.call.deadline();
    // After `arm`, which brought the engine's epoch up to now.
    store.set_epoch_deadline(ticks);
    running
}

impl HostState {
    /// A state for a new instance, taking over `sessions`; no WASI access
    /// until [`set_wasi`](Self::set_wasi).
    pub(crate) fn new(
        sessions: Sessions,
        store_limits: StoreLimits,
        limits: Arc<Limits>,
        clock: Arc<EpochClock>,
    ) -> Self {
        let call = clock.slot(deadline_ticks(limits.call_deadline()));
        Self {
            sessions,
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            store_limits: GrowthLimiter { limits: store_limits, memory_bytes: 0 },
            limits,
            clock,
            call,
            call_ends: 0,
            batch: Batch::default(),
        }
    }

    /// The batch of messages the running call handles.
    pub(super) fn batch_mut(&mut self) -> &mut Batch {
        &mut self.batch
    }

    /// The epoch clock.
    pub(super) fn clock(&self) -> &EpochClock {
        &self.clock
    }

    /// The tick by which the current call must end.
    pub(super) fn call_ends(&self) -> u64 {
        self.call_ends
    }

    /// Gives the running call a whole deadline again from `now`: a batch's
    /// next message (the epoch deadline follows, through
    /// [`deadline_reached`](Self::deadline_reached)).
    pub(super) fn rearm(&mut self, now: Instant) {
        self.call_ends = self.clock.rearm(&self.call, now);
    }

    /// How long one plugin call may take.
    pub(crate) fn call_deadline(&self) -> Duration {
        self.limits.call_deadline()
    }

    /// What is left of the current call's deadline (within one tick).
    pub(crate) fn call_time_left(&self) -> Duration {
        self.clock.until(self.call_ends)
    }

    /// The endpoint's sessions.
    pub fn sessions(&mut self) -> &mut Sessions {
        &mut self.sessions
    }

    /// The instance's WASI context.
    pub(crate) fn set_wasi(&mut self, wasi: WasiCtx) {
        self.wasi = wasi;
    }

    /// The store's resource limiter.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.store_limits
    }

    /// The largest size any of the instance's linear memories has grown
    /// to, in bytes (memories never shrink).
    pub fn memory_bytes(&self) -> usize {
        self.store_limits.memory_bytes
    }

    /// The session a handle of either contract refers to; a rep this
    /// registry never handed out is a host bug, reported as a trap.
    pub(super) fn session_of<T: 'static>(&self, handle: &Resource<T>) -> wasmtime::Result<SessionId> {
        self.sessions
            .resolve(handle.rep())
            .ok_or_else(|| wasmtime::format_err!("unknown session handle {}", handle.rep()))
    }

    /// Queues `msg` to the session behind `handle`.
    pub(super) fn send<T: 'static>(&mut self, handle: &Resource<T>, msg: Message) -> wasmtime::Result<Sent> {
        let id = self.session_of(handle)?;
        Ok(self.send_to(id, msg))
    }

    /// Queues `msg` to session `id`.
    pub(super) fn send_to(&mut self, id: SessionId, msg: Message) -> Sent {
        match self.sessions.send(id, msg) {
            Ok(()) => Sent::Queued,
            Err(QueueError::Closed) => Sent::Closed,
            Err(QueueError::Full) => Sent::QueueFull,
        }
    }
}

/// A write's outcome, before it becomes either contract's `send-status`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sent {
    /// Queued.
    Queued,
    /// The session is gone or closing.
    Closed,
    /// Its queue is full.
    QueueFull,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The `session` methods both contracts share, for an `impl` of either
/// one's `HostSession` over [`HostState`] (`$handle` is its resource
/// handle type, whose `send-status` converts from [`Sent`]).
macro_rules! shared_session_methods {
    ($handle:ty) => {
        fn id(&mut self, this: $handle) -> wasmtime::Result<SessionId> {
            self.session_of(&this)
        }

        fn path(&mut self, this: $handle) -> wasmtime::Result<String> {
            let id = self.session_of(&this)?;
            Ok(self.sessions().path(id).map(str::to_owned).unwrap_or_default())
        }

        fn query(&mut self, this: $handle) -> wasmtime::Result<Option<String>> {
            let id = self.session_of(&this)?;
            Ok(self.sessions().query(id).map(str::to_owned))
        }

        fn is_open(&mut self, this: $handle) -> wasmtime::Result<bool> {
            let id = self.session_of(&this)?;
            Ok(self.sessions().is_open(id))
        }

        fn attachment(&mut self, this: $handle) -> wasmtime::Result<Option<Vec<u8>>> {
            let id = self.session_of(&this)?;
            Ok(self.sessions().attachment(id))
        }

        fn write_text(&mut self, this: $handle, text: String) -> wasmtime::Result<types::SendStatus> {
            self.send(&this, Message::text(text)).map(Into::into)
        }

        fn write_data(&mut self, this: $handle, data: Vec<u8>) -> wasmtime::Result<types::SendStatus> {
            self.send(&this, Message::binary(data)).map(Into::into)
        }

        fn close(&mut self, this: $handle) -> wasmtime::Result<()> {
            let id = self.session_of(&this)?;
            self.sessions().close_by_plugin(id, None, "");
            Ok(())
        }

        fn close_with(&mut self, this: $handle, code: u16, reason: String) -> wasmtime::Result<()> {
            let id = self.session_of(&this)?;
            self.sessions().close_by_plugin(id, Some(code), &reason);
            Ok(())
        }

        fn drop(&mut self, this: $handle) -> wasmtime::Result<()> {
            self.sessions().drop_handle(this.rep());
            Ok(())
        }
    };
}

pub(super) use shared_session_methods;
