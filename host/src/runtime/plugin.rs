//! A plugin compiled once and type-checked against the `wasock:plugin` world,
//! ready to instantiate many times (after a trap, each restart is a cheap
//! instantiation from the same `InstancePre`).
//!
//! A component built against either contract loads ([`Contract`]); the
//! `lifecycle` and `upgrade` exports are optional.

use super::guest::{Contract, Exports, Indices};
use super::host::HostState;
use super::stdio::{LogBudget, LogOutput, Stream};
use super::{EpochClock, Origin, Runtime, arm_call};
use crate::manifest::{Grants, Limits, Manifest};
use crate::session::Sessions;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::InstancePre;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Why a plugin's component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file could not be read.
    #[error("plugin `{plugin}`: cannot read component {path}: {source}")]
    Read {
        /// The plugin.
        plugin: String,
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly component.
    #[error("plugin `{plugin}`: {path} is not a valid WebAssembly component: {message}")]
    Compile {
        /// The plugin.
        plugin: String,
        /// The component file.
        path: PathBuf,
        /// Wasmtime's message.
        message: String,
    },
    /// The component does not implement the world: it imports something the
    /// host does not provide, or lacks the `handler` export.
    #[error("plugin `{plugin}`: {path} does not implement the wasock:plugin world: {message}")]
    World {
        /// The plugin.
        plugin: String,
        /// The component file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// The component traps (or runs out of a limit) while it starts.
    #[error("plugin `{plugin}`: {path} fails to start: {message}")]
    Start {
        /// The plugin.
        plugin: String,
        /// The component file.
        path: PathBuf,
        /// The trap or error.
        message: String,
    },
}

/// A compiled, checked plugin.
pub struct CompiledPlugin {
    /// The plugin's name, for log lines.
    pub name: Arc<str>,
    /// The route it serves.
    pub route: String,
    /// The names of the interfaces the component imports.
    pub imports: Vec<String>,
    /// The names of the interfaces the component exports.
    pub exports: Vec<String>,
    /// The contract it implements.
    pub contract: Contract,
    /// The sandbox's limits.
    pub limits: Arc<Limits>,
    /// A short content hash of the component file, naming this version.
    pub hash: String,
    /// Whether it was compiled now or loaded from the compile cache.
    pub origin: Origin,
    grants: Grants,
    /// The runtime's epoch count, for call deadlines in host waits.
    clock: Arc<EpochClock>,
    pre: InstancePre<HostState>,
    indices: Indices,
    log_budget: Arc<LogBudget>,
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("name", &self.name)
            .field("route", &self.route)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl CompiledPlugin {
    /// Compiles and type-checks component `bytes` (whose digest is
    /// `digest`) for `manifest`, and starts it once to be sure it can start.
    pub fn from_bytes(
        runtime: &Runtime,
        manifest: &Manifest,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Self, LoadError> {
        let path = &manifest.component;
        let plugin = manifest.name.clone();
        let (component, origin) = runtime.compile(bytes, digest).map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            path: path.clone(),
            message: format!("{e:#}"),
        })?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            plugin: plugin.clone(),
            path: path.clone(),
            message: format!("{e:#}"),
        };
        let ty = component.component_type();
        let imports = ty.imports(runtime.engine()).map(|(n, _)| n.to_owned()).collect();
        let exports = ty.exports(runtime.engine()).map(|(n, _)| n.to_owned()).collect();
        let pre = runtime.linker().instantiate_pre(&component).map_err(world_error)?;
        let indices = Indices::new(&pre).map_err(world_error)?;
        let compiled = Self {
            hash: digest.short(),
            origin,
            name: manifest.name.as_str().into(),
            route: manifest.route.clone(),
            imports,
            exports,
            contract: indices.contract(),
            log_budget: Arc::new(LogBudget::new(manifest.limits.log_bytes_per_sec)),
            limits: Arc::new(manifest.limits.clone()),
            grants: manifest.grants.clone(),
            clock: runtime.clock().clone(),
            pre,
            indices,
        };
        // Typed exports are checked on load: a trial instance catches
        // signature mismatches and start-up traps now, not on first connect.
        let mut trial = compiled.store(Sessions::new(compiled.name.clone(), &manifest.limits));
        compiled.start(&mut trial).map_err(|e| {
            let message = format!("{e:#}");
            if e.downcast_ref::<wasmtime::Trap>().is_some() {
                LoadError::Start { plugin: plugin.clone(), path: path.clone(), message }
            } else {
                LoadError::World { plugin: plugin.clone(), path: path.clone(), message }
            }
        })?;
        Ok(compiled)
    }

    /// Whether the component exports the upgrade hook.
    pub fn has_upgrade_hook(&self) -> bool {
        self.indices.has_upgrade()
    }

    /// A new store for an instance of this plugin, holding `sessions` and
    /// the sandbox's limits. Nothing runs in it until [`start`](Self::start).
    pub fn store(&self, sessions: Sessions) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes())
            .table_elements(self.limits.table_elements as usize)
            .instances(32)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let mut store =
            Store::new(self.pre.engine(), HostState::new(sessions, limits, self.limits.clone(), self.clock.clone()));
        store.limiter(|s| s.limiter());
        store.epoch_deadline_callback(|mut store| Ok(store.data_mut().deadline_reached()));
        store
    }

    /// Starts a fresh sandboxed instance in `store` (made by
    /// [`store`](Self::store)). Its WASI context grants only what the
    /// manifest grants; stdout and stderr go to the log. On failure the
    /// store, and the sessions in it, stay with the caller.
    pub fn start(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        store.data_mut().set_wasi(self.wasi()?);
        let _call = arm_call(store, Instant::now());
        let instance = self.pre.instantiate(&mut *store)?;
        self.indices.load(store, &instance)
    }

    fn wasi(&self) -> wasmtime::Result<wasmtime_wasi::WasiCtx> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(LogOutput::new(self.name.clone(), Stream::Stdout, self.log_budget.clone()))
            .stderr(LogOutput::new(self.name.clone(), Stream::Stderr, self.log_budget.clone()))
            .envs(&self.grants.env);
        for (host, guest) in &self.grants.read_dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)?;
        }
        Ok(wasi.build())
    }
}

/// The SHA-256 of a component's bytes: its short form names a version in
/// the log, the whole keys the compile cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The first `n` bytes in hex.
    pub fn hex(&self, n: usize) -> String {
        use std::fmt::Write as _;
        self.0[..n].iter().fold(String::with_capacity(2 * n), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }

    /// The first 12 hex digits: a version's name.
    pub fn short(&self) -> String {
        self.hex(6)
    }
}
