//! One WebSocket session: a single task that reads the client's messages
//! into the endpoint's queue, writes the session's outbound queue to the
//! socket, pings the client, and runs the closing handshake.
//!
//! Whatever ends the session (the client's close, a dropped socket, a
//! protocol error, a missed heartbeat, the plugin's `close`, shutdown), the
//! task sends exactly one `Disconnected` event as it finishes.

use super::Shared;
use crate::endpoint::outbound::{self, OutboundRx};
use crate::endpoint::{EndpointHandle, Event, SessionId, close_frame};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Most queued messages written before one flush.
const MAX_BATCH: usize = 256;

/// Runs the session to its end.
pub(super) async fn run(
    ws: Ws,
    endpoint: EndpointHandle,
    id: SessionId,
    path: String,
    query: Option<String>,
    shared: Arc<Shared>,
) {
    let limits = endpoint.limits();
    let (out, rx) = outbound::channel(limits.queue_messages, limits.queue_bytes);
    let connected = Event::Connected { id, path, query, out };
    let mut session = Session {
        ws,
        endpoint,
        id,
        last_seen: Instant::now(),
        last_message: Instant::now(),
        closing_deadline: None,
        credit: false,
    };
    if session.endpoint.send(connected).await.is_err() {
        let frame = close_frame(Some(1011), "endpoint is not running");
        let _ = session.ws.close(Some(frame)).await;
        return;
    }
    session.serve(rx, &shared).await;
    let _ = session.endpoint.send(Event::Disconnected { id }).await;
    tracing::debug!(plugin = %session.endpoint.name(), session = id, "disconnected");
}

struct Session {
    ws: Ws,
    endpoint: EndpointHandle,
    id: SessionId,
    /// When the client last sent anything (a pong counts).
    last_seen: Instant,
    /// When the client last sent a text or binary message.
    last_message: Instant,
    /// Set once a close frame is sent: the client's reply must come by then.
    closing_deadline: Option<Instant>,
    /// Holds a credit to pass one client message to the plugin.
    credit: bool,
}

/// Whether the session goes on after a step.
enum Flow {
    Continue,
    End,
}

impl Session {
    async fn serve(&mut self, mut rx: OutboundRx, shared: &Shared) {
        let config = &shared.config;
        let mut ping = tokio::time::interval_at(
            Instant::now() + config.ping_interval,
            config.ping_interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let gate = rx.gate();
        // Built once, not per message: the loop turns over two or three
        // times for every message, so what it builds each turn counts.
        let shutdown = shared.shutdown.cancelled();
        tokio::pin!(shutdown);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut timer_for = None;
        loop {
            let closing = self.closing_deadline.is_some();
            if !self.credit && !closing {
                self.credit = gate.try_take_credit();
            }
            // One timer serves the idle timeout and the closing deadline.
            let due = match self.closing_deadline {
                Some(deadline) => Some(deadline),
                None => config.idle_timeout.map(|idle| self.last_message + idle),
            };
            if due != timer_for {
                timer_for = due;
                if let Some(due) = due {
                    timer.as_mut().reset(due);
                }
            }
            // Not `biased`: the branches are tried from a random start, so
            // a queue that never empties (a constant broadcast) cannot
            // starve reading the client, its pongs or the heartbeat.
            let flow = tokio::select! {
                _ = &mut shutdown, if !closing => {
                    self.start_close(close_frame(Some(1001), "server shutting down"), config.close_timeout).await
                }
                msg = rx.recv() => match msg {
                    Some(msg) => self.write_batch(msg, &mut rx, config.close_timeout, config.pong_timeout).await,
                    None => Flow::End,
                },
                _ = gate.take_credit(), if !self.credit && !closing => {
                    self.credit = true;
                    Flow::Continue
                }
                // Backpressure: read only with a credit and room for replies
                // (while closing, read to see the client's close frame).
                incoming = self.ws.next(), if closing || (self.credit && !gate.congested()) => {
                    self.on_incoming(incoming, config.close_timeout).await
                }
                _ = ping.tick() => self.heartbeat(config.pong_timeout).await,
                _ = &mut timer, if timer_for.is_some() => {
                    if closing {
                        tracing::debug!(session = self.id, "client did not finish the closing handshake");
                        Flow::End
                    } else if self.last_message + config.idle_timeout.unwrap_or_default() <= Instant::now() {
                        tracing::debug!(session = self.id, "idle timeout");
                        self.start_close(close_frame(Some(1001), "idle timeout"), config.close_timeout).await
                    } else {
                        Flow::Continue
                    }
                }
            };
            if let Flow::End = flow {
                return;
            }
        }
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, WsError>>,
        close_timeout: Duration,
    ) -> Flow {
        let msg = match incoming {
            None => return Flow::End,
            Some(Ok(msg)) => msg,
            Some(Err(err)) => return self.on_error(err, close_timeout).await,
        };
        self.last_seen = Instant::now();
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            self.last_message = self.last_seen;
        }
        let id = self.id;
        let event = match msg {
            // After a close starts, the plugin gets no more messages.
            _ if self.closing_deadline.is_some() => return Flow::Continue,
            Message::Text(text) => Event::Text { id, text },
            Message::Binary(data) => Event::Binary { id, data },
            Message::Pong(data) => Event::Pong { id, data },
            Message::Ping(_) => {
                // tungstenite queued the pong; send it now.
                return self.flush().await;
            }
            Message::Close(_) | Message::Frame(_) => return Flow::Continue,
        };
        self.credit = false;
        match self.endpoint.send(event).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }

    /// A read error: answer with the close code the RFC names, then end.
    async fn on_error(&mut self, err: WsError, close_timeout: Duration) -> Flow {
        let (code, reason) = match &err {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => (1009, "message too big"),
            WsError::Capacity(_) => (1009, "frame too big"),
            WsError::Utf8(_) => (1007, "invalid UTF-8 in text message"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                tracing::debug!(session = self.id, "client went away without a close frame");
                return Flow::End;
            }
            WsError::Protocol(_) => (1002, "protocol error"),
            _ => {
                tracing::debug!(session = self.id, error = %err, "connection lost");
                return Flow::End;
            }
        };
        tracing::debug!(session = self.id, error = %err, code, "closing after a bad message");
        let frame = close_frame(Some(code), reason);
        let _ = tokio::time::timeout(close_timeout, self.ws.send(Message::Close(Some(frame)))).await;
        Flow::End
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn write_batch(
        &mut self,
        first: Message,
        rx: &mut OutboundRx,
        close_timeout: Duration,
        write_timeout: Duration,
    ) -> Flow {
        if self.closing_deadline.is_some() {
            return Flow::Continue;
        }
        let mut next = Some(first);
        let mut written = 0;
        while let Some(msg) = next.take() {
            if let Message::Close(frame) = msg {
                return self.start_close(frame.unwrap_or_else(|| close_frame(None, "")), close_timeout).await;
            }
            match tokio::time::timeout(write_timeout, self.ws.feed(msg)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::debug!(session = self.id, error = %err, "write failed");
                    return Flow::End;
                }
                Err(_) => {
                    tracing::debug!(session = self.id, "client stopped reading; dropping it");
                    return Flow::End;
                }
            }
            written += 1;
            if written < MAX_BATCH {
                next = rx.try_recv();
            }
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Flow {
        match self.ws.flush().await {
            Ok(()) => Flow::Continue,
            Err(err) => {
                tracing::debug!(session = self.id, error = %err, "flush failed");
                Flow::End
            }
        }
    }

    /// Sends a close frame; the session then waits for the client's reply.
    async fn start_close(&mut self, frame: CloseFrame, close_timeout: Duration) -> Flow {
        self.closing_deadline = Some(Instant::now() + close_timeout);
        match tokio::time::timeout(close_timeout, self.ws.send(Message::Close(Some(frame)))).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::End,
        }
    }

    /// Pings the client, or ends the session if it has been silent too long.
    async fn heartbeat(&mut self, pong_timeout: Duration) -> Flow {
        if self.last_seen.elapsed() > pong_timeout {
            tracing::debug!(session = self.id, "no answer to pings; dropping the connection");
            return Flow::End;
        }
        if self.closing_deadline.is_some() {
            return Flow::Continue;
        }
        match tokio::time::timeout(pong_timeout, self.ws.send(Message::Ping(Bytes::new()))).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::End,
        }
    }
}
