//! The supervisor keeps the served plugins in line with what is on disk:
//! it starts new plugin directories, swaps in new versions of changed ones
//! without dropping their clients, moves routes, and retires removed ones.
//!
//! A reload never makes things worse: a plugin whose new manifest, build or
//! component is broken, or whose new version fails to start or traps in
//! `restore`, keeps its running version; the error is logged with the
//! plugin's name.
//!
//! - `report`: what a reload did, and why a plugin was not (re)loaded.
//! - [`watch`]: runs the supervisor as a task driven by file changes
//!   (debounced), SIGHUP and explicit reload requests.

mod report;
pub mod watch;

pub use report::{ReloadError, ReloadReport};

use crate::config::ServerConfig;
use crate::endpoint::{Endpoint, EndpointHandle};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::plugins::{self, DiscoverError, Source};
use crate::runtime::{CompiledPlugin, Contract, Runtime};
use crate::server::{Route, Routes};
use crate::session::Uplink;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Directories whose changes are a build's own doing (compiler output,
/// installed packages, bytecode caches), never a reason to build again.
const BUILD_OUTPUT: [&str; 5] = ["target", "node_modules", "__pycache__", ".git", "build"];

/// Which plugins to build before a reload (with `--build`).
#[derive(Debug, Clone)]
pub enum Rebuild {
    /// None: use the components as they are.
    None,
    /// Every plugin.
    All,
    /// The plugins in these directories.
    Dirs(HashSet<PathBuf>),
}

impl Rebuild {
    fn includes(&self, dir: &Path) -> bool {
        match self {
            Rebuild::None => false,
            Rebuild::All => true,
            Rebuild::Dirs(dirs) => dirs.contains(dir),
        }
    }
}

/// One served plugin.
#[derive(Debug)]
struct Managed {
    /// Its manifest, as served.
    manifest: Manifest,
    /// The served component's short hash.
    hash: String,
    /// The contract it implements.
    contract: Contract,
    /// Its endpoint.
    endpoint: Endpoint,
    /// When a new version last took over.
    last_swap: Option<SystemTime>,
}

/// A served plugin as the admin listener shows it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The plugin's name.
    pub name: String,
    /// Its route.
    pub route: String,
    /// The served version (the component's short content hash).
    pub version: String,
    /// The contract the version implements.
    pub contract: Contract,
    /// When a new version last took over.
    pub last_swap: Option<SystemTime>,
    /// Its endpoint (live session count, back-off).
    pub endpoint: EndpointHandle,
}

/// A plugin whose new version is compiled and ready to be put in service.
struct Prepared {
    /// Its manifest.
    manifest: Manifest,
    /// The new version.
    plugin: Arc<CompiledPlugin>,
    /// How long reading and compiling took.
    compile: Duration,
}

/// Owns the endpoints and the routing table.
#[derive(Debug)]
pub struct Supervisor {
    /// The engine plugins are compiled and run with.
    runtime: Arc<Runtime>,
    /// Settings for the endpoints it starts.
    config: Arc<ServerConfig>,
    /// Where the endpoints it starts count.
    metrics: Arc<Metrics>,
    /// The plugin paths it serves (absolute).
    paths: Vec<PathBuf>,
    /// Whether reloads may run build commands.
    build: bool,
    /// The routing table the server reads.
    routes: Arc<ArcSwap<Routes>>,
    /// What is served, for the admin listener.
    served: Arc<ArcSwap<Vec<Served>>>,
    /// Served plugins by directory.
    plugins: BTreeMap<PathBuf, Managed>,
    /// In a cluster: where endpoints send fan-outs for the other nodes.
    uplink: Option<Uplink>,
}

impl Supervisor {
    /// Serves the plugins under `paths` (none until the first reload).
    /// With `build`, reloads may run plugins' build commands.
    pub fn new(
        runtime: Arc<Runtime>,
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        paths: Vec<PathBuf>,
        build: bool,
    ) -> Self {
        // Absolute paths, so file-change events (always absolute) can be
        // matched against plugin directories.
        let paths = paths.into_iter().map(|p| p.canonicalize().unwrap_or(p)).collect();
        let (routes, served, plugins) = (Arc::default(), Arc::default(), BTreeMap::new());
        Self { runtime, config, metrics, paths, build, routes, served, plugins, uplink: None }
    }

    /// Makes the endpoints started from now on members of a cluster.
    pub fn set_uplink(&mut self, uplink: Uplink) {
        self.uplink = Some(uplink);
    }

    /// What is served, republished after every reload (admin listener).
    pub fn served(&self) -> Arc<ArcSwap<Vec<Served>>> {
        self.served.clone()
    }

    /// The routing table, for the server.
    pub fn routes(&self) -> Arc<ArcSwap<Routes>> {
        self.routes.clone()
    }

    /// The paths watched.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The plugin directories that `changed` paths touch in a way a build
    /// should follow: a file inside the directory, not in a directory of
    /// build output or installed packages, and not the component itself.
    pub fn dirs_to_build(&self, changed: &HashSet<PathBuf>) -> Rebuild {
        if !self.build {
            return Rebuild::None;
        }
        let dirs = self
            .plugins
            .iter()
            .filter(|(dir, m)| {
                changed.iter().any(|p| {
                    p.strip_prefix(dir).is_ok_and(|rel| {
                        !rel.components().any(|c| BUILD_OUTPUT.iter().any(|o| c.as_os_str() == *o))
                            && *p != m.manifest.component
                    })
                })
            })
            .map(|(dir, _)| dir.clone())
            .collect();
        Rebuild::Dirs(dirs)
    }

    /// Brings the served plugins in line with the disk.
    pub async fn reload(&mut self, rebuild: Rebuild) -> ReloadReport {
        let mut report = ReloadReport::default();
        let paths = self.paths.clone();
        let (manifests, errors) = blocking(move || plugins::discover(&paths)).await;
        let mut keep: HashSet<PathBuf> = HashSet::new();
        for error in errors {
            let dir = error.plugin_dir();
            let running = dir.as_ref().is_some_and(|d| self.plugins.contains_key(d));
            report.failed.push(ReloadError::Discover { error, running });
            keep.extend(dir);
        }
        for manifest in manifests {
            keep.insert(manifest.dir.clone());
            let outcome = match self.prepare(manifest, &rebuild).await {
                Ok(Some(prepared)) => self.apply(prepared, &mut report).await,
                Ok(None) => Ok(()),
                Err(err) => Err(err),
            };
            if let Err(err) = outcome {
                report.failed.push(err);
            }
        }
        for err in &report.failed {
            tracing::error!("{err}");
        }
        let gone: Vec<PathBuf> = self.plugins.keys().filter(|d| !keep.contains(*d)).cloned().collect();
        let gone: Vec<Managed> = gone.iter().filter_map(|dir| self.plugins.remove(dir)).collect();
        // Routes first, so no new client reaches an endpoint being retired.
        self.publish_routes();
        for m in gone {
            tracing::info!(plugin = %m.manifest.name, route = %m.manifest.route, "plugin directory removed; closing its sessions with 1001");
            report.removed.push(m.manifest.name);
            tokio::spawn(m.endpoint.retire());
        }
        report
    }

    /// Builds (if asked), reads and compiles the plugin in `manifest.dir`;
    /// `None` if the running version is exactly this one.
    async fn prepare(&self, manifest: Manifest, rebuild: &Rebuild) -> Result<Option<Prepared>, ReloadError> {
        let dir = manifest.dir.clone();
        let running = self.plugins.contains_key(&dir);
        if self.build && rebuild.includes(&dir) {
            let m = manifest.clone();
            blocking(move || plugins::build(&m)).await.map_err(|error| ReloadError::Build { error, running })?;
        }
        let started = Instant::now();
        let source =
            blocking(move || Source::read(manifest)).await.map_err(|error| ReloadError::Load { error, running })?;
        let manifest = &source.manifest;
        if self.plugins.get(&dir).is_some_and(|cur| cur.manifest == *manifest && cur.hash == source.digest.short()) {
            return Ok(None);
        }
        if let Some(other) =
            self.plugins.iter().find_map(|(d, m)| (*d != dir && m.manifest.route == manifest.route).then_some(m))
        {
            let error = DiscoverError::DuplicateRoute {
                name: manifest.name.clone(),
                file: manifest.file.clone(),
                route: manifest.route.clone(),
                other: other.manifest.name.clone(),
            };
            return Err(ReloadError::Discover { error, running });
        }
        let runtime = self.runtime.clone();
        let (plugin, source) = blocking(move || (source.compile(&runtime), source)).await;
        let plugin = plugin.map_err(|error| ReloadError::Load { error, running })?;
        Ok(Some(Prepared { manifest: source.manifest, plugin: Arc::new(plugin), compile: started.elapsed() }))
    }

    /// Puts a prepared version in service: swaps it into the running
    /// endpoint, or starts an endpoint for it.
    async fn apply(&mut self, new: Prepared, report: &mut ReloadReport) -> Result<(), ReloadError> {
        let Prepared { manifest, plugin, compile } = new;
        let dir = manifest.dir.clone();
        let load_ms = compile.as_millis() as u64;
        match self.plugins.remove(&dir) {
            Some(mut cur) if cur.manifest.name == manifest.name => {
                let swapped = cur.endpoint.swap(plugin.clone()).await;
                let outcome = if swapped.is_ok() { "ok" } else { "failed" };
                cur.endpoint.handle().metrics().swapped(outcome);
                let outcome = match swapped {
                    Ok(swap) => {
                        tracing::info!(
                            plugin = %manifest.name, old = %cur.hash, new = %plugin.hash, load_ms, origin = ?plugin.origin,
                            switch_us = swap.switch.as_micros() as u64, sessions = swap.sessions,
                            "swapped in a new version"
                        );
                        let running = cur.endpoint.handle().instances();
                        if manifest.instances != running {
                            tracing::warn!(plugin = %manifest.name, running, asked = manifest.instances, "`instances` changed: a swap keeps the running ones; the new count applies at the next start");
                        }
                        if cur.manifest.route != manifest.route {
                            tracing::info!(plugin = %manifest.name, from = %cur.manifest.route, to = %manifest.route, "route moved");
                        }
                        report.swapped.push(manifest.name.clone());
                        cur.manifest = manifest;
                        cur.hash = plugin.hash.clone();
                        cur.contract = plugin.contract;
                        cur.last_swap = Some(SystemTime::now());
                        Ok(())
                    }
                    Err(error) => {
                        Err(ReloadError::Swap { name: cur.manifest.name.clone(), error, kept: cur.hash.clone() })
                    }
                };
                self.plugins.insert(dir, cur);
                outcome
            }
            previous => {
                if let Some(prev) = previous {
                    tracing::info!(plugin = %prev.manifest.name, renamed = %manifest.name, "plugin renamed; replacing it");
                    report.removed.push(prev.manifest.name.clone());
                    tokio::spawn(prev.endpoint.retire());
                }
                let metrics = self.metrics.route(&manifest.route);
                let cluster = self.uplink.clone().map(|u| (u, manifest.route.as_str().into()));
                let endpoint = Endpoint::start(&plugin, &self.config, metrics, manifest.instances, cluster)
                    .map_err(|error| ReloadError::Start { name: manifest.name.clone(), error })?;
                tracing::info!(plugin = %manifest.name, route = %manifest.route, version = %plugin.hash, load_ms, origin = ?plugin.origin, "serving");
                report.added.push(manifest.name.clone());
                self.plugins.insert(
                    dir,
                    Managed {
                        manifest,
                        hash: plugin.hash.clone(),
                        contract: plugin.contract,
                        endpoint,
                        last_swap: None,
                    },
                );
                Ok(())
            }
        }
    }

    fn publish_routes(&self) {
        let routes =
            self.plugins.values().map(|m| (m.manifest.route.clone(), Route::new(m.endpoint.handle(), &m.manifest)));
        let routes: Routes = routes.collect();
        self.routes.store(Arc::new(routes));
        let served = self.plugins.values().map(|m| Served {
            name: m.manifest.name.clone(),
            route: m.manifest.route.clone(),
            version: m.hash.clone(),
            contract: m.contract,
            last_swap: m.last_swap,
            endpoint: m.endpoint.handle(),
        });
        self.served.store(Arc::new(served.collect()));
    }

    /// Ends every endpoint (each calls `on-disconnected` for the sessions it
    /// still has). Call after the server has stopped.
    pub async fn shutdown(self) {
        self.routes.store(Arc::default());
        self.served.store(Arc::default());
        for (_, m) in self.plugins {
            m.endpoint.shutdown().await;
        }
    }
}

/// Runs blocking work (file I/O, compiling, builds) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}
