//! One turn of the session loop, polled by hand: the outbound queue, server
//! shutdown, the socket and the timer, and whatever each has ready done at
//! once inside the poll (a queued batch written, a client message turned
//! into its event, the timer's check). Only what is left to wait for leaves
//! it, as a small [`Step`]: the message in hand never becomes part of the
//! session's future, which is most of an idle session's memory.

use super::super::ServerState;
use super::super::wire::WireError;
use super::closing::NO_STATUS;
use super::{SILENT_CLIENT, SessionTask, Step, write::Batch};
use crate::endpoint::Event;
use crate::session::{CloseCode, SessionRx, Signal, close_frame};
use futures_util::StreamExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Message;

/// The loop's timer and where its turns start.
pub(super) struct Turn<'a> {
    /// One timer: the closing deadline, else the next ping or the idle
    /// timeout. Messages do not move it; it re-checks when due.
    timer: Pin<&'a mut Sleep>,
    /// What the timer is set to.
    timer_for: Option<Instant>,
    /// Which source a poll tries first. It moves on every poll, so a queue
    /// that never empties (a constant broadcast) cannot starve reading the
    /// client, its pongs or the heartbeat.
    first: u8,
}

impl<'a> Turn<'a> {
    pub(super) fn new(timer: Pin<&'a mut Sleep>) -> Self {
        Self { timer, timer_for: None, first: 0 }
    }
}

impl SessionTask {
    /// A turn: the endpoint thread's writes to the socket stop while it
    /// runs, and resume after one that leaves the task waiting with nothing
    /// to write (see [`crate::session::link_to`]). Bytes the last such
    /// write left go out first.
    pub(super) fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        rx: &mut SessionRx,
        turn: &mut Turn<'_>,
        shared: &ServerState,
    ) -> Poll<Step> {
        let step = match rx.begin_turn() {
            Some(framed) => Poll::Ready(self.write_left(&framed, rx, cx)),
            None => self.poll_turn(cx, rx, turn, shared),
        };
        rx.end_turn(step.is_pending() && self.closing_deadline.is_none() && self.ws.idle());
        step
    }

    /// Writes what a write from the endpoint thread left, then what is
    /// queued behind it.
    fn write_left(&mut self, framed: &[u8], rx: &mut SessionRx, cx: &mut Context<'_>) -> Step {
        self.ws.queue_framed(framed);
        let mut batch = Batch::resume(rx.try_recv());
        match batch.poll(&mut self.ws, rx, cx) {
            Poll::Ready(outcome) => self.batch_done(batch, Ok(outcome), rx),
            Poll::Pending => Step::Stalled(Box::new(batch)),
        }
    }

    /// Polls every source once, from a rotating start, until one has
    /// something; does it.
    fn poll_turn(
        &mut self,
        cx: &mut Context<'_>,
        rx: &mut SessionRx,
        turn: &mut Turn<'_>,
        shared: &ServerState,
    ) -> Poll<Step> {
        let closing = self.closing_deadline.is_some();
        if !self.credit && !closing {
            self.credit = rx.try_take_credit();
        }
        let due = self
            .closing_deadline
            .unwrap_or_else(|| self.idle_check.map_or(self.next_ping, |at| at.min(self.next_ping)));
        if turn.timer_for != Some(due) {
            turn.timer_for = Some(due);
            turn.timer.as_mut().reset(due);
        }
        let want_credit = !self.credit && !closing;
        // Backpressure: read only with a credit and room for replies (while
        // closing, read to see the client's close frame).
        let may_read = closing || (self.credit && !rx.congested());
        turn.first = (turn.first + 1) % 4;
        for source in 0..4 {
            let ready = match (turn.first + source) % 4 {
                // Its waker also signals a returned credit and, as the
                // server wakes every session through it, shutdown.
                0 => rx.poll_next(cx, want_credit).map(|signal| self.on_signal(signal, rx, cx)),
                1 if !closing && shared.live.stopping() => {
                    Poll::Ready(Step::Close(Box::new(close_frame(CloseCode::Away, "server shutting down"))))
                }
                // While the socket has nothing, its wake-up (through the
                // codec's waker) brings the task back.
                2 if may_read && self.readable.may_read() => self.ws.poll_next_unpin(cx).map(|m| self.on_incoming(m)),
                3 => turn.timer.as_mut().poll(cx).map(|()| self.on_timer(shared)),
                _ => Poll::Pending,
            };
            if ready.is_ready() {
                return ready;
            }
        }
        Poll::Pending
    }

    fn on_signal(&mut self, signal: Signal, rx: &mut SessionRx, cx: &mut Context<'_>) -> Step {
        match signal {
            Signal::Message(_) if self.closing_deadline.is_some() => Step::Continue,
            Signal::Message(msg) => {
                let mut batch = Batch::new(msg);
                match batch.poll(&mut self.ws, rx, cx) {
                    Poll::Ready(outcome) => self.batch_done(batch, Ok(outcome), rx),
                    Poll::Pending => Step::Stalled(Box::new(batch)),
                }
            }
            Signal::Credit => Step::Continue,
            Signal::Drained => self.queue(Event::Drain { id: self.id }),
            Signal::Ended => Step::End,
        }
    }

    fn on_incoming(&mut self, incoming: Option<Result<Message, WireError>>) -> Step {
        let msg = match incoming {
            None => return Step::End,
            Some(Ok(msg)) => msg,
            Some(Err(WireError::Io(err))) => {
                tracing::debug!(error = %err, "connection lost");
                return Step::End;
            }
            Some(Err(err)) => return Step::Error(Box::new(err)),
        };
        self.last_seen = Instant::now();
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            self.last_message = self.last_seen;
        }
        let id = self.id;
        if let Message::Close(frame) = &msg {
            let code = frame.as_ref().map_or(NO_STATUS, |f| u16::from(f.code));
            self.close_code.get_or_insert(code);
        }
        let metrics = self.endpoint.metrics();
        let event = match msg {
            // After a close starts, the plugin gets no more messages.
            _ if self.closing_deadline.is_some() => return Step::Continue,
            Message::Text(text) => {
                metrics.received.inc();
                metrics.received_bytes.inc_by(text.len() as u64);
                Event::Text { id, text }
            }
            Message::Binary(data) => {
                metrics.received.inc();
                metrics.received_bytes.inc_by(data.len() as u64);
                Event::Binary { id, data }
            }
            Message::Pong(data) => Event::Pong { id, data },
            // The codec queued the pong; send it now.
            Message::Ping(_) => return Step::Flush,
            Message::Close(_) | Message::Frame(_) => return Step::Continue,
        };
        self.credit = false;
        self.queue(event)
    }

    /// The timer is due: end a closing handshake that took too long, close
    /// an idle session, or ping the client (or end it, silent too long).
    fn on_timer(&mut self, shared: &ServerState) -> Step {
        let config = &shared.config;
        let now = Instant::now();
        if let Some(deadline) = self.closing_deadline {
            if now < deadline {
                return Step::Continue;
            }
            tracing::debug!("client did not finish the closing handshake");
            return Step::End;
        }
        if let (Some(at), Some(idle)) = (self.idle_check, config.idle_timeout)
            && at <= now
        {
            if self.last_message + idle <= now {
                tracing::debug!("idle timeout");
                return Step::Close(Box::new(close_frame(CloseCode::Away, "idle timeout")));
            }
            self.idle_check = Some(self.last_message + idle);
        }
        if self.next_ping > now {
            return Step::Continue;
        }
        self.next_ping = now + config.ping_interval;
        let pong_timeout = config.pong_timeout;
        if now.duration_since(self.last_seen) > pong_timeout {
            if let Some(held_back) = SILENT_CLIENT.allow() {
                let (plugin, session) = (self.endpoint.name(), self.id);
                tracing::info!(%plugin, session, ?pong_timeout, held_back, "no answer to pings; dropping the connection");
            }
            return Step::End;
        }
        Step::Ping
    }
}
