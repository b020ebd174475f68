//! Plugin stdout and stderr, turned into host log lines tagged with the
//! plugin's name.
//!
//! Output is split into lines; a line longer than [`MAX_LINE`] is logged in
//! pieces, so a plugin that never prints a newline cannot grow host memory.
//! A per-plugin [`LogBudget`] (a token bucket over bytes) keeps a chatty
//! plugin from flooding the log: lines over budget are dropped, and the
//! next line that fits is preceded by a count of what was dropped.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line logged in one piece.
pub const MAX_LINE: usize = 4096;

/// Which stream a [`LogOutput`] stands for.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// The plugin's stdout: logged at info level.
    Stdout,
    /// The plugin's stderr: logged at warn level.
    Stderr,
}

/// How many bytes of output a plugin may log: `rate` per second, in bursts
/// of up to four seconds' worth.
#[derive(Debug)]
pub struct LogBudget {
    rate: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Bytes dropped and not yet reported.
    dropped: u64,
    /// When the last "dropped" warning went out.
    warned: Option<Instant>,
}

/// At most one "output dropped" warning per plugin per this: a plugin that
/// logs without pause cannot make the warning itself a flood.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl LogBudget {
    /// A full budget of `rate` bytes per second.
    pub fn new(rate: usize) -> Self {
        let rate = rate as f64;
        let bucket = Bucket { tokens: rate * 4.0, last: Instant::now(), dropped: 0, warned: None };
        Self { rate, bucket: Mutex::new(bucket) }
    }

    /// Spends `n` bytes if the budget has them; then says how many dropped
    /// bytes to report now (0 until [`WARN_EVERY`] has passed since the last
    /// report). `None`: over budget.
    fn spend(&self, n: usize) -> Option<u64> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.rate * 4.0);
        b.last = now;
        if b.tokens >= n as f64 {
            b.tokens -= n as f64;
            let due = b.dropped > 0 && b.warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
            if !due {
                return Some(0);
            }
            b.warned = Some(now);
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += n as u64;
            None
        }
    }
}

/// A WASI stdout/stderr that writes to the host log.
#[derive(Debug, Clone)]
pub struct LogOutput {
    plugin: Arc<str>,
    stream: Stream,
    budget: Arc<LogBudget>,
}

impl LogOutput {
    /// Output of `plugin` on `stream`, within `budget`.
    pub fn new(plugin: Arc<str>, stream: Stream, budget: Arc<LogBudget>) -> Self {
        Self { plugin, stream, budget }
    }
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.clone()))
    }
}

/// Buffers one partial line and logs each complete one.
struct LineWriter {
    out: LogOutput,
    line: Vec<u8>,
}

impl LineWriter {
    fn new(out: LogOutput) -> Self {
        Self { out, line: Vec::new() }
    }

    fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.line.len();
            match bytes.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    self.emit();
                }
                None => {
                    let n = room.min(bytes.len());
                    self.line.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.line.len() == MAX_LINE {
                        self.emit();
                    }
                }
            }
        }
    }

    fn emit(&mut self) {
        let Some(dropped) = self.out.budget.spend(self.line.len() + 1) else {
            self.line.clear();
            return;
        };
        if dropped > 0 {
            tracing::warn!(target: "wasock::plugin", plugin = &*self.out.plugin, dropped_bytes = dropped, "plugin output over its log budget was dropped");
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches('\r');
        let plugin = &*self.out.plugin;
        match self.out.stream {
            Stream::Stdout => tracing::info!(target: "wasock::plugin", plugin, "{text}"),
            Stream::Stderr => tracing::warn!(target: "wasock::plugin", plugin, "{text}"),
        }
        self.line.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
