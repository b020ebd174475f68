//! The native baseline: the bundled `echo` and `broadcast` plugins' logic,
//! and the benchmark's `topic` plugin's (`/topic`: every session is a member
//! of topic `bench`; a text is published to it), written straight in Rust on
//! tokio-tungstenite, with the same socket and buffer settings as wasock,
//! and no wasm. Benchmarks run the same load against this and against
//! wasock and report the ratio.
//!
//! `native [ADDR]` (default 127.0.0.1:0); prints `listening on ADDR`.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The sessions of one fan-out group (`/broadcast`, or topic `bench`).
type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

/// Topics by name, each with its members.
type Topics = Arc<Mutex<HashMap<String, HashMap<u64, mpsc::UnboundedSender<Message>>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let defaults = wasock::ServerConfig::default();
    let listener = wasock::server::bind(addr.parse()?, defaults.listen_backlog)?;
    println!("listening on {}", listener.local_addr()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(defaults.read_buffer_size)
        .write_buffer_size(defaults.write_buffer_size)
        .max_message_size(Some(1 << 20));
    let peers: Peers = Arc::default();
    let topics: Topics = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let id = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, config, peers.clone(), topics.clone(), id));
    }
}

#[allow(clippy::result_large_err)] // tungstenite's callback signature
async fn serve(stream: TcpStream, config: WebSocketConfig, peers: Peers, topics: Topics, id: u64) {
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.feed(msg).await.is_err() {
                return;
            }
            while let Ok(msg) = rx.try_recv() {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let (broadcast, topic) = (path == "/broadcast", path == "/topic");
    let greeting = if broadcast || topic { "Connection established!" } else { "Welcome to the chat room!" };
    let _ = tx.send(Message::text(greeting));
    if broadcast {
        peers.lock().unwrap().insert(id, tx.clone());
    } else if topic {
        topics.lock().unwrap().entry("bench".to_owned()).or_default().insert(id, tx.clone());
    }
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Text(text) = msg {
            if broadcast {
                let out = Message::text(format!("Broadcast: {text}"));
                for peer in peers.lock().unwrap().values() {
                    let _ = peer.send(out.clone());
                }
            } else if topic {
                let out = Message::text(format!("Broadcast: {text}"));
                if let Some(members) = topics.lock().unwrap().get("bench") {
                    for member in members.values() {
                        let _ = member.send(out.clone());
                    }
                }
            } else {
                let _ = tx.send(Message::text(format!("You said: {text}")));
            }
        }
    }
    peers.lock().unwrap().remove(&id);
    if let Some(members) = topics.lock().unwrap().get_mut("bench") {
        members.remove(&id);
    }
    drop(tx);
    let _ = writer.await;
}
