//! Shared pieces of the benchmarks: latency recording with an HDR histogram,
//! the table every benchmark prints, and a process's resident memory
//! ([`rss_kib`]); [`cpu`] reads where a process's threads spent their CPU
//! time.

pub mod cpu;

use hdrhistogram::Histogram;
use std::time::Duration;

/// Round-trip latencies in microseconds.
#[derive(Debug)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"))
    }
}

impl Latencies {
    /// Records one round trip.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000);
        self.0.record(us).expect("within bounds");
    }

    /// `p50 / p99 / max` in microseconds.
    pub fn summary(&self) -> (u64, u64, u64) {
        (self.0.value_at_quantile(0.5), self.0.value_at_quantile(0.99), self.0.max())
    }

    /// Adds another recording's samples.
    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("same bounds");
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The resident set size of process `pid`, in KiB (`/proc/PID/status`).
pub fn rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kib = rss.and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok());
    kib.ok_or_else(|| std::io::Error::other(format!("no VmRSS for {pid}")))
}
