//! Reading: frames parsed from the bytes read into messages, with every
//! check RFC 6455 asks of a server on what the client sends (size limits
//! at the header, fragmentation, control frames, close payloads, UTF-8
//! failing fast inside a fragmented text), compressed messages inflated
//! (RSV1 on a message's first frame, once permessage-deflate was agreed),
//! and the replies the reading itself queues (pong, the close echo).

use super::{Codec, Error, State, frame};
use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A fragmented message being gathered.
#[derive(Debug)]
pub(super) struct Gathering {
    text: bool,
    /// Its bytes are compressed (then UTF-8 is checked once inflated).
    compressed: bool,
    data: Vec<u8>,
    /// Bytes of a text known to be UTF-8 so far (a character may be split
    /// between frames).
    checked: usize,
}

impl<S> Codec<S> {
    /// Parses frames from `buf` until one completes a message or the bytes
    /// run out: the bytes used, and the message.
    pub(super) fn frames(&mut self, buf: &[u8]) -> Result<(usize, Option<Message>), Error> {
        let mut at = 0;
        while let Some(header) = frame::parse(&buf[at..])? {
            self.check_header(&header)?;
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

    /// Fails a frame as soon as its header is in, before its payload is
    /// read: RSV1 anywhere but on the first frame of a message when
    /// compression was agreed, and a frame (or the message it continues)
    /// over the limit (for a compressed one, its compressed size here; its
    /// inflated size is bounded while inflating).
    fn check_header(&self, header: &frame::Header) -> Result<(), Error> {
        if header.rsv1 && (self.deflate.is_none() || !matches!(header.opcode, frame::TEXT | frame::BINARY)) {
            return Err(Error::Protocol("reserved bits set"));
        }
        let so_far =
            self.gathering.as_ref().filter(|_| header.opcode == frame::CONTINUATION).map_or(0, |g| g.data.len());
        if header.len > u64::from(self.max_message) {
            return Err(Error::TooLarge("frame too big"));
        }
        if so_far + header.len as usize > self.max_message as usize {
            return Err(Error::TooLarge("message too big"));
        }
        Ok(())
    }

    /// One whole frame: the message it completes, if any.
    fn frame(&mut self, header: frame::Header, payload: &[u8]) -> Result<Option<Message>, Error> {
        let frame::Header { fin, rsv1: compressed, opcode, mask, .. } = header;
        match opcode {
            frame::TEXT | frame::BINARY => {
                if self.gathering.is_some() {
                    return Err(Error::Protocol("a new message inside a fragmented one"));
                }
                let text = opcode == frame::TEXT;
                let data = frame::unmasked(payload, mask);
                if fin {
                    return self.message(text, compressed, data).map(Some);
                }
                let mut gathering = Box::new(Gathering { text, compressed, data, checked: 0 });
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
                let Gathering { text, compressed, data, .. } = *self.gathering.take().expect("gathering");
                self.message(text, compressed, data).map(Some)
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

    /// A whole message, inflated first if `compressed`.
    fn message(&mut self, text: bool, compressed: bool, data: Vec<u8>) -> Result<Message, Error> {
        let data = match (compressed, self.deflate.as_mut()) {
            (true, Some(deflate)) => deflate.inflate(&data, self.max_message as usize)?,
            _ => Bytes::from(data),
        };
        message(text, data)
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
}

impl Gathering {
    /// Fails a fragmented text as soon as its bytes so far cannot begin a
    /// UTF-8 string.
    fn check_utf8(&mut self) -> Result<(), Error> {
        if !self.text || self.compressed {
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

/// A whole message's bytes as a message.
fn message(text: bool, data: Bytes) -> Result<Message, Error> {
    if text {
        Utf8Bytes::try_from(data).map(Message::Text).map_err(|_| Error::BadUtf8)
    } else {
        Ok(Message::Binary(data))
    }
}
