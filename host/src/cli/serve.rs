//! `wasock serve [--listen ADDR] [--build] PATH...`: turns the flags into a
//! [`Server`] and serves until ctrl-c or SIGTERM (the server swaps in
//! plugins as they change on disk, or on SIGHUP).

use crate::app::Server;
use crate::config::ServerConfig;
use crate::runtime::{CompileCache, Runtime};
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
    /// Serve /healthz, /readyz, /status and /metrics on this address (off
    /// unless given).
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// Serve wss:// with this certificate chain (PEM); re-read on SIGHUP.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a stopping server reports not-ready (/readyz 503) while still
    /// serving, before it closes sessions.
    #[arg(long, default_value_t = 0)]
    drain_delay: u64,
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
    /// Connections one client address may hold at once (0: no cap); more
    /// get 429.
    #[arg(long, default_value_t = 0)]
    max_connections_per_ip: usize,
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
    #[command(flatten)]
    cache: CacheArgs,
    /// Plugin directories, or directories holding plugin directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl Serve {
    /// Serves until a shutdown signal.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = ServerConfig {
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: (self.max_connections_per_ip > 0).then_some(self.max_connections_per_ip),
            handshake_timeout: Duration::from_secs(self.handshake_timeout.max(1)),
            idle_timeout: (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout)),
            ping_interval: Duration::from_secs(self.ping_interval.max(1)),
            pong_timeout: Duration::from_secs(self.pong_timeout.max(1)),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            drain_delay: Duration::from_secs(self.drain_delay),
            ..ServerConfig::default()
        };
        let runtime = Arc::new(Runtime::with_cache(self.cache.compile_cache())?);
        let tokio = tokio::runtime::Runtime::new()?;
        tokio.block_on(async {
            let server = Server::builder(runtime, self.paths)
                .config(config)
                .build_plugins(self.build)
                .watch(!self.no_watch)
                .listen(self.listen)
                .admin(self.admin)
                .tls(self.tls_cert.zip(self.tls_key).map(|(cert, key)| crate::server::tls::TlsFiles { cert, key }))
                .start()
                .await?;
            let addr = server.local_addr();
            let routes = server.routes();
            if routes.is_empty() && self.no_watch {
                server.stop().await;
                anyhow::bail!("no plugin could be served");
            }
            for (route, plugin) in routes {
                tracing::info!(plugin = %plugin, "serving ws://{addr}{route}");
            }
            if let Some(admin) = server.admin_addr() {
                tracing::info!("admin endpoints on http://{admin} (/healthz /readyz /status /metrics)");
            }
            tracing::info!("listening on {addr}");
            server.run_until(shutdown_signal()).await;
            tracing::info!("server stopped");
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Where compiled plugins are cached (`serve` and `check`).
#[derive(Debug, Args)]
pub(super) struct CacheArgs {
    /// Where compiled plugins are cached [default: $WASOCK_CACHE_DIR,
    /// $XDG_CACHE_HOME/wasock or ~/.cache/wasock].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin from scratch; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    /// The compile cache the flags ask for: `--no-cache`, `--cache-dir`, or
    /// the default location (none if there is no home directory to put it
    /// in).
    pub(super) fn compile_cache(self) -> Option<CompileCache> {
        if self.no_cache {
            return None;
        }
        let cache = self.cache_dir.or_else(CompileCache::default_dir).map(CompileCache::new);
        match &cache {
            Some(c) => tracing::debug!(dir = %c.dir().display(), "compile cache"),
            None => tracing::warn!("no compile cache: set --cache-dir or WASOCK_CACHE_DIR"),
        }
        cache
    }
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
