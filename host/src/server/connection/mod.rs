//! One WebSocket session: a single task that reads the client's messages
//! into the endpoint's queue, writes the session's outbound queue to the
//! socket, pings the client, and runs the closing handshake. While it
//! waits with nothing to write, the endpoint thread writes a plain
//! session's replies itself as it flushes them ([`crate::session::link_to`]);
//! the task takes over whatever the socket did not take at once.
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
//! - `turn`: one turn of the loop, polled by hand, doing at once what it can.
//! - `closing`: how the server ends a session (close frames, the drain
//!   after a bad message, the heartbeat's ping) and the close codes counted.
//! - `write`: the session's queue written to the socket in batches.

use super::ServerState;
use super::http::ConnectionPermit;
use super::io::Readable;
use super::wire::{Wire, WireError};
use crate::endpoint::{Admitted, Compressing, EndpointHandle, Event, NotQueued};
use crate::log_limit::LogLimit;
use crate::session::{CloseCode, NewSession, SessionId, SessionRx, UpgradeAccept, close_frame, link_to};
use futures_util::SinkExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

mod closing;
mod turn;
mod write;

use closing::ABNORMAL;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use turn::Turn;

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

/// What a turn of the session loop found to do, once what could be done
/// at once was (see [`turn`]): the waits left, each small, the rare ones
/// run boxed so that the session's future (an idle session's memory) is
/// sized by its wait, not by its rarest step.
enum Step {
    /// Nothing left to wait for.
    Continue,
    /// The session is over.
    End,
    /// An event for the plugin that found its queue full.
    Send(Box<Event>),
    /// The codec queued a pong: send it.
    Flush,
    /// A write batch the socket did not take at once.
    Stalled(Box<write::Batch>),
    /// Start the closing handshake with this frame.
    Close(Box<CloseFrame>),
    /// A read error: answer with its close code.
    Error(Box<WireError>),
    /// Ping the client.
    Ping,
}

impl SessionTask {
    /// The session's task, its end of the outbound queue, and the event
    /// that registers it.
    fn new(accepted: Accepted, shared: &ServerState) -> (Self, SessionRx, Box<NewSession>) {
        let Accepted { mut ws, readable, endpoint, id, path, query, peer, accept, held } = accepted;
        let limits = endpoint.limits();
        // A plain, uncompressed session's replies may be written to its
        // socket by the endpoint thread as it flushes them.
        let fd = if ws.compressed() { None } else { ws.get_ref().get_ref().tcp_fd() };
        let (tx, rx) = link_to(fd, limits.queue_messages, limits.queue_bytes);
        if fd.is_some() {
            ws.get_mut().get_mut().hold(rx.socket_guard());
        }
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
            close_code: None,
            _held: held,
        };
        (task, rx, Box::new(session))
    }

    /// The session's life: registered, served, ended. An `async` block,
    /// not an `async fn`, so the task is stored once, not also as the
    /// argument it came in.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn run(
        mut self,
        rx: SessionRx,
        connected: Box<NewSession>,
        shared: Arc<ServerState>,
    ) -> impl Future<Output = ()> + Send {
        async move {
            tracing::debug!(compressed = self.ws.compressed(), "connected");
            // Counted through the endpoint handle the task holds anyway: a
            // session keeps no counters of its own (idle memory per connection).
            self.endpoint.metrics().accepted.inc();
            if self.endpoint.send(Event::Connected(connected)).await.is_err() {
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
        let timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut turn = Turn::new(timer);
        loop {
            let step = std::future::poll_fn(|cx| self.poll_step(cx, &mut rx, &mut turn, shared)).await;
            let flow = match step {
                Step::Continue => Flow::Continue,
                Step::End => Flow::End,
                Step::Send(event) => Box::pin(self.send_waiting(*event)).await,
                Step::Flush => self.flush().await,
                Step::Stalled(batch) => Box::pin(self.write_stalled(batch, &mut rx, config.close_timeout)).await,
                Step::Close(frame) => Box::pin(self.start_close(*frame, config.close_timeout)).await,
                Step::Error(err) => Box::pin(self.on_error(*err, config.close_timeout)).await,
                Step::Ping => Box::pin(self.ping()).await,
            };
            if let Flow::End = flow {
                return;
            }
        }
    }

    /// Queues an event for the plugin if its queue has room now (the
    /// common case, done inside the loop's poll); else the step to wait.
    fn queue(&mut self, event: Event) -> Step {
        match self.endpoint.try_send(event) {
            Ok(()) => Step::Continue,
            Err(NotQueued::Full(event)) => Step::Send(Box::new(event)),
            Err(NotQueued::Gone) => Step::End,
        }
    }

    /// Waits for room for an event in the plugin's queue.
    async fn send_waiting(&mut self, event: Event) -> Flow {
        match self.endpoint.send(event).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }

    /// How long a write to the socket may wait (`limits.stall-timeout-ms`,
    /// of the plugin version now serving). Looked up when a write waits
    /// rather than kept: every idle session would hold it.
    fn stall_timeout(&self) -> Duration {
        self.endpoint.limits().stall_timeout()
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
}
