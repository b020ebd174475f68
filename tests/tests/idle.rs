//! An idle server: the epoch ticker parks after a second without plugin
//! calls (no CPU spent on it), and the call that wakes it is still held to
//! its deadline, waits included. A test binary of its own: the other tests
//! of a binary share its wasmtime runtime and would keep the ticker busy.

use std::time::{Duration, Instant};
use wasock_tests::{TestServer, compile_fixture, runtime, test_config, text_fault_logged};

/// Waits until the shared runtime's epoch ticker has parked.
async fn until_parked() {
    let started = Instant::now();
    while !runtime().clock().is_parked() {
        assert!(started.elapsed() < Duration::from_secs(30), "the epoch ticker never parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Parks the ticker, then has `name` run `command` (which must overrun its
/// deadline): the fault is logged with `cause` and the client gets a fresh
/// instance.
async fn stopped_after_idle(server: &TestServer, name: &str, command: &str, cause: &str) {
    let mut victim = server.connect(&format!("/{name}")).await;
    victim.send_text("ready").await;
    assert_eq!(victim.recv_text().await, "ready");
    until_parked().await;
    victim.send_text(command).await;
    assert_eq!(victim.recv_text().await, "restored:1");
    assert!(!runtime().clock().is_parked(), "the call did not wake the ticker");
    let line = text_fault_logged(name);
    assert!(line.contains(cause), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_hold_when_a_call_wakes_the_parked_ticker() {
    let looper = compile_fixture("misbehave", "looper", "/looper", "", |_| {});
    let napper = compile_fixture("misbehave", "napper", "/napper", "", |_| {});
    let server = TestServer::serve(test_config(), vec![looper, napper]).await;
    stopped_after_idle(&server, "looper", "loop", "exceeded its 100 ms call deadline").await;
    stopped_after_idle(&server, "napper", "nap-loop", "asked to wait 60ms with").await;
    server.shutdown().await;
}
