//! Hot-swap harness: a server whose plugins come from a directory managed by
//! a supervisor (watching it if asked to), and helpers that change plugins on
//! disk the way a deploy would.

use crate::{Client, fixture_wasm, runtime, test_config};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use wasock::server;
use wasock::supervisor::watch::{self, SupervisorHandle};
use wasock::supervisor::{Rebuild, ReloadReport, Supervisor};

/// A server whose plugins come from a directory and are hot-swapped by a
/// supervisor (watching the directory if asked to).
pub struct SwapServer {
    /// Where it listens.
    pub addr: SocketAddr,
    supervisor: Option<SupervisorHandle>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SwapServer {
    /// Serves the plugin directories under `dir`.
    pub async fn start(dir: &Path, watch: bool) -> Self {
        Self::start_with_build(dir, watch, false).await
    }

    /// Serves the plugin directories under `dir`, running build commands
    /// (initially, and when a plugin's sources change) if `build`.
    pub async fn start_with_build(dir: &Path, watch: bool, build: bool) -> Self {
        let config = Arc::new(test_config());
        let mut supervisor = Supervisor::new(runtime().clone(), config.clone(), vec![dir.to_path_buf()], build);
        let rebuild = if build { Rebuild::All } else { Rebuild::None };
        let report = supervisor.reload(rebuild).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let routes = supervisor.routes();
        let supervisor = watch::spawn(supervisor, watch).unwrap();
        let listener = server::bind("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, routes, config, async {
            let _ = stopped.await;
        }));
        Self { addr, supervisor: Some(supervisor), stop: Some(stop), task }
    }

    /// `ws://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Connects a WebSocket client to `path`.
    pub async fn connect(&self, path: &str) -> Client {
        Client::connect(&self.url(path)).await.unwrap()
    }

    /// Reloads from disk now.
    pub async fn reload(&self) -> ReloadReport {
        self.supervisor.as_ref().unwrap().reload().await
    }

    /// Shuts down gracefully.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), &mut self.task).await.expect("server stops").unwrap();
        self.supervisor.take().unwrap().stop().await.shutdown().await;
    }
}

/// Writes plugin directory `<parent>/<name>` serving a copy of `component`
/// (as `plugin.wasm`) at `route`, with `extra` manifest TOML.
pub fn swap_plugin_dir(parent: &Path, name: &str, route: &str, component: &[u8], extra: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.wasm"), component).unwrap();
    let manifest = format!(
        "manifest-version = 1\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"plugin.wasm\"\n{extra}"
    );
    replace_file(&dir.join("plugin.toml"), manifest.as_bytes());
    dir
}

/// Replaces a file the way deploy tools should: write aside, then rename.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The same component with a custom section appended: identical code, a new
/// content hash (a "new version" that behaves the same).
pub fn rehash(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"wasock-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).expect("short tag"));
    out.extend_from_slice(&payload);
    out
}

/// The bytes of a built guest component (bundled plugin or fixture).
pub fn wasm_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_wasm(name)).unwrap()
}

/// The component of bundled plugin `name`, wherever its manifest puts it.
pub fn bundled_wasm(name: &str) -> Vec<u8> {
    let (manifests, errors) = wasock::plugins::discover(&[crate::plugins_dir().join(name)]);
    assert!(errors.is_empty(), "{errors:?}");
    std::fs::read(&manifests[0].component).unwrap()
}

