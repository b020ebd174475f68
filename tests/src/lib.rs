//! Harness for the end-to-end tests: starts real wasock servers on
//! `127.0.0.1:0` with plugins built from source (see `build.rs`), and drives
//! them with real WebSocket clients.
//!
//! Every test server is a [`wasock::Server`], started the way `wasock serve`
//! starts one, from plugin directories: the bundled plugins, the fixtures
//! (in plugin directories the harness writes) or a directory a test
//! changes. One engine and one on-disk compile cache serve the whole test
//! process, so a plugin is compiled once and later servers load it from the
//! cache. The host's log is captured so tests can check what plugins
//! printed.
//!
//! - [`swap`]: helpers that change plugins on disk the way a deploy would.
//! - [`cli`]: the real `wasock` binary as a child process.
//! - [`http`]: a plain HTTP/1.1 client (static files, admin).
//! - [`raw`]: a frame-level WebSocket client (extension offers, deflate).

pub mod cli;
pub mod http;
pub mod nats;
pub mod raw;
mod swap;

pub use http::get as http_get;
pub use swap::{bundled_wasm, rehash, replace_file, swap_plugin_dir, wasm_bytes};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wasock::runtime::{CompileCache, Runtime};
use wasock::supervisor::ReloadReport;
use wasock::{Server, ServerConfig};

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

/// The wasmtime runtime every test server of this process shares, caching
/// compiled plugins in [`compile_cache_dir`].
pub fn runtime() -> &'static Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        init_logging();
        let cache = CompileCache::new(compile_cache_dir());
        Arc::new(Runtime::with_cache(Some(cache)).expect("engine"))
    })
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

/// A plugin directory of its own serving fixture `fixture` as plugin
/// `name` at `route` with `extra` manifest TOML (limits, grants). `setup`
/// may add files to the directory before it is loaded.
pub fn compile_fixture(fixture: &str, name: &str, route: &str, extra: &str, setup: impl FnOnce(&Path)) -> PathBuf {
    let dir = tempdir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    setup(&dir);
    std::fs::write(dir.join("plugin.toml"), fixture_manifest(fixture, name, route, extra)).unwrap();
    dir
}

/// The directory of bundled plugin `name`, or of the `lifecycle` fixture
/// at `/lifecycle`.
pub fn plugin(name: &str) -> PathBuf {
    if name == "lifecycle" {
        static LIFECYCLE: OnceLock<PathBuf> = OnceLock::new();
        return LIFECYCLE.get_or_init(|| fixture_dir(&tempdir(), "lifecycle", "/lifecycle")).clone();
    }
    let dir = plugins_dir().join(name);
    assert!(dir.join("plugin.toml").is_file(), "no plugin {name}");
    dir
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
    ServerConfig { close_timeout: Duration::from_secs(1), ..ServerConfig::default() }
}

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server.
    server: Server,
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

    /// Serves the plugin directories `plugins` with `config`, unwatched; every
    /// plugin must load.
    pub async fn serve(config: ServerConfig, plugins: Vec<PathBuf>) -> Self {
        Self::serve_on(runtime().clone(), config, plugins, false).await
    }

    /// Serves the plugin directories under `dir`, watching them if `watch`
    /// (a hot-swap test's server); every plugin must load.
    pub async fn watch(dir: &Path, watch: bool) -> Self {
        Self::serve_on(runtime().clone(), test_config(), vec![dir.to_path_buf()], watch).await
    }

    /// Like [`watch`](Self::watch), running build commands (initially, and
    /// when a plugin's sources change) if `build`.
    pub async fn watch_with_build(dir: &Path, watch: bool, build: bool) -> Self {
        let builder = Server::builder(runtime().clone(), [dir]).config(test_config()).build_plugins(build);
        Self::start_server(builder.watch(watch)).await
    }

    /// Serves `plugins` on `runtime`, watching them if `watch`.
    pub async fn serve_on(runtime: Arc<Runtime>, config: ServerConfig, plugins: Vec<PathBuf>, watch: bool) -> Self {
        Self::start_server(Server::builder(runtime, plugins).config(config).watch(watch)).await
    }

    /// Serves the named plugins with `config` and an admin listener.
    pub async fn with_admin(config: ServerConfig, plugins: &[&str]) -> Self {
        Self::serve_with_admin(config, plugins.iter().map(|name| plugin(name)).collect()).await
    }

    /// Serves the plugin directories `plugins` with `config` and an admin
    /// listener.
    pub async fn serve_with_admin(config: ServerConfig, plugins: Vec<PathBuf>) -> Self {
        let builder = Server::builder(runtime().clone(), plugins).config(config).watch(false);
        Self::start_server(builder.admin(Some("127.0.0.1:0".parse().unwrap()))).await
    }

    /// The admin listener's address.
    pub fn admin_url_addr(&self) -> SocketAddr {
        self.server.admin_addr().expect("started with an admin listener")
    }

    /// `GET path` on the admin listener: the status code and the body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let addr = self.server.admin_addr().expect("started with an admin listener");
        http_get(addr, path).await
    }

    async fn start_server(builder: wasock::ServerBuilder) -> Self {
        let server = builder.listen("127.0.0.1:0".parse().unwrap()).start().await.expect("server starts");
        let failed = &server.initial_load().failed;
        assert!(failed.is_empty(), "{failed:?}");
        Self { addr: server.local_addr(), server }
    }

    /// Reloads from disk now.
    pub async fn reload(&self) -> ReloadReport {
        self.server.reload().await
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
    pub async fn shutdown(self) {
        tokio::time::timeout(Duration::from_secs(30), self.server.stop()).await.expect("server stops");
    }
}

/// A WebSocket client.
#[derive(Debug)]
pub struct Client {
    /// The underlying stream, for tests that need raw control.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The server's answer to a WebSocket upgrade: its headers, and its body
/// if it refused.
pub type Answer = tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>;

impl Client {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (ws, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.context("connect timed out")??;
        Ok(Self { ws })
    }

    /// Connects to `url` offering subprotocols `protocols`: the client and
    /// the 101 response, or the response (status, headers, body) that
    /// refused the upgrade.
    pub async fn connect_offering(url: &str, protocols: &[&str]) -> Result<(Self, Answer), Answer> {
        use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
        let mut request = url.into_client_request().unwrap();
        if !protocols.is_empty() {
            request.headers_mut().insert("sec-websocket-protocol", protocols.join(", ").parse().unwrap());
        }
        let connect = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request));
        match connect.await.expect("connect timed out") {
            Ok((ws, answer)) => Ok((Self { ws }, answer)),
            Err(Error::Http(answer)) => {
                let (parts, body) = (*answer).into_parts();
                Err(Answer::from_parts(parts, body.map(|b| b.to_vec())))
            }
            Err(err) => panic!("cannot connect to {url}: {err}"),
        }
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

/// The log line of the fault `plugin`'s `handle-text` call caused (a trap,
/// an overrun); panics with the whole log if there is none.
pub fn text_fault_logged(plugin: &str) -> String {
    let log = logs();
    let line = log.lines().find(|l| l.contains(&format!("plugin={plugin} handler=\"handle-text\"")));
    line.map(str::to_owned).unwrap_or_else(|| panic!("no fault logged for {plugin}:\n{log}"))
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

/// Waits until the future `f` makes resolves true, polling, or panics after
/// [`WAIT`].
pub async fn eventually_async<F: Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `f` holds, polling, or panics after [`WAIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
