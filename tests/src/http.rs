//! A plain HTTP/1.1 client for the tests: one request over a fresh
//! connection (`Connection: close`), the whole answer read back, headers
//! and body kept byte for byte, so a test sees exactly what was sent.

use crate::WAIT;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server's answer.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as received (the client never asks for chunked bodies to
    /// be decoded: the server sends lengths).
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` with `headers` (`Name: value` lines) to `addr`.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> HttpAnswer {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await.expect("an answer").unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head"));
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpAnswer {
        status: status.unwrap_or_else(|| panic!("no status in {head}")),
        headers,
        body: response[end + 4..].to_vec(),
    }
}

/// `GET path` on `addr`: the status code and the body as text.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = request(addr, "GET", path, &[]).await;
    (answer.status, answer.text())
}
