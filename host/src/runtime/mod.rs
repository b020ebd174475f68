//! The wasmtime side of the host: one engine and linker for all plugins, the
//! epoch ticker that bounds every plugin call, and compiling plugins.
//!
//! - [`batch`]: several messages in one call, and what the plugin calls
//!   between them.
//! - [`bindings`]: `bindgen!` output (private).
//! - [`cache`]: compiled components on disk, so restarts skip Cranelift.
//! - [`compat`]: the 0.1 contract's imports, over the same registry.
//! - [`epoch`]: the epoch clock and its ticker (asleep while no call needs
//!   it).
//! - [`guest`]: a plugin's exports, whichever contract it implements.
//! - [`host`]: what an instance's store holds.
//! - [`imports`]: the 0.2 imports a plugin calls (`session`, `endpoint`,
//!   `topics`).
//! - [`plugin`]: a compiled, type-checked plugin ready to instantiate.
//! - [`stdio`]: plugin stdout/stderr into the host log, within a budget.
//! - [`waits`]: bounds on how long a host call may wait.

pub mod batch;
mod bindings;
pub mod cache;
mod compat;
mod epoch;
pub mod guest;
pub mod host;
mod imports;
pub mod plugin;
pub mod stdio;
mod waits;

pub use cache::{CompileCache, Origin};
pub use epoch::{EPOCH_TICK, EpochClock, RunningCall};
pub use guest::{Contract, Exports, Message, MessageKind};
pub use host::{HostState, arm_call};
pub use plugin::{CompiledPlugin, Digest, LoadError};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// The engine, the linker with every host import, and the epoch ticker.
/// Shared by every endpoint.
pub struct Runtime {
    /// The engine every plugin is compiled for and runs on.
    engine: Engine,
    /// WASI and the wasock imports, for every plugin.
    linker: Linker<HostState>,
    /// Compiled components on disk, if caching.
    cache: Option<CompileCache>,
    /// The epoch ticker's count.
    clock: Arc<EpochClock>,
    /// The epoch ticker thread.
    ticker: Option<std::thread::JoinHandle<()>>,
    /// Tells the ticker to stop.
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("cache", &self.cache).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine (Cranelift, epoch interruption on) and the linker,
    /// without a compile cache.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_cache(None)
    }

    /// Like [`new`](Self::new), keeping compiled components in `cache`.
    pub fn with_cache(cache: Option<CompileCache>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // For profiling plugins: `perf` names their functions from the map
        // wasmtime writes to /tmp/perf-PID.map (compile with --no-cache:
        // the map is written when code is compiled).
        if std::env::var_os("WASOCK_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        // wasmtime-wasi runs its sync host calls (stdout included) on a
        // tokio runtime of its own that it makes on first use, and panics if
        // it cannot (out of file descriptors): made now, from a thread
        // outside any tokio runtime, it is never made inside a plugin call.
        std::thread::spawn(|| wasmtime_wasi::runtime::in_tokio(async {}))
            .join()
            .map_err(|_| anyhow::anyhow!("cannot start wasmtime-wasi's runtime"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        bindings::v2::BatchedPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        bindings::v1::StatefulPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        waits::add_to_linker(&mut linker)?;
        let stop = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(EpochClock::new(engine.clone()));
        let ticker = {
            let (clock, stop) = (clock.clone(), stop.clone());
            std::thread::Builder::new().name("wasock-epoch".into()).spawn(move || clock.run_ticker(&stop))?
        };
        Ok(Self { engine, linker, cache, clock, ticker: Some(ticker), stop })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles component `bytes`, or loads them from the compile cache.
    pub fn compile(&self, bytes: &[u8], digest: &Digest) -> wasmtime::Result<(Component, Origin)> {
        match &self.cache {
            Some(cache) => cache.component(&self.engine, bytes, digest),
            None => Ok((Component::new(&self.engine, bytes)?, Origin::Compiled)),
        }
    }

    /// The epoch ticker's count.
    pub fn clock(&self) -> &Arc<EpochClock> {
        &self.clock
    }

    /// The linker holding WASI and the wasock imports.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.clock.unpark();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// Epoch ticks that make up `deadline` (at least one).
pub fn deadline_ticks(deadline: Duration) -> u64 {
    u64::try_from(deadline.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1)
}
