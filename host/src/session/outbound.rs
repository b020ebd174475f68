//! A session's outbound queue: the endpoint thread pushes, the connection
//! task pops and writes to the socket.
//!
//! The queue itself is unbounded so that control frames (close) always get
//! through; the data it may hold is bounded by counting messages and bytes.
//! A push over either bound fails at once with [`QueueError::Full`]: the
//! plugin never blocks on a slow client. Waking the connection is not this
//! module's business (see [`super::link`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio_tungstenite::tungstenite::Message;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The connection task is gone.
    Closed,
    /// The queue holds as many messages or bytes as it may.
    Full,
}

/// The queue's messages: the first one inline, so that a session whose
/// queue holds one message at a time (a greeting, an echo's reply) never
/// allocates a buffer and keeps none while idle (224 bytes per idle session
/// otherwise: a `VecDeque` keeps its capacity once emptied).
#[derive(Debug, Default)]
struct Queue {
    /// The oldest message, when `rest` is empty or holds only newer ones.
    first: Option<Message>,
    rest: VecDeque<Message>,
    /// Framed bytes a write straight to the socket left unwritten (see
    /// [`super::direct`]): they go out before any message. Boxed (a thin
    /// pointer): rare, and a session's size is idle memory.
    #[allow(clippy::box_collection)] // on purpose: 8 bytes, not a Vec's 24
    unwritten: Option<Box<Vec<u8>>>,
}

impl Queue {
    fn push_back(&mut self, msg: Message) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(msg);
        } else {
            self.rest.push_back(msg);
        }
    }

    fn pop_front(&mut self) -> Option<Message> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    fn front(&self) -> Option<&Message> {
        self.first.as_ref().or_else(|| self.rest.front())
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest = VecDeque::new();
        self.unwritten = None;
    }
}

/// The queue and its bounds.
#[derive(Debug)]
pub(super) struct Outbound {
    queue: Mutex<Queue>,
    /// Messages queued; counted before a message is visible, so zero means
    /// empty without taking the lock.
    messages: AtomicUsize,
    /// Payload bytes queued.
    bytes: AtomicUsize,
    /// The connection task is gone: nothing more is queued.
    closed: AtomicBool,
    /// Bound on `messages` for data messages.
    max_messages: usize,
    /// Bound on `bytes` for data messages.
    max_bytes: usize,
}

impl Outbound {
    /// An empty queue bounded to `max_messages` messages and `max_bytes`
    /// payload bytes (one message is always accepted into an empty queue,
    /// whatever its size).
    pub(super) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            messages: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            max_messages,
            max_bytes,
        }
    }

    /// Queues a data message if the bounds allow it.
    pub(super) fn try_push(&self, msg: Message) -> Result<(), QueueError> {
        let len = msg.len();
        let queued = self.messages.load(Ordering::Relaxed);
        if queued > 0 && (queued >= self.max_messages || self.bytes.load(Ordering::Relaxed) + len > self.max_bytes) {
            // A gone connection also stops draining; report the real cause.
            return Err(if self.closed.load(Ordering::Acquire) { QueueError::Closed } else { QueueError::Full });
        }
        self.push(msg, len)
    }

    /// Queues a control message (close), ignoring the bounds.
    pub(super) fn push_control(&self, msg: Message) -> Result<(), QueueError> {
        let len = msg.len();
        self.push(msg, len)
    }

    fn push(&self, msg: Message, len: usize) -> Result<(), QueueError> {
        // Counted before the message is visible, so that the receiver's
        // decrement can never come first.
        self.messages.fetch_add(1, Ordering::Release);
        self.bytes.fetch_add(len, Ordering::Relaxed);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock: `close` empties the queue under it, so
        // nothing is left behind in a dead queue.
        if self.closed.load(Ordering::Acquire) {
            drop(queue);
            self.messages.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Closed);
        }
        queue.push_back(msg);
        Ok(())
    }

    /// The next queued message if there is one.
    pub(super) fn try_pop(&self) -> Option<Message> {
        if self.messages.load(Ordering::Acquire) == 0 {
            return None;
        }
        let msg = self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()?;
        self.messages.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(msg.len(), Ordering::Relaxed);
        Some(msg)
    }

    /// Takes the messages at the front of the queue that `take` accepts
    /// (under one lock), stopping at the first it refuses; returns how many
    /// it took and their payload bytes.
    pub(super) fn drain_front(&self, mut take: impl FnMut(&Message) -> bool) -> (usize, usize) {
        if self.messages.load(Ordering::Acquire) == 0 {
            return (0, 0);
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (mut count, mut bytes) = (0, 0);
        while let Some(msg) = queue.front() {
            if !take(msg) {
                break;
            }
            bytes += msg.len();
            count += 1;
            queue.pop_front();
        }
        drop(queue);
        self.messages.fetch_sub(count, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        (count, bytes)
    }

    /// Keeps framed bytes to be written before any queued message.
    pub(super) fn put_unwritten(&self, framed: Vec<u8>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !self.closed.load(Ordering::Acquire) {
            queue.unwritten = Some(Box::new(framed));
        }
    }

    /// The framed bytes kept by [`put_unwritten`](Self::put_unwritten).
    pub(super) fn take_unwritten(&self) -> Option<Vec<u8>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).unwritten.take().map(|b| *b)
    }

    /// Whether the queue lacks room for the replies to `in_flight` more
    /// client messages (one each) or is over half its bytes.
    pub(super) fn congested(&self, in_flight: usize) -> bool {
        let queued = self.messages.load(Ordering::Relaxed);
        queued > 0
            && (queued + in_flight > self.max_messages || self.bytes.load(Ordering::Relaxed) * 2 > self.max_bytes)
    }

    /// Whether the queue holds at least half of what it may (by messages or
    /// bytes): a queue that refused a write and is still backed up like this
    /// has not been drained by its client.
    pub(super) fn backed_up(&self) -> bool {
        self.messages.load(Ordering::Relaxed) * 2 >= self.max_messages
            || self.bytes.load(Ordering::Relaxed) * 2 >= self.max_bytes
    }

    /// Whether no message is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.messages.load(Ordering::Acquire) == 0
    }

    /// Payload bytes queued.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The connection is gone: drops what is queued and refuses the rest.
    pub(super) fn close(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_messages_and_bytes_but_not_control() {
        let q = Outbound::new(2, 10);
        q.try_push(Message::text("12345678")).unwrap();
        assert_eq!(q.try_push(Message::text("abc")), Err(QueueError::Full));
        q.try_push(Message::text("ab")).unwrap();
        assert_eq!(q.try_push(Message::text("")), Err(QueueError::Full));
        q.push_control(Message::Close(None)).unwrap();
        assert_eq!(q.try_pop(), Some(Message::text("12345678")));
        q.try_push(Message::text("x")).unwrap_err();
        assert_eq!(q.try_pop(), Some(Message::text("ab")));
        q.try_push(Message::text("x")).unwrap();
        q.close();
        assert_eq!(q.try_push(Message::text("")), Err(QueueError::Closed));
        assert_eq!(q.try_pop(), None);
    }

    #[test]
    fn keeps_order_across_the_inline_slot() {
        let q = Outbound::new(16, 1 << 20);
        let mut expect = 0;
        let mut next = 0;
        // Pushes and pops interleaved so that the inline slot empties while
        // older messages wait in the buffer, and fills again after.
        for round in 0..5 {
            for _ in 0..=round {
                q.try_push(Message::text(next.to_string())).unwrap();
                next += 1;
            }
            for _ in 0..round.max(1) {
                assert_eq!(q.try_pop(), Some(Message::text(expect.to_string())));
                expect += 1;
            }
        }
        while let Some(msg) = q.try_pop() {
            assert_eq!(msg, Message::text(expect.to_string()));
            expect += 1;
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn congestion_leaves_room_for_replies() {
        let q = Outbound::new(8, 1 << 20);
        assert!(!q.congested(4));
        for _ in 0..5 {
            q.try_push(Message::text("r")).unwrap();
        }
        assert!(q.congested(4), "5 queued + 4 in flight > 8");
        assert!(!q.congested(3));
    }
}
