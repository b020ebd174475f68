//! Several `wasock serve` processes joined through a real nats-server
//! (`--cluster`), serving the rooms examples (Rust, and JavaScript on
//! `/js/rooms`): a room spans the nodes (join
//! counts, messages, `/who`); NATS going away leaves each node serving its
//! own sessions, and cross-node delivery resumes by itself when it is back;
//! a killed node's sessions drop out of the counts, and its clients
//! reconnect to another node.

use std::time::{Duration, Instant};
use wasock_tests::cli::Served;
use wasock_tests::nats::Nats;
use wasock_tests::{Client, plugin, tempdir};

/// Longer than the presence bound the README states (1 s): by then every
/// node has seen the others' members.
const SETTLE: Duration = Duration::from_millis(1500);

fn node(nats: &Nats) -> Served {
    let (rooms, rooms_js) = (plugin("rooms"), plugin("rooms-js"));
    let args = ["--no-watch", "--cluster", &nats.url(), rooms.to_str().unwrap(), rooms_js.to_str().unwrap()];
    // The first start may compile the JavaScript plugin (the cache is shared).
    Served::start(&tempdir(), &args, Duration::from_secs(120))
}

async fn join(node: &Served, token: &str) -> Client {
    join_at(node, "/rooms", token).await
}

async fn join_at(node: &Served, route: &str, token: &str) -> Client {
    Client::connect(&node.url(&format!("{route}?token={token}"))).await.unwrap()
}

/// The next text within `wait`, if any.
async fn next_text(c: &mut Client, wait: Duration) -> Option<String> {
    tokio::time::timeout(wait, c.recv_text()).await.ok()
}

/// The answer to `/who` (room news arriving meanwhile is skipped).
async fn who(c: &mut Client) -> String {
    c.send_text("/who").await;
    loop {
        let text = c.recv_text().await;
        if text.starts_with("online: ") {
            return text;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_nodes_and_outlives_nats_and_a_node() {
    let nats = Nats::start();
    let a = node(&nats);
    let b = node(&nats);
    let mut alice = join(&a, "secret-a").await;
    assert_eq!(alice.recv_text().await, "* alice joined lobby (1 online)");
    tokio::time::sleep(SETTLE).await;
    let mut bob = join(&b, "secret-b").await;
    assert_eq!(bob.recv_text().await, "* bob joined lobby (2 online)", "bob's node counts alice");
    assert_eq!(alice.recv_text().await, "* bob joined lobby (2 online)", "a publish on B reaches A");
    alice.send_text("hello").await;
    assert_eq!(alice.recv_text().await, "alice: hello");
    assert_eq!(bob.recv_text().await, "alice: hello");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(who(&mut bob).await, "online: alice, bob");
    assert_eq!(who(&mut alice).await, "online: alice, bob");
    // Order: one publisher's messages arrive on the other node as sent.
    for i in 0..50 {
        alice.send_text(&format!("m{i}")).await;
    }
    for i in 0..50 {
        assert_eq!(bob.recv_text().await, format!("alice: m{i}"));
        assert_eq!(alice.recv_text().await, format!("alice: m{i}"));
    }

    // The JavaScript rooms across the same nodes.
    let mut carol = join_at(&a, "/js/rooms", "secret-c").await;
    assert_eq!(carol.recv_text().await, "* carol joined lobby (1 online)");
    tokio::time::sleep(SETTLE).await;
    let mut bob_js = join_at(&b, "/js/rooms", "secret-b").await;
    assert_eq!(bob_js.recv_text().await, "* bob joined lobby (2 online)");
    assert_eq!(carol.recv_text().await, "* bob joined lobby (2 online)");
    carol.send_text("hi from js").await;
    assert_eq!(bob_js.recv_text().await, "carol: hi from js");
    assert_eq!(who(&mut bob_js).await, "online: bob, carol");
    assert_eq!(next_text(&mut bob, Duration::from_millis(200)).await, None, "a room of another route");
    drop((carol, bob_js));

    // NATS goes away: each node serves its own sessions.
    let port = nats.stop();
    bob.send_text("alone").await;
    assert_eq!(bob.recv_text().await, "bob: alone");
    assert_eq!(next_text(&mut alice, Duration::from_millis(300)).await, None, "delivered across without NATS?");
    // Back on the same address: cross-node delivery resumes by itself.
    let nats = Nats::start_on(Some(port));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        assert!(Instant::now() < deadline, "cross-node delivery did not resume");
        n += 1;
        bob.send_text(&format!("again {n}")).await;
        assert_eq!(bob.recv_text().await, format!("bob: again {n}"));
        // What bob said while NATS was away may arrive late (the client
        // buffers a little while it reconnects), never twice.
        if let Some(text) = next_text(&mut alice, Duration::from_millis(300)).await {
            assert!(text == "bob: alone" || text.starts_with("bob: again "), "{text}");
            break;
        }
    }
    while next_text(&mut alice, Duration::from_millis(300)).await.is_some() {}

    // Node A is killed: alice drops out of B's counts and reconnects to B.
    drop(alice);
    a.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let online = who(&mut bob).await;
        if online == "online: bob" {
            break;
        }
        assert!(Instant::now() < deadline, "a killed node's session still counts: {online}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut alice = join(&b, "secret-a").await;
    assert_eq!(alice.recv_text().await, "* alice joined lobby (2 online)");
    assert_eq!(bob.recv_text().await, "* alice joined lobby (2 online)");
    drop(nats);
}
