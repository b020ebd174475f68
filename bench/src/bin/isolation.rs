//! How much does a misbehaving plugin slow down another endpoint?
//!
//! Serves `echo` and the `misbehave` fixture (100 ms call deadline, never
//! backed off) from one server, then measures echo round trips twice in the
//! same run: alone (baseline), and while a client keeps the other plugin
//! looping into its deadline (each loop is interrupted, the instance
//! discarded and a fresh one started). Prints p50/p99/max of each and the
//! ratio.
//!
//! `cargo run --release -p wasock-bench --bin isolation [SECONDS]` (5 by
//! default, for each of the two runs).

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wasock_bench::Latencies;
use wasock_tests::{TestServer, compile_fixture, plugin, test_config};

async fn echo_round_trips(server: &TestServer, run_for: Duration) -> Latencies {
    let mut c = server.connect("/echo").await;
    c.recv_text().await;
    let mut lat = Latencies::default();
    let started = Instant::now();
    for i in 0.. {
        if started.elapsed() > run_for {
            break;
        }
        let text = format!("{i}");
        let start = Instant::now();
        c.ws.send(Message::text(text)).await.unwrap();
        match c.ws.next().await {
            Some(Ok(Message::Text(_))) => lat.record(start.elapsed()),
            other => panic!("{other:?}"),
        }
    }
    lat
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let run_for = Duration::from_secs(secs);
    let looper = compile_fixture("misbehave", "looper", "/loop", "[limits]\nmax-traps = 1000000\n", |_| {});
    let server = TestServer::serve(test_config(), vec![plugin("echo"), looper]).await;

    let _warmup = echo_round_trips(&server, Duration::from_millis(500)).await;
    let baseline = echo_round_trips(&server, run_for).await;

    let stop = Arc::new(AtomicBool::new(false));
    let loops = Arc::new(AtomicU64::new(0));
    let mut spinner = server.connect("/loop").await;
    let spinning = {
        let (stop, loops) = (stop.clone(), loops.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                spinner.send_text("loop").await;
                // Each interrupted loop is followed by "restored:1".
                let _ = spinner.recv_text().await;
                loops.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let faulty = echo_round_trips(&server, run_for).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    spinning.await.unwrap();

    let (b50, b99, bmax) = baseline.summary();
    let (f50, f99, fmax) = faulty.summary();
    println!("echo round trips on one endpoint while another plugin loops into its 100 ms deadline");
    println!("| run | round trips | p50 us | p99 us | max us |");
    println!("|---|---|---|---|---|");
    println!("| alone | {} | {b50} | {b99} | {bmax} |", baseline.len());
    println!("| other plugin looping | {} | {f50} | {f99} | {fmax} |", faulty.len());
    println!(
        "ratio looping/alone: p50 {:.2}, p99 {:.2}; {} loops interrupted in {:.1} s",
        f50 as f64 / b50 as f64,
        f99 as f64 / b99 as f64,
        loops.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
    server.shutdown().await;
}
