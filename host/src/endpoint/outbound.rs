//! A session's outbound queue: the endpoint thread pushes, the connection
//! task pops and writes to the socket.
//!
//! The channel itself is unbounded so that control frames (close) always get
//! through; the data it may hold is bounded by counting messages and bytes
//! on both ends. A push over either bound fails at once with
//! [`QueueError::Full`]: the plugin never blocks on a slow client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
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
    let pending = Arc::new(Pending {
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        max_messages,
        max_bytes,
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

    fn taken(&self, msg: Message) -> Message {
        self.pending.messages.fetch_sub(1, Ordering::Relaxed);
        self.pending.bytes.fetch_sub(msg.len(), Ordering::Relaxed);
        msg
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
}
