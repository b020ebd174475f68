//! A real nats-server (Debian's `nats-server` package, installed by
//! `.ci/setup`) on a free loopback port, for the cluster tests.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running nats-server.
#[derive(Debug)]
pub struct Nats {
    child: Child,
    /// Its client port.
    pub port: u16,
}

/// The nats-server binary: `$NATS_SERVER`, else `nats-server` on the PATH
/// or in `/usr/sbin` (where Debian puts it).
fn binary() -> String {
    if let Ok(path) = std::env::var("NATS_SERVER") {
        return path;
    }
    let on_path = Command::new("sh").args(["-c", "command -v nats-server"]).output();
    match on_path {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "/usr/sbin/nats-server".to_owned(),
    }
}

impl Nats {
    /// Starts one on a port of its own choosing.
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// Starts one on `port` (a restart on the same address), or on a free
    /// port.
    pub fn start_on(port: Option<u16>) -> Self {
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        let mut child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port_arg])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("nats-server is not installed (apt install nats-server; .ci/setup does)");
        let rx = crate::cli::stderr_lines(&mut child);
        let mut log = Vec::new();
        let port = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("nats-server did not listen; its log:\n{}", log.join("\n")));
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                break rest.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
            log.push(line);
        };
        Self { child, port }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL) and waits.
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
