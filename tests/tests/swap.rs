//! Hot swap: a plugin is replaced while it serves, with zero dropped
//! connections and zero lost, duplicated or reordered messages.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock_tests::{
    Client, TestServer, WAIT, bundled_wasm, logs, rehash, replace_file, swap_plugin_dir, tempdir, wasm_bytes,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_swaps_under_continuous_traffic_without_losing_a_message() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "echo", "/echo", &wasm_bytes("echo"), "");
    let server = TestServer::watch(&dir, false).await;
    const CLIENTS: usize = 4;
    // Each client sends numbered messages without pause until told to stop,
    // and checks every reply: exactly one per message, in order, first with
    // the old prefix, then with the new one.
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel::<(usize, bool)>();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let mut c = server.connect("/echo").await;
        assert_eq!(c.recv_text().await, "Welcome to the chat room!");
        let (progress_tx, stop) = (progress_tx.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = c.ws.split();
            let (total_tx, total) = tokio::sync::watch::channel(usize::MAX);
            let writer = tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    tx.send(Message::text(format!("{client}:{n}"))).await.unwrap();
                    n += 1;
                }
                total_tx.send(n).unwrap();
                tx
            });
            let (mut old, mut new) = (0usize, 0usize);
            let mut n = 0;
            while n < *total.borrow() {
                let msg = tokio::time::timeout(WAIT, rx.next()).await.expect("a reply").expect("open").expect("ok");
                let text = msg.into_text().unwrap();
                if text == format!("You said: {client}:{n}") {
                    assert_eq!(new, 0, "old prefix after the new one: {text}");
                    old += 1;
                } else {
                    assert_eq!(text, format!("v2 said: {client}:{n}"), "message {n}");
                    new += 1;
                }
                n += 1;
                if n % 100 == 0 {
                    let _ = progress_tx.send((client, new > 0));
                }
            }
            let _sink = writer.await.unwrap();
            (old, new)
        }));
    }
    drop(progress_tx);
    // Swap once every client has traffic flowing.
    let mut flowing = std::collections::HashSet::new();
    while flowing.len() < CLIENTS {
        flowing.insert(progress.recv().await.unwrap().0);
    }
    replace_file(&plugin.join("plugin.wasm"), &wasm_bytes("echo-v2"));
    let report = server.reload().await;
    assert_eq!(report.swapped, ["echo"], "{report:?}");
    // Stop once every client has seen the new version for a while.
    let mut upgraded = std::collections::HashMap::new();
    while upgraded.len() < CLIENTS || upgraded.values().any(|n: &usize| *n < 3) {
        let (client, new) = progress.recv().await.unwrap();
        if new {
            *upgraded.entry(client).or_default() += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let (old, new) = t.await.unwrap();
        assert!(old >= 100 && new >= 300, "old {old}, new {new}");
    }
    let log = logs();
    let line = log.lines().find(|l| l.contains("swapped in a new version") && l.contains("plugin=echo")).unwrap();
    assert!(line.contains("sessions=4"), "{line}");
    server.shutdown().await;
}

/// The chat (in `plugin`'s language) keeps its user list across a swap, and
/// the host's broadcast its audience.
async fn chat_keeps_its_user_list_and_broadcast_its_audience_across_a_swap(plugin: &str) {
    let dir = tempdir();
    let chat_wasm = bundled_wasm(plugin);
    let chat = swap_plugin_dir(&dir, "chat", "/chat", &chat_wasm, "");
    let broadcast = swap_plugin_dir(&dir, "broadcast", "/broadcast", &wasm_bytes("broadcast"), "");
    let server = TestServer::watch(&dir, false).await;
    let mut users = Vec::new();
    let mut listeners = Vec::new();
    for n in 1..=3 {
        let mut c = server.connect("/chat").await;
        assert_eq!(c.recv_text().await, format!("Welcome! There are {n} users online."));
        users.push(c);
        let mut b = server.connect("/broadcast").await;
        assert_eq!(b.recv_text().await, "Connection established!");
        listeners.push(b);
    }
    replace_file(&chat.join("plugin.wasm"), &rehash(&chat_wasm, "v2"));
    replace_file(&broadcast.join("plugin.wasm"), &rehash(&wasm_bytes("broadcast"), "v2"));
    let report = server.reload().await;
    assert_eq!(report.swapped.len(), 2, "{report:?}");
    // The new chat instance got the user list back through restore.
    let mut late = server.connect("/chat").await;
    assert_eq!(late.recv_text().await, "Welcome! There are 4 users online.");
    users[0].send_text("after the swap").await;
    for c in users.iter_mut().chain([&mut late]) {
        assert_eq!(c.recv_text().await, "after the swap");
    }
    listeners[1].send_text("still everyone").await;
    for b in &mut listeners {
        assert_eq!(b.recv_text().await, "Broadcast: still everyone");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_rust_keeps_its_users_across_a_swap() {
    chat_keeps_its_user_list_and_broadcast_its_audience_across_a_swap("chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_javascript_keeps_its_users_across_a_swap() {
    chat_keeps_its_user_list_and_broadcast_its_audience_across_a_swap("chat-js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_python_keeps_its_users_across_a_swap() {
    chat_keeps_its_user_list_and_broadcast_its_audience_across_a_swap("chat-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_handed_to_the_new_version() {
    let dir = tempdir();
    let wasm = wasm_bytes("counter");
    swap_plugin_dir(&dir, "counter", "/count", &wasm, "[grants]\nenv = { VERSION = \"v1\" }\n");
    let server = TestServer::watch(&dir, false).await;
    let mut c = server.connect("/count").await;
    for n in 1..=3 {
        c.send_text("tick").await;
        assert_eq!(c.recv_text().await, format!("v1 {n}"));
    }
    // A manifest change is a new version too.
    swap_plugin_dir(&dir, "counter", "/count", &wasm, "[grants]\nenv = { VERSION = \"v2\" }\n");
    assert_eq!(server.reload().await.swapped, ["counter"]);
    c.send_text("tick").await;
    assert_eq!(c.recv_text().await, "v2 4");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_new_version_leaves_the_old_one_serving() {
    let dir = tempdir();
    let counter = wasm_bytes("counter");
    let plugin = swap_plugin_dir(&dir, "counter", "/count", &counter, "[grants]\nenv = { VERSION = \"v1\" }\n");
    let server = TestServer::watch(&dir, false).await;
    let mut c = server.connect("/count").await;
    c.send_text("tick").await;
    assert_eq!(c.recv_text().await, "v1 1");

    type Attempt<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let attempts: [Attempt; 5] = [
        ("not a valid WebAssembly component", Box::new(|| replace_file(&plugin.join("plugin.wasm"), b"garbage"))),
        (
            "not a valid WebAssembly component",
            Box::new(|| {
                // A half-written file: the first half of a good component.
                std::fs::write(plugin.join("plugin.wasm"), &counter[..counter.len() / 2]).unwrap()
            }),
        ),
        (
            "does not implement the wasock:plugin world",
            Box::new(|| replace_file(&plugin.join("plugin.wasm"), &wasm_bytes("wrong-world"))),
        ),
        (
            "trapped in restore",
            Box::new(|| {
                replace_file(&plugin.join("plugin.wasm"), &counter);
                swap_plugin_dir(
                    &dir,
                    "counter",
                    "/count",
                    &counter,
                    "[grants]\nenv = { VERSION = \"v2\", TRAP_ON_RESTORE = \"1\" }\n",
                );
            }),
        ),
        (
            "field `route`: must start with `/`",
            Box::new(|| {
                swap_plugin_dir(&dir, "counter", "no-slash", &counter, "");
            }),
        ),
    ];
    for (n, (want, break_it)) in attempts.iter().enumerate() {
        break_it();
        let report = server.reload().await;
        assert!(report.swapped.is_empty(), "{report:?}");
        let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
        assert!(failed.iter().any(|e| e.contains(want) && e.contains("counter")), "{want}: {report:?}");
        assert!(failed.iter().any(|e| e.contains("keeping")), "{report:?}");
        c.send_text("tick").await;
        assert_eq!(c.recv_text().await, format!("v1 {}", n + 2));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_directories_come_and_go_and_routes_move() {
    let dir = tempdir();
    swap_plugin_dir(&dir, "echo", "/echo", &wasm_bytes("echo"), "");
    let server = TestServer::watch(&dir, false).await;
    assert!(Client::connect(&server.url("/count")).await.is_err());

    // Added at runtime.
    swap_plugin_dir(&dir, "counter", "/count", &wasm_bytes("counter"), "");
    assert_eq!(server.reload().await.added, ["counter"]);
    let mut counter = server.connect("/count").await;
    counter.send_text("tick").await;
    assert_eq!(counter.recv_text().await, " 1");

    // Moved: the session stays; new clients use the new route.
    swap_plugin_dir(&dir, "counter", "/counter", &wasm_bytes("counter"), "");
    assert_eq!(server.reload().await.swapped, ["counter"]);
    counter.send_text("tick").await;
    assert_eq!(counter.recv_text().await, " 2");
    assert!(Client::connect(&server.url("/count")).await.is_err());
    let mut moved = server.connect("/counter").await;
    moved.send_text("tick").await;
    assert_eq!(moved.recv_text().await, " 3");

    // Removed: its sessions close with 1001, its route is gone, others stay.
    let mut echo = server.connect("/echo").await;
    echo.recv_text().await;
    std::fs::remove_dir_all(dir.join("counter")).unwrap();
    assert_eq!(server.reload().await.removed, ["counter"]);
    for c in [&mut counter, &mut moved] {
        assert_eq!(c.expect_close().await.unwrap().code, CloseCode::Away);
    }
    assert!(Client::connect(&server.url("/counter")).await.is_err());
    echo.send_text("still here").await;
    assert_eq!(echo.recv_text().await, "You said: still here");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_picks_up_a_new_component_by_itself() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "echo", "/echo", &wasm_bytes("echo"), "");
    let server = TestServer::watch(&dir, true).await;
    let mut c = server.connect("/echo").await;
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    replace_file(&plugin.join("plugin.wasm"), &wasm_bytes("echo-v2"));
    let mut n = 0;
    loop {
        c.send_text(&format!("{n}")).await;
        let reply = c.recv_text().await;
        if reply == format!("v2 said: {n}") {
            break;
        }
        assert_eq!(reply, format!("You said: {n}"));
        n += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // New clients get the new version too, and a new directory is served.
    let mut fresh = Client::connect_eventually(&server.url("/echo")).await;
    assert_eq!(fresh.recv_text().await, "Welcome to v2!");
    swap_plugin_dir(&dir, "counter", "/count", &wasm_bytes("counter"), "");
    let mut counter = Client::connect_eventually(&server.url("/count")).await;
    counter.send_text("tick").await;
    assert_eq!(counter.recv_text().await, " 1");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_build_a_source_change_is_rebuilt_and_swapped_in() {
    // The "source" is a component file and the build command copies it into
    // place: the watcher must see the source change, run the build, and swap
    // in what the build produced.
    let dir = tempdir();
    let plugin = swap_plugin_dir(
        &dir,
        "echo",
        "/echo",
        b"not built yet",
        "[build]\ncommand = \"cp src/echo.wasm plugin.wasm\"\n",
    );
    std::fs::create_dir_all(plugin.join("src")).unwrap();
    std::fs::write(plugin.join("src/echo.wasm"), wasm_bytes("echo")).unwrap();
    let server = TestServer::watch_with_build(&dir, true, true).await;
    let mut c = server.connect("/echo").await;
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    replace_file(&plugin.join("src/echo.wasm"), &wasm_bytes("echo-v2"));
    let mut fresh = loop {
        let mut probe = server.connect("/echo").await;
        if probe.recv_text().await == "Welcome to v2!" {
            break probe;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    fresh.send_text("built").await;
    assert_eq!(fresh.recv_text().await, "v2 said: built");
    c.send_text("kept").await;
    assert_eq!(c.recv_text().await, "v2 said: kept");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_lifecycle_still_swaps_and_recovers() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "bare", "/bare", &wasm_bytes("bare"), "");
    let server = TestServer::watch(&dir, false).await;
    let mut c = server.connect("/bare").await;
    assert_eq!(c.recv_text().await, "bare here");
    // A trap: a fresh instance (nothing to restore into), client kept.
    c.send_text("panic").await;
    c.send_text("after trap").await;
    assert_eq!(c.recv_text().await, "bare: after trap");
    // A new version without lifecycle, then one with it.
    replace_file(&plugin.join("plugin.wasm"), &rehash(&wasm_bytes("bare"), "v2"));
    assert_eq!(server.reload().await.swapped, ["bare"]);
    c.send_text("after swap").await;
    assert_eq!(c.recv_text().await, "bare: after swap");
    replace_file(&plugin.join("plugin.wasm"), &wasm_bytes("echo-v2"));
    assert_eq!(server.reload().await.swapped, ["bare"]);
    c.send_text("now v2").await;
    assert_eq!(c.recv_text().await, "v2 said: now v2");
    server.shutdown().await;
}
