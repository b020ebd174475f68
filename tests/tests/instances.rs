//! Several instances serving one route (`instances = N` in `plugin.toml`),
//! against a real server: sessions spread over the instances, or placed by
//! the first topic their upgrade joins; topic sizes, members, publishes and
//! broadcasts that are the endpoint's, whichever instance a member is on; a
//! trap that restarts only its own instance; a swap that replaces every
//! instance with nothing lost, or none of them.

use wasock_tests::{
    Client, TestServer, compile_fixture, rehash, replace_file, swap_plugin_dir, tempdir, test_config, wasm_bytes,
};

async fn gate(extra: &str) -> TestServer {
    TestServer::serve(test_config(), vec![compile_fixture("gate", "gate", "/gate", extra, |_| {})]).await
}

/// Sends a command to the gate fixture and returns its answer.
async fn ask(c: &mut Client, command: &str) -> String {
    c.send_text(command).await;
    c.recv_text().await
}

/// Connects as `name` (the fixture greets each session once it is
/// registered, so connections made one after another are placed in order).
async fn join(server: &TestServer, name: &str, query: &str) -> Client {
    let mut c = server.connect(&format!("/gate?name={name}{query}")).await;
    assert_eq!(c.recv_text().await, format!("hello {name}"));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_broadcasts_span_the_instances() {
    let server = gate("instances = 2\n").await;
    let mut a = join(&server, "a", "").await;
    let mut b = join(&server, "b", "").await;
    let mut c = join(&server, "c", "").await;
    let mut d = join(&server, "d", "").await;
    // `sessions()` is the instance's own: in turn, each has two of four.
    for client in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(ask(client, "count").await, "2");
    }
    a.send_text("all:to everyone").await;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(client.recv_text().await, "to everyone");
    }
    // a and c are on one instance, b and d on the other.
    assert_eq!(ask(&mut a, "join:room").await, "SubscribeStatus::Joined");
    assert_eq!(ask(&mut b, "join:room").await, "SubscribeStatus::Joined");
    assert_eq!(ask(&mut c, "join:other").await, "SubscribeStatus::Joined");
    assert_eq!(ask(&mut c, "size:room").await, "2");
    assert_eq!(ask(&mut d, "size:room").await, "2");
    assert_eq!(ask(&mut d, "members:room").await, "a,b", "the endpoint's members, in join order");
    a.send_text("pub:room:from a").await;
    assert_eq!(a.recv_text().await, "from a");
    assert_eq!(b.recv_text().await, "from a");
    b.send_text("pub-except:room:from b").await;
    assert_eq!(a.recv_text().await, "from b");
    // Nothing reached those outside the room, nor b its own message.
    for client in [&mut b, &mut c, &mut d] {
        assert_eq!(ask(client, "count").await, "2");
    }
    assert_eq!(ask(&mut b, "leave:room").await, "true");
    assert_eq!(ask(&mut a, "size:room").await, "1");
    assert_eq!(ask(&mut a, "members:room").await, "a");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_of_one_upgrade_topic_share_an_instance() {
    let server = gate("instances = 2\n").await;
    let mut reds = Vec::new();
    for i in 0..3 {
        reds.push(join(&server, &format!("r{i}"), "&topic=red").await);
    }
    let _other = join(&server, "x", "").await;
    let mut counts = Vec::new();
    for red in &mut reds {
        counts.push(ask(red, "count").await.parse::<usize>().unwrap());
    }
    // In turn they would have been split 2 and 1.
    assert!(counts.iter().all(|&n| n == counts[0] && n >= 3), "red members on different instances: {counts:?}");
    assert_eq!(ask(&mut reds[0], "members:red").await, "r0,r1,r2");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_restarts_only_its_own_instance() {
    let server = gate("instances = 2\n").await;
    let mut a = join(&server, "a", "").await;
    let mut b = join(&server, "b", "").await;
    assert_eq!(ask(&mut a, "join:room").await, "SubscribeStatus::Joined");
    assert_eq!(ask(&mut b, "join:room").await, "SubscribeStatus::Joined");
    b.send_text("panic").await;
    // b's instance is fresh (its count starts again); a's kept its state.
    assert_eq!(ask(&mut b, "seen").await, "1");
    assert_eq!(ask(&mut a, "seen").await, "2");
    a.send_text("pub:room:after the trap").await;
    assert_eq!(a.recv_text().await, "after the trap");
    assert_eq!(b.recv_text().await, "after the trap");
    assert_eq!(ask(&mut b, "members:room").await, "a,b");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_replaces_every_instance_and_loses_nothing() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "gate", "/gate", &wasm_bytes("gate"), "instances = 2\n");
    let server = TestServer::watch(&dir, false).await;
    let mut a = join(&server, "a", "").await;
    let mut b = join(&server, "b", "").await;
    assert_eq!(ask(&mut a, "join:room").await, "SubscribeStatus::Joined");
    assert_eq!(ask(&mut b, "join:room").await, "SubscribeStatus::Joined");
    const N: usize = 300;
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            a.send_text(&format!("pub:room:{i}")).await;
        }
        a
    });
    replace_file(&plugin.join("plugin.wasm"), &rehash(&wasm_bytes("gate"), "v2"));
    assert_eq!(server.reload().await.swapped, ["gate"]);
    let mut a = publisher.await.unwrap();
    for client in [&mut b, &mut a] {
        for i in 0..N {
            assert_eq!(client.recv_text().await, i.to_string(), "lost or out of order");
        }
    }
    // Both instances are new: b's handled only this since the swap.
    assert_eq!(ask(&mut b, "seen").await, "1");
    let seen_a: usize = ask(&mut a, "seen").await.parse().unwrap();
    assert!(seen_a <= N + 1, "a's instance was not replaced ({seen_a} texts)");
    assert_eq!(ask(&mut a, "members:room").await, "a,b");
    assert_eq!(ask(&mut a, "count").await, "1");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_that_fails_in_the_instances_keeps_every_old_one() {
    let dir = tempdir();
    let counter = wasm_bytes("counter");
    let v1 = "instances = 2\n[grants]\nenv = { VERSION = \"v1\" }\n";
    let plugin = swap_plugin_dir(&dir, "counter", "/count", &counter, v1);
    let server = TestServer::watch(&dir, false).await;
    // A reply shows a session registered (and placed) before the next comes.
    let mut a = server.connect("/count").await;
    assert_eq!(ask(&mut a, "tick").await, "v1 1");
    let mut b = server.connect("/count").await;
    assert_eq!(ask(&mut b, "tick").await, "v1 1", "each instance counts its own");
    let broken = "instances = 2\n[grants]\nenv = { VERSION = \"v2\", TRAP_ON_RESTORE = \"1\" }\n";
    swap_plugin_dir(&dir, "counter", "/count", &counter, broken);
    let report = server.reload().await;
    assert!(report.swapped.is_empty() && !report.failed.is_empty(), "{report:?}");
    for c in [&mut a, &mut b] {
        assert_eq!(ask(c, "tick").await, "v1 2");
    }
    swap_plugin_dir(&dir, "counter", "/count", &counter, &v1.replace("v1", "v2"));
    assert_eq!(server.reload().await.swapped, ["counter"]);
    for c in [&mut a, &mut b] {
        assert_eq!(ask(c, "tick").await, "v2 3", "the state of each instance carried over");
    }
    drop(plugin);
    server.shutdown().await;
}
