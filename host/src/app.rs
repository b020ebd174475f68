//! One way to assemble and run a wasock server: load the plugins, watch
//! them, serve, stop. `wasock serve`, the test harnesses and the benchmarks
//! all start servers through [`ServerBuilder`], so embedding wasock in
//! another Rust program takes a few lines:
//!
//! ```no_run
//! use std::sync::Arc;
//! use wasock::{Server, runtime::Runtime};
//!
//! # async fn serve() -> anyhow::Result<()> {
//! let runtime = Arc::new(Runtime::new()?);
//! let server = Server::builder(runtime, ["plugins"]).listen("127.0.0.1:8080".parse()?).start().await?;
//! println!("listening on {}", server.local_addr());
//! server.run_until(async { tokio::signal::ctrl_c().await.unwrap() }).await;
//! # Ok(())
//! # }
//! ```

use crate::admin::{self, AdminState};
use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::server;
use crate::supervisor::watch::{self, SupervisorHandle};
use crate::supervisor::{Rebuild, ReloadReport, Supervisor};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] crate::server::tls::TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The file watcher could not be set up.
    #[error("cannot watch the plugin paths: {0}")]
    Watch(#[source] anyhow::Error),
    /// The cluster cannot be joined.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// How to run a server: the plugins, the settings, the address.
#[derive(Debug)]
pub struct ServerBuilder {
    /// The engine the plugins run on.
    runtime: Arc<Runtime>,
    /// Plugin directories, or directories of plugin directories.
    paths: Vec<PathBuf>,
    /// Server settings.
    config: ServerConfig,
    /// Run build commands first, and on source changes.
    build: bool,
    /// Watch the paths and swap in what changes.
    watch: bool,
    /// Where to listen.
    listen: SocketAddr,
    /// The certificate and key, to serve `wss://`.
    tls: Option<crate::server::tls::TlsFiles>,
    /// Where the admin listener listens, if anywhere.
    admin: Option<SocketAddr>,
    /// The NATS server of the cluster to join, if any.
    cluster: Option<String>,
}

impl ServerBuilder {
    /// Joins the cluster of the NATS server at `url` (`nats://HOST:PORT`;
    /// none by default; see [`crate::cluster`]).
    pub fn cluster(mut self, url: Option<String>) -> Self {
        self.cluster = url;
        self
    }

    /// Serves `/healthz`, `/readyz` and `/status` on `addr` (off by default;
    /// see [`crate::admin`]).
    pub fn admin(mut self, addr: Option<SocketAddr>) -> Self {
        self.admin = addr;
        self
    }

    /// Settings other than the defaults.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs each plugin's build command before loading it, and again when
    /// its sources change (off by default).
    pub fn build_plugins(mut self, build: bool) -> Self {
        self.build = build;
        self
    }

    /// Watches the plugin paths and swaps in what changes (on by default;
    /// SIGHUP and [`Server::reload`] reload either way).
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    /// Serves `wss://` with this certificate chain and key (PEM), re-read
    /// on SIGHUP.
    pub fn tls(mut self, files: Option<crate::server::tls::TlsFiles>) -> Self {
        self.tls = files;
        self
    }

    /// The address to listen on (default `127.0.0.1:8080`; port 0 picks one).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Loads every plugin (a broken one is reported in
    /// [`Server::initial_load`] and skipped), binds, and starts serving. The
    /// admin listener, if any, answers from the start (not ready until the
    /// plugins are loaded).
    pub async fn start(self) -> Result<Server, StartError> {
        let config = Arc::new(self.config);
        let tls = self.tls.map(crate::server::tls::Tls::load).transpose()?.map(Arc::new);
        let metrics = Arc::new(Metrics::new());
        let mut supervisor = Supervisor::new(self.runtime, config.clone(), metrics.clone(), self.paths, self.build);
        let admin_state = Arc::new(AdminState::new(supervisor.served(), metrics));
        let stop = CancellationToken::new();
        // The admin listener answers (503) until the very end of a stop; the
        // guard stops it if starting fails below.
        let admin_stop = CancellationToken::new();
        let admin_guard = admin_stop.clone().drop_guard();
        let admin_addr = match self.admin {
            Some(addr) => {
                let listener = server::bind(addr, 128).map_err(|source| StartError::Bind { addr, source })?;
                let bound = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
                tokio::spawn(admin::run(listener, admin_state.clone(), admin_stop.clone().cancelled_owned()));
                Some(bound)
            }
            None => None,
        };
        let cluster = match &self.cluster {
            Some(url) => Some(Cluster::join(url, supervisor.routes()).await?),
            None => None,
        };
        if let Some(cluster) = &cluster {
            supervisor.set_uplink(cluster.uplink());
        }
        let initial_load = supervisor.reload(if self.build { Rebuild::All } else { Rebuild::None }).await;
        admin_state.set_loaded();
        let listener = server::bind(self.listen, config.listen_backlog)
            .map_err(|source| StartError::Bind { addr: self.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: self.listen, source })?;
        let routes = supervisor.routes();
        let supervisor = watch::spawn(supervisor, self.watch).map_err(StartError::Watch)?;
        let task =
            tokio::spawn(server::run(listener, routes.clone(), config.clone(), tls, stop.clone().cancelled_owned()));
        Ok(Server {
            addr,
            admin_addr,
            admin_state,
            admin_stop: admin_guard,
            drain_delay: config.drain_delay,
            initial_load,
            routes,
            supervisor,
            stop,
            task,
            cluster,
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    addr: SocketAddr,
    /// Where the admin listener listens, if anywhere.
    admin_addr: Option<SocketAddr>,
    /// What the admin listener reports.
    admin_state: Arc<AdminState>,
    /// Stops the admin listener when dropped (the last step of a stop).
    admin_stop: tokio_util::sync::DropGuard,
    /// How long not-ready is reported before sessions are closed.
    drain_delay: std::time::Duration,
    /// What loading the plugins at start did.
    initial_load: ReloadReport,
    /// The routing table, to list what is served.
    routes: Arc<arc_swap::ArcSwap<server::Routes>>,
    /// The supervisor task (watcher, SIGHUP, reloads).
    supervisor: SupervisorHandle,
    /// Cancelled to stop serving.
    stop: CancellationToken,
    /// The accept loop; ends once every session has closed.
    task: JoinHandle<()>,
    /// The cluster it is a node of, if any.
    cluster: Option<Cluster>,
}

impl Server {
    /// A server serving the plugins under `paths` (see [`ServerBuilder`]).
    pub fn builder<P: Into<PathBuf>>(runtime: Arc<Runtime>, paths: impl IntoIterator<Item = P>) -> ServerBuilder {
        ServerBuilder {
            runtime,
            paths: paths.into_iter().map(Into::into).collect(),
            config: ServerConfig::default(),
            build: false,
            watch: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            admin: None,
            cluster: None,
        }
    }

    /// Where the admin listener listens, if it was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What loading the plugins at start did (what is served, what failed).
    pub fn initial_load(&self) -> &ReloadReport {
        &self.initial_load
    }

    /// Every route served now, with its plugin's name, sorted by route.
    pub fn routes(&self) -> Vec<(String, Arc<str>)> {
        let mut routes: Vec<_> =
            self.routes.load().iter().map(|(r, e)| (r.clone(), e.endpoint.name().clone())).collect();
        routes.sort();
        routes
    }

    /// Reloads from disk now (building every plugin first if it builds) and
    /// returns what changed.
    pub async fn reload(&self) -> ReloadReport {
        self.supervisor.reload().await
    }

    /// Serves until `signal` resolves, then stops gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }

    /// Stops gracefully: reports not-ready (`/readyz` 503) for the drain
    /// delay while still serving, then stops accepting, closes every session
    /// with 1001 (waiting up to the shutdown timeout), stops watching, and
    /// ends every endpoint (each calls `on-disconnected` for any session
    /// left).
    pub async fn stop(self) {
        self.admin_state.set_stopping();
        tokio::time::sleep(self.drain_delay).await;
        self.stop.cancel();
        if self.task.await.is_err() {
            tracing::error!("the accept loop panicked");
        }
        self.supervisor.stop().await.shutdown().await;
        if let Some(cluster) = self.cluster {
            cluster.leave().await;
        }
        drop(self.admin_stop);
    }
}
