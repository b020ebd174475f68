//! CPU time of a process's threads, from `/proc/PID/task/*/schedstat`
//! (nanoseconds on a CPU, per thread): where a server spends its time for
//! each message, and whether the load client itself was the bottleneck.
//!
//! Threads are grouped by name (`comm`), so wasock's tokio workers and its
//! endpoint threads (`wasock-ep-<plugin>`) show apart. A thread that exits
//! between two samples is not counted; the servers measured here keep theirs.

use std::collections::BTreeMap;
use std::time::Duration;

/// CPU time per thread name at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSample(BTreeMap<String, Duration>);

impl CpuSample {
    /// Reads every thread of process `pid`.
    pub fn of(pid: u32) -> std::io::Result<Self> {
        let mut by_name = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let dir = task?.path();
            // A thread may end while we read: skip it.
            let (Ok(name), Ok(stat)) =
                (std::fs::read_to_string(dir.join("comm")), std::fs::read_to_string(dir.join("schedstat")))
            else {
                continue;
            };
            let ns: u64 = stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *by_name.entry(name.trim().to_owned()).or_default() += Duration::from_nanos(ns);
        }
        Ok(Self(by_name))
    }

    /// This process.
    pub fn own() -> std::io::Result<Self> {
        Self::of(std::process::id())
    }

    /// CPU time spent since `earlier`, per thread name.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        let spent = self
            .0
            .iter()
            .map(|(name, now)| {
                let before = earlier.0.get(name).copied().unwrap_or_default();
                (name.clone(), now.saturating_sub(before))
            })
            .collect();
        CpuSample(spent)
    }

    /// All threads together.
    pub fn total(&self) -> Duration {
        self.0.values().sum()
    }

    /// Threads whose name starts with `prefix`.
    pub fn named(&self, prefix: &str) -> Duration {
        self.0.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, d)| *d).sum()
    }
}

/// Time the hypervisor ran something else while this machine's CPUs had
/// work, per CPU on average (the `steal` column of `/proc/stat`'s `cpu`
/// line over its `cpuN` lines): a run that lost much of it measured the
/// host's neighbours as well as the servers.
pub fn stolen() -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .find(|line| line.starts_with("cpu "))
        .and_then(|line| line.split_whitespace().nth(8))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let cpus = stat.lines().filter(|line| line.starts_with("cpu") && !line.starts_with("cpu ")).count();
    // /proc/stat counts in USER_HZ, 100 per second on Linux whatever the
    // kernel's own tick.
    Ok(Duration::from_millis(ticks * 10) / cpus.max(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_busy_thread_of_this_process() {
        let before = CpuSample::own().unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(move || {
                let mut x = 0u64;
                for i in 0..20_000_000u64 {
                    x = std::hint::black_box(x.wrapping_add(i));
                }
                done_tx.send(()).unwrap();
                // Still alive when sampled: parked until told.
                std::thread::park();
                x
            })
            .unwrap();
        done.recv().unwrap();
        let spent = CpuSample::own().unwrap().since(&before);
        worker.thread().unpark();
        worker.join().unwrap();
        let spun = spent.named("cpu-test-spin");
        assert!(spun >= Duration::from_millis(1), "spinning thread counted {spun:?}");
        assert!(spent.total() >= spun);
        assert_eq!(spent.named("no-such-thread"), Duration::ZERO);
    }
}
