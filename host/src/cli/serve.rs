//! `wasock serve [--listen ADDR] [--build] PATH...`: loads the plugins, starts
//! one endpoint per plugin and serves until ctrl-c or SIGTERM, swapping in
//! plugins as they change on disk (or on SIGHUP).

use crate::config::ServerConfig;
use crate::runtime::{CompileCache, Runtime};
use crate::server;
use crate::supervisor::{Rebuild, Supervisor, watch};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `wasock serve`.
#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Run each plugin's build command before loading it, and again when
    /// its sources change.
    #[arg(long)]
    build: bool,
    /// Do not watch the plugin paths for changes (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
    /// Connections held at once, across all endpoints.
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Seconds between heartbeat pings.
    #[arg(long, default_value_t = ServerConfig::default().ping_interval.as_secs())]
    ping_interval: u64,
    /// Seconds a client may stay silent (no pong, no message) before it is dropped.
    #[arg(long, default_value_t = ServerConfig::default().pong_timeout.as_secs())]
    pong_timeout: u64,
    /// Seconds a client may take to send its upgrade request.
    #[arg(long, default_value_t = ServerConfig::default().handshake_timeout.as_secs())]
    handshake_timeout: u64,
    /// Close sessions that sent no message for this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    idle_timeout: u64,
    /// Seconds graceful shutdown waits for sessions to close.
    #[arg(long, default_value_t = ServerConfig::default().shutdown_timeout.as_secs())]
    shutdown_timeout: u64,
    /// Where compiled plugins are cached [default: $WASOCK_CACHE_DIR,
    /// $XDG_CACHE_HOME/wasock or ~/.cache/wasock].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin from scratch; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Plugin directories, or directories holding plugin directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl Serve {
    /// Serves until a shutdown signal.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Arc::new(ServerConfig {
            max_connections: self.max_connections.max(1),
            handshake_timeout: Duration::from_secs(self.handshake_timeout.max(1)),
            idle_timeout: (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout)),
            ping_interval: Duration::from_secs(self.ping_interval.max(1)),
            pong_timeout: Duration::from_secs(self.pong_timeout.max(1)),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            ..ServerConfig::default()
        });
        let runtime = Arc::new(Runtime::with_cache(compile_cache(self.cache_dir, self.no_cache))?);
        let tokio = tokio::runtime::Runtime::new()?;
        tokio.block_on(async {
            let mut supervisor = Supervisor::new(runtime, config.clone(), self.paths, self.build);
            let initial = if self.build { Rebuild::All } else { Rebuild::None };
            supervisor.reload(initial).await;
            if supervisor.is_empty() && self.no_watch {
                anyhow::bail!("no plugin could be served");
            }
            let listener = server::bind(self.listen, config.listen_backlog)
                .with_context(|| format!("cannot listen on {}", self.listen))?;
            let addr = listener.local_addr()?;
            for (route, endpoint) in supervisor.routes().load().iter() {
                tracing::info!(plugin = %endpoint.name(), "serving ws://{addr}{route}");
            }
            let routes = supervisor.routes();
            let supervisor = watch::spawn(supervisor, !self.no_watch)?;
            tracing::info!("listening on {addr}");
            server::run(listener, routes, config, shutdown_signal()).await;
            supervisor.stop().await.shutdown().await;
            tracing::info!("server stopped");
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The compile cache the flags ask for: `--no-cache`, `--cache-dir`, or the
/// default location (none if there is no home directory to put it in).
pub(super) fn compile_cache(dir: Option<PathBuf>, disabled: bool) -> Option<CompileCache> {
    if disabled {
        return None;
    }
    let cache = dir.or_else(CompileCache::default_dir).map(CompileCache::new);
    match &cache {
        Some(c) => tracing::debug!(dir = %c.dir().display(), "compile cache"),
        None => tracing::warn!("no compile cache: set --cache-dir or WASOCK_CACHE_DIR"),
    }
    cache
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
