//! `wasock.toml`: every `serve` setting in a file, so a deployment is one
//! file under version control rather than a command line. Flags given on
//! the command line override it.
//!
//! ```toml
//! config-version = 1
//! listen = "0.0.0.0:8080"
//! admin = "127.0.0.1:9090"
//! plugins = ["plugins"]          # relative to this file
//! cluster = "nats://10.0.0.5:4222"  # optional: join a cluster
//!
//! [tls]
//! cert = "cert.pem"
//! key = "key.pem"
//!
//! [limits]
//! max-connections-per-ip = 100
//! idle-timeout-secs = 300
//! ```
//!
//! Unknown fields are errors; an error names the file, the line and the
//! field. Paths are relative to the file's directory.

use crate::manifest::parse_message;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The name `serve` looks for in the current directory.
pub const DEFAULT_FILE: &str = "wasock.toml";

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the line and the field where the parser knows.
    pub message: String,
}

/// The file as written (kebab-case keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    /// Schema version; must be 1.
    config_version: u32,
    /// Where to listen for WebSocket clients (default 127.0.0.1:8080).
    listen: Option<SocketAddr>,
    /// Where the admin listener listens (off unless given).
    admin: Option<SocketAddr>,
    /// Plugin directories, or directories holding plugin directories.
    #[serde(default)]
    plugins: Vec<PathBuf>,
    /// Run each plugin's build command (default false).
    build: Option<bool>,
    /// Watch the plugin paths for changes (default true).
    watch: Option<bool>,
    /// Serve `wss://`.
    tls: Option<Tls>,
    /// Join the cluster of this NATS server (`nats://HOST:PORT`).
    cluster: Option<String>,
    /// The compile cache.
    #[serde(default)]
    cache: Cache,
    /// Server-wide limits and timeouts.
    #[serde(default)]
    limits: Limits,
}

/// `[tls]`: both files are required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tls {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// `[cache]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cache {
    /// Where compiled plugins are cached (default: $WASOCK_CACHE_DIR,
    /// $XDG_CACHE_HOME/wasock or ~/.cache/wasock).
    pub dir: Option<PathBuf>,
    /// `false` compiles every plugin from scratch (default true).
    pub enabled: Option<bool>,
}

/// `[limits]`: what `serve`'s flags of the same names set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Connections held at once, across all endpoints (default 18 000).
    pub max_connections: Option<usize>,
    /// Connections one client address may hold (0: no cap, the default).
    pub max_connections_per_ip: Option<usize>,
    /// Seconds between heartbeat pings (default 30).
    pub ping_interval_secs: Option<u64>,
    /// Seconds a client may stay silent before it is dropped (default 75).
    pub pong_timeout_secs: Option<u64>,
    /// Seconds a client may take to send its upgrade request (default 10).
    pub handshake_timeout_secs: Option<u64>,
    /// Close sessions that sent no message this long (0: never, the default).
    pub idle_timeout_secs: Option<u64>,
    /// Seconds graceful shutdown waits for sessions to close (default 10).
    pub shutdown_timeout_secs: Option<u64>,
    /// Seconds a stopping server stays not-ready before closing sessions
    /// (default 0).
    pub drain_delay_secs: Option<u64>,
}

/// A parsed `wasock.toml`, paths resolved against its directory. `None`
/// means "not set here": the flag, or the default, decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file it came from.
    pub path: PathBuf,
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `admin`.
    pub admin: Option<SocketAddr>,
    /// `plugins`, resolved.
    pub plugins: Vec<PathBuf>,
    /// `build`.
    pub build: Option<bool>,
    /// `watch`.
    pub watch: Option<bool>,
    /// `[tls]`, resolved.
    pub tls: Option<Tls>,
    /// `cluster`.
    pub cluster: Option<String>,
    /// `[cache]`, resolved.
    pub cache: Cache,
    /// `[limits]`.
    pub limits: Limits,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { path: path.to_owned(), message: format!("cannot read: {e}") })?;
        Self::parse(&text, path)
    }

    /// Parses `text` as the file at `path` (whose directory relative paths
    /// are resolved against).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError { path: path.to_owned(), message };
        let raw: Raw = toml::from_str(text).map_err(|e| error(parse_message(text, &e)))?;
        if raw.config_version != 1 {
            return Err(error(format!("field `config-version`: must be 1, found {}", raw.config_version)));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        Ok(Self {
            path: path.to_owned(),
            listen: raw.listen,
            admin: raw.admin,
            plugins: raw.plugins.into_iter().map(resolve).collect(),
            build: raw.build,
            watch: raw.watch,
            tls: raw.tls.map(|t| Tls { cert: resolve(t.cert), key: resolve(t.key) }),
            cluster: raw.cluster,
            cache: Cache { dir: raw.cache.dir.map(resolve), enabled: raw.cache.enabled },
            limits: raw.limits,
        })
    }
}
