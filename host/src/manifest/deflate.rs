//! The `[deflate]` table of `plugin.toml`: permessage-deflate (RFC 7692)
//! for the plugin's route. Off unless the table is there (as in Bun, uWS
//! and `ws`); negotiated only with clients that offer it.
//!
//! ```toml
//! [deflate]
//! threshold-bytes = 128   # shorter messages go uncompressed
//! level = 3               # 1 (fastest) to 9 (smallest)
//! window-bits = 12        # the server's LZ77 window: 2^12 = 4 KiB
//! context-takeover = false
//! max-sessions = 1000     # compressed sessions at once; the rest go plain
//! ```
//!
//! Memory is what compression costs most in a WebSocket server. Without
//! `context-takeover` (the default) both sides start every message afresh
//! (the server answers `server_no_context_takeover;
//! client_no_context_takeover`), so one compressor and one decompressor
//! per thread serve every session (`codec::deflate`) and an idle
//! compressed session holds none: compressed sessions are then unbounded
//! unless `max-sessions` says otherwise. With `context-takeover` each
//! session keeps its own, about 300 KiB once used, and `max-sessions`
//! defaults to 1 000: past it, connections are made without compression
//! (declined, never refused).

use serde::Deserialize;

/// The table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default, expecting = "a [deflate] table")]
pub(super) struct DeflateV1 {
    /// Messages shorter than this are sent uncompressed (deflate's framing
    /// makes short messages longer, and costs CPU for nothing).
    threshold_bytes: usize,
    /// zlib's compression level, 1-9.
    level: u32,
    /// The server's window (9-15): what the server compresses with, and
    /// the most it asks of a client offering `server_max_window_bits`.
    window_bits: u8,
    /// Keep the compression contexts between messages (better ratio on
    /// chatty connections, a compressor and decompressor held per
    /// connection for its whole life).
    context_takeover: bool,
    /// Compressed sessions at once on this route; connections past it are
    /// made uncompressed. Bounds the contexts' memory under context
    /// takeover (~300 KiB each), where it defaults to 1 000; unbounded by
    /// default without (no context is held per session).
    max_sessions: Option<usize>,
}

impl Default for DeflateV1 {
    fn default() -> Self {
        Self { threshold_bytes: 128, level: 3, window_bits: 15, context_takeover: false, max_sessions: None }
    }
}

/// Resolved permessage-deflate settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deflate {
    /// Messages shorter than this go uncompressed.
    pub threshold_bytes: usize,
    /// Compression level, 1-9.
    pub level: u32,
    /// The server's LZ77 window bits, 9-15.
    pub window_bits: u8,
    /// Whether contexts are kept between messages.
    pub context_takeover: bool,
    /// Compressed sessions at once; the rest go uncompressed
    /// (`usize::MAX`: no bound).
    pub max_sessions: usize,
}

impl DeflateV1 {
    /// Checks the ranges.
    pub(super) fn resolve(self) -> Result<Deflate, (&'static str, String)> {
        if !(1..=9).contains(&self.level) {
            return Err(("deflate.level", "must be between 1 and 9".to_owned()));
        }
        if !(9..=15).contains(&self.window_bits) {
            return Err(("deflate.window-bits", "must be between 9 and 15".to_owned()));
        }
        if self.max_sessions == Some(0) {
            return Err(("deflate.max-sessions", "must be at least 1 (remove [deflate] to turn it off)".to_owned()));
        }
        let Self { threshold_bytes, level, window_bits, context_takeover, max_sessions } = self;
        let max_sessions = max_sessions.unwrap_or(if context_takeover { 1000 } else { usize::MAX });
        Ok(Deflate { threshold_bytes, level, window_bits, context_takeover, max_sessions })
    }
}
