//! The compressed chat scenario's load client: JSON-like chat messages of
//! 200-2000 bytes echoed by the server's `/echo`, with permessage-deflate
//! offered (`--deflate`) or not, counting every byte on the wire.
//!
//! - `chat`: N connections, each keeping K messages in flight for T
//!   seconds: messages per second, bytes on the wire per message (both
//!   directions, frames and all, as the socket saw them), and with `--pid`
//!   the server's CPU time per message.
//! - `idle`: N connections, each exchanging one message (so a compressed
//!   connection's contexts have been used) and then held: the server's RSS
//!   growth per connection.
//! - `room`: N receivers and one sender on `/broadcast` (a chat room): the
//!   sender sends a chat message, every member gets "Broadcast: ..." (the
//!   sender too), and the next goes once all have it: deliveries per
//!   second and, with `--pid`, the server's CPU per delivery. Compressed,
//!   this is where compressing a message once for all members pays.
//!
//! One client for every server (sockudo-ws, with or without its deflate),
//! so the servers differ and the client does not.

use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use sockudo_ws::deflate::{DeflateConfig, parse_deflate_offer};
use sockudo_ws::{CompressedWebSocketStream, Message, Role, WebSocketStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use wasock_bench::cpu::CpuSample;
use wasock_bench::rss_kib;

#[derive(Parser)]
struct Args {
    /// Server address, e.g. 127.0.0.1:8080
    #[arg(long)]
    addr: String,
    /// Label for the result line (e.g. wasock, node, bun).
    #[arg(long)]
    label: String,
    /// Offer permessage-deflate.
    #[arg(long)]
    deflate: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    Chat {
        #[arg(long, default_value_t = 100)]
        conns: usize,
        #[arg(long, default_value_t = 4)]
        inflight: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// The server's process id, to read its CPU time per message.
        #[arg(long)]
        pid: Option<u32>,
    },
    Idle {
        #[arg(long, default_value_t = 5000)]
        conns: usize,
        /// The server's process id, to read its RSS.
        #[arg(long)]
        pid: u32,
    },
    Room {
        /// Members besides the sender.
        #[arg(long, default_value_t = 1000)]
        receivers: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// The server's process id, to read its CPU time per delivery.
        #[arg(long)]
        pid: Option<u32>,
    },
}

/// Bytes that crossed the client's sockets, both directions.
static WIRE_BYTES: AtomicU64 = AtomicU64::new(0);

/// A socket that counts what it reads and writes into [`WIRE_BYTES`].
struct Counted(TcpStream);

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.0).poll_read(cx, buf);
        WIRE_BYTES.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            WIRE_BYTES.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// One connection, compressed or not.
enum Conn {
    Plain(Box<WebSocketStream<Counted>>),
    Deflate(Box<CompressedWebSocketStream<Counted>>),
}

impl Conn {
    async fn send(&mut self, text: Bytes) -> anyhow::Result<()> {
        match self {
            Conn::Plain(ws) => send_on(ws.as_mut(), text).await,
            Conn::Deflate(ws) => send_on(ws.as_mut(), text).await,
        }
    }

    /// The next text message.
    async fn recv(&mut self) -> anyhow::Result<Bytes> {
        match self {
            Conn::Plain(ws) => recv_on(ws.as_mut()).await,
            Conn::Deflate(ws) => recv_on(ws.as_mut()).await,
        }
    }
}

async fn send_on<W: Sink<Message, Error = sockudo_ws::Error> + Unpin>(ws: &mut W, text: Bytes) -> anyhow::Result<()> {
    Ok(ws.send(Message::Text(text)).await?)
}

async fn recv_on<W: Stream<Item = sockudo_ws::Result<Message>> + Unpin>(ws: &mut W) -> anyhow::Result<Bytes> {
    loop {
        match ws.next().await.ok_or_else(|| anyhow::anyhow!("closed"))?? {
            Message::Text(text) => return Ok(text),
            Message::Close(reason) => anyhow::bail!("closed: {reason:?}"),
            _ => {}
        }
    }
}

/// Connects to `path`, offering permessage-deflate if `deflate`, and reads
/// the greeting. The handshake is written out here: sockudo-ws's client
/// handshake takes no extension offer.
async fn connect(addr: &str, path: &str, deflate: bool) -> anyhow::Result<(Conn, bool)> {
    let mut tcp = Counted(TcpStream::connect(addr).await?);
    tcp.0.set_nodelay(true)?;
    let offer = if deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        anyhow::ensure!(tcp.read_buf(&mut buf).await? > 0, "closed during the handshake");
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "handshake refused: {head}");
    let extensions = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions").then(|| value.trim().to_owned())
    });
    let leftover = (end < buf.len()).then(|| Bytes::copy_from_slice(&buf[end..]));
    let config = sockudo_ws::Config::builder().auto_ping(false).idle_timeout(0).build();
    let agreed = extensions.as_deref().and_then(parse_deflate_offer).map(|p| DeflateConfig::from_params(&p));
    let mut conn = match agreed {
        Some(params) => {
            let ws = CompressedWebSocketStream::client_with_leftover(tcp, config, params?, leftover);
            Conn::Deflate(Box::new(ws))
        }
        None => {
            let ws = WebSocketStream::from_raw_with_leftover(tcp, Role::Client, config, leftover);
            Conn::Plain(Box::new(ws))
        }
    };
    conn.recv().await?;
    let compressed = matches!(conn, Conn::Deflate(_));
    Ok((conn, compressed))
}

/// A chat message of 200-2000 bytes, different every time (`n`), made of
/// what chat and dashboard messages are made of: JSON keys, names, words.
fn message(n: u64) -> Bytes {
    const WORDS: [&str; 16] = [
        "hello",
        "the",
        "deploy",
        "is",
        "green",
        "again",
        "see",
        "dashboard",
        "latency",
        "p99",
        "room",
        "lobby",
        "ok",
        "thanks",
        "merged",
        "tonight",
    ];
    let mut x = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let target = 200 + (next() % 1801) as usize;
    let mut out =
        format!(r#"{{"type":"message","id":{n},"room":"lobby-{}","user":"user{}","text":""#, next() % 8, next() % 500);
    while out.len() + 40 < target {
        out.push_str(WORDS[(next() % 16) as usize]);
        out.push(' ');
    }
    out.push_str(&format!(r#"","ts":{},"reactions":[]}}"#, 1_700_000_000_000 + n));
    Bytes::from(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (label, deflate) = (&args.label, args.deflate);
    match args.scenario {
        Scenario::Chat { conns, inflight, secs, pid } => {
            let mut ready = Vec::with_capacity(conns);
            let mut compressed = false;
            for _ in 0..conns {
                let (conn, c) = connect(&args.addr, "/echo", deflate).await?;
                compressed = c;
                ready.push(conn);
            }
            let server_before = pid.map(CpuSample::of).transpose()?;
            let wire_before = WIRE_BYTES.load(Ordering::Relaxed);
            let sent_bytes = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let deadline = started + Duration::from_secs(secs);
            let tasks: Vec<_> = ready
                .into_iter()
                .enumerate()
                .map(|(i, conn)| tokio::spawn(chat_conn(conn, i as u64, inflight, deadline, sent_bytes.clone())))
                .collect();
            let mut messages = 0;
            for t in tasks {
                messages += t.await??;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let wire = WIRE_BYTES.load(Ordering::Relaxed) - wire_before;
            let payload = sent_bytes.load(Ordering::Relaxed);
            let mut cpu = String::new();
            if let (Some(pid), Some(before)) = (pid, server_before) {
                let spent = CpuSample::of(pid)?.since(&before).total().as_secs_f64();
                cpu = format!(r#","server_us_per_msg":{:.3}"#, spent * 1e6 / messages.max(1) as f64);
            }
            println!(
                r#"{{"scenario":"chat","label":"{label}","offered":{deflate},"deflate":{compressed},"conns":{conns},"messages":{messages},"msgs_per_sec":{:.0},"payload_bytes_per_msg":{:.0},"wire_bytes_per_msg":{:.0}{cpu}}}"#,
                messages as f64 / elapsed,
                payload as f64 / messages.max(1) as f64,
                wire as f64 / messages.max(1) as f64
            );
        }
        Scenario::Idle { conns, pid } => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = rss_kib(pid)?;
            let mut held = Vec::with_capacity(conns);
            let mut compressed = false;
            for i in 0..conns {
                let (mut conn, c) = connect(&args.addr, "/echo", deflate).await?;
                compressed = c;
                conn.send(message(i as u64)).await?;
                conn.recv().await?;
                held.push(conn);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after = rss_kib(pid)?;
            println!(
                r#"{{"scenario":"chat-idle","label":"{label}","offered":{deflate},"deflate":{compressed},"conns":{conns},"rss_before_kib":{before},"rss_after_kib":{after},"kib_per_conn":{:.1}}}"#,
                after.saturating_sub(before) as f64 / conns as f64
            );
            drop(held);
        }
        Scenario::Room { receivers, secs, pid } => room(&args.addr, label, deflate, receivers, secs, pid).await?,
    }
    Ok(())
}

/// The `room` scenario.
async fn room(
    addr: &str,
    label: &str,
    deflate: bool,
    receivers: usize,
    secs: u64,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let (mut sender, compressed) = connect(addr, "/broadcast", deflate).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let all_in = Arc::new(tokio::sync::Notify::new());
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let mut members = Vec::with_capacity(receivers);
    for _ in 0..receivers {
        members.push(connect(addr, "/broadcast", deflate).await?.0);
    }
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut conn| {
            let (delivered, all_in, target) = (delivered.clone(), all_in.clone(), target.clone());
            tokio::spawn(async move {
                while conn.recv().await.is_ok() {
                    if delivered.fetch_add(1, Ordering::Relaxed) + 1 == target.load(Ordering::Relaxed) {
                        all_in.notify_one();
                    }
                }
            })
        })
        .collect();
    let server_before = pid.map(CpuSample::of).transpose()?;
    let (started, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(secs));
    let mut sent = 0u64;
    while Instant::now() < deadline {
        sent += 1;
        let wanted = sent * receivers as u64;
        target.store(wanted, Ordering::Relaxed);
        sender.send(message(sent)).await?;
        sender.recv().await?;
        // (A permit left by a round that needed no wait only loops once.)
        while delivered.load(Ordering::Relaxed) < wanted {
            tokio::time::timeout(Duration::from_secs(10), all_in.notified()).await?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let deliveries = sent * (receivers as u64 + 1);
    let mut cpu = String::new();
    if let (Some(pid), Some(before)) = (pid, server_before) {
        let spent = CpuSample::of(pid)?.since(&before).total().as_secs_f64();
        cpu = format!(r#","server_us_per_delivery":{:.3}"#, spent * 1e6 / deliveries as f64);
    }
    println!(
        r#"{{"scenario":"room","label":"{label}","offered":{deflate},"deflate":{compressed},"receivers":{receivers},"messages":{sent},"deliveries_per_sec":{:.0}{cpu}}}"#,
        deliveries as f64 / elapsed
    );
    readers.iter().for_each(tokio::task::JoinHandle::abort);
    Ok(())
}

/// One connection keeping `inflight` messages outstanding until
/// `deadline`; returns how many were echoed.
async fn chat_conn(
    mut conn: Conn,
    seed: u64,
    inflight: usize,
    deadline: Instant,
    sent_bytes: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let mut n = seed << 32;
    let (mut outstanding, mut echoed) = (0, 0);
    loop {
        while outstanding < inflight && Instant::now() < deadline {
            n += 1;
            let text = message(n);
            sent_bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
            conn.send(text).await?;
            outstanding += 1;
        }
        if outstanding == 0 {
            return Ok(echoed);
        }
        conn.recv().await?;
        outstanding -= 1;
        echoed += 1;
    }
}
