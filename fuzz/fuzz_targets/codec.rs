//! Any bytes from a client into the codec itself (no server around it, so
//! millions of inputs a minute): RFC 6455 framing, and with the first
//! byte's low bits permessage-deflate agreed (shared contexts, or context
//! takeover), so compressed frames are inflated under a 64 KiB limit. Every
//! message read is written back, compressed when agreed. A panic, an abort
//! or a message over the limit is a finding.
#![no_main]

use futures_util::{SinkExt, StreamExt};
use sockudo_ws::deflate::DeflateConfig;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use wasock::codec::{Codec, Deflate};

const LIMIT: usize = 64 << 10;

async fn one_input(data: &[u8]) {
    let (mode, bytes) = data.split_first().unwrap_or((&0, &[]));
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let mut codec = Codec::server(server, LIMIT, 8 << 10);
    if mode & 1 == 1 {
        let takeover = mode & 2 == 2;
        codec = codec.deflate(Deflate::new(&DeflateConfig {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            compression_level: 1,
            compression_threshold: 16,
            ..DeflateConfig::default()
        }));
    }
    // The client's bytes, in pieces cut by the mode's high bits.
    let piece = usize::from(mode >> 2).max(1) * 16;
    for chunk in bytes.chunks(piece) {
        let _ = client.write_all(chunk).await;
    }
    drop(client.shutdown().await);
    while let Some(next) = codec.next().await {
        let Ok(msg) = next else { return };
        let size = match &msg {
            Message::Text(text) => text.len(),
            Message::Binary(data) => data.len(),
            _ => 0,
        };
        assert!(size <= LIMIT, "a message of {size} bytes passed the {LIMIT}-byte limit");
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && codec.send(msg).await.is_err() {
            return;
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(one_input(data));
});
