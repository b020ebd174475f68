//! `wasock serve [--config FILE] [--listen ADDR] [--build] [PATH...]`: turns
//! the flags, over the settings of `wasock.toml` (`--config FILE`, or
//! `./wasock.toml` when no PATH is given), into a [`Server`] and serves until
//! ctrl-c or SIGTERM (the server swaps in plugins as they change on disk, or
//! on SIGHUP). A flag given on the command line wins over the file.

use crate::app::Server;
use crate::config::ServerConfig;
use crate::config::file::{ConfigFile, DEFAULT_FILE};
use crate::runtime::{CompileCache, Runtime};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `wasock serve`. Every setting is optional here: unset, the
/// config file's value applies, else the default (shown in brackets).
#[derive(Debug, Args)]
pub struct Serve {
    /// Read settings from this file [default: ./wasock.toml when no PATH is
    /// given and it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
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
    /// Join the cluster of this NATS server (nats://HOST:PORT): topics and
    /// broadcasts reach the sessions of every node (off unless given).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// Seconds a stopping server reports not-ready (/readyz 503) while still
    /// serving, before it closes sessions [default: 0].
    #[arg(long)]
    drain_delay: Option<u64>,
    /// Run each plugin's build command before loading it, and again when
    /// its sources change.
    #[arg(long)]
    build: bool,
    /// Do not watch the plugin paths for changes (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
    /// Connections held at once, across all endpoints [default: 18000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections one client address may hold at once (0: no cap); more
    /// get 429 [default: 0].
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Seconds between heartbeat pings [default: 30].
    #[arg(long)]
    ping_interval: Option<u64>,
    /// Seconds a client may stay silent (no pong, no message) before it is
    /// dropped [default: 75].
    #[arg(long)]
    pong_timeout: Option<u64>,
    /// Seconds a client may take to send its upgrade request [default: 10].
    #[arg(long)]
    handshake_timeout: Option<u64>,
    /// Close sessions that sent no message for this many seconds (0: never)
    /// [default: 0].
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// Seconds graceful shutdown waits for sessions to close [default: 10].
    #[arg(long)]
    shutdown_timeout: Option<u64>,
    #[command(flatten)]
    cache: CacheArgs,
    /// Plugin directories, or directories holding plugin directories
    /// [default: the config file's `plugins`].
    paths: Vec<PathBuf>,
}

/// The config file that applies: `--config`, or `./wasock.toml` if no path
/// was given and it exists.
fn config_file(given: Option<&Path>, paths: &[PathBuf]) -> anyhow::Result<Option<ConfigFile>> {
    let path = match given {
        Some(path) => path.to_owned(),
        None if paths.is_empty() && Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(None),
    };
    Ok(Some(ConfigFile::read(&path)?))
}

impl Serve {
    /// Serves until a shutdown signal.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let file = config_file(self.config.as_deref(), &self.paths)?;
        let file = file.as_ref();
        let limits = file.map(|f| f.limits.clone()).unwrap_or_default();
        let secs = |flag: Option<u64>, from_file: Option<u64>, default: Duration| {
            flag.or(from_file).map_or(default, Duration::from_secs)
        };
        let defaults = ServerConfig::default();
        let per_ip = self.max_connections_per_ip.or(limits.max_connections_per_ip).unwrap_or(0);
        let idle = self.idle_timeout.or(limits.idle_timeout_secs).unwrap_or(0);
        let config = ServerConfig {
            max_connections: self.max_connections.or(limits.max_connections).unwrap_or(defaults.max_connections).max(1),
            max_connections_per_ip: (per_ip > 0).then_some(per_ip),
            handshake_timeout: secs(self.handshake_timeout, limits.handshake_timeout_secs, defaults.handshake_timeout)
                .max(Duration::from_secs(1)),
            idle_timeout: (idle > 0).then(|| Duration::from_secs(idle)),
            ping_interval: secs(self.ping_interval, limits.ping_interval_secs, defaults.ping_interval)
                .max(Duration::from_secs(1)),
            pong_timeout: secs(self.pong_timeout, limits.pong_timeout_secs, defaults.pong_timeout)
                .max(Duration::from_secs(1)),
            shutdown_timeout: secs(self.shutdown_timeout, limits.shutdown_timeout_secs, defaults.shutdown_timeout),
            drain_delay: secs(self.drain_delay, limits.drain_delay_secs, defaults.drain_delay),
            ..defaults
        };
        let paths =
            if self.paths.is_empty() { file.map(|f| f.plugins.clone()).unwrap_or_default() } else { self.paths };
        if paths.is_empty() {
            anyhow::bail!(
                "no plugin paths: give PATH..., or a config file (--config FILE or ./{DEFAULT_FILE}) with `plugins`"
            );
        }
        let listen = self.listen.or(file.and_then(|f| f.listen)).unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let admin = self.admin.or(file.and_then(|f| f.admin));
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::server::tls::TlsFiles { cert, key }),
            _ => file.and_then(|f| f.tls.clone()).map(|t| crate::server::tls::TlsFiles { cert: t.cert, key: t.key }),
        };
        let cluster = self.cluster.or_else(|| file.and_then(|f| f.cluster.clone()));
        let build = self.build || file.and_then(|f| f.build).unwrap_or(false);
        let watch = !self.no_watch && file.and_then(|f| f.watch).unwrap_or(true);
        let cache = self.cache.or_file(file.map(|f| &f.cache));
        let no_watch = !watch;
        let runtime = Arc::new(Runtime::with_cache(cache.compile_cache())?);
        let tokio = tokio::runtime::Runtime::new()?;
        tokio.block_on(async {
            let server = Server::builder(runtime, paths)
                .config(config)
                .build_plugins(build)
                .watch(watch)
                .listen(listen)
                .admin(admin)
                .tls(tls)
                .cluster(cluster)
                .start()
                .await?;
            let addr = server.local_addr();
            let routes = server.routes();
            if routes.is_empty() && no_watch {
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
    /// These flags over the config file's `[cache]`: a flag wins.
    fn or_file(self, file: Option<&crate::config::file::Cache>) -> Self {
        let Some(file) = file else { return self };
        if self.no_cache || self.cache_dir.is_some() {
            return self;
        }
        Self { cache_dir: file.dir.clone(), no_cache: file.enabled == Some(false) }
    }

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
