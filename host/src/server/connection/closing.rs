//! How a session ends on the server's initiative: a close frame after
//! what is queued (the client's reply is awaited in the session loop), or,
//! after a bad message, the close the RFC names followed by a bounded drain
//! of what the client still sends (RFC 6455 section 7), so the client sees
//! the close instead of a reset. Also the close codes the metrics count.

use super::super::io::ReadHint;
use super::{BAD_MESSAGE, Flow, SessionTask};
use crate::session::{CloseCode, close_frame};
use futures_util::SinkExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// The close code counted for a session that ended without a close frame
/// (RFC 6455 section 7.1.5).
pub(super) const ABNORMAL: u16 = 1006;

/// The close code counted for a client close frame without a status.
pub(super) const NO_STATUS: u16 = 1005;

/// Most bytes read and discarded after closing on a bad message.
const DRAIN_MAX: usize = 64 << 20;

/// Reads and discards from `io` until the client closes its side, or
/// [`DRAIN_MAX`] bytes (the caller bounds the time).
async fn drain(io: &mut ReadHint<TokioIo<Upgraded>>) {
    use tokio::io::AsyncReadExt;
    let mut scratch = vec![0; 16 << 10];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        match io.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

impl SessionTask {
    /// A read error: answer with the close code the RFC names, then end.
    pub(super) async fn on_error(&mut self, err: WsError, close_timeout: Duration) -> Flow {
        let (code, reason) = match &err {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => (CloseCode::Size, "message too big"),
            WsError::Capacity(_) => (CloseCode::Size, "frame too big"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in text message"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                tracing::debug!("client went away without a close frame");
                return Flow::End;
            }
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            _ => {
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
        let closing = async {
            self.ws.send(Message::Close(Some(frame))).await?;
            // RFC 6455 section 7: after the close, read (and discard) what
            // the client is still sending until it stops. Closing a socket
            // with unread data resets it, and a client still writing then
            // fails its write and may never read the close frame.
            drain(self.ws.get_mut()).await;
            Ok::<_, WsError>(())
        };
        let _ = tokio::time::timeout(close_timeout, closing).await;
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
}
