//! The `wasock` binary end to end, as a newcomer runs it: `serve --build`
//! on the bundled plugins directory, real clients on every route, then
//! SIGTERM for a graceful stop. Also `check` on a broken plugin.

use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

#[tokio::test]
async fn serve_builds_and_serves_every_bundled_plugin_then_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasock"))
        .args(["serve", "--listen", "127.0.0.1:0", "--build"])
        .arg(plugins_dir())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(600))
            .unwrap_or_else(|_| panic!("no `listening on` line; log so far:\n{}", log.join("\n")));
        log.push(line.clone());
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_owned();
        }
    };
    let first = [
        ("/echo", Message::text("Welcome to the chat room!")),
        ("/binary", Message::binary(&b"Binary hello"[..])),
        ("/chat", Message::text("Welcome! There are 1 users online.")),
        ("/broadcast", Message::text("Connection established!")),
    ];
    for (route, want) in first {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{route}")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got, want, "first message on {route}");
    }
    let (_bye, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/bye")).await.unwrap();

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    log.extend(lines.try_iter());
    let log = log.join("\n");
    assert!(exit.success(), "exit {exit:?}\n{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    assert!(log.contains("server stopped"), "{log}");
    for name in ["echo", "binary", "bye", "chat", "broadcast"] {
        assert!(log.contains(&format!("serving ws://{addr}/{name}")), "{name} not served:\n{log}");
    }
}

#[test]
fn check_reports_a_broken_manifest_and_fails() {
    let dir = std::env::temp_dir().join(format!("wasock-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.toml"),
        "manifest-version = 1\nname = \"x\"\nroute = \"x\"\ncomponent = \"x.wasm\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasock")).arg("check").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("plugin.toml: field `route`: must start with `/`"), "{stdout}");
}
