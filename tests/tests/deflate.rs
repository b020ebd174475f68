//! permessage-deflate (RFC 7692) against a real server: what is negotiated
//! for each kind of offer (and declined without failing the handshake),
//! compressed messages both ways with the bits on the wire checked, short
//! messages left uncompressed, and a zip bomb closed with 1009 under
//! `max-message-bytes` (which bounds the inflated size).

use std::path::PathBuf;
use wasock_tests::raw::{RawClient, deflate, header, inflate};
use wasock_tests::{TestServer, compile_fixture, test_config};

/// The pure echo at `/m` with `[deflate]` settings `table` (none: no
/// compression) and a 1 MiB message limit.
fn mirror(name: &str, table: Option<&str>) -> PathBuf {
    let deflate = table.map(|t| format!("[deflate]\n{t}")).unwrap_or_default();
    let extra = format!("[limits]\nmax-message-bytes = 1048576\n{deflate}");
    compile_fixture("mirror", name, &format!("/{name}"), &extra, |_| {})
}

async fn answer_to(server: &TestServer, route: &str, offer: &str) -> (u16, Option<String>) {
    let headers = [format!("Sec-WebSocket-Extensions: {offer}")];
    let headers: Vec<&str> = headers.iter().map(String::as_str).filter(|_| !offer.is_empty()).collect();
    let (_, answer) = RawClient::connect(server.addr, route, &headers).await;
    (answer.0, header(&answer, "sec-websocket-extensions").map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiates_what_it_can_honour_and_declines_the_rest() {
    let (lean, takeover, plain) = (
        mirror("lean", Some("")),
        mirror("takeover", Some("context-takeover = true\nwindow-bits = 12\n")),
        mirror("plain", None),
    );
    let server = TestServer::serve(test_config(), vec![lean, takeover, plain]).await;
    let none = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let cases: &[(&str, &str, Option<&str>)] = &[
        // The default keeps no context on either side, asked of the client
        // even when it did not offer it (RFC 7692 section 7.1.1.2).
        ("/lean", "permessage-deflate", Some(none)),
        ("/lean", "permessage-deflate; client_max_window_bits", Some(none)),
        ("/lean", "permessage-deflate; client_no_context_takeover; server_no_context_takeover", Some(none)),
        (
            "/lean",
            "permessage-deflate; server_max_window_bits=10",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
            ),
        ),
        (
            "/lean",
            "permessage-deflate; client_max_window_bits=11",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=11",
            ),
        ),
        // Offers it cannot honour are skipped, the next one taken, and
        // with none left the handshake succeeds uncompressed.
        ("/lean", "permessage-deflate; server_max_window_bits=8", None),
        ("/lean", "permessage-deflate; server_max_window_bits=8, permessage-deflate", Some(none)),
        ("/lean", "permessage-deflate; mystery_param", None),
        ("/lean", "x-webkit-deflate-frame", None),
        ("/lean", "", None),
        // Context takeover and a smaller window when the plugin asks.
        ("/takeover", "permessage-deflate", Some("permessage-deflate; server_max_window_bits=12")),
        (
            "/takeover",
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12"),
        ),
        // A plugin without [deflate] never compresses.
        ("/plain", "permessage-deflate; client_max_window_bits", None),
    ];
    for (route, offer, want) in cases {
        let (status, got) = answer_to(&server, route, offer).await;
        assert_eq!(status, 101, "{route} {offer}");
        assert_eq!(got.as_deref(), *want, "{route} offering {offer:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_messages_travel_both_ways_and_short_ones_go_plain() {
    let server = TestServer::serve(test_config(), vec![mirror("c", Some("threshold-bytes = 64\n"))]).await;
    let (client, answer) =
        RawClient::connect(server.addr, "/c", &["Sec-WebSocket-Extensions: permessage-deflate"]).await;
    assert!(header(&answer, "sec-websocket-extensions").is_some());
    let mut client = client.unwrap();
    let chat = r#"{"user":"alice","room":"lobby","text":"hello hello hello hello hello hello"}"#.repeat(10);
    for round in 0..3 {
        client.send(1, true, &deflate(chat.as_bytes())).await;
        let echoed = client.recv().await.unwrap();
        assert_eq!((echoed.opcode, echoed.fin, echoed.rsv1), (1, true, true), "round {round}");
        assert!(echoed.payload.len() < chat.len() / 4, "{} bytes for {}", echoed.payload.len(), chat.len());
        assert_eq!(inflate(&echoed.payload), chat.as_bytes());
    }
    // Binary, compressed by the client.
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    client.send(2, true, &deflate(&data)).await;
    let echoed = client.recv().await.unwrap();
    assert_eq!((echoed.opcode, echoed.rsv1), (2, true));
    assert_eq!(inflate(&echoed.payload), data);
    // An uncompressed message on a compressed connection is fine, and a
    // short reply goes back uncompressed.
    client.send(1, false, b"hi").await;
    let echoed = client.recv().await.unwrap();
    assert_eq!((echoed.opcode, echoed.rsv1, echoed.payload.as_slice()), (1, false, &b"hi"[..]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_bomb_closes_with_1009_and_spares_the_others() {
    let server = TestServer::serve(test_config(), vec![mirror("z", Some(""))]).await;
    let offer = ["Sec-WebSocket-Extensions: permessage-deflate"];
    let mut bystander = RawClient::connect(server.addr, "/z", &offer).await.0.unwrap();
    let mut bomber = RawClient::connect(server.addr, "/z", &offer).await.0.unwrap();
    // 64 MiB of zeros inflate from about 64 KiB: small on the wire, 64
    // times the 1 MiB limit once inflated.
    let bomb = deflate(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100 << 10, "{}", bomb.len());
    bomber.send(2, true, &bomb).await;
    let mut close = None;
    while let Some(frame) = bomber.recv().await {
        if frame.opcode == 8 {
            close = Some(frame);
            break;
        }
    }
    let close = close.expect("a close frame");
    assert_eq!(u16::from_be_bytes([close.payload[0], close.payload[1]]), 1009, "{close:?}");
    // The other client on the endpoint carries on.
    bystander.send(1, false, b"still here").await;
    assert_eq!(bystander.recv().await.unwrap().payload, b"still here");
    server.shutdown().await;
}

/// `max-sessions` bounds the compressed sessions (it matters under context
/// takeover, where each keeps its own contexts, ~300 KiB once used). Past
/// it a client is served uncompressed, not refused; a place freed is
/// reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_bounds_the_compressed_connections() {
    let server = TestServer::serve(test_config(), vec![mirror("few", Some("max-sessions = 2\n"))]).await;
    let offer = ["Sec-WebSocket-Extensions: permessage-deflate"];
    let connect = || RawClient::connect(server.addr, "/few", &offer);
    let (first, a) = connect().await;
    let (second, b) = connect().await;
    let (third, c) = connect().await;
    assert!(header(&a, "sec-websocket-extensions").is_some() && header(&b, "sec-websocket-extensions").is_some());
    assert_eq!((c.0, header(&c, "sec-websocket-extensions")), (101, None), "the third goes uncompressed");
    let mut third = third.unwrap();
    third.send(1, false, b"plain still works").await;
    assert_eq!(third.recv().await.unwrap().payload, b"plain still works");
    drop((first, second));
    wasock_tests::eventually_async("a place is free again", || async {
        header(&connect().await.1, "sec-websocket-extensions").is_some()
    })
    .await;
    server.shutdown().await;
}
