//! `GET /metrics` on the admin listener, scraped and parsed after real
//! traffic: messages and bytes each way, sessions opened and closed (by
//! code), handler calls timed, a trap by cause, an upgrade the plugin
//! rejected.

use std::collections::HashMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock_tests::{Client, TestServer, compile_fixture, plugin, test_config};

/// Every sample of the exposition: `name{labels}` -> value (labels as written).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            (key.to_owned(), value.parse().unwrap_or_else(|_| panic!("not a number: {l}")))
        })
        .collect()
}

async fn scrape(server: &TestServer) -> (HashMap<String, f64>, String) {
    let (status, body) = server.admin_get("/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "not OpenMetrics text: {body}");
    (samples(&body), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_server_did() {
    let bad = compile_fixture("misbehave", "bad", "/bad", "", |_| {});
    let gate = compile_fixture("gate", "gate", "/gate", "", |_| {});
    let server = TestServer::serve_with_admin(test_config(), vec![plugin("echo"), bad, gate]).await;
    let mut c = server.connect("/echo").await;
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    for text in ["a", "bb", "ccc"] {
        c.send_text(text).await;
        assert_eq!(c.recv_text().await, format!("You said: {text}"));
    }
    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
    c.ws.close(Some(frame)).await.unwrap();
    let mut victim = server.connect("/bad").await;
    victim.send_text("panic").await;
    victim.send_text("after").await;
    assert_eq!(victim.recv_text().await, "restored:1");
    assert!(Client::connect_offering(&server.url("/gate?mode=reject"), &[]).await.is_err());

    let deadline = tokio::time::Instant::now() + wasock_tests::WAIT;
    let (m, body) = loop {
        let (m, body) = scrape(&server).await;
        if m.get(r#"wasock_closes_total{route="/echo",code="1000"}"#) == Some(&1.0) {
            break (m, body);
        }
        assert!(tokio::time::Instant::now() < deadline, "the close was never counted:\n{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let get = |key: &str| *m.get(key).unwrap_or_else(|| panic!("no {key} in:\n{body}"));
    assert_eq!(get(r#"wasock_connections_accepted_total{route="/echo"}"#), 1.0);
    assert_eq!(get(r#"wasock_connections_open{route="/echo"}"#), 0.0);
    assert_eq!(get(r#"wasock_connections_open{route="/bad"}"#), 1.0);
    assert_eq!(get(r#"wasock_messages_received_total{route="/echo"}"#), 3.0);
    assert_eq!(get(r#"wasock_received_bytes_total{route="/echo"}"#), 6.0);
    assert_eq!(get(r#"wasock_messages_sent_total{route="/echo"}"#), 4.0);
    let sent = "Welcome to the chat room!".len() + "You said: a".len() + "You said: bb".len() + "You said: ccc".len();
    assert_eq!(get(r#"wasock_sent_bytes_total{route="/echo"}"#), sent as f64);
    assert_eq!(get(r#"wasock_handler_call_seconds_count{route="/echo",handler="handle-text"}"#), 3.0);
    assert!(get(r#"wasock_handler_call_seconds_sum{route="/echo",handler="handle-text"}"#) > 0.0);
    assert_eq!(get(r#"wasock_traps_total{route="/bad",cause="trap"}"#), 1.0);
    assert_eq!(get(r#"wasock_upgrades_rejected_total{route="/gate",status="403"}"#), 1.0);
    server.shutdown().await;
}
