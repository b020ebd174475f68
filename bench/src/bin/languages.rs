//! What a plugin's language costs: for each plugin in another language and
//! its Rust twin (echo-c / echo, chat-js and chat-py / chat), measured in
//! one run: component size, cold compile (Cranelift, no cache), cached load
//! (from a warm compile cache), instantiation of the precompiled plugin, and
//! per-message cost over a real connection (one client, sequential round
//! trips: p50 and the mean, whose difference from the Rust twin is the
//! language's cost per message).
//!
//! `cargo run --release -p wasock-bench --bin languages [SECONDS]` (per
//! plugin round-trip run, 3 by default). Needs the plugins built (the test
//! build does it, or `wasock build plugins`).

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wasock::plugins::{self, Source};
use wasock::runtime::{CompileCache, CompiledPlugin, Runtime};
use wasock::session::Sessions;
use wasock_bench::Latencies;
use wasock_tests::{TestServer, plugins_dir, tempdir, test_config};

/// (plugin, route, its Rust twin's name).
const PLUGINS: [(&str, &str, &str); 5] = [
    ("echo", "/echo", "echo"),
    ("echo-c", "/c/echo", "echo"),
    ("chat", "/chat", "chat"),
    ("chat-js", "/js/chat", "chat"),
    ("chat-py", "/py/chat", "chat"),
];

fn load(runtime: &Runtime, name: &str) -> (CompiledPlugin, Duration, u64) {
    let (manifests, _) = plugins::discover(&[plugins_dir().join(name)]);
    let manifest = manifests.into_iter().next().unwrap_or_else(|| panic!("no plugin {name}"));
    let size = std::fs::metadata(&manifest.component).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let plugin = Source::read(manifest).and_then(|s| s.compile(runtime)).unwrap_or_else(|e| panic!("{e}"));
    (plugin, started.elapsed(), size)
}

/// Median of `n` instantiations of the compiled plugin (fresh store each).
fn instantiate(plugin: &CompiledPlugin, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let sessions = Sessions::new(plugin.name.clone(), &plugin.limits);
            let started = Instant::now();
            let mut store = plugin.store(sessions);
            plugin.start(&mut store).unwrap();
            let took = started.elapsed();
            drop(store);
            took
        })
        .collect();
    times.sort();
    times[n / 2]
}

async fn round_trips(server: &TestServer, route: &str, run_for: Duration) -> (Latencies, Duration) {
    let mut c = server.connect(route).await;
    c.recv_text().await;
    let mut lat = Latencies::default();
    let started = Instant::now();
    while started.elapsed() < run_for {
        let start = Instant::now();
        c.ws.send(Message::text("hello, plugin")).await.unwrap();
        match c.ws.next().await {
            Some(Ok(Message::Text(_))) => lat.record(start.elapsed()),
            other => panic!("{other:?}"),
        }
    }
    let mean = started.elapsed() / lat.len().max(1) as u32;
    (lat, mean)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let uncached = Runtime::new().unwrap();
    let cache_dir = tempdir().join("cache");
    let cached = Arc::new(Runtime::with_cache(Some(CompileCache::new(&cache_dir))).unwrap());
    let mut rows = Vec::new();
    let mut means = std::collections::HashMap::new();
    for (name, route, twin) in PLUGINS {
        let (_, cold, size) = load(&uncached, name);
        load(&cached, name); // fills the cache
        let (plugin, warm, _) = load(&cached, name);
        let ready = instantiate(&plugin, 21);
        drop(plugin);
        let server = TestServer::serve_on(cached.clone(), test_config(), vec![plugins_dir().join(name)], false).await;
        round_trips(&server, route, Duration::from_millis(300)).await; // warm-up
        let (lat, mean) = round_trips(&server, route, Duration::from_secs(secs)).await;
        server.shutdown().await;
        means.insert(name, mean);
        let (p50, p99, _) = lat.summary();
        rows.push((name, twin, size, cold, warm, ready, p50, p99, mean));
    }
    println!(
        "| plugin | component | cold compile | cached load | instantiate | round trip p50 / p99 | mean | cost vs Rust twin |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, twin, size, cold, warm, ready, p50, p99, mean) in rows {
        let extra = if name == twin {
            "(baseline)".to_owned()
        } else {
            let d = mean.as_secs_f64() - means[twin].as_secs_f64();
            format!("{:+.1} us/msg ({:.2}x)", d * 1e6, mean.as_secs_f64() / means[twin].as_secs_f64())
        };
        println!(
            "| {name} | {} | {} | {} | {:.2} ms | {p50} / {p99} us | {:.1} us | {extra} |",
            human(size),
            ms(cold),
            ms(warm),
            ready.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e6,
        );
    }
    let _ = std::fs::remove_dir_all(&cache_dir);
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
