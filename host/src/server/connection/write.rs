//! Writing: what the plugin queued for a session goes to the socket in
//! batches (one flush each), under the stall timeout.
//!
//! A batch is first written inside the session loop's poll (see
//! [`super::turn`]); only one the socket does not take at once is boxed
//! and waited for, with the stall timer.

use super::super::wire::{Wire, WireError};
use super::{Flow, SessionTask, Step};
use crate::endpoint::Event;
use crate::log_limit::LogLimit;
use crate::session::{SessionRx, plugin_close_frame};
use futures_util::Sink;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::error::Elapsed;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Most queued messages written before one flush.
const MAX_BATCH: usize = 256;

/// Clients dropped for not reading are logged at most once a second.
static STALLED_CLIENT: LogLimit = LogLimit::new(Duration::from_secs(1));

/// A batch being written: the message in hand, the plugin's close that
/// ended it, and what was written.
pub(super) struct Batch {
    next: Option<Message>,
    close: Option<CloseFrame>,
    written: usize,
    bytes: usize,
}

impl Batch {
    pub(super) fn new(first: Message) -> Self {
        Self::resume(Some(first))
    }

    /// A batch of what the codec holds already, then `next` and the rest
    /// of the queue.
    pub(super) fn resume(next: Option<Message>) -> Self {
        Self { next, close: None, written: 0, bytes: 0 }
    }

    /// Writes the message in hand and whatever else is queued (up to
    /// [`MAX_BATCH`], or up to a close), then flushes.
    pub(super) fn poll(
        &mut self,
        ws: &mut Wire,
        rx: &mut SessionRx,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WireError>> {
        while let Some(msg) = self.next.take() {
            if let Message::Close(frame) = msg {
                self.close = Some(frame.unwrap_or_else(|| plugin_close_frame(None, "")));
                break;
            }
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {
                    self.next = Some(msg);
                    return Poll::Pending;
                }
            }
            self.bytes += msg.len();
            Pin::new(&mut *ws).start_send(msg)?;
            self.written += 1;
            if self.written < MAX_BATCH {
                self.next = rx.try_recv();
            }
        }
        Pin::new(&mut *ws).poll_flush(cx)
    }
}

impl SessionTask {
    /// A batch the socket did not take at once: waits for it under the
    /// stall timeout. A client that takes longer than that has stopped
    /// reading and is dropped.
    pub(super) async fn write_stalled(
        &mut self,
        mut batch: Box<Batch>,
        rx: &mut SessionRx,
        close_timeout: Duration,
    ) -> Flow {
        let stall_timeout = self.stall_timeout();
        let ws = &mut self.ws;
        let waited = std::future::poll_fn(|cx| batch.poll(ws, rx, cx));
        let outcome = tokio::time::timeout(stall_timeout, waited).await;
        match self.batch_done(*batch, outcome, rx) {
            Step::Continue => Flow::Continue,
            Step::Close(frame) => self.start_close(*frame, close_timeout).await,
            Step::Send(event) => self.send_waiting(*event).await,
            _ => Flow::End,
        }
    }

    /// Counts a finished batch; what follows it: the plugin's close, an
    /// `on-drain` owed, or nothing.
    pub(super) fn batch_done(
        &mut self,
        batch: Batch,
        outcome: Result<Result<(), WireError>, Elapsed>,
        rx: &mut SessionRx,
    ) -> Step {
        let metrics = self.endpoint.metrics();
        metrics.sent.inc_by(batch.written as u64);
        metrics.sent_bytes.inc_by(batch.bytes as u64);
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "write failed");
                return Step::End;
            }
            Err(_) => {
                if let Some(held_back) = STALLED_CLIENT.allow() {
                    let (plugin, session, stall_timeout) = (self.endpoint.name(), self.id, self.stall_timeout());
                    tracing::info!(
                        %plugin, session, ?stall_timeout, held_back,
                        "client stopped reading (limits.stall-timeout-ms); dropping it"
                    );
                }
                return Step::End;
            }
        }
        match batch.close {
            Some(frame) => Step::Close(Box::new(frame)),
            None if rx.take_drained() => self.queue(Event::Drain { id: self.id }),
            None => Step::Continue,
        }
    }
}
