//! The `rooms` example (`plugins/rooms`) as its issue specifies it: tokens
//! at the door, rooms by query, the `rooms.v1` subprotocol, join and leave
//! notices with counts, `/who`, and rooms intact across a swap and a trap.

use wasock_tests::{Client, TestServer, bundled_wasm, rehash, replace_file, swap_plugin_dir, tempdir};

const TOKENS: &str = "[grants]\nenv = { ROOMS_TOKENS = \"alice=secret-a,bob=secret-b,carol=secret-c\" }\n";

/// A server with the rooms plugin at `/rooms`, from a directory a test may
/// swap it in; `extra` goes into its manifest.
async fn rooms(extra: &str) -> (TestServer, std::path::PathBuf) {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "rooms", "/rooms", &bundled_wasm("rooms"), &format!("{TOKENS}{extra}"));
    (TestServer::watch(&dir, false).await, plugin)
}

async fn refused(server: &TestServer, query: &str) -> (u16, String) {
    let Err(answer) = Client::connect_offering(&server.url(&format!("/rooms{query}")), &[]).await else {
        panic!("/rooms{query} was accepted");
    };
    (answer.status().as_u16(), String::from_utf8(answer.body().clone().unwrap_or_default()).unwrap())
}

async fn join(server: &TestServer, token: &str, room: Option<&str>) -> Client {
    let query = match room {
        Some(room) => format!("/rooms?token={token}&room={room}"),
        None => format!("/rooms?token={token}"),
    };
    Client::connect_offering(&server.url(&query), &[]).await.map(|(c, _)| c).expect("accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_checks_tokens_and_rooms() {
    let (server, _) = rooms("").await;
    assert_eq!(refused(&server, "").await, (401, "unauthorized".into()));
    assert_eq!(refused(&server, "?token=wrong").await, (401, "unauthorized".into()));
    assert_eq!(refused(&server, "?token=secret-a&room=Bad!").await, (400, "bad room".into()));
    assert_eq!(refused(&server, &format!("?token=secret-a&room={}", "a".repeat(33))).await, (400, "bad room".into()));
    let url = server.url("/rooms?token=secret-a&room=r-1");
    let (mut alice, answer) = Client::connect_offering(&url, &["chat", "rooms.v1"]).await.unwrap();
    assert_eq!(answer.headers()["sec-websocket-protocol"], "rooms.v1");
    assert_eq!(alice.recv_text().await, "* alice joined r-1 (1 online)");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_hear_their_own_members_only() {
    let (server, _) = rooms("").await;
    let mut alice = join(&server, "secret-a", None).await;
    assert_eq!(alice.recv_text().await, "* alice joined lobby (1 online)");
    let mut bob = join(&server, "secret-b", Some("lobby")).await;
    assert_eq!(bob.recv_text().await, "* bob joined lobby (2 online)");
    assert_eq!(alice.recv_text().await, "* bob joined lobby (2 online)");
    let mut carol = join(&server, "secret-c", Some("kitchen")).await;
    assert_eq!(carol.recv_text().await, "* carol joined kitchen (1 online)");
    // A second alice in the lobby: counted, named once by /who.
    let mut alice2 = join(&server, "secret-a", None).await;
    assert_eq!(alice2.recv_text().await, "* alice joined lobby (3 online)");
    alice.recv_text().await;
    bob.recv_text().await;
    alice.send_text("hello").await;
    for c in [&mut alice, &mut bob, &mut alice2] {
        assert_eq!(c.recv_text().await, "alice: hello");
    }
    bob.send_text("/who").await;
    assert_eq!(bob.recv_text().await, "online: alice, bob");
    carol.send_text("/who").await;
    assert_eq!(carol.recv_text().await, "online: carol", "the kitchen heard the lobby");
    drop(alice2);
    assert_eq!(alice.recv_text().await, "* alice left lobby (2 online)");
    assert_eq!(bob.recv_text().await, "* alice left lobby (2 online)");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_stay_intact_across_a_swap_and_a_trap() {
    // A message that needs more memory than the instance may have traps it.
    let (server, plugin) = rooms("[limits]\nmemory-mib = 4\nmax-message-bytes = 8388608\n").await;
    let mut alice = join(&server, "secret-a", None).await;
    alice.recv_text().await;
    let mut bob = join(&server, "secret-b", None).await;
    bob.recv_text().await;
    alice.recv_text().await;
    replace_file(&plugin.join("plugin.wasm"), &rehash(&bundled_wasm("rooms"), "v2"));
    assert_eq!(server.reload().await.swapped, ["rooms"]);
    bob.send_text("/who").await;
    assert_eq!(bob.recv_text().await, "online: alice, bob");
    alice.send_text(&"x".repeat(6 << 20)).await;
    alice.send_text("still here").await;
    assert_eq!(bob.recv_text().await, "alice: still here");
    assert_eq!(alice.recv_text().await, "alice: still here");
    assert!(wasock_tests::logs().contains("memory limit"), "the big message did not trap");
    alice.send_text("/who").await;
    assert_eq!(alice.recv_text().await, "online: alice, bob");
    server.shutdown().await;
}
