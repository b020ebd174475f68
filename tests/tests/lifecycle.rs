//! `on-disconnected` is called exactly once per session, whatever ended it,
//! and a trapping plugin is replaced without dropping its clients.

use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock::ServerConfig;
use wasock_tests::{Client, TestServer, compile_fixture, logs, test_config};

/// Reads the watcher's messages until `gone:<id>`; only heartbeat `pong`s
/// may come before it.
async fn await_gone(watcher: &mut Client, id: u64) {
    loop {
        let text = watcher.recv_text().await;
        if text == format!("gone:{id}") {
            return;
        }
        assert_eq!(text, "pong", "unexpected message while waiting for gone:{id}");
    }
}

/// Round-trips a marker through the watcher's own session: every event
/// queued before it has been handled, so no late duplicate can hide.
async fn sync(watcher: &mut Client) {
    watcher.send_text("sync").await;
    loop {
        let text = watcher.recv_text().await;
        if text == "sync" {
            return;
        }
        assert_eq!(text, "pong", "unexpected message (a duplicate disconnect?)");
    }
}

fn disconnect_lines(id: u64) -> usize {
    logs().lines().filter(|l| l.contains(&format!("disconnected {id} "))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_disconnected_runs_once_for_every_way_a_session_ends() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let lifecycle =
        compile_fixture("lifecycle", "lifecycle", "/lifecycle", "[limits]\nmax-message-bytes = 1000\n", |_| {});
    let server = TestServer::serve(config, vec![lifecycle]).await;
    let mut watcher = server.connect("/lifecycle?role=watcher").await;
    watcher.lifecycle_id().await;
    let mut ended = Vec::new();

    // The client's close frame.
    let mut c = server.connect("/lifecycle?end=client-close").await;
    let id = c.lifecycle_id().await;
    c.ws.close(None).await.unwrap();
    await_gone(&mut watcher, id).await;
    ended.push(id);

    // The TCP connection dropped without a close frame.
    let mut c = server.connect("/lifecycle?end=tcp-drop").await;
    let id = c.lifecycle_id().await;
    drop(c);
    await_gone(&mut watcher, id).await;
    ended.push(id);

    // The plugin's own close.
    let mut c = server.connect("/lifecycle?end=plugin-close").await;
    let id = c.lifecycle_id().await;
    c.send_text("close").await;
    let frame = c.expect_close().await.unwrap();
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(frame.reason.as_str(), "asked to close");
    await_gone(&mut watcher, id).await;
    ended.push(id);

    // A protocol violation (message over the limit).
    let mut c = server.connect("/lifecycle?end=too-big").await;
    let id = c.lifecycle_id().await;
    c.send_text(&"x".repeat(2000)).await;
    assert_eq!(c.expect_close().await.unwrap().code, CloseCode::Size);
    await_gone(&mut watcher, id).await;
    ended.push(id);

    // A client that stops answering heartbeats (it never reads again).
    let mut c = server.connect("/lifecycle?end=silent").await;
    let id = c.lifecycle_id().await;
    await_gone(&mut watcher, id).await;
    ended.push(id);
    drop(c);

    sync(&mut watcher).await;
    for id in ended {
        assert_eq!(disconnect_lines(id), 1, "session {id}: {}", logs());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_with_1001_and_ends_every_session_once() {
    let server = TestServer::start(&["lifecycle", "echo"]).await;
    let mut ids = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut c = server.connect("/lifecycle").await;
        ids.push(c.lifecycle_id().await);
        readers.push(tokio::spawn(async move { c.expect_close().await }));
    }
    // One client never reads, so it never answers the close: the server
    // gives up on it after the closing handshake timeout.
    let mut silent = server.connect("/lifecycle").await;
    ids.push(silent.lifecycle_id().await);
    let mut echo = server.connect("/echo").await;
    echo.recv_text().await;
    let echo_reader = tokio::spawn(async move { echo.expect_close().await });

    server.shutdown().await;
    for r in readers {
        let frame = r.await.unwrap().expect("close frame");
        assert_eq!(frame.code, CloseCode::Away);
    }
    assert_eq!(echo_reader.await.unwrap().unwrap().code, CloseCode::Away);
    for id in &ids {
        assert_eq!(disconnect_lines(*id), 1, "session {id}: {}", logs());
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_restarts_the_plugin_and_keeps_its_clients() {
    let server = TestServer::start(&["lifecycle", "echo"]).await;
    let mut watcher = server.connect("/lifecycle").await;
    watcher.lifecycle_id().await;
    let mut c = server.connect("/lifecycle").await;
    let id = c.lifecycle_id().await;
    let mut echo = server.connect("/echo").await;
    echo.recv_text().await;

    c.send_text("panic").await;
    c.send_text("still here").await;
    assert_eq!(c.recv_text().await, "still here");
    watcher.send_text("me too").await;
    assert_eq!(watcher.recv_text().await, "me too");
    echo.send_text("unaffected").await;
    assert_eq!(echo.recv_text().await, "You said: unaffected");
    let log = logs();
    assert!(log.contains("plugin=lifecycle handler=\"handle-text\""), "{log}");
    assert!(log.contains("asked to panic"), "{log}");

    // The fresh instance still ends sessions that began before the trap.
    drop(c);
    await_gone(&mut watcher, id).await;
    server.shutdown().await;
}
