//! Runs the real `wasock` binary: `serve` as a child process whose log is
//! read until it says where it listens, then stopped with SIGTERM.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The bundled plugins.
pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// The compile cache the test suites share (JavaScript and Python plugins
/// take seconds to compile once).
pub fn cache_dir() -> PathBuf {
    plugins_dir().join("target/compile-cache")
}

/// A fresh empty directory for this process.
pub fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasock-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `wasock serve`.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every log line read so far.
    pub log: Vec<String>,
    /// Where it listens, `127.0.0.1:port`.
    pub addr: String,
}

impl Served {
    /// Starts `wasock serve --listen 127.0.0.1:0 <args>` in `dir` and waits
    /// (up to `wait`, builds included) until it listens.
    pub fn start(dir: &Path, args: &[&str], wait: Duration) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasock"))
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(cache_dir())
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (lines_tx, lines) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("no `listening on` line; log so far:\n{}", log.join("\n")));
            log.push(line.clone());
            if let Some(addr) = line.split("listening on ").nth(1) {
                break addr.trim().to_owned();
            }
        };
        Self { child, lines, log, addr }
    }

    /// `ws://addr/route`.
    pub fn url(&self, route: &str) -> String {
        format!("ws://{}{route}", self.addr)
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        self.log.extend(self.lines.try_iter());
        (exit, self.log.join("\n"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
