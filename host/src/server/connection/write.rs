//! Writing: what the plugin queued for a session goes to the socket in
//! batches (one flush each), under the stall timeout.

use super::{Flow, SessionTask};
use crate::log_limit::LogLimit;
use crate::session::{SessionRx, plugin_close_frame};
use futures_util::Sink;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Most queued messages written before one flush.
const MAX_BATCH: usize = 256;

/// Clients dropped for not reading are logged at most once a second.
static STALLED_CLIENT: LogLimit = LogLimit::new(Duration::from_secs(1));

impl SessionTask {
    /// Writes `first` and whatever else is queued, then flushes once. A
    /// client that takes longer than the stall timeout to accept the batch
    /// has stopped reading and is dropped.
    pub(super) async fn write_batch(&mut self, first: Message, rx: &mut SessionRx, close_timeout: Duration) -> Flow {
        if self.closing_deadline.is_some() {
            return Flow::Continue;
        }
        let (mut close, mut written, mut bytes) = (None, 0, 0);
        let mut next = Some(first);
        let ws = &mut self.ws;
        // The sink polled by hand rather than through `feed` futures: the
        // future a session is (its idle memory) holds only this closure.
        let batch = std::future::poll_fn(|cx| {
            while let Some(msg) = next.take() {
                if let Message::Close(frame) = msg {
                    close = Some(frame.unwrap_or_else(|| plugin_close_frame(None, "")));
                    break;
                }
                match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {
                        next = Some(msg);
                        return Poll::Pending;
                    }
                }
                bytes += msg.len();
                Pin::new(&mut *ws).start_send(msg)?;
                written += 1;
                if written < MAX_BATCH {
                    next = rx.try_recv();
                }
            }
            Pin::new(&mut *ws).poll_flush(cx)
        });
        // Polled once before the stall timer exists: a batch the socket
        // takes at once (the common case) reads no clock and makes no timer
        // (about -40 instructions per echoed message, `bench/instructions.sh`,
        // near its noise); the timed wait is boxed, so the session's future
        // does not grow (1 216 -> 1 208 bytes; unboxed it grew by 40).
        let mut batch = std::pin::pin!(batch);
        let outcome = match std::future::poll_fn(|cx| Poll::Ready(batch.as_mut().poll(cx))).await {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => Box::pin(tokio::time::timeout(self.stall_timeout, batch)).await,
        };
        let metrics = self.endpoint.metrics();
        metrics.sent.inc_by(written as u64);
        metrics.sent_bytes.inc_by(bytes as u64);
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "write failed");
                return Flow::End;
            }
            Err(_) => {
                if let Some(held_back) = STALLED_CLIENT.allow() {
                    let (plugin, session, stall_timeout) = (self.endpoint.name(), self.id, self.stall_timeout);
                    tracing::info!(
                        %plugin, session, ?stall_timeout, held_back,
                        "client stopped reading (limits.stall-timeout-ms); dropping it"
                    );
                }
                return Flow::End;
            }
        }
        match close {
            Some(frame) => Box::pin(self.start_close(frame, close_timeout)).await,
            None if rx.take_drained() => self.drained().await,
            None => Flow::Continue,
        }
    }
}
