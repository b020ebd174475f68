//! The real `wasock` binary as a child process: `serve` whose log is read
//! until it says where it listens, then stopped with SIGTERM.
//!
//! The binary is the one `cargo test --workspace` builds next to the test
//! executables (cargo builds the `wasock` package's binary for its own
//! integration tests); `cargo test -p wasock-tests` alone does not rebuild
//! it, so build `-p wasock` too when iterating.

use crate::compile_cache_dir;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `wasock` binary of this build.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> or target/<profile>/<bench binary> ->
    // target/<profile>/wasock
    let mut dir = exe.parent().expect("target dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    let bin = dir.join("wasock");
    assert!(bin.is_file(), "{} is not built: run `cargo test --workspace` (or `cargo build -p wasock`)", bin.display());
    bin
}

/// A child's stderr (piped), line by line, read by a thread of its own.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

/// `wasock ARGS` run in `dir`, to its end.
pub fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary()).args(args).current_dir(dir).output().unwrap()
}

/// A running `wasock serve`.
#[derive(Debug)]
pub struct Served {
    /// The process.
    child: Child,
    /// Its log, line by line, from a reader thread.
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
        Self::spawn(Command::new(binary()), dir, args, wait)
    }

    /// Like [`start`](Self::start), with at most `files` open file
    /// descriptors (`ulimit -n`).
    pub fn start_limited(dir: &Path, args: &[&str], wait: Duration, files: u32) -> Self {
        let mut shell = Command::new("sh");
        shell.arg("-c").arg(format!("ulimit -n {files} && exec \"$0\" \"$@\"")).arg(binary());
        Self::spawn(shell, dir, args, wait)
    }

    fn spawn(mut command: Command, dir: &Path, args: &[&str], wait: Duration) -> Self {
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(compile_cache_dir())
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let lines = stderr_lines(&mut child);
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("no `listening on` line; log so far:\n{}", log.join("\n")));
            log.push(line.clone());
            // The address ends the text line; in a JSON line a quote follows.
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c)).collect();
            }
        };
        Self { child, lines, log, addr }
    }

    /// The admin listener's address (`host:port`), read from the log.
    pub fn admin_addr(&mut self) -> String {
        let addr = |line: &str| {
            let rest = line.split("admin endpoints on http://").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        };
        if let Some(found) = self.log.iter().find_map(|l| addr(l)) {
            return found;
        }
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(10)).expect("no admin line in the log");
            self.log.push(line.clone());
            if let Some(found) = addr(&line) {
                return found;
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the server has used so far (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name: state is the 3rd, utime the 14th.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
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

impl Served {
    /// Kills the server (SIGKILL: no closing handshake, no goodbye) and
    /// waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
