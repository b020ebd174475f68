//! The rooms examples (`plugins/rooms` in Rust at `/rooms`, `plugins/rooms-js`
//! in JavaScript at `/js/rooms`) as their issue specifies them: tokens at
//! the door, rooms by query, the `rooms.v1` subprotocol, join and leave
//! notices with counts, `/who`, and rooms intact across a swap and a trap.
//! Every test runs against both.

use wasock_tests::{Client, TestServer, bundled_wasm, rehash, replace_file, swap_plugin_dir, tempdir};

const TOKENS: &str = "[grants]\nenv = { ROOMS_TOKENS = \"alice=secret-a,bob=secret-b,carol=secret-c\" }\n";

/// The two implementations: (bundled plugin, route).
const ROOMS: [(&str, &str); 2] = [("rooms", "/rooms"), ("rooms-js", "/js/rooms")];

/// A server with one rooms plugin, from a directory a test may swap it in;
/// `extra` goes into its manifest.
struct Rooms {
    server: TestServer,
    dir: std::path::PathBuf,
    plugin: &'static str,
    route: &'static str,
}

impl Rooms {
    async fn start((plugin, route): (&'static str, &'static str), extra: &str) -> Self {
        let parent = tempdir();
        let dir = swap_plugin_dir(&parent, plugin, route, &bundled_wasm(plugin), &format!("{TOKENS}{extra}"));
        Self { server: TestServer::watch(&parent, false).await, dir, plugin, route }
    }

    async fn refused(&self, query: &str) -> (u16, String) {
        let url = self.server.url(&format!("{}{query}", self.route));
        let Err(answer) = Client::connect_offering(&url, &[]).await else {
            panic!("{url} was accepted");
        };
        (answer.status().as_u16(), String::from_utf8(answer.body().clone().unwrap_or_default()).unwrap())
    }

    async fn join(&self, token: &str, room: Option<&str>) -> Client {
        let query = match room {
            Some(room) => format!("{}?token={token}&room={room}", self.route),
            None => format!("{}?token={token}", self.route),
        };
        Client::connect_offering(&self.server.url(&query), &[]).await.map(|(c, _)| c).expect("accepted")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_checks_tokens_and_rooms() {
    for which in ROOMS {
        let rooms = Rooms::start(which, "").await;
        assert_eq!(rooms.refused("").await, (401, "unauthorized".into()));
        assert_eq!(rooms.refused("?token=wrong").await, (401, "unauthorized".into()));
        assert_eq!(rooms.refused("?token=secret-a&room=Bad!").await, (400, "bad room".into()));
        assert_eq!(rooms.refused(&format!("?token=secret-a&room={}", "a".repeat(33))).await, (400, "bad room".into()));
        let url = rooms.server.url(&format!("{}?token=secret-a&room=r-1", rooms.route));
        let (mut alice, answer) = Client::connect_offering(&url, &["chat", "rooms.v1"]).await.unwrap();
        assert_eq!(answer.headers()["sec-websocket-protocol"], "rooms.v1", "{}", rooms.plugin);
        assert_eq!(alice.recv_text().await, "* alice joined r-1 (1 online)");
        rooms.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_hear_their_own_members_only() {
    for which in ROOMS {
        hear_own_members(Rooms::start(which, "").await).await;
    }
}

async fn hear_own_members(rooms: Rooms) {
    let mut alice = rooms.join("secret-a", None).await;
    assert_eq!(alice.recv_text().await, "* alice joined lobby (1 online)");
    let mut bob = rooms.join("secret-b", Some("lobby")).await;
    assert_eq!(bob.recv_text().await, "* bob joined lobby (2 online)");
    assert_eq!(alice.recv_text().await, "* bob joined lobby (2 online)");
    let mut carol = rooms.join("secret-c", Some("kitchen")).await;
    assert_eq!(carol.recv_text().await, "* carol joined kitchen (1 online)");
    // A second alice in the lobby: counted, named once by /who.
    let mut alice2 = rooms.join("secret-a", None).await;
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
    rooms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_stay_intact_across_a_swap_and_a_trap() {
    // A message that needs more memory than the instance may have traps it.
    for (which, memory_mib) in ROOMS.into_iter().zip([4, JS_MEMORY_MIB]) {
        let extra = format!("[limits]\nmemory-mib = {memory_mib}\nmax-message-bytes = 16777216\n");
        intact_across_swap_and_trap(Rooms::start(which, &extra).await).await;
    }
}

/// Enough for the JavaScript engine, too little for a 12 MiB message.
const JS_MEMORY_MIB: u32 = 24;

async fn intact_across_swap_and_trap(rooms: Rooms) {
    let mut alice = rooms.join("secret-a", None).await;
    alice.recv_text().await;
    let mut bob = rooms.join("secret-b", None).await;
    bob.recv_text().await;
    alice.recv_text().await;
    replace_file(&rooms.dir.join("plugin.wasm"), &rehash(&bundled_wasm(rooms.plugin), "v2"));
    assert_eq!(rooms.server.reload().await.swapped, [rooms.plugin]);
    bob.send_text("/who").await;
    assert_eq!(bob.recv_text().await, "online: alice, bob");
    alice.send_text(&"x".repeat(12 << 20)).await;
    alice.send_text("still here").await;
    assert_eq!(bob.recv_text().await, "alice: still here");
    assert_eq!(alice.recv_text().await, "alice: still here");
    let trapped = |line: &str| line.contains("memory limit") && line.contains(&format!("plugin={}", rooms.plugin));
    assert!(wasock_tests::logs().lines().any(trapped), "the big message did not trap {}", rooms.plugin);
    alice.send_text("/who").await;
    assert_eq!(alice.recv_text().await, "online: alice, bob");
    rooms.server.shutdown().await;
}
