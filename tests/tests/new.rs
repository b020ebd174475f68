//! `wasock new` for each language, then `wasock serve --build NAME` as its
//! output says: the new plugin builds from source, serves at `/NAME`, and
//! answers a real client.

use futures_util::{SinkExt, StreamExt};
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wasock_tests::cli::{self, Served};
use wasock_tests::tempdir;

async fn new_then_serve(lang: &str) {
    let dir = tempdir();
    let name = format!("hello-{lang}");
    let out = Command::new(cli::binary()).args(["new", "--lang", lang, &name]).current_dir(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("wasock serve --build {name}")), "{stdout}");

    let served = Served::start(&dir, &["--build", &name], Duration::from_secs(900));
    let (mut ws, _) = tokio_tungstenite::connect_async(served.url(&format!("/{name}"))).await.unwrap();
    let mut next = async || tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(next().await, Message::text(format!("Welcome to {name}!")));
    ws.send(Message::text("hi ✓")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply, Message::text("You said: hi ✓"));
    drop(ws);
    let (exit, log) = served.stop();
    assert!(exit.success(), "{log}");
    assert!(
        log.lines().any(|l| l.contains(&name) && l.contains("Client says: hi ✓")),
        "the plugin's output is not in the log:\n{log}"
    );
}

#[tokio::test]
async fn new_rust_plugin_builds_and_serves() {
    new_then_serve("rust").await;
}

#[tokio::test]
async fn new_js_plugin_builds_and_serves() {
    new_then_serve("js").await;
}

#[tokio::test]
async fn new_python_plugin_builds_and_serves() {
    new_then_serve("python").await;
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let dir = tempdir();
    let new = |name: &str| {
        Command::new(cli::binary()).args(["new", "--lang", "js", name]).current_dir(&dir).output().unwrap()
    };
    let out = new("Bad_Name");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a plugin name"));
    assert!(new("fine").status.success());
    let out = new("fine");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}
