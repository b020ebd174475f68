//! An idle server: the epoch ticker parks after a second without plugin
//! calls (no CPU spent on it), and the call that wakes it is still held to
//! its deadline, waits included; under steady short calls it wakes about
//! once a deadline, not every tick. A test binary of its own: the other
//! tests of a binary share its wasmtime runtime and would keep the ticker
//! busy (the two here take turns, for the same reason).

use std::time::{Duration, Instant};
use wasock_tests::{TestServer, compile_fixture, runtime, test_config, text_fault_logged};

/// The tests here take turns with the shared runtime's ticker.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _turn = TURN.lock().await;
    let looper = compile_fixture("misbehave", "looper", "/looper", "", |_| {});
    let napper = compile_fixture("misbehave", "napper", "/napper", "", |_| {});
    let server = TestServer::serve(test_config(), vec![looper, napper]).await;
    stopped_after_idle(&server, "looper", "loop", "exceeded its 100 ms call deadline").await;
    stopped_after_idle(&server, "napper", "nap-loop", "asked to wait 60ms with").await;
    server.shutdown().await;
}

/// A client sending every 10 ms keeps plugin calls coming, each far shorter
/// than its 100 ms deadline: the ticker wakes about once per deadline (the
/// bound allows twice that and three more), where it woke every tick before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_short_calls_wake_the_ticker_about_once_a_deadline() {
    let _turn = TURN.lock().await;
    let echo = compile_fixture("misbehave", "echo", "/echo", "", |_| {});
    let server = TestServer::serve(test_config(), vec![echo]).await;
    let mut client = server.connect("/echo").await;
    client.send_text("ready").await;
    assert_eq!(client.recv_text().await, "ready");
    let clock = runtime().clock();
    let (woken, started) = (clock.wakeups(), Instant::now());
    for i in 0..60 {
        client.send_text(&i.to_string()).await;
        assert_eq!(client.recv_text().await, i.to_string());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ticks = u64::try_from(started.elapsed().as_millis() / 10).unwrap();
    let (wakeups, bound) = (clock.wakeups() - woken, ticks / 5 + 3);
    assert!(wakeups <= bound, "{wakeups} wake-ups in {ticks} ticks of short calls (at most {bound})");
    server.shutdown().await;
}
