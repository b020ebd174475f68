//! The WebSocket codec of plain (uncompressed) sessions: RFC 6455 framing
//! over any socket, as a `Stream` of the client's tungstenite [`Message`]s
//! and a `Sink` of the server's (the type the session queues carry).
//!
//! Why our own, not tungstenite's (measured, `BENCHMARKS.md`, "The wire
//! codec"): an idle session holds no buffer. Reads go into one buffer per
//! thread (as uWebSockets reads into one per event loop), each message is
//! unmasked straight from it into its own exact-size allocation, and a
//! session keeps bytes only while a frame is arriving or a read held more
//! than one message; its write buffer lives only until it is flushed.
//! tungstenite keeps a read buffer (4 KiB here) and its write buffer per
//! connection for the connection's life and zero-fills the free part of
//! the read buffer before every read; sockudo-ws keeps 64 + 16 KiB.
//!
//! The codec answers pings (the pong is written on the next flush) and
//! the client's close (the reply is written before the stream ends), and
//! checks what RFC 6455 asks of a server: masks, reserved bits, opcodes,
//! control frames, fragmentation, close codes, UTF-8 (failing fast inside
//! a fragmented text), and the message size limit, at the frame header,
//! before the payload is read.
//!
//! - `frame`: headers and masking at the byte level.

mod frame;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Bytes one read takes from the socket (the per-thread buffer's size).
const READ_SIZE: usize = 64 << 10;

thread_local! {
    /// The read buffer of every session polled on this thread: filled,
    /// parsed and left within one poll, so sessions never share bytes.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
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

/// A fragmented message being gathered.
#[derive(Debug)]
struct Gathering {
    text: bool,
    data: Vec<u8>,
    /// Bytes of a text known to be UTF-8 so far (a character may be split
    /// between frames).
    checked: usize,
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
    gathering: Option<Box<Gathering>>,
    /// Frames encoded and not yet written, from `written` on; unallocated
    /// once flushed.
    out: Vec<u8>,
    written: usize,
    state: State,
    /// The largest message (and frame) accepted, in bytes.
    max_message: usize,
    /// Bytes queued in `out` past which a send first writes them.
    write_buffer: usize,
}

impl<S> Codec<S> {
    /// The server side of a WebSocket whose handshake is done on `io`.
    pub fn server(io: S, max_message: usize, write_buffer: usize) -> Self {
        Self {
            io,
            pending: Vec::new(),
            parsed: 0,
            gathering: None,
            out: Vec::new(),
            written: 0,
            state: State::Open,
            max_message,
            write_buffer,
        }
    }

    /// The socket (after a bad message, to drain it).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Parses frames from `buf` until one completes a message or the bytes
    /// run out: the bytes used, and the message.
    fn frames(&mut self, buf: &[u8]) -> Result<(usize, Option<Message>), Error> {
        let mut at = 0;
        while let Some(header) = frame::parse(&buf[at..])? {
            self.check_size(&header)?;
            let end = at + header.size + header.len as usize;
            if buf.len() < end {
                break;
            }
            let payload = &buf[at + header.size..end];
            at = end;
            if let Some(msg) = self.frame(header, payload)? {
                return Ok((at, Some(msg)));
            }
        }
        Ok((at, None))
    }

    /// Fails a frame (or the message it continues) over the limit as soon
    /// as its header is in, before its payload is read.
    fn check_size(&self, header: &frame::Header) -> Result<(), Error> {
        let so_far =
            self.gathering.as_ref().filter(|_| header.opcode == frame::CONTINUATION).map_or(0, |g| g.data.len());
        if header.len > self.max_message as u64 {
            return Err(Error::TooLarge("frame too big"));
        }
        if so_far + header.len as usize > self.max_message {
            return Err(Error::TooLarge("message too big"));
        }
        Ok(())
    }

    /// One whole frame: the message it completes, if any.
    fn frame(&mut self, header: frame::Header, payload: &[u8]) -> Result<Option<Message>, Error> {
        let frame::Header { fin, opcode, mask, .. } = header;
        match opcode {
            frame::TEXT | frame::BINARY => {
                if self.gathering.is_some() {
                    return Err(Error::Protocol("a new message inside a fragmented one"));
                }
                let text = opcode == frame::TEXT;
                let data = frame::unmasked(payload, mask);
                if fin {
                    return message(text, data).map(Some);
                }
                let mut gathering = Box::new(Gathering { text, data, checked: 0 });
                gathering.check_utf8()?;
                self.gathering = Some(gathering);
                Ok(None)
            }
            frame::CONTINUATION => {
                let Some(gathering) = self.gathering.as_mut() else {
                    return Err(Error::Protocol("continuation frame outside a message"));
                };
                frame::unmask_onto(&mut gathering.data, payload, mask);
                gathering.check_utf8()?;
                if !fin {
                    return Ok(None);
                }
                let Gathering { text, data, .. } = *self.gathering.take().expect("gathering");
                message(text, data).map(Some)
            }
            frame::PING => {
                let data = Bytes::from(frame::unmasked(payload, mask));
                if self.state == State::Open {
                    self.encode(frame::PONG, &data);
                }
                Ok(Some(Message::Ping(data)))
            }
            frame::PONG => Ok(Some(Message::Pong(Bytes::from(frame::unmasked(payload, mask))))),
            _ => self.closed(&frame::unmasked(payload, mask)),
        }
    }

    /// The client's close frame: answered with the same code (1002 for a
    /// code an endpoint may not send), or, if the server closed first,
    /// taken as the reply.
    fn closed(&mut self, payload: &[u8]) -> Result<Option<Message>, Error> {
        let frame = match payload {
            [] => None,
            [_] => return Err(Error::Protocol("close frame of one byte")),
            [hi, lo, reason @ ..] => {
                let reason = std::str::from_utf8(reason).map_err(|_| Error::BadUtf8)?;
                Some(CloseFrame { code: CloseCode::from(u16::from_be_bytes([*hi, *lo])), reason: reason.into() })
            }
        };
        match self.state {
            State::Open => {
                let frame = frame.map(|f| match f.code.is_allowed() {
                    true => f,
                    false => CloseFrame { code: CloseCode::Protocol, reason: "Protocol violation".into() },
                });
                self.encode_close(frame.as_ref());
                self.state = State::CloseReceived;
                Ok(Some(Message::Close(frame)))
            }
            State::CloseSent => {
                self.state = State::Done;
                Ok(Some(Message::Close(frame)))
            }
            State::CloseReceived | State::Done => Ok(None),
        }
    }

    /// Queues a frame for the client.
    fn encode(&mut self, opcode: u8, payload: &[u8]) {
        if self.out.is_empty() {
            self.out.reserve_exact(payload.len() + 10);
        }
        frame::write_header(&mut self.out, opcode, payload.len());
        self.out.extend_from_slice(payload);
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

impl Gathering {
    /// Fails a fragmented text as soon as its bytes so far cannot begin a
    /// UTF-8 string.
    fn check_utf8(&mut self) -> Result<(), Error> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
            Err(_) => return Err(Error::BadUtf8),
        }
        Ok(())
    }
}

/// A whole message.
fn message(text: bool, data: Vec<u8>) -> Result<Message, Error> {
    let data = Bytes::from(data);
    if text {
        Utf8Bytes::try_from(data).map(Message::Text).map_err(|_| Error::BadUtf8)
    } else {
        Ok(Message::Binary(data))
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
        self.out = Vec::new();
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
        if this.out.len() - this.written >= this.write_buffer {
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
            Message::Text(text) => this.encode(frame::TEXT, text.as_bytes()),
            Message::Binary(data) => this.encode(frame::BINARY, &data),
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
