//! permessage-deflate (RFC 7692) in the codec: what a session agreed in
//! its handshake, and where its compressor and decompressor live.
//!
//! Without context takeover (wasock's default, which the server asks of
//! both sides) every message is compressed and inflated afresh, so one
//! compressor per settings and one decompressor per thread serve every
//! session polled there, as uWebSockets' shared compressor does: an idle
//! compressed session holds no deflate state at all (a zlib compressor is
//! about 260 KiB once used, a decompressor about 40 KiB; sockudo-ws's
//! stream kept both per connection, ~350 KiB, `BENCHMARKS.md`). With
//! context takeover a side keeps its own, made at its first message.
//!
//! Compressing and inflating are sockudo-ws's `DeflateEncoder` and
//! `DeflateDecoder` (zlib-rs underneath): they strip and restore the
//! trailing `00 00 ff ff`, end each message at a full flush when there is
//! no context takeover (so the next message never refers back to it, which
//! is what makes sharing one compressor sound), and stop inflating at the
//! message limit (a zip bomb costs the limit, not its inflated size).

use super::Error;
use bytes::Bytes;
use sockudo_ws::deflate::{DeflateConfig, DeflateDecoder, DeflateEncoder, DeflateWindowBits};
use std::cell::RefCell;

thread_local! {
    /// Shared compressors of this thread, one per settings in use (at most
    /// a few: the routes' `[deflate]` tables and the windows clients ask).
    static ENCODERS: RefCell<Vec<(Settings, DeflateEncoder)>> = const { RefCell::new(Vec::new()) };
    /// The shared decompressor of this thread (a 32 KiB window inflates
    /// whatever window the client compressed with).
    static DECODER: RefCell<Option<DeflateDecoder>> = const { RefCell::new(None) };
    /// The last message a shared compressor compressed on this thread, and
    /// what it gave: a broadcast or topic publish hands the same `Bytes` to
    /// every subscriber, whose sessions write it one after the other, so it
    /// is compressed once for all of them instead of once per subscriber.
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

/// Messages longer than this are not kept in [`LAST`] (it holds the
/// message until the next one).
const LAST_MAX: usize = 64 << 10;

/// A message compressed, kept for the next session writing the same one.
struct Last {
    /// Held, so that its address cannot be reused by another message
    /// while it is compared against.
    message: Bytes,
    settings: Settings,
    packed: Option<Bytes>,
}

/// What the server compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    window_bits: DeflateWindowBits,
    level: u32,
    threshold: usize,
}

impl Settings {
    fn encoder(&self, no_context_takeover: bool) -> DeflateEncoder {
        DeflateEncoder::new(self.window_bits, no_context_takeover, self.level, self.threshold)
    }
}

/// A compressed session's deflate state.
pub struct Deflate {
    settings: Settings,
    /// The server's own compressor under context takeover (`None` before
    /// its first message, and always without takeover: then the thread's
    /// shared one compresses).
    encoder: Own<DeflateEncoder>,
    /// The same for inflating what the client sends.
    decoder: Own<DeflateDecoder>,
    client_window_bits: DeflateWindowBits,
}

/// A context kept by the session, or the thread's shared one.
enum Own<T> {
    Shared,
    Kept(Option<Box<T>>),
}

impl<T> Own<T> {
    fn new(no_context_takeover: bool) -> Self {
        if no_context_takeover { Own::Shared } else { Own::Kept(None) }
    }
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("settings", &self.settings)
            .field("server_takeover", &matches!(self.encoder, Own::Kept(_)))
            .field("client_takeover", &matches!(self.decoder, Own::Kept(_)))
            .finish()
    }
}

impl Deflate {
    /// The state for what the handshake agreed.
    pub fn new(agreed: &DeflateConfig) -> Self {
        Self {
            settings: Settings {
                window_bits: agreed.server_max_window_bits,
                level: agreed.compression_level,
                threshold: agreed.compression_threshold,
            },
            encoder: Own::new(agreed.server_no_context_takeover),
            decoder: Own::new(agreed.client_no_context_takeover),
            client_window_bits: agreed.client_max_window_bits,
        }
    }

    /// `data` compressed, or `None` to send it as it is: under the
    /// threshold, not made smaller (without takeover), or if the
    /// compressor failed (never seen; the message still goes).
    pub(super) fn compress(&mut self, data: &Bytes) -> Option<Bytes> {
        let settings = self.settings;
        if data.len() < settings.threshold {
            return None;
        }
        match &mut self.encoder {
            Own::Kept(kept) => kept.get_or_insert_with(|| Box::new(settings.encoder(false))).compress(data).ok()?,
            Own::Shared if data.len() > LAST_MAX => shared(settings, data),
            Own::Shared => LAST.with(|cell| {
                let Ok(mut last) = cell.try_borrow_mut() else { return shared(settings, data) };
                if let Some(last) = last.as_ref().filter(|last| {
                    last.settings == settings
                        && last.message.as_ptr() == data.as_ptr()
                        && last.message.len() == data.len()
                }) {
                    return last.packed.clone();
                }
                let packed = shared(settings, data);
                *last = Some(Last { message: data.clone(), settings, packed: packed.clone() });
                packed
            }),
        }
    }

    /// A compressed message's payload inflated, failing with
    /// [`Error::TooLarge`] as soon as it passes `max` bytes.
    pub(super) fn inflate(&mut self, data: &[u8], max: usize) -> Result<Bytes, Error> {
        let inflated = match &mut self.decoder {
            Own::Kept(kept) => {
                let bits = self.client_window_bits;
                kept.get_or_insert_with(|| Box::new(DeflateDecoder::new(bits, false))).decompress(data, max)
            }
            Own::Shared => DECODER.with(|cell| match cell.try_borrow_mut() {
                Ok(mut decoder) => decoder
                    .get_or_insert_with(|| DeflateDecoder::new(DeflateWindowBits::Bits15, true))
                    .decompress(data, max),
                Err(_) => DeflateDecoder::new(DeflateWindowBits::Bits15, true).decompress(data, max),
            }),
        };
        inflated.map_err(|err| match err {
            sockudo_ws::Error::MessageTooLarge => Error::TooLarge("message too big"),
            _ => Error::Protocol("bad compressed data"),
        })
    }
}

#[cfg(test)]
thread_local! {
    /// Messages the shared compressors of this thread compressed.
    static SHARED_RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `data` compressed by this thread's shared compressor for `settings`.
fn shared(settings: Settings, data: &[u8]) -> Option<Bytes> {
    #[cfg(test)]
    SHARED_RUNS.set(SHARED_RUNS.get() + 1);
    ENCODERS.with(|cell| {
        let Ok(mut encoders) = cell.try_borrow_mut() else {
            // Not reached (compressing polls nothing), but no panic.
            return settings.encoder(true).compress(data).ok()?;
        };
        let at = match encoders.iter().position(|(s, _)| *s == settings) {
            Some(at) => at,
            None => {
                encoders.push((settings, settings.encoder(true)));
                encoders.len() - 1
            }
        };
        encoders[at].1.compress(data).ok()?
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{frame, pair, server_frame_bits};
    use super::super::{Codec, Error, frame as op};
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::Message;

    /// What a client offering plain `permessage-deflate` agrees with the
    /// default settings, or with context takeover on both sides.
    fn agreed(takeover: bool) -> Deflate {
        Deflate::new(&DeflateConfig {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            compression_level: 3,
            compression_threshold: 64,
            ..DeflateConfig::default()
        })
    }

    fn compressed_pair(takeover: bool) -> (Codec<DuplexStream>, DuplexStream) {
        let (codec, client) = pair(1 << 20);
        (codec.deflate(agreed(takeover)), client)
    }

    /// A client's compressor: `data` as a message payload (sync flush,
    /// trailer stripped), keeping the context between calls.
    fn pack(c: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, flate2::FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "room enough for one call");
        out.truncate(out.len() - 4);
        out
    }

    /// A client's decompressor: a payload inflated (trailer put back).
    fn unpack(d: &mut flate2::Decompress, payload: &[u8]) -> Vec<u8> {
        let input = [payload, &[0, 0, 0xff, 0xff]].concat();
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync).unwrap();
        out
    }

    /// RSV1 set on a message's first frame.
    fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = frame(fin, opcode, payload);
        bytes[0] |= op::RSV1;
        bytes
    }

    fn chat(n: usize) -> String {
        (0..n).map(|i| format!(r#"{{"user":"u{}","text":"hello number {i}"}}"#, i % 7)).collect()
    }

    #[tokio::test]
    async fn sessions_on_one_thread_share_contexts_and_every_message_stands_alone() {
        let (mut a, mut client_a) = compressed_pair(false);
        let (mut b, mut client_b) = compressed_pair(false);
        let (one, two) = (chat(40), chat(60));
        // A fresh client compressor for each message: no context takeover.
        let new = || flate2::Compress::new(flate2::Compression::new(6), false);
        let packed = pack(&mut new(), one.as_bytes());
        let (head, tail) = packed.split_at(packed.len() / 2);
        // A fragmented compressed message (RSV1 on its first frame only),
        // and a whole one on the other session between its fragments.
        client_a.write_all(&compressed_frame(false, op::TEXT, head)).await.unwrap();
        client_b.write_all(&compressed_frame(true, op::BINARY, &pack(&mut new(), two.as_bytes()))).await.unwrap();
        client_a.write_all(&frame(true, op::CONTINUATION, tail)).await.unwrap();
        assert_eq!(b.next().await.unwrap().unwrap(), Message::binary(two.clone()));
        assert_eq!(a.next().await.unwrap().unwrap(), Message::text(one.clone()));
        // Replies, alternating between the sessions: each frame inflates
        // on its own, with a fresh decompressor.
        for round in 0..3 {
            for (codec, client, text) in [(&mut a, &mut client_a, &one), (&mut b, &mut client_b, &two)] {
                codec.send(Message::text(text.as_str())).await.unwrap();
                let (bits, payload) = server_frame_bits(client).await;
                assert_eq!(bits, 0x80 | op::RSV1 | op::TEXT, "round {round}");
                assert!(payload.len() < text.len() / 3, "{} for {}", payload.len(), text.len());
                assert_eq!(unpack(&mut flate2::Decompress::new(false), &payload), text.as_bytes());
            }
        }
        for codec in [&a, &b] {
            let deflate = codec.deflate.as_ref().unwrap();
            assert!(matches!((&deflate.encoder, &deflate.decoder), (Own::Shared, Own::Shared)), "no state per session");
        }
        // Short messages go as they are.
        a.send(Message::text("hi")).await.unwrap();
        assert_eq!(server_frame_bits(&mut client_a).await, (0x80 | op::TEXT, b"hi".to_vec()));
    }

    #[tokio::test]
    async fn a_message_written_to_many_sessions_is_compressed_once() {
        let mut sessions: Vec<_> = (0..5).map(|_| compressed_pair(false)).collect();
        let (mut tight, mut tight_client) = pair(1 << 20);
        tight = tight.deflate(Deflate::new(&DeflateConfig {
            server_max_window_bits: DeflateWindowBits::Bits10,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        }));
        let news = Message::text(chat(50));
        let before = SHARED_RUNS.get();
        for (codec, _) in &mut sessions {
            codec.send(news.clone()).await.unwrap();
        }
        assert_eq!(SHARED_RUNS.get() - before, 1, "one compression for five sessions");
        // Another window is other settings: compressed for them.
        tight.send(news.clone()).await.unwrap();
        assert_eq!(SHARED_RUNS.get() - before, 2);
        // Equal text in another allocation is compressed again, and all of
        // it inflates to the message.
        let copy = Message::text(chat(50));
        sessions[0].0.send(copy).await.unwrap();
        assert_eq!(SHARED_RUNS.get() - before, 3);
        let Message::Text(text) = news else { unreachable!() };
        let mut clients: Vec<_> = sessions.iter_mut().map(|(_, client)| client).collect();
        clients.push(&mut tight_client);
        for client in clients {
            let (_, payload) = server_frame_bits(client).await;
            assert_eq!(unpack(&mut flate2::Decompress::new(false), &payload), text.as_bytes());
        }
        let (_, payload) = server_frame_bits(&mut sessions[0].1).await;
        assert_eq!(unpack(&mut flate2::Decompress::new(false), &payload), text.as_bytes());
    }

    #[tokio::test]
    async fn with_context_takeover_each_side_keeps_its_own_contexts() {
        let (mut codec, mut client) = compressed_pair(true);
        let mut compressor = flate2::Compress::new(flate2::Compression::new(6), false);
        let mut decompressor = flate2::Decompress::new(false);
        let text = chat(30);
        for round in 0..3 {
            // The client's later messages refer back to its earlier ones.
            let packed = pack(&mut compressor, text.as_bytes());
            client.write_all(&compressed_frame(true, op::TEXT, &packed)).await.unwrap();
            assert_eq!(codec.next().await.unwrap().unwrap(), Message::text(text.as_str()), "round {round}");
            codec.send(Message::text(text.as_str())).await.unwrap();
            let (_, payload) = server_frame_bits(&mut client).await;
            assert_eq!(unpack(&mut decompressor, &payload), text.as_bytes(), "round {round}");
            if round > 0 {
                assert!(payload.len() < text.len() / 20, "the repeat refers back: {} bytes", payload.len());
            }
        }
    }

    #[tokio::test]
    async fn rsv1_is_allowed_only_on_a_compressed_messages_first_frame() {
        let text = pack(&mut flate2::Compress::new(flate2::Compression::new(6), false), b"hello");
        let cases = [
            (false, compressed_frame(true, op::TEXT, &text)),
            (true, compressed_frame(true, op::PING, b"p")),
            (true, [frame(false, op::TEXT, b"a"), compressed_frame(true, op::CONTINUATION, b"b")].concat()),
        ];
        for (negotiated, bytes) in cases {
            let (codec, mut client) = pair(1 << 20);
            let mut codec = if negotiated { codec.deflate(agreed(false)) } else { codec };
            client.write_all(&bytes).await.unwrap();
            match codec.next().await.unwrap() {
                Err(Error::Protocol(what)) => assert_eq!(what, "reserved bits set"),
                other => panic!("negotiated {negotiated}, {bytes:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn inflating_stops_at_the_limit_and_bad_data_is_named() {
        let (codec, mut client) = pair(4096);
        let mut codec = codec.deflate(agreed(false));
        let bomb = pack(&mut flate2::Compress::new(flate2::Compression::new(9), false), &[0; 1 << 20]);
        assert!(bomb.len() < 4096, "small on the wire: {}", bomb.len());
        client.write_all(&compressed_frame(true, op::BINARY, &bomb)).await.unwrap();
        assert!(matches!(codec.next().await.unwrap(), Err(Error::TooLarge("message too big"))));

        let (mut codec, mut client) = compressed_pair(false);
        client.write_all(&compressed_frame(true, op::BINARY, &[0xFF; 40])).await.unwrap();
        assert!(matches!(codec.next().await.unwrap(), Err(Error::Protocol("bad compressed data"))));
    }
}
