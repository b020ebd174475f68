//! RFC 6455 frames at the byte level (section 5.2): parsing a client's
//! header, writing the server's, and unmasking a payload in wide words.
//!
//! Every rule about a single header is checked here, as soon as its bytes
//! are in: reserved bits (RSV1 is reported, for the reader to allow it on
//! a compressed message's first frame), opcodes, the client's mask,
//! control frames' length and FIN bit, and the 64-bit length's top bit.

use super::Error;

/// A continuation frame.
pub(super) const CONTINUATION: u8 = 0x0;
/// A text frame.
pub(super) const TEXT: u8 = 0x1;
/// A binary frame.
pub(super) const BINARY: u8 = 0x2;
/// A close frame.
pub(super) const CLOSE: u8 = 0x8;
/// A ping frame.
pub(super) const PING: u8 = 0x9;
/// A pong frame.
pub(super) const PONG: u8 = 0xA;

/// RSV1 in a frame's first byte: the message is compressed (RFC 7692).
pub(super) const RSV1: u8 = 0x40;

/// The longest header of a server frame (no mask).
pub(super) const MAX_HEADER: usize = 10;

/// The longest payload a control frame may carry.
pub(super) const MAX_CONTROL: u64 = 125;

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// The frame ends its message.
    pub(super) fin: bool,
    /// RSV1: a compressed message, if permessage-deflate was agreed.
    pub(super) rsv1: bool,
    pub(super) opcode: u8,
    pub(super) mask: [u8; 4],
    /// Payload bytes.
    pub(super) len: u64,
    /// Header bytes (2 to 14).
    pub(super) size: usize,
}

/// Parses the header at the start of `buf`: `None` while it has not fully
/// arrived, an error as soon as the bytes in break a rule.
pub(super) fn parse(buf: &[u8]) -> Result<Option<Header>, Error> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x30 != 0 {
        return Err(Error::Protocol("reserved bits set"));
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(Error::Protocol("unknown opcode"));
    }
    if b1 & 0x80 == 0 {
        return Err(Error::Protocol("unmasked client frame"));
    }
    let control = opcode >= CLOSE;
    if control && !fin {
        return Err(Error::Protocol("fragmented control frame"));
    }
    if control && u64::from(b1 & 0x7F) > MAX_CONTROL {
        return Err(Error::Protocol("control frame over 125 bytes"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if len >> 63 != 0 {
        return Err(Error::Protocol("frame length with its top bit set"));
    }
    let Some(mask) = buf.get(at..at + 4) else { return Ok(None) };
    let rsv1 = b0 & RSV1 != 0;
    Ok(Some(Header { fin, rsv1, opcode, mask: mask.try_into().expect("4 bytes"), len, size: at + 4 }))
}

/// Appends a server frame's header (final, unmasked) to `out`; `opcode`
/// may carry [`RSV1`].
pub(super) fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends `masked` to `dst`, unmasked.
pub(super) fn unmask_onto(dst: &mut Vec<u8>, masked: &[u8], mask: [u8; 4]) {
    let start = dst.len();
    dst.extend_from_slice(masked);
    unmask(&mut dst[start..], mask);
}

/// `masked` unmasked, in a vector of exactly its length (so it becomes
/// `Bytes` without another allocation).
pub(super) fn unmasked(masked: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(masked.len());
    unmask_onto(&mut out, masked, mask);
    out
}

/// XORs `data` (a payload from its first byte) with `mask`, eight bytes at
/// a time; the compiler widens the loop further.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let wide = u64::from(word) | (u64::from(word) << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let value = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::frame as client_frame;

    #[test]
    fn headers_of_each_length_form_parse_and_wait_for_their_bytes() {
        for len in [0, 5, 125, 126, 300, 65_535, 65_536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let frame = client_frame(true, BINARY, &payload);
            let header = parse(&frame).unwrap().unwrap();
            assert_eq!((header.fin, header.rsv1, header.opcode, header.len), (true, false, BINARY, len as u64));
            assert_eq!(header.size + len, frame.len());
            for cut in 0..header.size {
                assert_eq!(parse(&frame[..cut]).unwrap(), None, "len {len}, {cut} bytes in");
            }
            assert_eq!(unmasked(&frame[header.size..], header.mask), payload, "len {len}");
        }
    }

    #[test]
    fn rule_breaking_headers_fail_as_soon_as_their_bytes_are_in() {
        let cases: [(&[u8], &str); 7] = [
            (&[0xA1, 0x80], "reserved bits set"),
            (&[0x91, 0x80], "reserved bits set"),
            (&[0x83, 0x80], "unknown opcode"),
            (&[0x81, 0x05], "unmasked client frame"),
            (&[0x09, 0x80], "fragmented control frame"),
            (&[0x89, 0xFE], "control frame over 125 bytes"),
            (&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], "frame length with its top bit set"),
        ];
        for (bytes, want) in cases {
            match parse(bytes) {
                Err(Error::Protocol(what)) => assert_eq!(what, want),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        for (len, size) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            write_header(&mut out, TEXT, len);
            assert_eq!(out.len(), size, "len {len}");
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1] & 0x80, 0, "servers do not mask");
        }
    }

    #[test]
    fn unmasking_matches_the_byte_at_a_time_definition_at_every_length() {
        let mask = [0xA5, 0x17, 0xFF, 0x00];
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let want: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            assert_eq!(unmasked(&data, mask), want, "len {len}");
        }
    }
}
