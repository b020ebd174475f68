//! Client messages queued behind one another reach a Rust plugin in one
//! call (the SDK exports `messages`), and nothing a client sees changes:
//! each message has the call deadline to itself, a session the plugin closed
//! gets no more messages, and a trap mid-batch loses only the message that
//! trapped (found by replaying when the plugin could not say which). In each test one client's `spin` keeps the instance busy while
//! the messages of the test queue up behind it, and the endpoint's
//! `messages_batched` counter shows that they were handed over together;
//! a batch holding several sessions' messages answers each on its own.

use std::time::Duration;
use wasock::ServerConfig;
use wasock_tests::{Client, TestServer, compile_fixture, test_config};

/// Serves the `misbehave` fixture at `/bad` with `limits`, and the admin
/// listener.
async fn server(limits: &str) -> TestServer {
    let bad = compile_fixture("misbehave", "batched", "/bad", limits, |_| {});
    TestServer::serve_with_admin(test_config(), vec![bad]).await
}

/// `n` clients of `/bad`, each answered once (so the endpoint has them all).
async fn clients(server: &TestServer, n: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = server.connect("/bad").await;
        c.send_text("ready").await;
        assert_eq!(c.recv_text().await, "ready");
        clients.push(c);
    }
    clients
}

/// The value of the admin listener's metric `key` (name and labels).
async fn metric(server: &TestServer, key: &str) -> f64 {
    let (status, body) = server.admin_get("/metrics").await;
    assert_eq!(status, 200, "{body}");
    let key = format!("{key} ");
    let line = body.lines().find(|l| l.starts_with(&key)).unwrap_or_else(|| panic!("no {key}in:\n{body}"));
    line[key.len()..].parse().unwrap()
}

/// The endpoint's messages handed over in batches so far.
async fn batched(server: &TestServer) -> f64 {
    metric(server, r#"wasock_messages_batched_total{route="/bad"}"#).await
}

/// Keeps the instance busy with `busy`'s `spin:<ms>`, and sends `texts`
/// from `client` while it computes, so that they queue up together.
async fn queue_behind(busy: &mut Client, ms: u64, client: &mut Client, texts: &[&str]) {
    busy.send_text(&format!("spin:{ms}")).await;
    tokio::time::sleep(Duration::from_millis(ms / 4)).await;
    for text in texts {
        client.send_text(text).await;
    }
    assert_eq!(busy.recv_text().await, "spun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_mid_batch_loses_only_the_message_that_trapped() {
    let server = server("[limits]\ncall-deadline-ms = 2000\n").await;
    let mut c = clients(&server, 2).await;
    let [busy, client] = &mut c[..] else { unreachable!() };
    let texts = ["after 0", "panic", "after 1", "after 2", "after 3"];
    queue_behind(busy, 400, client, &texts).await;
    // The message before the trap was answered by the instance that
    // trapped, the ones after it by the fresh one, each once.
    assert_eq!(client.recv_text().await, "after 0");
    assert_eq!(client.recv_text().await, "restored:2");
    for i in 1..4 {
        assert_eq!(client.recv_text().await, format!("after {i}"));
    }
    client.send_text("handled").await;
    assert_eq!(client.recv_text().await, "4", "the fresh instance handled the three after the trap, and this");
    assert_eq!(busy.recv_text().await, "restored:2");
    assert!(batched(&server).await >= texts.len() as f64, "the messages were not handed over together");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_right_after_a_reply_is_found_by_replaying_and_counted_once() {
    // After "after 0" replied, the plugin moves on to "recurse" without a
    // host call, and a stack overflow (unlike a panic) gives it no chance
    // to say so: the host cannot tell which of the two trapped. It replays
    // "recurse" alone, where it traps again. With `max-traps = 2`, counting
    // the one fault twice would back the endpoint off (1011 for everyone).
    let server = server("[limits]\ncall-deadline-ms = 2000\nmax-traps = 2\n").await;
    let mut c = clients(&server, 2).await;
    let [busy, client] = &mut c[..] else { unreachable!() };
    let texts = ["after 0", "recurse", "after 1", "after 2"];
    queue_behind(busy, 400, client, &texts).await;
    assert_eq!(client.recv_text().await, "after 0");
    for _ in 0..2 {
        assert_eq!(client.recv_text().await, "restored:2", "an instance for each trap");
    }
    for i in 1..3 {
        assert_eq!(client.recv_text().await, format!("after {i}"));
    }
    client.send_text("handled").await;
    assert_eq!(client.recv_text().await, "3", "the last instance handled the two after the trap, and this");
    for _ in 0..2 {
        assert_eq!(busy.recv_text().await, "restored:2");
    }
    assert!(batched(&server).await >= texts.len() as f64, "the messages were not handed over together");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_of_a_batch_has_the_call_deadline_to_itself() {
    // Four 100 ms messages in one call: 400 ms, more than the 300 ms
    // deadline, which each of them keeps well within.
    let server = server("[limits]\ncall-deadline-ms = 300\n").await;
    let mut c = clients(&server, 2).await;
    let [busy, client] = &mut c[..] else { unreachable!() };
    let texts = ["spin:100"; 4];
    queue_behind(busy, 200, client, &texts).await;
    for _ in texts {
        assert_eq!(client.recv_text().await, "spun");
    }
    client.send_text("still here").await;
    assert_eq!(client.recv_text().await, "still here", "the instance trapped");
    assert!(batched(&server).await >= texts.len() as f64, "the messages were not handed over together");
    // A message that computes after its reply, then one that computes
    // before its own: 400 ms between the two replies, when the host cannot
    // tell where the first ended, and each within its 300 ms.
    let texts = ["reply-spin:200", "spin:200"];
    queue_behind(busy, 200, client, &texts).await;
    assert_eq!(client.recv_text().await, "replied");
    assert_eq!(client.recv_text().await, "spun");
    client.send_text("still here").await;
    assert_eq!(client.recv_text().await, "still here", "the instance trapped");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_skips_the_messages_of_a_session_the_plugin_closed() {
    let server = server("[limits]\ncall-deadline-ms = 2000\n").await;
    let mut c = clients(&server, 3).await;
    let [busy, closing, watcher] = &mut c[..] else { unreachable!() };
    let texts = ["close", "never 1", "never 2"];
    queue_behind(busy, 400, closing, &texts).await;
    assert!(closing.expect_close().await.is_some(), "no close frame");
    // Three `ready`s, the spin, the close and this: the two messages the
    // closed session sent after its close never reached the plugin.
    watcher.send_text("handled").await;
    assert_eq!(watcher.recv_text().await, "6");
    // The same when the closing message replied first (after a reply the
    // plugin moves on without asking the host, unless it did more).
    let mut closing = server.connect("/bad").await;
    let texts = ["after 0", "bye", "never 1", "never 2"];
    queue_behind(busy, 400, &mut closing, &texts).await;
    for text in ["after 0", "bye"] {
        assert_eq!(closing.recv_text().await, text);
    }
    assert!(closing.expect_close().await.is_some(), "no close frame");
    // The second spin, "after 0", "bye" and this.
    watcher.send_text("handled").await;
    assert_eq!(watcher.recv_text().await, "10");
    assert!(batched(&server).await >= texts.len() as f64, "the messages were not handed over together");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_several_sessions_answers_each_on_its_own() {
    // The call names each session once and each message by its session's
    // index: every client gets its own messages back, in order, and no one
    // else's.
    let server = server("[limits]\ncall-deadline-ms = 2000\n").await;
    let mut c = clients(&server, 4).await;
    let (busy, senders) = c.split_first_mut().unwrap();
    busy.send_text("spin:400").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for round in 0..3 {
        for (i, client) in senders.iter_mut().enumerate() {
            client.send_text(&format!("{i}:{round}")).await;
        }
    }
    assert_eq!(busy.recv_text().await, "spun");
    for (i, client) in senders.iter_mut().enumerate() {
        for round in 0..3 {
            assert_eq!(client.recv_text().await, format!("{i}:{round}"), "client {i}");
        }
    }
    assert!(batched(&server).await >= 9.0, "the messages were not handed over together");
    // Each message its own handler call, though the plugin moved on from
    // one reply to the next without asking: the four `ready`s, the spin
    // and the nine.
    let calls = r#"wasock_handler_call_seconds_count{route="/bad",handler="handle-text"}"#;
    assert_eq!(metric(&server, calls).await, 14.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_wait_for_room_in_a_full_queue_are_answered_once_it_drains() {
    // A queue of two events: while the instance computes, the clients'
    // messages fill it, and their sessions (run by the instance's thread)
    // wait for room until the thread takes the queue as a batch and wakes
    // them (a wake-up that once waited on the thread's own lock).
    let bad = compile_fixture("misbehave", "full", "/bad", "[limits]\ncall-deadline-ms = 2000\n", |_| {});
    let config = ServerConfig { event_queue_capacity: 2, ..test_config() };
    let server = TestServer::serve_with_admin(config, vec![bad]).await;
    let mut c = clients(&server, 6).await;
    let (busy, rest) = c.split_first_mut().unwrap();
    busy.send_text("spin:300").await;
    tokio::time::sleep(Duration::from_millis(75)).await;
    for (i, client) in rest.iter_mut().enumerate() {
        for j in 0..3 {
            client.send_text(&format!("after {i}.{j}")).await;
        }
    }
    assert_eq!(busy.recv_text().await, "spun");
    for (i, client) in rest.iter_mut().enumerate() {
        for j in 0..3 {
            assert_eq!(client.recv_text().await, format!("after {i}.{j}"));
        }
    }
    server.shutdown().await;
}
