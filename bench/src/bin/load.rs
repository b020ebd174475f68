//! The load client: drives a WebSocket server (wasock or the native
//! baseline) through one scenario and prints one result line as JSON.
//!
//! - `echo`: N connections to /echo (or `--path`), K messages of S bytes in flight each,
//!   for T seconds: messages per second and round-trip percentiles. With
//!   `--rate R` the load is paced instead (open loop): R messages per second
//!   in all, each connection sending at a fixed interval whatever the
//!   replies do, so the latency is the server's at that load rather than
//!   the queueing of a saturated server. With `--pid` it also reports the
//!   server's CPU time per message (all threads, and its `wasock-ep-*`
//!   endpoint threads apart) and how busy the client itself was: a client
//!   near 100 % caps what it can measure.
//! - `fanout`: N receivers on /broadcast (or `--path`, e.g. /topic, where
//!   the fan-out is a topic publish) and one sender; each message must
//!   reach all: deliveries per second and time until the last receiver has
//!   it; with `--pid`, the server's CPU time per delivery (every server's
//!   delivery rate is bound by the one client core, its CPU is not). With
//!   `--second URL` every other receiver connects to a second server (a
//!   node of the same cluster); with `--interval-ms` the sender waits that
//!   long between messages (paced), so the time to the last receiver is the
//!   delivery latency at a light load.
//! - `idle`: holds N connections and reads the server's RSS before and after,
//!   then its CPU (percent of a core) over a few seconds of no traffic.
//! - `storm`: opens N connections at once; how many succeed, how long it takes.

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use wasock_bench::Latencies;
use wasock_bench::cpu::CpuSample;

/// How long `idle` measures the server's CPU with every connection idle.
const IDLE_CPU_WINDOW: Duration = Duration::from_secs(5);
use wasock_bench::rss_kib;

#[derive(Parser)]
struct Args {
    /// Server base URL, e.g. ws://127.0.0.1:8080
    #[arg(long)]
    url: String,
    /// Label for the result line (e.g. native, wasock).
    #[arg(long)]
    label: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    Echo {
        #[arg(long, default_value_t = 100)]
        conns: usize,
        #[arg(long, default_value_t = 8)]
        inflight: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// Messages per second in all, paced; 0 keeps `inflight` in flight.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// The server's process id, to read its CPU time per message.
        #[arg(long)]
        pid: Option<u32>,
        /// The route.
        #[arg(long, default_value = "/echo")]
        path: String,
    },
    Fanout {
        /// The route: /broadcast (the endpoint's sessions) or /topic.
        #[arg(long, default_value = "/broadcast")]
        path: String,
        #[arg(long, default_value_t = 1000)]
        receivers: usize,
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// The server's process id, to read its CPU time per delivery.
        #[arg(long)]
        pid: Option<u32>,
        /// A second server's base URL: every other receiver connects there.
        #[arg(long)]
        second: Option<String>,
        /// Milliseconds between two messages (0: the next once all have the last).
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
    },
    Idle {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// The server's process id, to read its RSS.
        #[arg(long)]
        pid: u32,
    },
    Storm {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
    },
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    ws.next().await.ok_or_else(|| anyhow::anyhow!("no greeting"))??;
    Ok(ws)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let label = &args.label;
    match args.scenario {
        Scenario::Echo { conns, inflight, size, secs, rate, pid, path } => {
            let url = format!("{}{path}", args.url);
            // Connect everyone first: the clock starts when all send.
            let mut conns_ready = Vec::with_capacity(conns);
            for _ in 0..conns {
                conns_ready.push(connect(&url).await?);
            }
            let cpu_before = cpu_samples(pid)?;
            let started = Instant::now();
            let deadline = started + Duration::from_secs(secs);
            let tasks: Vec<_> = conns_ready
                .into_iter()
                .enumerate()
                .map(|(i, ws)| match rate {
                    0 => tokio::spawn(echo_conn(ws, inflight, size, deadline)),
                    rate => {
                        // Each connection's share, phases spread evenly.
                        let period = Duration::from_secs_f64(conns as f64 / rate as f64);
                        let first = started + period.mul_f64(i as f64 / conns as f64);
                        tokio::spawn(paced_conn(ws, size, first, period, deadline))
                    }
                })
                .collect();
            let mut all = Latencies::default();
            let mut count = 0;
            for t in tasks {
                let lat = t.await??;
                count += lat.len();
                all.merge(&lat);
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = cpu_report(pid, &cpu_before, count, elapsed)?;
            let (p50, p99, max) = all.summary();
            println!(
                r#"{{"scenario":"echo","label":"{label}","conns":{conns},"inflight":{inflight},"rate":{rate},"size":{size},"messages":{count},"msgs_per_sec":{:.0},"p50_us":{p50},"p99_us":{p99},"max_us":{max}{cpu}}}"#,
                count as f64 / elapsed
            );
        }
        Scenario::Fanout { path, receivers, messages, pid, second, interval_ms } => {
            let url = format!("{}{path}", args.url);
            let second_url = second.map(|s| format!("{s}{path}"));
            let scenario = if path == "/broadcast" { "fanout" } else { path.trim_start_matches('/') };
            let delivered = Arc::new(AtomicU64::new(0));
            let notify = Arc::new(Notify::new());
            let (mut sender, mut own_copies) = connect(&url).await?.split();
            tokio::spawn(async move { while own_copies.next().await.is_some() {} });
            for i in 0..receivers {
                let to = match &second_url {
                    Some(other) if i % 2 == 0 => other,
                    _ => &url,
                };
                let mut ws = connect(to).await?;
                let (delivered, notify) = (delivered.clone(), notify.clone());
                tokio::spawn(async move {
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() {
                            delivered.fetch_add(1, Ordering::Relaxed);
                            notify.notify_one();
                        }
                    }
                });
            }
            let mut to_last = Latencies::default();
            let server_before = pid.map(CpuSample::of).transpose()?;
            // Receivers on another node are only reached once it has the
            // topic's members: let the cluster settle.
            if second_url.is_some() {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let started = Instant::now();
            for i in 0..messages {
                if interval_ms > 0 && i > 0 {
                    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
                }
                let sent = Instant::now();
                sender.send(Message::text(format!("m{i}"))).await?;
                let want = ((i + 1) * receivers) as u64;
                while delivered.load(Ordering::Relaxed) < want {
                    let _ = tokio::time::timeout(Duration::from_millis(5), notify.notified()).await;
                }
                to_last.record(sent.elapsed());
            }
            let elapsed = started.elapsed().as_secs_f64();
            let (p50, p99, max) = to_last.summary();
            let deliveries = messages * receivers;
            let mut cpu = String::new();
            if let (Some(pid), Some(before)) = (pid, server_before) {
                let spent = CpuSample::of(pid)?.since(&before).total().as_secs_f64();
                cpu = format!(r#","server_us_per_delivery":{:.3}"#, spent * 1e6 / deliveries.max(1) as f64);
            }
            let nodes = if second_url.is_some() { 2 } else { 1 };
            println!(
                r#"{{"scenario":"{scenario}","label":"{label}","nodes":{nodes},"interval_ms":{interval_ms},"receivers":{receivers},"messages":{messages},"deliveries_per_sec":{:.0},"p50_us":{p50},"p99_us":{p99},"max_us":{max}{cpu}}}"#,
                deliveries as f64 / elapsed
            );
        }
        Scenario::Idle { conns, pid } => {
            let url = format!("{}/echo", args.url);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = rss_kib(pid)?;
            let mut held = Vec::with_capacity(conns);
            for _ in 0..conns {
                held.push(connect(&url).await?);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after = rss_kib(pid)?;
            // The server's CPU while every connection is idle.
            let quiet = CpuSample::of(pid)?;
            tokio::time::sleep(IDLE_CPU_WINDOW).await;
            let spent = CpuSample::of(pid)?.since(&quiet).total().as_secs_f64();
            println!(
                r#"{{"scenario":"idle","label":"{label}","conns":{conns},"rss_before_kib":{before},"rss_after_kib":{after},"kib_per_conn":{:.1},"idle_cpu_pct":{:.3}}}"#,
                (after.saturating_sub(before)) as f64 / conns as f64,
                spent * 100.0 / IDLE_CPU_WINDOW.as_secs_f64()
            );
            drop(held);
        }
        Scenario::Storm { conns } => {
            let url = format!("{}/echo", args.url);
            let started = Instant::now();
            let tasks: Vec<_> = (0..conns).map(|_| tokio::spawn(connect_owned(url.clone()))).collect();
            let mut ok = 0;
            let mut held = Vec::new();
            for t in tasks {
                if let Ok(Ok(ws)) = t.await {
                    ok += 1;
                    held.push(ws);
                }
            }
            println!(
                r#"{{"scenario":"storm","label":"{label}","conns":{conns},"ok":{ok},"secs":{:.2}}}"#,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn connect_owned(url: String) -> anyhow::Result<Ws> {
    connect(&url).await
}

/// One connection keeping `inflight` echo messages outstanding until
/// `deadline`; replies come back in order, so a FIFO of send times gives
/// each round trip.
async fn echo_conn(ws: Ws, inflight: usize, size: usize, deadline: Instant) -> anyhow::Result<Latencies> {
    let (mut tx, mut rx) = ws.split();
    let payload = "x".repeat(size);
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(inflight);
    let mut lat = Latencies::default();
    for _ in 0..inflight {
        sent.push_back(Instant::now());
        tx.send(Message::text(payload.clone())).await?;
    }
    while let Some(msg) = rx.next().await {
        if !msg?.is_text() {
            continue;
        }
        if let Some(at) = sent.pop_front() {
            lat.record(at.elapsed());
        }
        if Instant::now() < deadline {
            sent.push_back(Instant::now());
            tx.send(Message::text(payload.clone())).await?;
        } else if sent.is_empty() {
            break;
        }
    }
    Ok(lat)
}

/// One connection sending a message every `period` from `first` until
/// `deadline`, whatever the replies do; each round trip is timed from the
/// moment its message was sent.
async fn paced_conn(
    ws: Ws,
    size: usize,
    first: Instant,
    period: Duration,
    deadline: Instant,
) -> anyhow::Result<Latencies> {
    let (mut tx, mut rx) = ws.split();
    let sent = Arc::new(std::sync::Mutex::new(VecDeque::<Instant>::new()));
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let payload = "x".repeat(size);
            let mut ticks = tokio::time::interval_at(first.into(), period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut count = 0u64;
            while ticks.tick().await.into_std() < deadline {
                sent.lock().unwrap().push_back(Instant::now());
                tx.send(Message::text(payload.clone())).await?;
                count += 1;
            }
            anyhow::Ok(count)
        })
    };
    let mut lat = Latencies::default();
    loop {
        // Sends are queued before they go: done and empty means answered.
        let done = sender.is_finished();
        if done && sent.lock().unwrap().is_empty() {
            break;
        }
        // Wake up now and then: the sender may finish while this waits.
        match tokio::time::timeout(Duration::from_millis(100), rx.next()).await {
            Ok(Some(msg)) => {
                if msg?.is_text()
                    && let Some(at) = sent.lock().unwrap().pop_front()
                {
                    lat.record(at.elapsed());
                }
            }
            Ok(None) => anyhow::bail!("the server closed the connection"),
            Err(_) if done => anyhow::bail!("replies missing"),
            Err(_) => {}
        }
    }
    sender.await??;
    Ok(lat)
}

/// The client's own CPU time and, given its pid, the server's.
fn cpu_samples(server: Option<u32>) -> anyhow::Result<(CpuSample, Option<CpuSample>, Duration)> {
    Ok((CpuSample::own()?, server.map(CpuSample::of).transpose()?, wasock_bench::cpu::stolen()?))
}

/// JSON fields (each with a leading comma) for the CPU time spent since
/// `before`: the client's share of one core, the share of the machine's
/// CPU time the hypervisor took (how noisy the run was), and the server's
/// microseconds per message, in all and in its endpoint threads.
fn cpu_report(
    server: Option<u32>,
    before: &(CpuSample, Option<CpuSample>, Duration),
    messages: u64,
    elapsed: f64,
) -> anyhow::Result<String> {
    let (client, server_now, stolen) = cpu_samples(server)?;
    let client = client.since(&before.0).total().as_secs_f64() / elapsed;
    let steal = stolen.saturating_sub(before.2).as_secs_f64() / elapsed * 100.0;
    let mut fields = format!(r#","client_cpu":{client:.2},"steal_pct":{steal:.1}"#);
    if let (Some(now), Some(then)) = (server_now, &before.1) {
        let spent = now.since(then);
        let per_msg = |d: Duration| d.as_secs_f64() * 1e6 / messages.max(1) as f64;
        fields += &format!(
            r#","server_us_per_msg":{:.3},"endpoint_us_per_msg":{:.3}"#,
            per_msg(spent.total()),
            per_msg(spent.named("wasock-ep-"))
        );
    }
    Ok(fields)
}
