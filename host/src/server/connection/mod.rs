//! One WebSocket session: a single task that reads the client's messages
//! into the endpoint's queue, writes the session's outbound queue to the
//! socket, pings the client, and runs the closing handshake.
//!
//! Whatever ends the session (the client's close, a dropped socket, a
//! protocol error, a missed heartbeat, the plugin's `close`, shutdown), the
//! task sends exactly one `Disconnected` event as it finishes.
//!
//! The loop turns over two or three times for every message, so each turn
//! waits on few things: the outbound queue (whose waker also signals a
//! returned read credit and server shutdown, which rides on it as a flag
//! check), the socket (only when a read may find data, see [`super::io`]),
//! and one timer for the heartbeat, the idle timeout and the closing
//! deadline.
//!
//! - `closing`: how the server ends a session (close frames, the drain
//!   after a bad message) and the close codes counted.
//! - `write`: the session's queue written to the socket in batches.

use super::ServerState;
use super::http::ConnectionPermit;
use super::io::Readable;
use super::wire::{Wire, WireError};
use crate::endpoint::{Admitted, Compressing, EndpointHandle, Event};
use crate::log_limit::LogLimit;
use crate::session::{CloseCode, NewSession, SessionId, SessionRx, Signal, UpgradeAccept, close_frame, link};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracing::Instrument;

mod closing;
mod write;

use closing::{ABNORMAL, NO_STATUS};

/// Abnormal ends of sessions are logged at info, each kind at most once a
/// second (the next line says how many were held back): clients cannot
/// flood the log.
static BAD_MESSAGE: LogLimit = LogLimit::new(Duration::from_secs(1));
static SILENT_CLIENT: LogLimit = LogLimit::new(Duration::from_secs(1));

/// A WebSocket session whose handshake is done, about to run.
pub(super) struct Accepted {
    /// The socket, framed.
    pub(super) ws: Wire,
    /// Whether a read may find data.
    pub(super) readable: Readable,
    /// The instance of the endpoint serving the route that the session is
    /// placed on.
    pub(super) endpoint: EndpointHandle,
    /// The new session's id.
    pub(super) id: SessionId,
    /// Request path.
    pub(super) path: String,
    /// Request query, without `?`.
    pub(super) query: Option<String>,
    /// The client's address.
    pub(super) peer: SocketAddr,
    /// What the upgrade hook gave the session (protocol, attachment, topics).
    pub(super) accept: UpgradeAccept,
    /// Released when the session ends.
    pub(super) held: Held,
}

/// The places a session holds under the caps until it ends: the
/// endpoint's connections, the server's (and its address's) connections,
/// and the route's compressed sessions.
pub(super) struct Held {
    pub(super) _admitted: Admitted,
    pub(super) _permit: ConnectionPermit,
    pub(super) _compressing: Option<Compressing>,
}

/// Whether the server is stopping (and this session not yet closing).
fn stopping(shared: &ServerState, closing: bool) -> Poll<()> {
    if !closing && shared.live.stopping() { Poll::Ready(()) } else { Poll::Pending }
}

/// Runs the session to its end.
///
/// Not an `async fn`: the session is set up first, so that the future a
/// session is (most of an idle session's memory) holds it once, not also
/// the arguments it was made from.
pub(super) fn run(accepted: Accepted, shared: Arc<ServerState>) -> impl Future<Output = ()> + Send {
    let span = tracing::debug_span!("session", plugin = %accepted.endpoint.name(), session = accepted.id, peer = %accepted.peer);
    let (task, rx, connected) = SessionTask::new(accepted, &shared);
    task.run(rx, connected, shared).instrument(span)
}

/// The connection task's state.
struct SessionTask {
    /// The socket.
    ws: Wire,
    /// Whether a read may find data.
    readable: Readable,
    /// Where the client's messages go.
    endpoint: EndpointHandle,
    /// This session.
    id: SessionId,
    /// When the client last sent anything (a pong counts).
    last_seen: Instant,
    /// When the client last sent a text or binary message.
    last_message: Instant,
    /// When the next heartbeat ping is due.
    next_ping: Instant,
    /// When to look at `last_message` for the idle timeout next (messages
    /// do not move the timer; this check does).
    idle_check: Option<Instant>,
    /// Set once a close frame is sent: the client's reply must come by then.
    closing_deadline: Option<Instant>,
    /// Holds a credit to pass one client message to the plugin.
    credit: bool,
    /// How long a write to the socket may wait (`limits.stall-timeout-ms`).
    stall_timeout: Duration,
    /// The close code the session ends with: the first sent or received.
    close_code: Option<u16>,
    /// Released when the session ends.
    _held: Held,
}

/// Whether the session goes on after a step.
enum Flow {
    Continue,
    End,
}

impl SessionTask {
    /// The session's task, its end of the outbound queue, and the event
    /// that registers it.
    fn new(accepted: Accepted, shared: &ServerState) -> (Self, SessionRx, Event) {
        let Accepted { ws, readable, endpoint, id, path, query, peer, accept, held } = accepted;
        let limits = endpoint.limits();
        let (tx, rx) = link(limits.queue_messages, limits.queue_bytes);
        let UpgradeAccept { protocol, attachment, topics, .. } = accept;
        let session = NewSession { id, path, query, peer, protocol, tx, attachment, topics };
        let now = Instant::now();
        let task = SessionTask {
            ws,
            readable,
            endpoint,
            id,
            last_seen: now,
            last_message: now,
            next_ping: now + shared.config.ping_interval,
            idle_check: shared.config.idle_timeout.map(|idle| now + idle),
            closing_deadline: None,
            credit: false,
            stall_timeout: limits.stall_timeout(),
            close_code: None,
            _held: held,
        };
        (task, rx, Event::Connected(Box::new(session)))
    }

    /// The session's life: registered, served, ended. An `async` block,
    /// not an `async fn`, so the task is stored once, not also as the
    /// argument it came in.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn run(mut self, rx: SessionRx, connected: Event, shared: Arc<ServerState>) -> impl Future<Output = ()> + Send {
        async move {
            tracing::debug!(compressed = self.ws.compressed(), "connected");
            // Counted through the endpoint handle the task holds anyway: a
            // session keeps no counters of its own (idle memory per connection).
            self.endpoint.metrics().accepted.inc();
            if self.endpoint.send(connected).await.is_err() {
                let frame = close_frame(CloseCode::Error, "endpoint is not running");
                let _ = self.ws.send(Message::Close(Some(frame))).await;
                return;
            }
            let id = self.id;
            shared.live.insert(id, rx.waker());
            self.endpoint.metrics().open.inc();
            self.serve(rx, &shared).await;
            self.endpoint.metrics().open.dec();
            self.endpoint.metrics().closed(self.close_code.unwrap_or(ABNORMAL));
            shared.live.remove(id);
            let _ = self.endpoint.send(Event::Disconnected { id }).await;
            tracing::debug!("disconnected");
        }
    }

    async fn serve(&mut self, mut rx: SessionRx, shared: &ServerState) {
        let config = &shared.config;
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut timer_for = None;
        loop {
            let closing = self.closing_deadline.is_some();
            if !self.credit && !closing {
                self.credit = rx.try_take_credit();
            }
            // One timer: the closing deadline, else the next ping or the
            // idle timeout. Messages do not move it; it re-checks when due.
            let due = self
                .closing_deadline
                .unwrap_or_else(|| self.idle_check.map_or(self.next_ping, |at| at.min(self.next_ping)));
            if timer_for != Some(due) {
                timer_for = Some(due);
                timer.as_mut().reset(due);
            }
            let want_credit = !self.credit && !closing;
            let may_read = closing || (self.credit && !rx.congested());
            let readable = &self.readable;
            let ws = &mut self.ws;
            // Not `biased`: the branches are tried from a random start, so
            // a queue that never empties (a constant broadcast) cannot
            // starve reading the client, its pongs or the heartbeat.
            let flow = tokio::select! {
                signal = std::future::poll_fn(|cx| rx.poll_next(cx, want_credit)) => match signal {
                    Signal::Message(msg) => self.write_batch(msg, &mut rx, config.close_timeout).await,
                    Signal::Credit => Flow::Continue,
                    Signal::Drained => self.drained().await,
                    Signal::Ended => Flow::End,
                },
                // The server wakes every session through its queue's waker
                // (registered by the branch above) when it starts stopping.
                _ = std::future::poll_fn(|_| stopping(shared, closing)) => {
                    Box::pin(self.start_close(close_frame(CloseCode::Away, "server shutting down"), config.close_timeout)).await
                }
                // Backpressure: read only with a credit and room for replies
                // (while closing, read to see the client's close frame).
                // While the socket has nothing, the socket's wake-up
                // (through tungstenite's waker) brings the task back here.
                incoming = std::future::poll_fn(|cx| {
                    if readable.may_read() { ws.poll_next_unpin(cx) } else { Poll::Pending }
                }), if may_read => {
                    self.on_incoming(incoming, config.close_timeout).await
                }
                _ = &mut timer => self.on_timer(shared).await,
            };
            if let Flow::End = flow {
                return;
            }
        }
    }

    /// The timer is due: end a closing handshake that took too long, close
    /// an idle session, or ping the client.
    async fn on_timer(&mut self, shared: &ServerState) -> Flow {
        let config = &shared.config;
        let now = Instant::now();
        if let Some(deadline) = self.closing_deadline {
            if now < deadline {
                return Flow::Continue;
            }
            tracing::debug!("client did not finish the closing handshake");
            return Flow::End;
        }
        if let (Some(at), Some(idle)) = (self.idle_check, config.idle_timeout)
            && at <= now
        {
            if self.last_message + idle <= now {
                tracing::debug!("idle timeout");
                return Box::pin(self.start_close(close_frame(CloseCode::Away, "idle timeout"), config.close_timeout))
                    .await;
            }
            self.idle_check = Some(self.last_message + idle);
        }
        if self.next_ping <= now {
            self.next_ping = now + config.ping_interval;
            return Box::pin(self.heartbeat(now, config.pong_timeout)).await;
        }
        Flow::Continue
    }

    async fn on_incoming(&mut self, incoming: Option<Result<Message, WireError>>, close_timeout: Duration) -> Flow {
        let msg = match incoming {
            None => return Flow::End,
            Some(Ok(msg)) => msg,
            Some(Err(err)) => return Box::pin(self.on_error(err, close_timeout)).await,
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
            _ if self.closing_deadline.is_some() => return Flow::Continue,
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
            Message::Ping(_) => {
                // The codec queued the pong; send it now.
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

    /// Tells the plugin that the queue that refused its write has room.
    async fn drained(&mut self) -> Flow {
        match self.endpoint.send(Event::Drain { id: self.id }).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }

    async fn flush(&mut self) -> Flow {
        match self.ws.flush().await {
            Ok(()) => Flow::Continue,
            Err(err) => {
                tracing::debug!(error = %err, "flush failed");
                Flow::End
            }
        }
    }

    /// Pings the client, or ends the session if it has been silent too long.
    async fn heartbeat(&mut self, now: Instant, pong_timeout: Duration) -> Flow {
        if now.duration_since(self.last_seen) > pong_timeout {
            if let Some(held_back) = SILENT_CLIENT.allow() {
                let (plugin, session) = (self.endpoint.name(), self.id);
                tracing::info!(%plugin, session, ?pong_timeout, held_back, "no answer to pings; dropping the connection");
            }
            return Flow::End;
        }
        if self.closing_deadline.is_some() {
            return Flow::Continue;
        }
        match tokio::time::timeout(self.stall_timeout, self.ws.send(Message::Ping(Bytes::new()))).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::End,
        }
    }
}
