//! The socket under a WebSocket session ([`Socket`]: a plain TCP socket, or
//! whatever hyper upgraded), wrapped so the session knows when reading
//! would only block.
//!
//! A session's task wakes for many reasons besides readable data (replies
//! to write, credits, timers). [`ReadHint`] remembers that the socket's
//! last read blocked and clears that when the socket wakes it, so the
//! session polls the codec only when there may be something to read. (It
//! paid most under tungstenite, which zero-filled 4 KiB before every read
//! attempt; an empty read through the own codec still costs the trip
//! through hyper's upgraded stream and tokio's readiness check.)

use crate::session::SocketGuard;
use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A session's socket.
#[derive(Debug)]
pub(super) enum Socket {
    /// A plain TCP socket, taken back from hyper (to be registered on its
    /// endpoint's thread), with what hyper had read past the handshake.
    Tcp {
        /// Stops the endpoint thread's writes to the socket, if it makes
        /// any (see [`crate::session::link_to`]). Declared before `tcp`,
        /// so it is dropped (fields drop in order) before the socket
        /// closes. In a variant no larger than `Upgraded`: free.
        guard: Option<SocketGuard>,
        /// The socket.
        tcp: TcpStream,
        /// Bytes the client sent right after its handshake, read first.
        /// Dropped once read (or at once if there are none): they are a
        /// view of hyper's whole read buffer, which an idle session must
        /// not keep. Boxed: rare, and 24 bytes of every session otherwise.
        early: Option<Box<Bytes>>,
    },
    /// What hyper upgraded (TLS), through hyper's boxed stream.
    Upgraded(TokioIo<Upgraded>),
}

impl Socket {
    /// A TCP socket, and the bytes hyper read past the handshake.
    pub(super) fn tcp(tcp: TcpStream, early: Bytes) -> Self {
        Socket::Tcp { guard: None, tcp, early: (!early.is_empty()).then(|| Box::new(early)) }
    }

    /// Keeps `held` until the socket closes, and drops it just before.
    pub(super) fn hold(&mut self, held: SocketGuard) {
        if let Socket::Tcp { guard, .. } = self {
            *guard = Some(held);
        }
    }

    /// The descriptor of a plain TCP socket, which bytes may be written to
    /// from outside (see [`crate::session::link_to`]).
    pub(super) fn tcp_fd(&self) -> Option<RawFd> {
        match self {
            Socket::Tcp { tcp, .. } => Some(tcp.as_raw_fd()),
            Socket::Upgraded(_) => None,
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp { early: early @ Some(_), .. } => {
                let bytes = early.as_mut().expect("some");
                let n = bytes.len().min(buf.remaining());
                buf.put_slice(&bytes[..n]);
                bytes.advance(n);
                if !bytes.has_remaining() {
                    *early = None;
                }
                Poll::Ready(Ok(()))
            }
            Socket::Tcp { tcp, .. } => Pin::new(tcp).poll_read(cx, buf),
            Socket::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp { tcp, .. } => Pin::new(tcp).poll_write(cx, buf),
            Socket::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp { tcp, .. } => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Socket::Upgraded(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Tcp { tcp, .. } => tcp.is_write_vectored(),
            Socket::Upgraded(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp { tcp, .. } => Pin::new(tcp).poll_flush(cx),
            Socket::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp { tcp, .. } => Pin::new(tcp).poll_shutdown(cx),
            Socket::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// An I/O stream that records whether its last read blocked.
#[derive(Debug)]
pub(super) struct ReadHint<S> {
    io: S,
    flag: Arc<Flag>,
    /// A waker for `flag`, made once.
    waker: Waker,
}

/// Whether reading would block, and who to wake when it would not.
#[derive(Debug, Default)]
struct Flag {
    blocked: AtomicBool,
    reader: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.blocked.store(false, Ordering::Release);
        self.reader.wake();
    }
}

impl<S> ReadHint<S> {
    /// Wraps `io`.
    pub(super) fn new(io: S) -> Self {
        let flag = Arc::new(Flag::default());
        Self { io, waker: Waker::from(flag.clone()), flag }
    }

    /// A handle telling whether reading would block.
    pub(super) fn readable(&self) -> Readable {
        Readable(self.flag.clone())
    }

    /// The stream.
    pub(super) fn get_ref(&self) -> &S {
        &self.io
    }

    /// The stream.
    pub(super) fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

/// See [`ReadHint::readable`].
#[derive(Debug, Clone)]
pub(super) struct Readable(Arc<Flag>);

impl Readable {
    /// False while the last read blocked and the socket has not signalled
    /// since: a read now would only block again.
    pub(super) fn may_read(&self) -> bool {
        !self.0.blocked.load(Ordering::Acquire)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadHint<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.flag.reader.register(cx.waker());
        // Set before the read: a wake-up that races with it clears it again.
        this.flag.blocked.store(true, Ordering::Release);
        let polled = Pin::new(&mut this.io).poll_read(&mut Context::from_waker(&this.waker), buf);
        if polled.is_ready() {
            this.flag.blocked.store(false, Ordering::Release);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadHint<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_tcp_socket_reads_the_early_bytes_first_then_lets_them_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = Socket::tcp(tcp, Bytes::from_static(b"early "));
        client.write_all(b"later").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(socket.read(&mut buf).await.unwrap(), 4);
        assert_eq!(&buf, b"earl");
        let mut rest = Vec::new();
        while rest.len() < 7 {
            let n = socket.read(&mut buf).await.unwrap();
            rest.extend_from_slice(&buf[..n]);
        }
        assert_eq!(rest, b"y later");
        assert!(matches!(socket, Socket::Tcp { early: None, .. }), "the early bytes are kept after being read");
        let Socket::Tcp { early, .. } = Socket::tcp(client, Bytes::new()) else { unreachable!() };
        assert!(early.is_none(), "an empty view of hyper's buffer is kept");
    }

    #[tokio::test]
    async fn blocks_after_an_empty_read_and_clears_when_data_comes() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = ReadHint::new(a);
        let readable = a.readable();
        assert!(readable.may_read());
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(std::time::Duration::from_millis(20), a.read(&mut buf));
        assert!(read.await.is_err(), "nothing to read yet");
        assert!(!readable.may_read(), "the read blocked");
        b.write_all(b"hi").await.unwrap();
        assert!(readable.may_read(), "the writer woke the reader");
        assert_eq!(a.read(&mut buf).await.unwrap(), 2);
        assert!(readable.may_read());
    }
}
