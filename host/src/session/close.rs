//! Close frames and the close codes the host sends (RFC 6455 section 7.4).
//!
//! The host names its codes through tungstenite's [`CloseCode`]; a code a
//! plugin asks for is checked against what the wire allows first.

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
pub use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Longest close reason the wire allows (a control frame's payload is at
/// most 125 bytes, two of them the code).
const MAX_REASON: usize = 123;

/// A close frame the host sends, with `reason` cut to fit.
pub fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame { code, reason: fit(reason).into() }
}

/// A close frame for a code a plugin asked for: `code` if an endpoint may
/// send it (1000-1003, 1007-1014, 3000-4999), else 1000.
pub fn plugin_close_frame(code: Option<u16>, reason: &str) -> CloseFrame {
    let code = code.filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)).unwrap_or(1000);
    close_frame(CloseCode::from(code), reason)
}

/// `reason` cut at a character boundary to at most [`MAX_REASON`] bytes.
fn fit(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_codes_are_sanitized_and_reasons_cut() {
        assert_eq!(u16::from(plugin_close_frame(Some(1005), "").code), 1000);
        assert_eq!(u16::from(plugin_close_frame(Some(4001), "").code), 4001);
        assert_eq!(u16::from(plugin_close_frame(None, "").code), 1000);
        let long = "é".repeat(100);
        assert_eq!(plugin_close_frame(None, &long).reason.len(), 122);
        assert_eq!(u16::from(close_frame(CloseCode::Size, "x").code), 1009);
    }
}
