//! Contract 0.2 against a real server: the upgrade hook (accept, reject,
//! subprotocols, traps and overruns), topics held by the host (fan-out,
//! isolation, across a trap and a swap), session facts, flow control
//! (`on-drain`), a 0.1 component served beside 0.2 ones, and the C SDK's
//! side of all this.

use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wasock_tests::{
    Client, TestServer, compile_fixture, logs, rehash, replace_file, swap_plugin_dir, tempdir, test_config, wasm_bytes,
};

async fn gate(extra: &str) -> TestServer {
    TestServer::serve(test_config(), vec![compile_fixture("gate", "gate", "/gate", extra, |_| {})]).await
}

/// The status and body of a refused upgrade.
async fn refused(server: &TestServer, path: &str) -> (u16, String) {
    match Client::connect_offering(&server.url(path), &[]).await {
        Ok(_) => panic!("{path} was accepted"),
        Err(answer) => {
            let body = String::from_utf8(answer.body().clone().unwrap_or_default()).unwrap();
            (answer.status().as_u16(), body)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_hook_accepts_or_rejects_with_its_own_answer() {
    let server = gate("").await;
    let answer = Client::connect_offering(&server.url("/gate?mode=reject"), &[]).await.err().unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert_eq!(answer.headers()["x-reason"], "told to");
    assert_eq!(answer.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(answer.body().as_deref(), Some(&b"go away"[..]));
    // The plugin's own content type replaces the default, once.
    let answer = Client::connect_offering(&server.url("/gate?mode=reject-json"), &[]).await.err().unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    assert_eq!(answer.headers().get_all("content-type").iter().collect::<Vec<_>>(), ["application/json"]);
    assert_eq!(answer.body().as_deref(), Some(&b"{\"retry\":1}"[..]));
    let (mut c, answer) = Client::connect_offering(&server.url("/gate?name=ann"), &[]).await.unwrap();
    assert_eq!(answer.headers()["x-gate"], "open");
    assert!(answer.headers().get("sec-websocket-protocol").is_none());
    assert_eq!(c.recv_text().await, "hello ann");
    c.send_text("count").await;
    assert_eq!(c.recv_text().await, "1", "a rejected upgrade leaves no session");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subprotocol_is_selected_from_those_offered_and_facts_are_known() {
    let server = gate("").await;
    let (mut c, answer) = Client::connect_offering(&server.url("/gate?name=bo"), &["other", "gate.v1"]).await.unwrap();
    assert_eq!(answer.headers()["sec-websocket-protocol"], "gate.v1");
    assert_eq!(c.recv_text().await, "hello bo");
    c.send_text("facts").await;
    let local = match c.ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(c.recv_text().await, format!("protocol=gate.v1 remote={local} name=bo"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_slow_or_unsound_hook_answers_500_and_leaves_nothing_half_open() {
    let server = gate("[limits]\ncall-deadline-ms = 50\nmax-traps = 100\n").await;
    for mode in ["trap", "slow", "bad-protocol", "bad-header"] {
        let (status, body) = refused(&server, &format!("/gate?mode={mode}")).await;
        assert_eq!(status, 500, "{mode}: {body}");
    }
    let log = logs();
    assert!(log.contains("handler=\"on-upgrade\"") || log.contains("handler=on-upgrade"), "trap not logged: {log}");
    assert!(log.contains("exceeded its 50 ms call deadline"), "{log}");
    let mut c = server.connect("/gate").await;
    assert_eq!(c.recv_text().await, "hello anon");
    c.send_text("count").await;
    assert_eq!(c.recv_text().await, "1");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_the_topic_members_and_nobody_else() {
    let server = gate("[limits]\ntopics-per-session = 2\ntopic-name-bytes = 8\n").await;
    let mut a = server.connect("/gate?name=a&topic=red").await;
    let mut b = server.connect("/gate?name=b&topic=red").await;
    let mut c = server.connect("/gate?name=c&topic=blue").await;
    for client in [&mut a, &mut b, &mut c] {
        client.recv_text().await;
    }
    a.send_text("members:red").await;
    assert_eq!(a.recv_text().await, "a,b");
    a.send_text("pub:red:hi").await;
    assert_eq!(a.recv_text().await, "hi");
    assert_eq!(b.recv_text().await, "hi");
    b.send_text("pub-except:red:not to b").await;
    assert_eq!(a.recv_text().await, "not to b");
    c.send_text("pub:blue:only blue").await;
    assert_eq!(c.recv_text().await, "only blue", "c got red's messages");
    // Joining and leaving, within the limits.
    c.send_text("join:red").await;
    assert_eq!(c.recv_text().await, "SubscribeStatus::Joined");
    c.send_text("join:red").await;
    assert_eq!(c.recv_text().await, "SubscribeStatus::AlreadyJoined");
    c.send_text("join:green").await;
    assert_eq!(c.recv_text().await, "SubscribeStatus::TooManyTopics");
    c.send_text("join:much-too-long").await;
    assert_eq!(c.recv_text().await, "SubscribeStatus::BadName");
    c.send_text("topics").await;
    assert_eq!(c.recv_text().await, "blue,red");
    c.send_text("size:red").await;
    assert_eq!(c.recv_text().await, "3");
    a.send_text("leave:red").await;
    assert_eq!(a.recv_text().await, "true");
    drop(b);
    // b's end reaches the endpoint when its connection closes.
    let deadline = tokio::time::Instant::now() + wasock_tests::WAIT;
    loop {
        a.send_text("size:red").await;
        if a.recv_text().await == "1" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never left red");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_members_whatever_order_they_joined_in() {
    // z joins before x, which connected first: the fan-out, which walks the
    // sessions in the order they came, must still find x.
    let server = gate("").await;
    let mut x = server.connect("/gate?name=x").await;
    let mut y = server.connect("/gate?name=y").await;
    let mut z = server.connect("/gate?name=z").await;
    for client in [&mut x, &mut y, &mut z] {
        client.recv_text().await;
    }
    for client in [&mut z, &mut x] {
        client.send_text("join:t").await;
        assert_eq!(client.recv_text().await, "SubscribeStatus::Joined");
    }
    y.send_text("pub:t:hi").await;
    assert_eq!(z.recv_text().await, "hi");
    assert_eq!(x.recv_text().await, "hi", "the member that joined after a later session");
    y.send_text("topics").await;
    assert_eq!(y.recv_text().await, "", "y is no member");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_survive_a_trap_and_a_swap() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "gate", "/gate", &wasm_bytes("gate"), "");
    let server = TestServer::watch(&dir, false).await;
    let mut a = server.connect("/gate?name=a").await;
    let mut b = server.connect("/gate?name=b&topic=room").await;
    a.recv_text().await;
    b.recv_text().await;
    a.send_text("join:room").await;
    assert_eq!(a.recv_text().await, "SubscribeStatus::Joined");
    a.send_text("panic").await;
    b.send_text("pub:room:after the trap").await;
    assert_eq!(a.recv_text().await, "after the trap");
    assert_eq!(b.recv_text().await, "after the trap");
    replace_file(&plugin.join("plugin.wasm"), &rehash(&wasm_bytes("gate"), "v2"));
    assert_eq!(server.reload().await.swapped, ["gate"]);
    a.send_text("pub:room:after the swap").await;
    assert_eq!(a.recv_text().await, "after the swap");
    assert_eq!(b.recv_text().await, "after the swap");
    a.send_text("members:room").await;
    assert_eq!(a.recv_text().await, "b,a");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_drain_follows_a_full_queue_once_the_client_reads_again() {
    let server = gate("[limits]\nqueue-bytes = 1048576\non-queue-full = \"drop\"\n").await;
    let mut c = server.connect("/gate").await;
    assert_eq!(c.recv_text().await, "hello anon");
    // The client stops reading while the plugin writes 64 MiB at it.
    c.send_text("flood:1000").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut binaries = 0;
    let drained = loop {
        match c.recv().await {
            Message::Binary(_) => binaries += 1,
            Message::Text(text) => break text.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(binaries < 1000, "the flood was never refused");
    let buffered: usize = drained.strip_prefix("drained ").unwrap().parse().unwrap();
    assert!(buffered <= 1 << 19, "on-drain while more than half full: {buffered}");
    c.send_text("buffered").await;
    let rest: usize = loop {
        if let Message::Text(text) = c.recv().await {
            break text.parse().unwrap();
        }
    };
    assert!(rest <= 1 << 20);
    server.shutdown().await;
}

/// A flood larger than the socket's buffers, at a client that does not
/// read yet: the endpoint thread writes what the socket takes and leaves
/// the rest of a frame to the session's task, which writes it before the
/// messages still queued; a publish from another client comes while the
/// task waits to write, and must not be written past it. The client gets
/// every message whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_at_a_client_that_reads_late_arrives_whole_and_in_order() {
    // The flood is one call: an unoptimized host under a parallel test run
    // can take longer than the default 100 ms for it (a trap mid-flood).
    let limits = "[limits]\nqueue-messages = 1024\nqueue-bytes = 67108864\ncall-deadline-ms = 20000\n";
    let server = gate(limits).await;
    let mut slow = server.connect("/gate?topic=t").await;
    assert_eq!(slow.recv_text().await, "hello anon");
    let mut other = server.connect("/gate").await;
    assert_eq!(other.recv_text().await, "hello anon");
    slow.send_text("flood:300").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.send_text("pub:t:after the flood").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..300u32 {
        match slow.recv().await {
            Message::Binary(data) => {
                assert_eq!(data.len(), 64 << 10);
                assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), n, "out of order");
                assert!(data[4..].iter().all(|b| *b == b'x'), "message {n} is not whole");
            }
            other => panic!("message {n}: {other:?}"),
        }
    }
    assert!(slow.recv_text().await.starts_with("queued 300 buffered "));
    assert_eq!(slow.recv_text().await, "after the flood");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_01_component_is_served_beside_02_ones() {
    let bare = compile_fixture("bare", "bare", "/bare", "", |_| {});
    let gate = compile_fixture("gate", "gate", "/gate", "", |_| {});
    let config = test_config();
    let server = TestServer::serve_with_admin(config, vec![bare, gate]).await;
    let mut old = server.connect("/bare").await;
    assert_eq!(old.recv_text().await, "bare here");
    old.send_text("x").await;
    assert_eq!(old.recv_text().await, "bare: x");
    // 0.1's own signatures: a counting broadcast with an `option`, a
    // `result` from set-attachment, `session.open`.
    let mut other = server.connect("/bare").await;
    assert_eq!(other.recv_text().await, "bare here");
    old.send_text("broadcast:hi").await;
    assert_eq!(other.recv_text().await, "hi");
    assert_eq!(old.recv_text().await, "reached 1");
    old.send_text("attach:kept").await;
    assert_eq!(old.recv_text().await, "Ok(()) Some(\"kept\")");
    old.send_text(&"attach:".repeat(1000)).await;
    let too_large = old.recv_text().await;
    assert!(too_large.starts_with("Err(") && too_large.contains("too-large"), "{too_large}");
    assert!(too_large.ends_with("Some(\"kept\")"), "a refused attachment replaced the last: {too_large}");
    old.send_text("open:0").await;
    assert_eq!(old.recv_text().await, "open false");
    let mut new = server.connect("/gate?name=n").await;
    assert_eq!(new.recv_text().await, "hello n");
    let (status, body) = server.admin_get("/status").await;
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let contract = |name: &str| {
        let endpoints = status["endpoints"].as_array().unwrap();
        endpoints.iter().find(|e| e["plugin"] == name).unwrap()["contract"].as_str().unwrap().to_owned()
    };
    assert_eq!(contract("bare"), "wasock:plugin@0.1.0");
    assert_eq!(contract("gate"), "wasock:plugin@0.2.0");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_sdk_decides_upgrades_and_uses_topics() {
    let server = TestServer::serve(test_config(), vec![compile_fixture("gate-c", "gate-c", "/c", "", |_| {})]).await;
    let (status, body) = refused(&server, "/c?token=bad").await;
    assert_eq!((status, body.as_str()), (401, "unauthorized"));
    let (mut a, answer) = Client::connect_offering(&server.url("/c?token=ok&topic=t"), &["gate.v1"]).await.unwrap();
    assert_eq!(answer.headers()["sec-websocket-protocol"], "gate.v1");
    assert_eq!(a.recv_text().await, "hello from c, 0 queued");
    let mut b = server.connect("/c?token=ok").await;
    b.recv_text().await;
    b.send_text("join:t").await;
    assert_eq!(b.recv_text().await, "joined");
    b.send_text("size:t").await;
    assert_eq!(b.recv_text().await, "2");
    b.send_text("pub:t:from b").await;
    assert_eq!(a.recv_text().await, "from b");
    b.send_text("echo").await;
    assert_eq!(b.recv_text().await, "echo", "a publish reached its sender");
    server.shutdown().await;
}
