//! A session's outbound queue: the endpoint thread pushes, the connection
//! task pops and writes to the socket.
//!
//! The channel itself is unbounded so that control frames (close) always get
//! through; the data it may hold is bounded by counting messages and bytes
//! on both ends. A push over either bound fails at once with
//! [`QueueError::Full`]: the plugin never blocks on a slow client.
//!
//! The same shared counters give each connection backpressure: it reads a
//! client message only with a *credit* (at most [`WINDOW`] of its messages
//! are waiting for the plugin at once; the endpoint returns the credit when
//! it has handled one), and only while its outbound queue has room for the
//! replies those could cause. A client that sends faster than it reads is
//! slowed down by TCP instead of losing replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Semaphore, mpsc};

/// Most client messages of one session waiting for the plugin at once.
pub const WINDOW: usize = 64;
use tokio_tungstenite::tungstenite::Message;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The connection task is gone.
    Closed,
    /// The queue holds as many messages or bytes as it may.
    Full,
}

/// Counters shared by both ends.
#[derive(Debug)]
struct Pending {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    /// Credits for reading client messages; see the module docs.
    credits: Semaphore,
    /// Credits in all: the reply room reading keeps free.
    window: usize,
}

/// The endpoint's end of the queue.
#[derive(Debug, Clone)]
pub struct OutboundTx {
    tx: mpsc::UnboundedSender<Message>,
    pending: Arc<Pending>,
}

/// The connection task's end of the queue.
#[derive(Debug)]
pub struct OutboundRx {
    rx: mpsc::UnboundedReceiver<Message>,
    pending: Arc<Pending>,
}

/// A queue bounded to `max_messages` messages and `max_bytes` payload bytes
/// (one message is always accepted into an empty queue, whatever its size).
pub fn channel(max_messages: usize, max_bytes: usize) -> (OutboundTx, OutboundRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let window = WINDOW.min(max_messages / 2).max(1);
    let pending = Arc::new(Pending {
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        max_messages,
        max_bytes,
        credits: Semaphore::new(window),
        window,
    });
    (
        OutboundTx {
            tx,
            pending: pending.clone(),
        },
        OutboundRx { rx, pending },
    )
}

impl OutboundTx {
    /// Queues a data message if the bounds allow it.
    pub fn try_send(&self, msg: Message) -> Result<(), QueueError> {
        let p = &*self.pending;
        let len = msg.len();
        let queued = p.messages.load(Ordering::Relaxed);
        if queued > 0
            && (queued >= p.max_messages || p.bytes.load(Ordering::Relaxed) + len > p.max_bytes)
        {
            // A gone connection also stops draining; report the real cause.
            return Err(if self.tx.is_closed() { QueueError::Closed } else { QueueError::Full });
        }
        self.push(msg, len)
    }

    /// The endpoint has handled one client message: its credit returns.
    pub fn event_done(&self) {
        self.pending.credits.add_permits(1);
    }

    /// Queues a control message (close), ignoring the bounds.
    pub fn send_control(&self, msg: Message) -> Result<(), QueueError> {
        let len = msg.len();
        self.push(msg, len)
    }

    fn push(&self, msg: Message, len: usize) -> Result<(), QueueError> {
        self.pending.messages.fetch_add(1, Ordering::Relaxed);
        self.pending.bytes.fetch_add(len, Ordering::Relaxed);
        self.tx.send(msg).map_err(|_| {
            self.pending.messages.fetch_sub(1, Ordering::Relaxed);
            self.pending.bytes.fetch_sub(len, Ordering::Relaxed);
            QueueError::Closed
        })
    }
}

impl OutboundRx {
    /// The next queued message; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Message> {
        let msg = self.rx.recv().await?;
        Some(self.taken(msg))
    }

    /// The next queued message if one is ready now.
    pub fn try_recv(&mut self) -> Option<Message> {
        let msg = self.rx.try_recv().ok()?;
        Some(self.taken(msg))
    }

    /// The read gate of this queue (see the module docs).
    pub fn gate(&self) -> Gate {
        Gate(self.pending.clone())
    }

    fn taken(&self, msg: Message) -> Message {
        self.pending.messages.fetch_sub(1, Ordering::Relaxed);
        self.pending.bytes.fetch_sub(msg.len(), Ordering::Relaxed);
        msg
    }
}

/// Decides when a connection may read its client's next message.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Pending>);

impl Gate {
    /// Waits for a credit to read one client message, and takes it.
    pub async fn take_credit(&self) {
        if let Ok(permit) = self.0.credits.acquire().await {
            permit.forget();
        }
    }

    /// Whether the queue is too full to read more client messages: it has
    /// no room left for the replies of a full window of them.
    pub fn congested(&self) -> bool {
        let p = &*self.0;
        let queued = p.messages.load(Ordering::Relaxed);
        queued > 0
            && (queued + p.window > p.max_messages
                || p.bytes.load(Ordering::Relaxed) * 2 > p.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounds_messages_and_bytes_but_not_control() {
        let (tx, mut rx) = channel(2, 10);
        tx.try_send(Message::text("12345678")).unwrap();
        assert_eq!(tx.try_send(Message::text("abc")), Err(QueueError::Full));
        tx.try_send(Message::text("ab")).unwrap();
        assert_eq!(tx.try_send(Message::text("")), Err(QueueError::Full));
        tx.send_control(Message::Close(None)).unwrap();
        assert_eq!(rx.recv().await, Some(Message::text("12345678")));
        tx.try_send(Message::text("x")).unwrap_err();
        assert_eq!(rx.try_recv(), Some(Message::text("ab")));
        tx.try_send(Message::text("x")).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(Message::text("")), Err(QueueError::Closed));
    }

    #[tokio::test]
    async fn credits_and_congestion_gate_reading() {
        let (tx, rx) = channel(8, 1 << 20);
        let gate = rx.gate();
        // Window is min(64, 8 / 2) = 4 credits.
        for _ in 0..4 {
            gate.take_credit().await;
        }
        let fifth = tokio::time::timeout(std::time::Duration::from_millis(20), gate.take_credit());
        assert!(fifth.await.is_err(), "a fifth credit before any was returned");
        tx.event_done();
        gate.take_credit().await;
        assert!(!gate.congested());
        for _ in 0..5 {
            tx.try_send(Message::text("r")).unwrap();
        }
        assert!(gate.congested(), "5 queued + 4 in flight > 8");
    }
}
