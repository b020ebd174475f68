//! The WebSocket codec under a session: our own ([`crate::codec`]) for
//! plain connections, sockudo-ws for connections that negotiated
//! permessage-deflate (RFC 7692).
//!
//! Both are one [`Wire`]: a stream of tungstenite [`Message`]s (the type
//! the session queues carry, so a message is never copied to change type)
//! and a sink of them, with one error type, [`WireError`], that says which
//! close code a failure calls for. Why two codecs: the plain one holds no
//! buffer while a session is idle and is the measured hot path
//! (`BENCHMARKS.md`); sockudo-ws 3.1 was the candidate that passes every
//! Autobahn deflate case with no exclusions, and keeps its buffers (and
//! its deflate contexts) per connection.
//!
//! sockudo-ws runs with its own heartbeat and idle timeout off: the session
//! task pings, times out and closes the same way for both codecs.

use super::io::{ReadHint, Socket};
use crate::codec::{self, Codec};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream};
use sockudo_ws::CompressedWebSocketStream;
use sockudo_ws::deflate::DeflateConfig;
use sockudo_ws::error::CloseReason;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The socket under a session.
pub(super) type Io = ReadHint<Socket>;

/// A session's framed socket.
// The plain codec stays inline, not boxed: it is the measured hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Wire {
    /// No extension.
    Plain(Codec<Io>),
    /// permessage-deflate: sockudo-ws (boxed: it is several times larger),
    /// and a handle on the socket it reads, because it gives no access to
    /// it and stops writing after a bad frame, so the session writes its
    /// close frame (1009, 1007, 1002) and drains the socket itself.
    Deflate(Box<CompressedWebSocketStream<SharedIo>>, SharedIo),
}

/// The socket of a compressed session, shared between sockudo-ws and the
/// session (which uses it only once sockudo-ws has failed). The lock is
/// never contended: one task owns both users.
#[derive(Debug, Clone)]
pub(super) struct SharedIo(Arc<Mutex<Io>>);

impl SharedIo {
    fn with<T>(&self, f: impl FnOnce(Pin<&mut Io>) -> T) -> T {
        let mut io = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(Pin::new(&mut *io))
    }
}

impl AsyncRead for SharedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.with(|io| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|io| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.with(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_shutdown(cx))
    }
}

/// Most bytes read and discarded after closing on a bad message.
const DRAIN_MAX: usize = 64 << 20;

/// How long the socket may stay silent before a drain ends: the client has
/// sent what it was sending and, usually, its reply to the close frame; it
/// now waits for the server to close the TCP connection (RFC 6455 section
/// 7.1.1), so waiting for its end of the stream would only wait for its
/// timeout.
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads and discards from `io` until the client closes its side, stays
/// silent for [`DRAIN_QUIET`], or [`DRAIN_MAX`] bytes have come (the caller
/// bounds the time).
async fn drain(io: &mut (impl AsyncRead + Unpin)) {
    let mut scratch = vec![0; 16 << 10];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        match tokio::time::timeout(DRAIN_QUIET, io.read(&mut scratch)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(n)) => drained += n,
        }
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Wire::Plain(_) => "Wire::Plain",
            Wire::Deflate(..) => "Wire::Deflate",
        })
    }
}

/// Why a session's socket failed, by the close code it calls for.
#[derive(Debug, thiserror::Error)]
pub(super) enum WireError {
    /// A message or frame over the limit (1009); for a compressed message,
    /// its inflated size.
    #[error("{0}")]
    TooLarge(&'static str),
    /// A text message that is not UTF-8 (1007).
    #[error("invalid UTF-8 in text message")]
    BadUtf8,
    /// A protocol violation (1002).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection ended or failed without a close handshake: nothing
    /// more can be sent.
    #[error("connection lost: {0}")]
    Lost(String),
}

impl From<codec::Error> for WireError {
    fn from(err: codec::Error) -> Self {
        match err {
            codec::Error::TooLarge(what) => WireError::TooLarge(what),
            codec::Error::BadUtf8 => WireError::BadUtf8,
            codec::Error::Protocol(what) => WireError::Protocol(what.to_owned()),
            codec::Error::Io(err) => WireError::Lost(err.to_string()),
        }
    }
}

impl From<sockudo_ws::Error> for WireError {
    fn from(err: sockudo_ws::Error) -> Self {
        use sockudo_ws::Error as E;
        match err {
            E::MessageTooLarge => WireError::TooLarge("message too big"),
            E::FrameTooLarge | E::Capacity(_) => WireError::TooLarge("frame too big"),
            E::InvalidUtf8 => WireError::BadUtf8,
            E::InvalidFrame(what) | E::Protocol(what) => WireError::Protocol(what.to_owned()),
            E::InvalidCloseCode(code) => WireError::Protocol(format!("invalid close code {code}")),
            E::Compression(what) => WireError::Protocol(format!("bad compressed data: {what}")),
            other => WireError::Lost(other.to_string()),
        }
    }
}

impl Wire {
    /// A plain session over `io`.
    pub(super) fn plain(io: Io, max_message: usize, write_buffer: usize) -> Self {
        Wire::Plain(Codec::server(io, max_message, write_buffer))
    }

    /// A compressed session over `io`, with what the handshake agreed.
    pub(super) fn deflate(io: Io, max_message: usize, deflate: DeflateConfig) -> Self {
        let config = sockudo_ws::Config::builder()
            .max_message_size(max_message)
            .max_frame_size(max_message)
            .auto_ping(false)
            .idle_timeout(0)
            .build();
        let io = SharedIo(Arc::new(Mutex::new(io)));
        Wire::Deflate(Box::new(CompressedWebSocketStream::server(io.clone(), config, deflate)), io)
    }

    /// After a bad message: sends `frame`, then reads and discards what the
    /// client still sends until it stops (RFC 6455 section 7), and returns
    /// so the caller closes the connection. Closing a socket with unread
    /// data resets it, and a client still writing then fails its write and
    /// may never read the close frame. The caller bounds the time.
    pub(super) async fn fail(&mut self, frame: CloseFrame) -> Result<(), WireError> {
        match self {
            Wire::Plain(ws) => {
                ws.send(Message::Close(Some(frame))).await?;
                drain(ws.get_mut()).await;
            }
            Wire::Deflate(_, io) => {
                let mut close = vec![0x88, 0];
                close.extend_from_slice(&u16::from(frame.code).to_be_bytes());
                close.extend_from_slice(frame.reason.as_bytes());
                close.truncate(127);
                close[1] = (close.len() - 2) as u8;
                let lost = |e: io::Error| WireError::Lost(e.to_string());
                io.write_all(&close).await.map_err(lost)?;
                io.flush().await.map_err(lost)?;
                drain(io).await;
            }
        }
        Ok(())
    }

    /// Whether the session compresses.
    pub(super) fn compressed(&self) -> bool {
        matches!(self, Wire::Deflate(..))
    }
}

/// A received sockudo-ws message as tungstenite's.
fn received(msg: sockudo_ws::Message) -> Result<Message, WireError> {
    use sockudo_ws::Message as M;
    Ok(match msg {
        // Checked by sockudo-ws already (incrementally, failing fast on
        // fragments); checked once more to become a `Utf8Bytes`.
        M::Text(text) => Message::Text(Utf8Bytes::try_from(text).map_err(|_| WireError::BadUtf8)?),
        M::Binary(data) => Message::Binary(data),
        M::Ping(data) => Message::Ping(data),
        M::Pong(data) => Message::Pong(data),
        M::Close(reason) => Message::Close(
            reason.map(|r| CloseFrame { code: WireCloseCode::from(r.code), reason: Utf8Bytes::from(r.reason) }),
        ),
    })
}

/// A message to send as sockudo-ws's; `None` for raw frames (never sent).
fn to_send(msg: Message) -> Option<sockudo_ws::Message> {
    use sockudo_ws::Message as M;
    Some(match msg {
        Message::Text(text) => M::Text(Bytes::from(text)),
        Message::Binary(data) => M::Binary(data),
        Message::Ping(data) => M::Ping(data),
        Message::Pong(data) => M::Pong(data),
        Message::Close(frame) => M::Close(frame.map(|f| CloseReason::new(u16::from(f.code), f.reason.as_str()))),
        Message::Frame(_) => return None,
    })
}

impl Stream for Wire {
    type Item = Result<Message, WireError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Wire::Plain(ws) => Pin::new(ws).poll_next(cx).map(|m| m.map(|r| r.map_err(WireError::from))),
            Wire::Deflate(ws, _) => {
                let next = ready!(Pin::new(ws.as_mut()).poll_next(cx));
                Poll::Ready(next.map(|r| r.map_err(WireError::from).and_then(received)))
            }
        }
    }
}

impl Sink<Message> for Wire {
    type Error = WireError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        match self.get_mut() {
            Wire::Plain(ws) => Pin::new(ws).poll_ready(cx).map_err(WireError::from),
            Wire::Deflate(ws, _) => Pin::new(ws.as_mut()).poll_ready(cx).map_err(WireError::from),
        }
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), WireError> {
        match self.get_mut() {
            Wire::Plain(ws) => Pin::new(ws).start_send(msg).map_err(WireError::from),
            Wire::Deflate(ws, _) => match to_send(msg) {
                Some(msg) => Pin::new(ws.as_mut()).start_send(msg).map_err(WireError::from),
                None => Ok(()),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        match self.get_mut() {
            Wire::Plain(ws) => Pin::new(ws).poll_flush(cx).map_err(WireError::from),
            Wire::Deflate(ws, _) => Pin::new(ws.as_mut()).poll_flush(cx).map_err(WireError::from),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        match self.get_mut() {
            Wire::Plain(ws) => Pin::new(ws).poll_close(cx).map_err(WireError::from),
            Wire::Deflate(ws, _) => Pin::new(ws.as_mut()).poll_close(cx).map_err(WireError::from),
        }
    }
}

/// The answer to a client's `Sec-WebSocket-Extensions` offers under the
/// route's settings: the response header and the codec's configuration,
/// or `None` to decline (no acceptable offer; the handshake goes on
/// without compression). Offers are tried in the client's order; one the
/// server cannot honour (a window under 9 bits, an unknown parameter) is
/// skipped. Without context takeover the server also asks the client for
/// `client_no_context_takeover`, which RFC 7692 section 7.1.1.2 allows
/// even when the client did not offer it.
pub(super) fn negotiate(offers: &str, settings: &crate::manifest::Deflate) -> Option<(String, DeflateConfig)> {
    use sockudo_ws::deflate::DeflateWindowBits;
    let policy = DeflateConfig {
        server_max_window_bits: DeflateWindowBits::try_from(settings.window_bits).unwrap_or(DeflateWindowBits::Bits15),
        client_max_window_bits: DeflateWindowBits::Bits15,
        server_no_context_takeover: !settings.context_takeover,
        client_no_context_takeover: !settings.context_takeover,
        compression_level: settings.level,
        compression_threshold: settings.threshold_bytes,
    };
    sockudo_ws::deflate::negotiate_server_deflate(offers, &policy).map(|n| (n.to_response_header(), n.config))
}
