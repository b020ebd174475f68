//! The `wasock` binary end to end, as a newcomer runs it: `serve --build`
//! on the bundled plugins directory, real clients on every route, then
//! SIGTERM for a graceful stop. Also `check` on a broken plugin.

use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wasock_tests::cli::Served;
use wasock_tests::{Client, plugins_dir};

#[tokio::test]
async fn serve_builds_and_serves_every_bundled_plugin_then_stops_on_sigterm() {
    let served = Served::start(&plugins_dir(), &["--build", "."], Duration::from_secs(900));
    let first = [
        ("/echo", Message::text("Welcome to the chat room!")),
        ("/binary", Message::binary(&b"Binary hello"[..])),
        ("/chat", Message::text("Welcome! There are 1 users online.")),
        ("/broadcast", Message::text("Connection established!")),
        ("/c/echo", Message::text("Welcome to the chat room!")),
        ("/js/chat", Message::text("Welcome! There are 1 users online.")),
        ("/py/chat", Message::text("Welcome! There are 1 users online.")),
    ];
    for (route, want) in first {
        let (mut ws, _) = tokio_tungstenite::connect_async(served.url(route)).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got, want, "first message on {route}");
    }
    let (_bye, _) = tokio_tungstenite::connect_async(served.url("/bye")).await.unwrap();

    let addr = served.addr.clone();
    let (exit, log) = served.stop();
    assert!(exit.success(), "exit {exit:?}\n{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    assert!(log.contains("server stopped"), "{log}");
    for route in ["/echo", "/binary", "/bye", "/chat", "/broadcast", "/c/echo", "/js/chat", "/py/chat"] {
        assert!(log.contains(&format!("serving ws://{addr}{route}")), "{route} not served:\n{log}");
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
    let out = Command::new(wasock_tests::cli::binary()).arg("check").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("plugin.toml: field `route`: must start with `/`"), "{stdout}");
}

#[test]
fn check_names_the_contract_each_plugin_implements() {
    let bare = wasock_tests::compile_fixture("bare", "bare", "/bare", "", |_| {});
    let gate = wasock_tests::compile_fixture("gate", "gate", "/gate", "", |_| {});
    let out = Command::new(wasock_tests::cli::binary()).arg("check").arg(&bare).arg(&gate).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let contract_of = |name: &str| {
        let at = stdout.find(&format!("ok   {name} ")).unwrap_or_else(|| panic!("{name} not checked: {stdout}"));
        stdout[at..].lines().nth(1).unwrap().trim().to_owned()
    };
    assert_eq!(contract_of("bare"), "contract wasock:plugin@0.1.0");
    assert_eq!(contract_of("gate"), "contract wasock:plugin@0.2.0");
}

/// At the open-file limit accept fails (EMFILE): the server neither spins
/// nor stops, the sessions it has are served, and it accepts again once
/// descriptors are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_open_file_limit_the_server_backs_off_and_recovers() {
    let served = Served::start_limited(&plugins_dir(), &["--no-watch", "echo"], Duration::from_secs(120), 64);
    let url = served.url("/echo");
    let mut clients = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), Client::connect(&url)).await {
            Ok(Ok(mut c)) => {
                assert_eq!(c.recv_text().await, "Welcome to the chat room!");
                clients.push(c);
            }
            _ => break,
        }
        assert!(clients.len() < 500, "never reached the open-file limit");
    }
    let held = clients.len();
    assert!(held > 0, "not even one connection under the limit");
    // Waiting at the limit costs (almost) nothing: a spinning accept loop
    // would use the whole second.
    let before = served.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = served.cpu_ticks() - before;
    assert!(spent < 50, "{spent} ticks of CPU in one second at the limit");
    clients[0].send_text("still served").await;
    assert_eq!(clients[0].recv_text().await, "You said: still served");
    clients.truncate(held / 2);
    let mut late = Client::connect_eventually(&url).await;
    assert_eq!(late.recv_text().await, "Welcome to the chat room!");
    drop((clients, late));
    let (exit, log) = served.stop();
    assert!(exit.success(), "{log}");
    let failures = log.matches("accept failed").count();
    assert!((1..=3).contains(&failures), "accept failures logged {failures} times:\n{log}");
}

/// `--log-format json`: every line is one JSON object, with the fields the
/// text format shows (a trap's plugin, handler, session and cause; the
/// endpoint span's plugin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_same_fields() {
    let bad = wasock_tests::compile_fixture("misbehave", "bad", "/bad", "", |_| {});
    let served = Served::start(&bad, &["--log-format", "json", "--no-watch", "."], Duration::from_secs(120));
    let mut c = Client::connect(&served.url("/bad")).await.unwrap();
    c.send_text("panic").await;
    c.send_text("after").await;
    assert_eq!(c.recv_text().await, "restored:1");
    let (_, log) = served.stop();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let trap = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["handler"] == "handle-text")
        .unwrap_or_else(|| panic!("no trap line in:\n{log}"));
    assert_eq!(trap["plugin"], "bad", "{trap}");
    assert_eq!(trap["cause"], "trap", "{trap}");
    assert!(trap["session"].as_u64().is_some_and(|id| id > 0), "{trap}");
    assert!(trap["message"].as_str().unwrap().contains("discarding the instance"), "{trap}");
    let in_span = lines
        .iter()
        .find(|l| l["message"] == "fresh plugin instance started")
        .unwrap_or_else(|| panic!("no restart line in:\n{log}"));
    assert_eq!(in_span["spans"][0]["name"], "endpoint", "{in_span}");
    assert_eq!(in_span["spans"][0]["plugin"], "bad", "{in_span}");
}

/// `wasock serve` without paths reads `./wasock.toml`: its plugins, admin
/// listener and limits apply, and a flag given on the command line wins
/// (the harness passes `--listen 127.0.0.1:0` over the file's port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_wasock_toml_and_flags_override_it() {
    let dir = wasock_tests::tempdir();
    let config = format!(
        "config-version = 1\nlisten = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:0\"\nplugins = [{:?}]\nwatch = false\n\n[limits]\nmax-connections-per-ip = 1\n",
        plugins_dir().join("echo")
    );
    std::fs::write(dir.join("wasock.toml"), config).unwrap();
    let mut served = Served::start(&dir, &[], Duration::from_secs(120));
    let mut c = Client::connect(&served.url("/echo")).await.unwrap();
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    // The file's per-address cap: a second connection from 127.0.0.1 gets 429.
    let Err(err) = Client::connect(&served.url("/echo")).await else {
        panic!("a second connection got past the file's cap of 1");
    };
    assert!(err.to_string().contains("429"), "{err:#}");
    let admin = served.admin_addr();
    let (status, _) = wasock_tests::http_get(admin.parse().unwrap(), "/healthz").await;
    assert_eq!(status, 200);
    served.stop();
}

#[test]
fn a_bad_config_file_is_an_error_naming_the_file_the_line_and_the_field() {
    let dir = wasock_tests::tempdir();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "config-version = 1\n[limits]\nidle-timeout-secs = \"ten\"\n").unwrap();
    let out = Command::new(wasock_tests::cli::binary()).args(["serve", "--config"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!("{}: line 3, column 21: field `idle-timeout-secs`: invalid type", file.display());
    assert!(stderr.contains(&want), "{stderr}");
}
