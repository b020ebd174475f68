//! How a session ends on the server's initiative: a close frame after
//! what is queued (the client's reply is awaited in the session loop), or,
//! after a bad message, the close the RFC names followed by a bounded drain
//! of what the client still sends (RFC 6455 section 7), so the client sees
//! the close instead of a reset. Also the close codes the metrics count.

use super::super::wire::{self, WireError};
use super::{BAD_MESSAGE, Flow, SessionTask};
use crate::session::{CloseCode, close_frame};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// The close code counted for a session that ended without a close frame
/// (RFC 6455 section 7.1.5).
pub(super) const ABNORMAL: u16 = 1006;

/// The close code counted for a client close frame without a status.
pub(super) const NO_STATUS: u16 = 1005;

impl SessionTask {
    /// A read error: answer with the close code the RFC names, then end.
    pub(super) async fn on_error(&mut self, err: WireError, close_timeout: Duration) -> Flow {
        let (code, reason) = match &err {
            WireError::TooLarge(what) => (CloseCode::Size, *what),
            WireError::BadUtf8 => (CloseCode::Invalid, "invalid UTF-8 in text message"),
            WireError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            WireError::Io(_) => {
                tracing::debug!(error = %err, "connection lost");
                return Flow::End;
            }
        };
        if let Some(held_back) = BAD_MESSAGE.allow() {
            let (plugin, session) = (self.endpoint.name(), self.id);
            tracing::info!(%plugin, session, code = u16::from(code), error = %err, held_back, "closing after a bad message");
        }
        self.close_code.get_or_insert(u16::from(code));
        let frame = close_frame(code, reason);
        let _ = tokio::time::timeout(close_timeout, wire::fail(&mut self.ws, frame)).await;
        Flow::End
    }

    /// Sends a close frame; the session then waits for the client's reply.
    pub(super) async fn start_close(&mut self, frame: CloseFrame, close_timeout: Duration) -> Flow {
        self.close_code.get_or_insert(u16::from(frame.code));
        self.closing_deadline = Some(Instant::now() + close_timeout);
        match tokio::time::timeout(close_timeout, self.ws.send(Message::Close(Some(frame)))).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::End,
        }
    }

    /// Pings the client (the timer found it due and the client not yet
    /// silent too long).
    pub(super) async fn ping(&mut self) -> Flow {
        match tokio::time::timeout(self.stall_timeout(), self.ws.send(Message::Ping(Bytes::new()))).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::End,
        }
    }
}
