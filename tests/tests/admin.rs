//! The admin listener over real HTTP: health, readiness (also while
//! shutting down) and the status document, and `wasock status` reading it.

use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock::ServerConfig;
use wasock_tests::cli::Served;
use wasock_tests::{TestServer, plugins_dir, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_status_describe_the_server() {
    let server = TestServer::with_admin(test_config(), &["echo", "chat"]).await;
    assert_eq!(server.admin_get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(server.admin_get("/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(server.admin_get("/nope").await.0, 404);
    let mut a = server.connect("/chat").await;
    a.recv_text().await;
    let mut b = server.connect("/chat").await;
    b.recv_text().await;
    let (code, body) = server.admin_get("/status").await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["ready"], true);
    let endpoints = status["endpoints"].as_array().unwrap();
    let chat = endpoints.iter().find(|e| e["plugin"] == "chat").unwrap_or_else(|| panic!("{body}"));
    assert_eq!(chat["route"], "/chat");
    assert_eq!(chat["state"], "serving");
    assert_eq!(chat["sessions"], 2);
    assert_eq!(chat["instances"], 1);
    assert_eq!(chat["contract"], "wasock:plugin@0.2.0");
    assert_eq!(chat["version"].as_str().unwrap().len(), 12, "{chat}");
    assert!(chat["last_swap"].is_null());
    let echo = endpoints.iter().find(|e| e["plugin"] == "echo").unwrap();
    assert_eq!(echo["sessions"], 0);
    server.shutdown().await;
}

/// A stopping server is not ready (503) for the drain delay while it still
/// serves, so a load balancer stops sending clients before any session is
/// closed with 1001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_503_before_sessions_are_closed() {
    let config = ServerConfig { drain_delay: Duration::from_millis(800), ..test_config() };
    let server = TestServer::with_admin(config, &["echo"]).await;
    let mut c = server.connect("/echo").await;
    c.recv_text().await;
    let admin = server.admin_url_addr();
    let stopping = tokio::spawn(server.shutdown());
    wasock_tests::eventually_async("readyz to say 503", || async move {
        wasock_tests::http_get(admin, "/readyz").await == (503, "shutting down\n".to_owned())
    })
    .await;
    // Not ready, and still serving.
    c.send_text("still here").await;
    assert_eq!(c.recv_text().await, "You said: still here");
    assert_eq!(c.expect_close().await.unwrap().code, CloseCode::Away);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasock_status_prints_the_endpoints() {
    let mut served = Served::start(
        &plugins_dir(),
        &["--no-watch", "--admin", "127.0.0.1:0", "echo", "bye"],
        Duration::from_secs(120),
    );
    let admin = served.admin_addr();
    let out = wasock_tests::cli::run(&plugins_dir(), &["status", "--admin", &admin]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("(ready)"), "{stdout}");
    let echo = stdout.lines().find(|l| l.starts_with("echo ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(echo.contains("/echo") && echo.contains("serving"), "{echo}");
    assert!(stdout.lines().any(|l| l.starts_with("bye ") && l.contains("/bye")), "{stdout}");
    let (exit, log) = served.stop();
    assert!(exit.success(), "{log}");
}
