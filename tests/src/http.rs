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
    let mut all = vec!["Connection: close"];
    all.extend_from_slice(headers);
    tcp.write_all(request_text(addr, method, path, &all).as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await.expect("an answer").unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head"));
    let (status, headers) = parse_head(&String::from_utf8_lossy(&response[..end]));
    HttpAnswer { status, headers, body: response[end + 4..].to_vec() }
}

/// An HTTP/1.1 request head for `method path` with `headers`.
pub(crate) fn request_text(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// A response head's status code and headers (names lowercased).
pub(crate) fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status.unwrap_or_else(|| panic!("no status in {head}")), headers)
}

/// `GET path` on `addr`: the status code and the body as text.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = request(addr, "GET", path, &[]).await;
    (answer.status, answer.text())
}
