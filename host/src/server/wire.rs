//! The WebSocket codec under a session ([`crate::codec`], with
//! permessage-deflate when the handshake agreed it), what the server
//! answers to a client's deflate offers, and how a session fails the
//! connection after a bad message.

use super::io::{ReadHint, Socket};
use crate::codec::{self, Codec, Deflate};
use futures_util::SinkExt;
use sockudo_ws::deflate::DeflateConfig;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// The socket under a session.
pub(super) type Io = ReadHint<Socket>;

/// A session's framed socket.
pub(super) type Wire = Codec<Io>;

/// Why a session's socket failed, by the close code it calls for.
pub(super) type WireError = codec::Error;

/// The session's codec over `io`, compressing as `deflate` agreed.
pub(super) fn open(io: Io, max_message: usize, write_buffer: usize, deflate: Option<DeflateConfig>) -> Wire {
    let wire = Codec::server(io, max_message, write_buffer);
    match deflate {
        Some(agreed) => wire.deflate(Deflate::new(&agreed)),
        None => wire,
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

/// After a bad message: sends `frame`, then reads and discards what the
/// client still sends until it stops (RFC 6455 section 7), and returns so
/// the caller closes the connection. Closing a socket with unread data
/// resets it, and a client still writing then fails its write and may
/// never read the close frame. The caller bounds the time.
pub(super) async fn fail(ws: &mut Wire, frame: CloseFrame) -> Result<(), WireError> {
    ws.send(Message::Close(Some(frame))).await?;
    drain(ws.get_mut()).await;
    Ok(())
}

/// Reads and discards from `io` until the client closes its side, stays
/// silent for [`DRAIN_QUIET`], or [`DRAIN_MAX`] bytes have come.
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

/// The answer to a client's `Sec-WebSocket-Extensions` offers under the
/// route's settings: the response header and what the codec is to do, or
/// `None` to decline (no acceptable offer; the handshake goes on without
/// compression). Offers are tried in the client's order; one the server
/// cannot honour (a window under 9 bits, an unknown parameter) is skipped
/// (sockudo-ws's negotiation, which its own Autobahn run checks). Without
/// context takeover the server also asks the client for
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
