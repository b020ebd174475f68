//! The supervisor keeps the served plugins in line with what is on disk:
//! it starts new plugin directories, swaps in new versions of changed ones
//! without dropping their clients, moves routes, and retires removed ones.
//!
//! A reload never makes things worse: a plugin whose new manifest, build or
//! component is broken, or whose new version fails to start or traps in
//! `restore`, keeps its running version; the error is logged with the
//! plugin's name.
//!
//! - [`watch`]: runs the supervisor as a task driven by file changes
//!   (debounced), SIGHUP and explicit reload requests.

pub mod watch;

use crate::config::ServerConfig;
use crate::endpoint::Endpoint;
use crate::manifest::Manifest;
use crate::plugins;
use crate::runtime::{CompiledPlugin, Digest, Runtime};
use crate::server::Routes;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directories whose changes are a build's own doing (compiler output,
/// installed packages, bytecode caches), never a reason to build again.
const BUILD_OUTPUT: [&str; 5] = ["target", "node_modules", "__pycache__", ".git", "build"];
use std::time::Instant;

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

/// What one reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Plugins started.
    pub added: Vec<String>,
    /// Plugins replaced by a new version.
    pub swapped: Vec<String>,
    /// Plugins removed.
    pub removed: Vec<String>,
    /// What went wrong, one message each; the running versions stay.
    pub failed: Vec<String>,
}

/// One served plugin.
struct Managed {
    manifest: Manifest,
    hash: String,
    endpoint: Endpoint,
}

/// Owns the endpoints and the routing table.
pub struct Supervisor {
    runtime: Arc<Runtime>,
    config: Arc<ServerConfig>,
    paths: Vec<PathBuf>,
    build: bool,
    routes: Arc<ArcSwap<Routes>>,
    plugins: BTreeMap<PathBuf, Managed>,
}

impl Supervisor {
    /// Serves the plugins under `paths` (none until the first reload).
    /// With `build`, reloads may run plugins' build commands.
    pub fn new(runtime: Arc<Runtime>, config: Arc<ServerConfig>, paths: Vec<PathBuf>, build: bool) -> Self {
        // Absolute paths, so file-change events (always absolute) can be
        // matched against plugin directories.
        let paths = paths.into_iter().map(|p| p.canonicalize().unwrap_or(p)).collect();
        Self {
            runtime,
            config,
            paths,
            build,
            routes: Arc::default(),
            plugins: BTreeMap::new(),
        }
    }

    /// The routing table, for the server.
    pub fn routes(&self) -> Arc<ArcSwap<Routes>> {
        self.routes.clone()
    }

    /// The paths watched.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Number of plugins served.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether no plugin is served.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
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
        for err in errors {
            let dir = err.plugin_dir();
            let running = dir.as_ref().is_some_and(|d| self.plugins.contains_key(d));
            let suffix = if running { "; keeping the running version" } else { "" };
            tracing::error!("{err}{suffix}");
            report.failed.push(format!("{err}{suffix}"));
            keep.extend(dir);
        }
        for manifest in manifests {
            keep.insert(manifest.dir.clone());
            if let Err(err) = self.update(manifest, &rebuild, &mut report).await {
                tracing::error!("{err}");
                report.failed.push(err);
            }
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

    /// Starts, swaps or leaves alone the plugin in `manifest.dir`.
    async fn update(&mut self, manifest: Manifest, rebuild: &Rebuild, report: &mut ReloadReport) -> Result<(), String> {
        let dir = manifest.dir.clone();
        let running = self.plugins.get(&dir).map(|m| m.manifest.name.clone());
        let keeping = if running.is_some() { "; keeping the running version" } else { "" };
        if self.build && rebuild.includes(&dir) {
            let m = manifest.clone();
            blocking(move || plugins::build(&m)).await.map_err(|e| format!("{e}{keeping}"))?;
        }
        let component = manifest.component.clone();
        let bytes = blocking(move || std::fs::read(&component)).await.map_err(|e| {
            format!("plugin `{}`: cannot read component {}: {e}{keeping}", manifest.name, manifest.component.display())
        })?;
        let digest = Digest::of(&bytes);
        let hash = digest.short();
        if let Some(cur) = self.plugins.get(&dir)
            && cur.manifest == manifest
            && cur.hash == hash
        {
            return Ok(());
        }
        if let Some((other_dir, other)) = self.plugins.iter().find(|(d, m)| **d != dir && m.manifest.route == manifest.route) {
            return Err(format!(
                "plugin `{}` ({}): route {} is already served by plugin `{}` ({})",
                manifest.name,
                manifest.file.display(),
                manifest.route,
                other.manifest.name,
                other_dir.display()
            ));
        }
        let started = Instant::now();
        let (runtime, m) = (self.runtime.clone(), manifest.clone());
        let plugin = blocking(move || CompiledPlugin::from_bytes(&runtime, &m, &bytes, &digest))
            .await
            .map_err(|e| format!("{e}{keeping}"))?;
        let compile = started.elapsed();
        let plugin = Arc::new(plugin);
        match self.plugins.remove(&dir) {
            Some(mut cur) if cur.manifest.name == manifest.name => {
                match cur.endpoint.swap(plugin.clone()).await {
                    Ok(swap) => {
                        tracing::info!(
                            plugin = %manifest.name, old = %cur.hash, new = %plugin.hash,
                            load_ms = compile.as_millis() as u64, origin = ?plugin.origin, switch_us = swap.switch.as_micros() as u64,
                            sessions = swap.sessions,
                            "swapped in a new version"
                        );
                        if cur.manifest.route != manifest.route {
                            tracing::info!(plugin = %manifest.name, from = %cur.manifest.route, to = %manifest.route, "route moved");
                        }
                        cur.manifest = manifest;
                        cur.hash = plugin.hash.clone();
                        report.swapped.push(cur.manifest.name.clone());
                        self.plugins.insert(dir, cur);
                        Ok(())
                    }
                    Err(err) => {
                        let name = cur.manifest.name.clone();
                        let old = cur.hash.clone();
                        self.plugins.insert(dir, cur);
                        Err(format!("plugin `{name}`: {err}; keeping version {old}"))
                    }
                }
            }
            previous => {
                if let Some(prev) = previous {
                    tracing::info!(plugin = %prev.manifest.name, renamed = %manifest.name, "plugin renamed; replacing it");
                    report.removed.push(prev.manifest.name.clone());
                    tokio::spawn(prev.endpoint.retire());
                }
                let endpoint = Endpoint::start(plugin.clone(), self.config.clone()).map_err(|e| format!("{e:#}"))?;
                tracing::info!(plugin = %manifest.name, route = %manifest.route, version = %plugin.hash, load_ms = compile.as_millis() as u64, origin = ?plugin.origin, "serving");
                report.added.push(manifest.name.clone());
                self.plugins.insert(dir, Managed { manifest, hash: plugin.hash.clone(), endpoint });
                Ok(())
            }
        }
    }

    fn publish_routes(&self) {
        let routes: Routes = self
            .plugins
            .values()
            .map(|m| (m.manifest.route.clone(), m.endpoint.handle()))
            .collect();
        self.routes.store(Arc::new(routes));
    }

    /// Ends every endpoint (each calls `on-disconnected` for the sessions it
    /// still has). Call after the server has stopped.
    pub async fn shutdown(self) {
        self.routes.store(Arc::default());
        for (_, m) in self.plugins {
            m.endpoint.shutdown().await;
        }
    }
}

/// Runs blocking work (file I/O, compiling, builds) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}
