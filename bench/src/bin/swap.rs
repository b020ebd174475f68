//! Hot-swap cost under load: how long from a new component landing on disk
//! to the new version serving, and how much clients notice.
//!
//! Serves `echo` from a watched plugin directory while CLIENTS clients do
//! round trips back to back, then swaps the component SWAPS times
//! (alternating `echo` and the `echo-v2` fixture, written aside and renamed
//! in, as a deploy would). For each swap it records the swap latency (file
//! renamed -> first reply from the new version; includes the watcher's
//! 300 ms debounce and compiling) and the round trips in the second around
//! the moment the new version answered, against the second before the file
//! changed, in the same run. Every reply is checked: a lost, duplicated or
//! reordered message, or a dropped connection, is counted.
//!
//! `cargo run --release -p wasock-bench --bin swap [SWAPS]`

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wasock_bench::Latencies;
use wasock_tests::{TestServer, logs, replace_file, swap_plugin_dir, tempdir, wasm_bytes};

const CLIENTS: usize = 4;

/// (when the round trip ended, how long it took, whether v2 answered)
type Sample = (Instant, Duration, bool);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let swaps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "echo", "/echo", &wasm_bytes("echo"), "");
    let server = TestServer::watch(&dir, true).await;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut c = server.connect("/echo").await;
        c.recv_text().await;
        let (stop, errors, samples) = (stop.clone(), errors.clone(), samples.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if c.ws.send(Message::text(format!("{client}:{n}"))).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let reply = match c.ws.next().await {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let now = Instant::now();
                let v2 = reply == format!("v2 said: {client}:{n}");
                if !v2 && reply != format!("You said: {client}:{n}") {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                samples.lock().unwrap().push((now, now - sent, v2));
                n += 1;
            }
        }));
    }

    println!("| swap | latency ms (disk -> new version) | before p50/p99/max us | around p50/p99/max us |");
    println!("|---|---|---|---|");
    let mut latencies = Vec::new();
    let (mut before_all, mut around_all) = (Latencies::default(), Latencies::default());
    for swap in 0..swaps {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let to_v2 = swap % 2 == 0;
        let written = Instant::now();
        replace_file(&plugin.join("plugin.wasm"), &wasm_bytes(if to_v2 { "echo-v2" } else { "echo" }));
        let answered = loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let s = samples.lock().unwrap();
            if let Some((at, _, _)) =
                s.iter().rev().take_while(|(at, _, _)| *at > written).find(|(_, _, v2)| *v2 == to_v2).copied()
            {
                break at;
            }
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        let latency = answered.saturating_duration_since(written);
        latencies.push(latency);
        let (mut before, mut around) = (Latencies::default(), Latencies::default());
        for (at, rtt, _) in samples.lock().unwrap().iter() {
            if *at + Duration::from_secs(1) > written && *at <= written {
                before.record(*rtt);
                before_all.record(*rtt);
            } else if *at + Duration::from_millis(500) > answered && *at <= answered + Duration::from_millis(500) {
                around.record(*rtt);
                around_all.record(*rtt);
            }
        }
        let (b, a) = (before.summary(), around.summary());
        println!(
            "| {} | {:.0} | {}/{}/{} | {}/{}/{} |",
            swap + 1,
            latency.as_secs_f64() * 1000.0,
            b.0,
            b.1,
            b.2,
            a.0,
            a.1,
            a.2
        );
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (b, a) = (before_all.summary(), around_all.summary());
    let switches: Vec<u64> = logs()
        .lines()
        .filter(|l| l.contains("swapped in a new version"))
        .filter_map(|l| l.split("switch_us=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let compiles: Vec<u64> = logs()
        .lines()
        .filter(|l| l.contains("swapped in a new version"))
        .filter_map(|l| l.split("compile_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let round_trips = samples.lock().unwrap().len();
    println!();
    println!(
        "all swaps: before p50/p99/max {}/{}/{} us, around {}/{}/{} us (ratio p99 {:.2})",
        b.0,
        b.1,
        b.2,
        a.0,
        a.1,
        a.2,
        a.1 as f64 / b.1 as f64
    );
    println!("swap latency ms: {:?}", latencies.iter().map(|d| d.as_millis()).collect::<Vec<_>>());
    println!("endpoint switch us (snapshot+instantiate+restore): {switches:?}; compile ms: {compiles:?}");
    println!(
        "{round_trips} round trips by {CLIENTS} clients; lost/duplicated/reordered or dropped: {}",
        errors.load(Ordering::Relaxed)
    );
    server.shutdown().await;
}
