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

/// plugins/chat's page in a real Chromium (playwright-core, installed by
/// `.ci/setup`; the browser is Debian's): two people join, see each other,
/// one reloads and rejoins, the plugin is hot-swapped mid-conversation and
/// both keep chatting on the connections they had (compressed: Chromium
/// offers permessage-deflate and the page checks it was agreed). Screenshots of both
/// pages are left in `target/tmp/browser/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_works_in_chromium_across_a_hot_swap() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use wasock_tests::{bundled_wasm, rehash, replace_file, swap_plugin_dir};

    let parent = wasock_tests::tempdir();
    let component = bundled_wasm("chat");
    let manifest = "[static]\ndir = \"public\"\n\n[deflate]\n";
    let dir = swap_plugin_dir(&parent, "chat", "/chat", &component, manifest);
    std::fs::create_dir_all(dir.join("public")).unwrap();
    let page = wasock_tests::plugins_dir().join("chat/public/index.html");
    std::fs::copy(page, dir.join("public/index.html")).unwrap();
    let server = wasock_tests::TestServer::watch(&parent, false).await;

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/js/chat-page.mjs");
    let mut node = tokio::process::Command::new("node")
        .args([script, &format!("http://{}/chat", server.addr), out.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for this test (.ci/setup installs it)");
    let mut stdin = node.stdin.take().unwrap();
    let mut stdout = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut swapped = None;
    let driven = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line == "SWAP" {
                replace_file(&dir.join("plugin.wasm"), &rehash(&component, "v2"));
                let report = server.reload().await;
                swapped = Some(report.swapped.clone());
                stdin.write_all(b"swapped\n").await.unwrap();
            }
            seen.push(line);
        }
    })
    .await;
    let status = node.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    let transcript = seen.join("\n");
    assert!(driven.is_ok(), "the browser test did not finish in time:\n{transcript}\n{stderr}");
    assert!(status.status.success() && seen.last().is_some_and(|l| l == "OK"), "{transcript}\n{stderr}");
    assert_eq!(swapped, Some(vec!["chat".to_owned()]), "the plugin was swapped mid-conversation");
    for shot in ["chat-alice.png", "chat-bob.png"] {
        let len = std::fs::metadata(out.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {shot}: {len} bytes");
    }
    println!("screenshots in {}", out.display());
    server.shutdown().await;
}
