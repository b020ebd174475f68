//! A plugin compiled once and type-checked against the `wasock:plugin` world,
//! ready to instantiate many times (after a trap, each restart is a cheap
//! instantiation from the same `InstancePre`).

use super::bindings::{Plugin, PluginPre};
use super::host::HostState;
use super::stdio::{LogOutput, Stream};
use super::{Runtime, deadline_ticks};
use crate::config::ServerConfig;
use crate::endpoint::Sessions;
use crate::manifest::Manifest;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::Component;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;

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
    pre: PluginPre<HostState>,
}

impl CompiledPlugin {
    /// Reads, compiles and type-checks the component named by `manifest`.
    pub fn load(runtime: &Runtime, manifest: &Manifest) -> Result<Self, LoadError> {
        let path = &manifest.component;
        let plugin = manifest.name.clone();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            plugin: plugin.clone(),
            path: path.clone(),
            source,
        })?;
        let component =
            Component::new(runtime.engine(), &bytes).map_err(|e| LoadError::Compile {
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
        let pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(world_error)?;
        let pre = PluginPre::new(pre).map_err(world_error)?;
        Ok(Self {
            name: manifest.name.as_str().into(),
            route: manifest.route.clone(),
            imports,
            exports,
            pre,
        })
    }

    /// A fresh sandboxed instance in a store of its own, taking over
    /// `sessions` (given back on failure). Its WASI context grants nothing: no files, no network, no
    /// environment; stdout and stderr go to the log.
    pub fn instantiate(
        &self,
        sessions: Sessions,
        config: &ServerConfig,
    ) -> Result<(Store<HostState>, Plugin), (wasmtime::Error, Sessions)> {
        let wasi = WasiCtxBuilder::new()
            .stdout(LogOutput::new(self.name.clone(), Stream::Stdout))
            .stderr(LogOutput::new(self.name.clone(), Stream::Stderr))
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(config.max_plugin_memory)
            .instances(16)
            .tables(64)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(sessions, wasi, limits),
        );
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(deadline_ticks(config.call_deadline));
        match self.pre.instantiate(&mut store) {
            Ok(plugin) => Ok((store, plugin)),
            Err(err) => Err((err, store.into_data().into_sessions())),
        }
    }
}
