//! Harness for the end-to-end tests: starts real wasock servers on
//! `127.0.0.1:0` with plugins built from source (see `build.rs`), and drives
//! them with real WebSocket clients.
//!
//! Plugins are compiled once per test process and shared; every test gets a
//! server (and endpoint instances) of its own. The host's log is captured so
//! tests can check what plugins printed.
//!
//! - [`swap`]: a server whose plugins come from a watched directory, and
//!   helpers to change plugins on disk.

mod swap;

pub use swap::{SwapServer, bundled_wasm, rehash, replace_file, swap_plugin_dir, wasm_bytes};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wasock::endpoint::Endpoint;
use wasock::runtime::{CompileCache, CompiledPlugin, Runtime};
use wasock::{ServerConfig, loader, server};

/// How long any single expectation may wait before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The bundled example plugins' directory.
pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("WASOCK_PLUGINS_DIR"))
}

/// The compile cache the tests share (across test processes and runs: the
/// JavaScript and Python plugins take seconds to compile once).
pub fn compile_cache_dir() -> PathBuf {
    plugins_dir().join("target").join("compile-cache")
}

/// A built fixture component (`tests/fixtures/<name>`).
pub fn fixture_wasm(name: &str) -> PathBuf {
    Path::new(env!("WASOCK_FIXTURES_WASM")).join(format!("{}.wasm", name.replace('-', "_")))
}

/// The engine and every plugin the tests use, compiled once.
struct Compiled {
    runtime: Arc<Runtime>,
    plugins: HashMap<String, Arc<CompiledPlugin>>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        init_logging();
        let cache = CompileCache::new(compile_cache_dir());
        let runtime = Arc::new(Runtime::with_cache(Some(cache)).expect("engine"));
        let fixtures = tempdir();
        let lifecycle = fixture_dir(&fixtures, "lifecycle", "/lifecycle");
        let loaded = loader::load(&runtime, &[plugins_dir(), lifecycle], false);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let plugins = loaded
            .plugins
            .into_iter()
            .map(|(m, p)| (m.name, Arc::new(p)))
            .collect();
        Compiled { runtime, plugins }
    })
}

/// The shared wasmtime runtime.
pub fn runtime() -> &'static Arc<Runtime> {
    &compiled().runtime
}

/// A fresh temporary directory, removed when the process ends (or not).
pub fn tempdir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wasock-tests-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a plugin directory `<parent>/<name>` whose manifest serves the
/// fixture component `name` at `route`.
pub fn fixture_dir(parent: &Path, name: &str, route: &str) -> PathBuf {
    plugin_dir(parent, name, &fixture_manifest(name, name, route, ""))
}

/// A manifest serving fixture `fixture` as plugin `name` at `route`, with
/// `extra` TOML appended (e.g. a `[limits]` table).
pub fn fixture_manifest(fixture: &str, name: &str, route: &str, extra: &str) -> String {
    format!(
        "manifest-version = 1\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = {:?}\n{extra}",
        fixture_wasm(fixture)
    )
}

/// Compiles fixture `fixture` as plugin `name` at `route` with `extra`
/// manifest TOML (limits, grants), in a plugin directory of its own.
/// `setup` may add files to the directory before it is loaded.
pub fn compile_fixture(
    fixture: &str,
    name: &str,
    route: &str,
    extra: &str,
    setup: impl FnOnce(&Path),
) -> Arc<CompiledPlugin> {
    let dir = tempdir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    setup(&dir);
    std::fs::write(dir.join("plugin.toml"), fixture_manifest(fixture, name, route, extra)).unwrap();
    let loaded = loader::load(runtime(), &[dir], false);
    if let Some(err) = loaded.errors.first() {
        panic!("{err:#}");
    }
    Arc::new(loaded.plugins.into_iter().next().unwrap().1)
}

/// The bundled or fixture plugin compiled under `name` for every test.
pub fn plugin(name: &str) -> Arc<CompiledPlugin> {
    compiled().plugins.get(name).unwrap_or_else(|| panic!("no plugin {name}")).clone()
}

/// Writes a plugin directory `<parent>/<name>` with `manifest` as its
/// `plugin.toml`.
pub fn plugin_dir(parent: &Path, name: &str, manifest: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    dir
}

/// The default settings with a 1 s closing handshake.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        close_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    }
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves the named plugins (bundled ones, and `lifecycle`) with the
    /// default settings, but a 1 s closing handshake so that clients a test
    /// leaves unread do not hold up shutdown.
    pub async fn start(plugins: &[&str]) -> Self {
        Self::start_with(test_config(), plugins).await
    }

    /// Serves the named plugins with `config`.
    pub async fn start_with(config: ServerConfig, plugins: &[&str]) -> Self {
        Self::serve(config, plugins.iter().map(|name| plugin(name)).collect()).await
    }

    /// Serves already compiled plugins.
    pub async fn serve(config: ServerConfig, plugins: Vec<Arc<CompiledPlugin>>) -> Self {
        let config = Arc::new(config);
        let endpoints: Vec<Endpoint> = plugins
            .into_iter()
            .map(|p| Endpoint::start(p, config.clone()).expect("endpoint starts"))
            .collect();
        let routes: server::Routes = endpoints
            .iter()
            .map(|e| (e.route().to_owned(), e.handle()))
            .collect();
        let routes = Arc::new(arc_swap::ArcSwap::from_pointee(routes));
        let listener = server::bind("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::run(listener, routes, config, async {
                let _ = stopped.await;
            })
            .await;
            for endpoint in endpoints {
                endpoint.shutdown().await;
            }
        });
        Self { addr, stop: Some(stop), task }
    }

    /// `ws://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Connects a WebSocket client to `path`.
    pub async fn connect(&self, path: &str) -> Client {
        Client::connect(&self.url(path)).await.unwrap()
    }

    /// Sends `request` as raw bytes and returns the response's status code.
    pub async fn raw_status(&self, request: &str) -> u16 {
        let mut tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"))
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// A WebSocket client.
pub struct Client {
    /// The underlying stream, for tests that need raw control.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("connect timed out")??;
        Ok(Self { ws })
    }

    /// The next data or close message (pings and pongs are skipped).
    pub async fn recv(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("read error");
            if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                return msg;
            }
        }
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Message::Text(t) => t.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// The next message, which must be binary.
    pub async fn recv_binary(&mut self) -> Bytes {
        match self.recv().await {
            Message::Binary(b) => b,
            other => panic!("expected binary, got {other:?}"),
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).await.unwrap();
    }

    /// Connects to `url`, retrying while the server refuses, until [`WAIT`].
    pub async fn connect_eventually(url: &str) -> Self {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match Self::connect(url).await {
                Ok(c) => return c,
                Err(err) if tokio::time::Instant::now() > deadline => panic!("cannot connect to {url}: {err:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Reads until the server's close frame and returns it, skipping data.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("timed out waiting for close") {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// The session id the `lifecycle` fixture announces on connect.
    pub async fn lifecycle_id(&mut self) -> u64 {
        let text = self.recv_text().await;
        text.strip_prefix("id:").and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("expected id:N, got {text}"))
    }
}

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Everything the host logged so far in this test process.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// Captures the host's log (set `WASOCK_TEST_LOG=1` to also see it).
fn init_logging() {
    struct Capture;
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            LOG.lock().unwrap().extend_from_slice(buf);
            if std::env::var_os("WASOCK_TEST_LOG").is_some() {
                std::io::stderr().write_all(buf)?;
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,wasock=debug"))
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

/// Waits until `f` holds, polling, or panics after [`WAIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
