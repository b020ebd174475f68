//! Each bundled plugin behaves exactly as its example in the seed document.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasock_tests::{Client, TestServer};

/// The seed's `writeText` example, checked the same way for each language.
async fn echo_welcomes_and_echoes(plugin: &str, route: &str) {
    let server = TestServer::start(&[plugin]).await;
    let mut c = server.connect(route).await;
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    c.send_text("hello").await;
    assert_eq!(c.recv_text().await, "You said: hello");
    c.send_text("").await;
    assert_eq!(c.recv_text().await, "You said: ");
    c.send_text("ünïcødé ✓").await;
    assert_eq!(c.recv_text().await, "You said: ünïcødé ✓");
    let big = "x".repeat(200_000);
    c.send_text(&big).await;
    assert_eq!(c.recv_text().await, format!("You said: {big}"));
    let log = wasock_tests::logs();
    assert!(
        log.lines().any(|l| l.contains(plugin) && l.contains("Client says: ünïcødé ✓")),
        "{plugin} did not log the message"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_in_rust() {
    echo_welcomes_and_echoes("echo", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_in_c() {
    echo_welcomes_and_echoes("echo-c", "/c/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_greets_and_answers_lengths() {
    let server = TestServer::start(&["binary"]).await;
    let mut c = server.connect("/binary").await;
    assert_eq!(&c.recv_binary().await[..], b"Binary hello");
    for len in [0usize, 1, 5, 70_000] {
        c.send_binary(&vec![7u8; len]).await;
        assert_eq!(&c.recv_binary().await[..], &(len as u32).to_le_bytes());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_says_goodbye_and_closes() {
    let server = TestServer::start(&["bye"]).await;
    let mut c = server.connect("/bye").await;
    c.send_text("hello").await;
    c.send_text("bye").await;
    assert_eq!(c.recv_text().await, "Goodbye!");
    let frame = c.expect_close().await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Normal);
    server.shutdown().await;
}

/// The seed's chat server, checked the same way for each language: the
/// count in the welcome, every message to everyone (the sender too), and
/// the list kept right as clients leave.
async fn chat_counts_users_and_broadcasts_to_everyone(plugin: &str, route: &str) {
    let server = TestServer::start(&[plugin]).await;
    let mut clients = Vec::new();
    for n in 1..=5 {
        let mut c = server.connect(route).await;
        assert_eq!(c.recv_text().await, format!("Welcome! There are {n} users online."));
        clients.push(c);
    }
    for (i, sender) in (0..clients.len()).enumerate() {
        let text = format!("message {i} ✓");
        clients[sender].send_text(&text).await;
        for c in &mut clients {
            assert_eq!(c.recv_text().await, text);
        }
    }
    // Two leave; the rest keep chatting and the count follows.
    clients.truncate(3);
    clients[0].send_text("still here").await;
    for c in &mut clients {
        assert_eq!(c.recv_text().await, "still here");
    }
    let mut late = server.connect(route).await;
    assert_eq!(late.recv_text().await, "Welcome! There are 4 users online.");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_rust() {
    chat_counts_users_and_broadcasts_to_everyone("chat", "/chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_javascript() {
    chat_counts_users_and_broadcasts_to_everyone("chat-js", "/js/chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_python() {
    chat_counts_users_and_broadcasts_to_everyone("chat-py", "/py/chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_fans_out_through_the_host() {
    let server = TestServer::start(&["broadcast"]).await;
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..4 {
        let mut c = server.connect("/broadcast").await;
        assert_eq!(c.recv_text().await, "Connection established!");
        clients.push(c);
    }
    clients[2].send_text("hi all").await;
    for c in &mut clients {
        assert_eq!(c.recv_text().await, "Broadcast: hi all");
    }
    let gone = clients.remove(0);
    drop(gone);
    wasock_tests::eventually("the disconnect to be logged", || wasock_tests::logs().contains("Client disconnected"))
        .await;
    clients[0].send_text("after").await;
    for c in &mut clients {
        assert_eq!(c.recv_text().await, "Broadcast: after");
    }
    clients[1].send_binary(&[1, 2, 3]).await;
    wasock_tests::eventually("binary to be logged", || wasock_tests::logs().contains("Received binary data: 3")).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_independent() {
    let server = TestServer::start(&["echo", "chat", "bye"]).await;
    let mut echo = server.connect("/echo").await;
    let mut chat = server.connect("/chat").await;
    assert_eq!(echo.recv_text().await, "Welcome to the chat room!");
    assert_eq!(chat.recv_text().await, "Welcome! There are 1 users online.");
    chat.send_text("only chat").await;
    echo.send_text("only echo").await;
    assert_eq!(chat.recv_text().await, "only chat");
    assert_eq!(echo.recv_text().await, "You said: only echo");
    server.shutdown().await;
}
