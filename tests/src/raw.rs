//! A WebSocket client at the frame level, for what no library client
//! sends on purpose: chosen `Sec-WebSocket-Extensions` offers, frames with
//! RSV1 set and hand-made deflate payloads (a zip bomb), and a look at
//! the bits of every frame the server sends back.

use crate::WAIT;
use crate::http::{parse_head, request_text};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection after its handshake.
#[derive(Debug)]
pub struct RawClient {
    tcp: TcpStream,
}

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The FIN bit.
    pub fin: bool,
    /// RSV1: set on a compressed message's first frame.
    pub rsv1: bool,
    /// The opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The payload (servers do not mask).
    pub payload: Vec<u8>,
}

/// The server's answer to the upgrade: status and headers (lowercase
/// names).
pub type RawAnswer = (u16, Vec<(String, String)>);

/// The value of header `name` in `answer`, if sent.
pub fn header<'a>(answer: &'a RawAnswer, name: &str) -> Option<&'a str> {
    answer.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

impl RawClient {
    /// Upgrades at `path`, sending `headers` (`Name: value` lines) too.
    /// Returns the client only if the server answered 101.
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[&str]) -> (Option<Self>, RawAnswer) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut all = vec![
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ];
        all.extend_from_slice(headers);
        tcp.write_all(request_text(addr, "GET", path, &all).as_bytes()).await.unwrap();
        // Byte by byte: what follows the head is the server's first frames.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            tokio::time::timeout(WAIT, tcp.read_exact(&mut byte)).await.expect("an answer").unwrap();
            head.push(byte[0]);
        }
        let (status, headers) = parse_head(&String::from_utf8_lossy(&head[..head.len() - 4]));
        let client = (status == 101).then_some(Self { tcp });
        (client, (status, headers))
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        self.tcp.write_all(&frame(opcode, rsv1, payload)).await.unwrap();
    }

    /// Reads the next frame the server sends; `None` at the end of the
    /// stream.
    pub async fn recv(&mut self) -> Option<RawFrame> {
        tokio::time::timeout(WAIT, self.read_frame()).await.expect("a frame in time")
    }

    async fn read_frame(&mut self) -> Option<RawFrame> {
        let mut head = [0u8; 2];
        self.tcp.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => u64::from(self.tcp.read_u16().await.ok()?),
            127 => self.tcp.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut payload = vec![0; len as usize];
        self.tcp.read_exact(&mut payload).await.ok()?;
        Some(RawFrame { fin: head[0] & 0x80 != 0, rsv1: head[0] & 0x40 != 0, opcode: head[0] & 0x0f, payload })
    }
}

/// A masked client frame.
pub fn frame(opcode: u8, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | if rsv1 { 0x40 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// `data` compressed the way permessage-deflate sends a message: raw
/// deflate, sync-flushed, without the final `00 00 ff ff`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync).unwrap();
    while out.len() == out.capacity() {
        out.reserve(out.capacity());
        c.compress_vec(&[], &mut out, flate2::FlushCompress::Sync).unwrap();
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A permessage-deflate payload inflated (the trailer put back).
pub fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = flate2::Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 8 + 1024);
    loop {
        let before = d.total_in();
        d.decompress_vec(&input[d.total_in() as usize..], &mut out, flate2::FlushDecompress::Sync).unwrap();
        if d.total_in() as usize == input.len() {
            return out;
        }
        if d.total_in() == before && out.len() < out.capacity() {
            panic!("inflate made no progress");
        }
        out.reserve(out.capacity());
    }
}
