//! Hostile or broken clients: each is cut off with the right code or
//! timeout, and nobody else notices.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock::ServerConfig;
use wasock_tests::{Client, TestServer, WAIT, compile_fixture, plugin, test_config};

async fn echo_ok(c: &mut Client, text: &str) {
    c.send_text(text).await;
    assert_eq!(c.recv_text().await, format!("You said: {text}"));
}

/// Reads from a raw socket until the server closes it; returns the bytes.
async fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut all)).await.expect("server closes the socket").ok();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_cut_off_at_the_handshake_timeout() {
    let config = ServerConfig { handshake_timeout: Duration::from_millis(300), ..test_config() };
    let server = TestServer::start_with(config, &["echo"]).await;
    let mut c = server.connect("/echo").await;
    c.recv_text().await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    echo_ok(&mut c, "still served").await;
    read_to_close(&mut silent).await;
    read_to_close(&mut partial).await;
    echo_ok(&mut c, "after").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_closed_when_configured() {
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ping_interval: Duration::from_millis(50),
        ..test_config()
    };
    let server = TestServer::start_with(config, &["echo"]).await;
    let mut idle = server.connect("/echo").await;
    idle.recv_text().await;
    // Answering pings does not count as activity.
    let frame = idle.expect_close().await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "idle timeout");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_violation_closes_with_1002() {
    let server = TestServer::start(&["echo"]).await;
    let mut bystander = server.connect("/echo").await;
    bystander.recv_text().await;
    let mut c = server.connect("/echo").await;
    c.recv_text().await;
    // A ping longer than 125 bytes is a protocol error (RFC 6455 5.5).
    c.ws.send(Message::Ping(vec![0u8; 200].into())).await.unwrap();
    let frame = c.expect_close().await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Protocol);
    echo_ok(&mut bystander, "unaffected").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_at_its_connection_cap_answers_503() {
    let capped = compile_fixture("lifecycle", "capped", "/capped", "[limits]\nmax-connections = 2\n", |_| {});
    let server = TestServer::serve(test_config(), vec![capped, plugin("echo")]).await;
    let mut a = server.connect("/capped").await;
    a.lifecycle_id().await;
    let b = server.connect("/capped").await;
    let err = Client::connect(&server.url("/capped")).await.expect_err("refused").to_string();
    assert!(err.contains("503"), "{err}");
    let mut echo = server.connect("/echo").await;
    echo.recv_text().await;
    echo_ok(&mut echo, "other endpoints still admit").await;
    drop(b);
    let mut c = Client::connect_eventually(&server.url("/capped")).await;
    c.lifecycle_id().await;
    assert!(a.recv_text().await.starts_with("gone:"));
    a.send_text("fine").await;
    assert_eq!(a.recv_text().await, "fine");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_waits_at_the_server_cap_while_existing_clients_are_served() {
    let config = ServerConfig { max_connections: 4, ..test_config() };
    let server = TestServer::start_with(config, &["echo"]).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut c = server.connect("/echo").await;
        c.recv_text().await;
        clients.push(c);
    }
    // Over the cap: the TCP connect lands in the backlog, but no one answers.
    let waiting = tokio::spawn(tokio_tungstenite::connect_async(server.url("/echo")));
    let mut flood = Vec::new();
    for _ in 0..50 {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for c in &mut clients {
        echo_ok(c, "served").await;
    }
    assert!(!waiting.is_finished());
    drop(flood);
    // One leaves: the waiting client gets its turn.
    clients.pop();
    let (mut ws, _) = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    let welcome = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut ws)).await.unwrap();
    assert_eq!(welcome.unwrap().unwrap(), Message::text("Welcome to the chat room!"));
    server.shutdown().await;
}

/// A client that sends but never reads is not read either (backpressure),
/// so its queue never refuses a write; it is dropped once a write to it has
/// waited `stall-timeout-ms`, not after the 75 s heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_at_the_stall_timeout() {
    let stalling = compile_fixture("lifecycle", "stall", "/stall", "[limits]\nstall-timeout-ms = 500\n", |_| {});
    let server = TestServer::serve(test_config(), vec![stalling]).await;
    let mut c = server.connect("/stall").await;
    let id = c.lifecycle_id().await;
    // Echoes of 256 KiB texts, never read: far more than the socket
    // buffers hold.
    let (mut sink, unread) = c.ws.split();
    let sender = tokio::spawn(async move {
        let big = "x".repeat(256 << 10);
        for _ in 0..400 {
            if sink.send(Message::text(big.as_str())).await.is_err() {
                break;
            }
        }
    });
    let gone = format!("disconnected {id} ");
    wasock_tests::eventually("the stalled session to end", || wasock_tests::logs().contains(&gone)).await;
    assert!(wasock_tests::logs().contains("client stopped reading (limits.stall-timeout-ms)"));
    sender.abort();
    drop(unread);
    server.shutdown().await;
}

/// `max-connections-per-ip`: an address over its cap gets 429, other
/// connections are untouched, and a slot comes back when one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_address_over_its_connection_cap_gets_429() {
    let config = ServerConfig { max_connections_per_ip: Some(2), ..test_config() };
    let server = TestServer::start_with(config, &["echo"]).await;
    let mut first = server.connect("/echo").await;
    first.recv_text().await;
    let mut second = server.connect("/echo").await;
    second.recv_text().await;
    let err = Client::connect(&server.url("/echo")).await.expect_err("a third from the same address").to_string();
    assert!(err.contains("429"), "{err}");
    echo_ok(&mut second, "still served").await;
    drop(first);
    let mut third = Client::connect_eventually(&server.url("/echo")).await;
    third.recv_text().await;
    echo_ok(&mut third, "in").await;
    server.shutdown().await;
}
