//! `wasock status [--admin ADDR]`: asks a running server's admin listener
//! for `/status` and prints it as a table.

use anyhow::Context;
use clap::Args;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `wasock status`.
#[derive(Debug, Args)]
pub struct Status {
    /// The server's admin address (its `serve --admin`).
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin: SocketAddr,
}

impl Status {
    /// Prints the table; fails if the server cannot be asked.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let body = get(self.admin, "/status").with_context(|| format!("cannot ask {} for /status", self.admin))?;
        let status: serde_json::Value = serde_json::from_str(&body).context("the server's /status is not JSON")?;
        let ready = status["ready"].as_bool().unwrap_or(false);
        println!("{} ({})", self.admin, if ready { "ready" } else { "not ready" });
        println!("{:<16} {:<20} {:<13} {:<11} {:>8}  last swap", "PLUGIN", "ROUTE", "VERSION", "STATE", "SESSIONS");
        for e in status["endpoints"].as_array().into_iter().flatten() {
            let last_swap = e["last_swap"].as_u64().map_or_else(|| "-".to_owned(), |t| format!("unix {t}"));
            println!(
                "{:<16} {:<20} {:<13} {:<11} {:>8}  {last_swap}",
                e["plugin"].as_str().unwrap_or("?"),
                e["route"].as_str().unwrap_or("?"),
                e["version"].as_str().unwrap_or("?"),
                e["state"].as_str().unwrap_or("?"),
                e["sessions"].as_u64().unwrap_or(0),
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The body of `GET path` on `addr` (HTTP/1.1, one request).
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    tcp.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP response")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{}", head.lines().next().unwrap_or(head));
    Ok(body.to_owned())
}
