//! Soak: a `wasock serve` process under hours of what production does to
//! it, every reply checked.
//!
//! - Echo clients churn: connect to `/echo` (the `lifecycle` fixture), run
//!   96 numbered messages in batches of 8 in flight (`--pause-ms` between
//!   batches), check every reply comes back once and in order, disconnect,
//!   reconnect. A reply that takes over [`LATE_AFTER`] is counted late and
//!   waited for; one that has not come after [`LOST_AFTER`], or whose
//!   connection ends first, is lost.
//! - Broadcast clients stay: each sends a numbered message every 100 ms to
//!   `/broadcast`; every client checks that each sender's numbers arrive
//!   without a gap, a repeat or a step back.
//! - A trapper makes the echo plugin trap every `--trap-every` seconds; a
//!   new version of both plugins is swapped in every `--swap-every` seconds
//!   (the watcher picks up the rewritten component).
//! - The server's RSS is sampled every 5 s; after the first fifth of the run
//!   (warm-up) its slope is reported in KiB per hour.
//!
//! `cargo build --release -p wasock && cargo run --release -p wasock-bench --bin soak -- [--secs 1800]`

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wasock_tests::cli::Served;
use wasock_tests::{bundled_wasm, rehash, replace_file, swap_plugin_dir, tempdir, wasm_bytes};

/// A reply slower than this is counted late.
const LATE_AFTER: Duration = Duration::from_secs(5);
/// A reply slower than this is counted lost.
const LOST_AFTER: Duration = Duration::from_secs(60);

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 1800)]
    secs: u64,
    /// Seconds between hot swaps.
    #[arg(long, default_value_t = 60)]
    swap_every: u64,
    /// Versions the swaps cycle through (0: a new one every swap, compiled
    /// by Cranelift; 2: back and forth, loaded from the compile cache after
    /// the first round).
    #[arg(long, default_value_t = 0)]
    versions: u32,
    /// Seconds between traps.
    #[arg(long, default_value_t = 3)]
    trap_every: u64,
    /// Echo clients (each reconnects after every 100 round trips).
    #[arg(long, default_value_t = 20)]
    echo_clients: usize,
    /// Broadcast clients.
    #[arg(long, default_value_t = 10)]
    broadcast_clients: usize,
    /// Milliseconds each echo client waits between batches of 8 (0: as
    /// fast as the server answers).
    #[arg(long, default_value_t = 10)]
    pause_ms: u64,
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    echoed: AtomicU64,
    delivered: AtomicU64,
    lost: AtomicU64,
    /// Echo replies that came, but after [`LATE_AFTER`].
    late: AtomicU64,
    /// The longest wait for one echo reply, in milliseconds.
    slowest_ms: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    connections: AtomicU64,
    connect_failures: AtomicU64,
    traps_asked: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, tally: &Tally) -> Option<Ws> {
    match tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => {
            Tally::add(&tally.connections, 1);
            Some(ws)
        }
        _ => {
            Tally::add(&tally.connect_failures, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// What waiting for an echo reply gave.
enum Next {
    Reply(String),
    TimedOut,
    Ended,
}

/// The next text within `wait` that is not the fixture's chatter (`id:`,
/// `gone:`, `pong`).
async fn next_echo(ws: &mut Ws, wait: Duration) -> Next {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let t = t.as_str();
                if !(t.starts_with("id:") || t.starts_with("gone:") || t == "pong") {
                    return Next::Reply(t.to_owned());
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => return Next::Ended,
            Err(_) => return Next::TimedOut,
        }
    }
}

/// The next echo reply, waiting past [`LATE_AFTER`] (counted late) up to
/// [`LOST_AFTER`]; `None` if it never came.
async fn await_echo(ws: &mut Ws, tally: &Tally) -> Option<String> {
    let asked = Instant::now();
    let reply = match next_echo(ws, LATE_AFTER).await {
        Next::Reply(reply) => Some(reply),
        Next::TimedOut => match next_echo(ws, LOST_AFTER - LATE_AFTER).await {
            Next::Reply(reply) => {
                Tally::add(&tally.late, 1);
                Some(reply)
            }
            Next::TimedOut | Next::Ended => None,
        },
        Next::Ended => None,
    };
    let waited = u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX);
    tally.slowest_ms.fetch_max(waited, Ordering::Relaxed);
    reply
}

async fn echo_client(url: String, client: usize, pause: Duration, until: Instant, tally: Arc<Tally>) {
    let mut generation = 0u64;
    while Instant::now() < until {
        let Some(mut ws) = connect(&url, &tally).await else { continue };
        generation += 1;
        let mut next_expected = 0u64;
        'session: for batch in 0..(100u64 / 8) {
            tokio::time::sleep(pause).await;
            for i in 0..8 {
                let n = batch * 8 + i;
                if ws.send(Message::text(format!("e{client}-{generation}-{n}"))).await.is_err() {
                    break 'session;
                }
            }
            for _ in 0..8 {
                let Some(reply) = await_echo(&mut ws, &tally).await else {
                    Tally::add(&tally.lost, (batch * 8 + 8).saturating_sub(next_expected));
                    break 'session;
                };
                let n: u64 = reply.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
                match n.cmp(&next_expected) {
                    std::cmp::Ordering::Equal => {
                        Tally::add(&tally.echoed, 1);
                        next_expected += 1;
                    }
                    std::cmp::Ordering::Less => Tally::add(&tally.duplicated, 1),
                    std::cmp::Ordering::Greater => {
                        Tally::add(&tally.reordered, 1);
                        next_expected = n + 1;
                    }
                }
            }
        }
        let _ = ws.close(None).await;
    }
}

async fn broadcast_client(url: String, me: usize, until: Instant, tally: Arc<Tally>) {
    let Some(ws) = connect(&url, &tally).await else { return };
    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        let mut seq = 0u64;
        while Instant::now() < until {
            if sink.send(Message::text(format!("b{me}-{seq}"))).await.is_err() {
                return;
            }
            seq += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut last: HashMap<String, u64> = HashMap::new();
    while Instant::now() < until {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), stream.next()).await else { continue };
        let Message::Text(text) = msg else { continue };
        let Some((sender_id, seq)) = text.strip_prefix("Broadcast: ").and_then(|m| m.split_once('-')) else { continue };
        let Ok(seq) = seq.parse::<u64>() else { continue };
        match last.insert(sender_id.to_owned(), seq) {
            Some(prev) if seq == prev + 1 => Tally::add(&tally.delivered, 1),
            Some(prev) if seq <= prev => Tally::add(&tally.duplicated, 1),
            Some(prev) => Tally::add(&tally.lost, seq - prev - 1),
            None => Tally::add(&tally.delivered, 1),
        }
    }
    sender.abort();
}

async fn trapper(url: String, every: Duration, until: Instant, tally: Arc<Tally>) {
    while Instant::now() < until {
        if let Some(mut ws) = connect(&url, &tally).await {
            loop {
                let next = Instant::now() + every;
                if next >= until {
                    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
                    return;
                }
                tokio::time::sleep(every).await;
                if ws.send(Message::text("panic")).await.is_err() {
                    break;
                }
                Tally::add(&tally.traps_asked, 1);
            }
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.parse().ok()).unwrap_or(0)
}

/// Least-squares slope of `samples` (seconds, KiB), in KiB per hour.
fn slope_per_hour(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    let (mx, my) = samples.iter().fold((0.0, 0.0), |(x, y), (a, b)| (x + a / n, y + b / n));
    let (sxy, sxx) =
        samples.iter().fold((0.0, 0.0), |(sxy, sxx), (x, y)| (sxy + (x - mx) * (y - my), sxx + (x - mx).powi(2)));
    if sxx == 0.0 { 0.0 } else { sxy / sxx * 3600.0 }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempdir();
    let echo = wasm_bytes("lifecycle");
    let broadcast = bundled_wasm("broadcast");
    // Traps every few seconds are the point: no back-off.
    swap_plugin_dir(&dir, "echo", "/echo", &echo, "[limits]\nmax-traps = 1000000\n");
    swap_plugin_dir(&dir, "broadcast", "/broadcast", &broadcast, "");
    let served = Served::start(&dir, &["."], Duration::from_secs(120));
    let pid = served.pid();
    let started = Instant::now();
    let until = started + Duration::from_secs(args.secs);
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for c in 0..args.echo_clients {
        let pause = Duration::from_millis(args.pause_ms);
        tasks.push(tokio::spawn(echo_client(served.url("/echo"), c, pause, until, tally.clone())));
    }
    for b in 0..args.broadcast_clients {
        tasks.push(tokio::spawn(broadcast_client(served.url("/broadcast"), b, until, tally.clone())));
    }
    let every = Duration::from_secs(args.trap_every.max(1));
    tasks.push(tokio::spawn(trapper(served.url("/echo"), every, until, tally.clone())));

    let mut samples = Vec::new();
    let (mut next_swap, mut swaps) = (started + Duration::from_secs(args.swap_every), 0u32);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(5)).await;
        samples.push((started.elapsed().as_secs_f64(), rss_kib(pid) as f64));
        if Instant::now() >= next_swap {
            swaps += 1;
            let version = if args.versions == 0 { swaps } else { swaps % args.versions };
            let tag = format!("soak-{version}");
            replace_file(&dir.join("echo/plugin.wasm"), &rehash(&echo, &tag));
            replace_file(&dir.join("broadcast/plugin.wasm"), &rehash(&broadcast, &tag));
            next_swap += Duration::from_secs(args.swap_every);
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let (exit, log) = served.stop();
    let warm = samples.len() / 5;
    let steady = &samples[warm..];
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!("| soak | value |\n|---|---|");
    println!("| duration | {} s |", args.secs);
    println!("| echo round trips checked | {} |", t(&tally.echoed));
    println!("| broadcast deliveries checked | {} |", t(&tally.delivered));
    println!(
        "| lost / duplicated / reordered | {} / {} / {} |",
        t(&tally.lost),
        t(&tally.duplicated),
        t(&tally.reordered)
    );
    println!(
        "| echo replies late (over {:?}) / slowest | {} / {} ms |",
        LATE_AFTER,
        t(&tally.late),
        t(&tally.slowest_ms)
    );
    println!("| connections (churn) / failed connects | {} / {} |", t(&tally.connections), t(&tally.connect_failures));
    println!(
        "| traps asked / logged | {} / {} |",
        t(&tally.traps_asked),
        log.matches("discarding the instance and starting a fresh one").count() + log.matches("traps within").count()
    );
    println!("| swaps written / swapped in | {} / {} |", swaps * 2, log.matches("swapped in a new version").count());
    if let (Some(first), Some(last)) = (steady.first(), steady.last()) {
        println!("| RSS after warm-up, first / last | {:.0} / {:.0} KiB |", first.1, last.1);
        println!("| RSS slope after warm-up | {:+.0} KiB/h |", slope_per_hour(steady));
    }
    println!("| server exit | {exit} |");
}
