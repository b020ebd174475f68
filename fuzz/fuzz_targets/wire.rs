//! Any bytes on the wire of a real server serving the echo plugin: as the
//! HTTP request (the upgrade path), or as WebSocket frames after a valid
//! handshake (the frame and message path into the plugin), chosen by the
//! first byte. Every 64 inputs a well-behaved client must still get its
//! echo: a server that stopped serving is a crash.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let plugins = std::env::var("WASOCK_FUZZ_PLUGIN").unwrap_or_else(|_| "../plugins/echo".into());
        let addr = runtime.block_on(async {
            let wasm = std::sync::Arc::new(wasock::runtime::Runtime::new().unwrap());
            let config = wasock::ServerConfig { close_timeout: Duration::from_millis(200), ..Default::default() };
            let server = wasock::Server::builder(wasm, [plugins])
                .config(config)
                .watch(false)
                .listen("127.0.0.1:0".parse().unwrap())
                .start()
                .await
                .unwrap();
            assert!(server.initial_load().failed.is_empty(), "{:?}", server.initial_load().failed);
            let addr = server.local_addr();
            std::mem::forget(server); // serves for the whole run
            addr
        });
        Harness { runtime, addr }
    })
}

/// Reads whatever comes back for a short while.
async fn read_briefly(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(5), tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

async fn one_input(addr: SocketAddr, data: &[u8]) {
    let Ok(mut tcp) = TcpStream::connect(addr).await else { return };
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    if mode % 2 == 1 {
        let _ = tcp.write_all(UPGRADE).await;
        let head = read_briefly(&mut tcp).await;
        assert!(head.starts_with(b"HTTP/1.1 101"), "a valid upgrade was refused");
    }
    let _ = tcp.write_all(rest).await;
    read_briefly(&mut tcp).await;
}

/// A well-behaved client: handshake, one masked text frame, its echo.
async fn still_serving(addr: SocketAddr) {
    let mut tcp = TcpStream::connect(addr).await.expect("the server stopped accepting");
    tcp.write_all(UPGRADE).await.unwrap();
    let mut frame = vec![0x81, 0x82, 1, 2, 3, 4];
    frame.extend(b"hi".iter().zip([1u8, 2]).map(|(b, m)| b ^ m));
    tcp.write_all(&frame).await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.windows(12).any(|w| w == b"You said: hi") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await.expect("no echo").unwrap();
        assert!(n > 0, "closed before the echo");
        got.extend_from_slice(&buf[..n]);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let h = harness();
    h.runtime.block_on(one_input(h.addr, data));
    if RUNS.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
        h.runtime.block_on(still_serving(h.addr));
    }
});
