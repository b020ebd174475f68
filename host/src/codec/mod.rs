//! The WebSocket codec of every session: RFC 6455 framing over any socket,
//! with permessage-deflate (RFC 7692) when the handshake agreed it, as a
//! `Stream` of the client's tungstenite [`Message`]s and a `Sink` of the
//! server's (the type the session queues carry).
//!
//! Why our own, not tungstenite's (measured, `BENCHMARKS.md`, "The wire
//! codec"): an idle session holds no buffer. Reads go into one buffer per
//! thread (as uWebSockets reads into one per event loop), each message is
//! unmasked straight from it into its own exact-size allocation, and a
//! session keeps bytes only while a frame is arriving or a read held more
//! than one message; its write buffer lives only until it is flushed (and
//! then serves the thread's next session that writes).
//! tungstenite keeps a read buffer (4 KiB here) and its write buffer per
//! connection for the connection's life and zero-fills the free part of
//! the read buffer before every read; sockudo-ws keeps 64 + 16 KiB.
//!
//! The codec answers pings (the pong is written on the next flush) and
//! the client's close (the reply is written before the stream ends), and
//! checks what RFC 6455 asks of a server: masks, reserved bits, opcodes,
//! control frames, fragmentation, close codes, UTF-8 (failing fast inside
//! a fragmented text), and the message size limit, at the frame header,
//! before the payload is read (and while inflating a compressed one).
//!
//! - `frame`: headers and masking at the byte level.
//! - `read`: frames into messages, and the checks on what the client sent.
//! - `deflate`: compressing and inflating, with contexts shared by the
//!   thread's sessions unless context takeover was agreed.

mod deflate;
mod frame;
mod read;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub use deflate::Deflate;

/// Bytes one read takes from the socket (the per-thread buffer's size).
const READ_SIZE: usize = 64 << 10;

thread_local! {
    /// The read buffer of every session polled on this thread: filled,
    /// parsed and left within one poll, so sessions never share bytes.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
}

/// The largest write buffer a thread keeps for its next session.
const SPARE_MAX: usize = 64 << 10;

thread_local! {
    /// A write buffer a session of this thread flushed, emptied, for the
    /// next session to encode into: writing a message then allocates
    /// nothing. Measured (`bench/instructions.sh 6 topic`): ~110 of ~2 500
    /// user-space instructions per fan-out delivery were that malloc and
    /// free. One per thread, at most [`SPARE_MAX`] bytes; a session still
    /// holds none while idle.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// This thread's spare write buffer, or a new one, with room for `len` bytes.
pub fn take_spare(len: usize) -> Vec<u8> {
    let mut buf = SPARE.try_with(Cell::take).unwrap_or_default();
    buf.reserve_exact(len);
    buf
}

/// Keeps `buf`, emptied, as this thread's spare unless it is too large (or
/// no buffer at all: an empty flush must not drop the spare).
pub fn recycle(mut buf: Vec<u8>) {
    if (1..=SPARE_MAX).contains(&buf.capacity()) {
        buf.clear();
        let _ = SPARE.try_with(|spare| spare.set(buf));
    }
}

/// Appends `msg` to `out` as an uncompressed server frame if it is a data
/// message (text or binary); anything else is left to the session's codec,
/// whose state it changes (a close), and false returned. For writing to a
/// session's socket outside its codec, while the codec has nothing queued
/// ([`Codec::idle`]).
pub fn encode_data(out: &mut Vec<u8>, msg: &Message) -> bool {
    let (opcode, payload): (u8, &[u8]) = match msg {
        Message::Text(text) => (frame::TEXT, text.as_bytes()),
        Message::Binary(data) => (frame::BINARY, data),
        _ => return false,
    };
    frame::write_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
    true
}

/// What a client did wrong, or what failed under the codec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A frame or message over the size limit (close code 1009).
    #[error("{0}")]
    TooLarge(&'static str),
    /// A text message or close reason that is not UTF-8 (1007).
    #[error("invalid UTF-8 in text message")]
    BadUtf8,
    /// A protocol violation (1002).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where the closing handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The server sent its close; the client's reply is awaited.
    CloseSent,
    /// The client closed; the reply is queued in `out`, and the stream
    /// ends once it is written.
    CloseReceived,
    /// Both closes are done: the stream has ended.
    Done,
}

/// What one read gave.
enum Read {
    /// The end of the stream.
    End,
    /// Not a whole message yet.
    More,
    Message(Message),
}

/// A server-side WebSocket over `S`, after the handshake.
#[derive(Debug)]
pub struct Codec<S> {
    io: S,
    /// Bytes read and not yet parsed, from `parsed` on: the rest of a read
    /// that held more than one message, or a frame still arriving. Empty
    /// and unallocated between messages.
    pending: Vec<u8>,
    parsed: usize,
    /// Boxed: rare, and a session's size is idle memory.
    gathering: Option<Box<read::Gathering>>,
    /// permessage-deflate, if agreed (boxed for the same reason).
    deflate: Option<Box<Deflate>>,
    /// Frames encoded and not yet written, from `written` on; unallocated
    /// once flushed.
    out: Vec<u8>,
    written: usize,
    state: State,
    /// The largest message (and frame) accepted, in bytes.
    max_message: u32,
    /// Bytes queued in `out` past which a send first writes them.
    write_buffer: u32,
}

impl<S> Codec<S> {
    /// The server side of a WebSocket whose handshake is done on `io`.
    pub fn server(io: S, max_message: usize, write_buffer: usize) -> Self {
        Self {
            io,
            pending: Vec::new(),
            parsed: 0,
            gathering: None,
            deflate: None,
            out: Vec::new(),
            written: 0,
            state: State::Open,
            // 32 bits each: a session's size is idle memory. A limit of
            // 4 GiB or more is 4 GiB (a message that size is not held).
            max_message: u32::try_from(max_message).unwrap_or(u32::MAX),
            write_buffer: u32::try_from(write_buffer).unwrap_or(u32::MAX),
        }
    }

    /// The same, compressing and inflating messages as `deflate` says.
    pub fn deflate(mut self, deflate: Deflate) -> Self {
        self.deflate = Some(Box::new(deflate));
        self
    }

    /// Whether permessage-deflate is on.
    pub fn compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// The socket (after a bad message, to drain it).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The socket.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Whether bytes written to the socket from outside the codec now
    /// would go out in order and as the codec would have framed them:
    /// nothing is queued, the session is open, and it is not compressed.
    pub fn idle(&self) -> bool {
        self.out.is_empty() && self.state == State::Open && self.deflate.is_none()
    }

    /// Queues bytes already framed (the rest of a write made from outside
    /// the codec, see [`idle`](Self::idle)) ahead of what is sent next.
    pub fn queue_framed(&mut self, framed: &[u8]) {
        if self.out.capacity() == 0 {
            self.out = take_spare(framed.len());
        }
        self.out.extend_from_slice(framed);
    }

    /// Queues a frame for the client.
    fn encode(&mut self, opcode: u8, payload: &[u8]) {
        if self.out.capacity() == 0 {
            self.out = take_spare(payload.len() + frame::MAX_HEADER);
        }
        frame::write_header(&mut self.out, opcode, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// Queues a data frame, compressed if compression is on and pays.
    fn encode_data(&mut self, opcode: u8, payload: &Bytes) {
        if let Some(deflate) = self.deflate.as_mut()
            && let Some(packed) = deflate.compress(payload)
        {
            return self.encode(frame::RSV1 | opcode, &packed);
        }
        self.encode(opcode, payload);
    }

    fn encode_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = Vec::new();
        if let Some(frame) = frame {
            payload.extend_from_slice(&u16::from(frame.code).to_be_bytes());
            payload.extend_from_slice(frame.reason.as_bytes());
            payload.truncate(frame::MAX_CONTROL as usize);
        }
        self.encode(frame::CLOSE, &payload);
    }

    /// Frees the read bytes once all are parsed.
    fn settle(&mut self) {
        if self.parsed == self.pending.len() {
            self.pending = Vec::new();
            self.parsed = 0;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Codec<S> {
    /// Reads once into this thread's buffer and parses what came.
    fn poll_read_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<Read, Error>> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.read_into(cx, &mut scratch),
            // Not reached (nothing polled inside a read polls a session),
            // but never a panic.
            Err(_) => self.read_into(cx, &mut vec![0; 4 << 10]),
        })
    }

    fn read_into(&mut self, cx: &mut Context<'_>, scratch: &mut [u8]) -> Poll<Result<Read, Error>> {
        let mut buf = ReadBuf::new(scratch);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let read = buf.filled();
        if read.is_empty() {
            return Poll::Ready(Ok(Read::End));
        }
        if self.pending.is_empty() {
            // The common case: parse straight from the read, keep the rest.
            let (used, msg) = self.frames(read)?;
            self.pending.extend_from_slice(&read[used..]);
            return Poll::Ready(Ok(msg.map_or(Read::More, Read::Message)));
        }
        self.pending.drain(..self.parsed);
        self.parsed = 0;
        self.pending.extend_from_slice(read);
        Poll::Ready(Ok(Read::More))
    }

    /// Writes what is queued and flushes the socket.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes what is queued.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        recycle(std::mem::take(&mut self.out));
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Codec<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::CloseReceived => {
                    // The reply to the client's close, then the end.
                    let written = ready!(this.poll_flush_out(cx));
                    this.state = State::Done;
                    return Poll::Ready(written.err().map(|e| Err(e.into())));
                }
                State::Open | State::CloseSent => {}
            }
            if this.parsed < this.pending.len() {
                let pending = std::mem::take(&mut this.pending);
                let parsed = this.frames(&pending[this.parsed..]);
                this.pending = pending;
                let (used, msg) = match parsed {
                    Ok(parsed) => parsed,
                    Err(e) => return Poll::Ready(Some(Err(e))),
                };
                this.parsed += used;
                this.settle();
                if let Some(msg) = msg {
                    return Poll::Ready(Some(Ok(msg)));
                }
            }
            match ready!(this.poll_read_frames(cx)) {
                Ok(Read::End) => return Poll::Ready(None),
                Ok(Read::Message(msg)) => return Poll::Ready(Some(Ok(msg))),
                Ok(Read::More) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Codec<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.out.len() - this.written >= this.write_buffer as usize {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues `msg`; after the server's close, or once the client's close
    /// has been answered, data is dropped (the session is ending).
    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if this.state != State::Open {
            return Ok(());
        }
        match msg {
            Message::Text(text) => this.encode_data(frame::TEXT, &Bytes::from(text)),
            Message::Binary(data) => this.encode_data(frame::BINARY, &data),
            Message::Ping(data) => this.encode(frame::PING, &data),
            Message::Pong(data) => this.encode(frame::PONG, &data),
            Message::Close(frame) => {
                this.encode_close(frame.as_ref());
                this.state = State::CloseSent;
            }
            Message::Frame(_) => {}
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_out(cx).map_err(Error::from)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Poll::Ready(ready!(Pin::new(&mut self.io).poll_shutdown(cx)).map_err(Error::from))
    }
}
