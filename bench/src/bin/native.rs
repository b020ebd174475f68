//! The native baseline: the bundled `echo` and `broadcast` plugins' logic,
//! and the benchmark's `topic` plugin's (`/topic`: every session is a member
//! of topic `bench`; a text is published to it), written straight in Rust on
//! wasock's own plain codec (`wasock::codec`, the codec wasock's plain
//! sessions run on), with the same socket and buffer settings as wasock,
//! and no wasm: a minimal HTTP handshake, then the codec. Benchmarks run the same load against this and against
//! wasock and report the ratio.
//!
//! `native [ADDR]` (default 127.0.0.1:0); prints `listening on ADDR`.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wasock::codec::Codec;

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
    let write_buffer = defaults.write_buffer_size;
    let peers: Peers = Arc::default();
    let topics: Topics = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let id = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, write_buffer, peers.clone(), topics.clone(), id));
    }
}

/// Reads the client's upgrade request and answers 101: the request path.
/// (The load clients send nothing before the answer.)
async fn handshake(stream: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        request.extend_from_slice(&buf[..n]);
        if request.len() > 16 << 10 {
            return None;
        }
    }
    let request = String::from_utf8(request).ok()?;
    let path = request.split(' ').nth(1)?.split('?').next()?.to_owned();
    let key = request.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
    })?;
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    Some(path)
}

async fn serve(mut stream: TcpStream, write_buffer: usize, peers: Peers, topics: Topics, id: u64) {
    let Some(path) = handshake(&mut stream).await else { return };
    let ws = Codec::server(stream, 1 << 20, write_buffer);
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
