//! A browser-style client (the WHATWG `WebSocket` API, as Node ships it)
//! gets exactly the seed's behaviour from every bundled plugin.

use std::process::Command;
use wasock_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_websocket_api_sees_the_seed_behaviour() {
    let server = TestServer::start(&["echo", "binary", "bye", "chat", "broadcast"]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/js/seed-clients.mjs");
    let base = format!("ws://{}", server.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--experimental-websocket", script, &base])
            .output()
            .expect("node is needed for this test (.ci/run checks it is installed)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("every plugin behaves as the seed says"), "{stdout}");
    server.shutdown().await;
}
