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
//!
//! One waker serves it all: the connection task waits on [`OutboundRx::poll_next`],
//! which a queued message, a returned credit or the last sender going away
//! (and [`Gate::wake`], for server shutdown) wakes.

use futures_util::task::AtomicWaker;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio_tungstenite::tungstenite::Message;

/// Most client messages of one session waiting for the plugin at once.
pub const WINDOW: usize = 64;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The connection task is gone.
    Closed,
    /// The queue holds as many messages or bytes as it may.
    Full,
}

/// What both ends share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<VecDeque<Message>>,
    /// The connection task, waiting for messages.
    waker: AtomicWaker,
    /// Live [`OutboundTx`] handles; at zero the queue ends.
    senders: AtomicUsize,
    /// The connection task is gone.
    closed: AtomicBool,
    /// A wake-up is deferred on the pushing thread (see [`defer_wakes`]).
    wake_deferred: AtomicBool,
    messages: AtomicUsize,
    bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    /// Free credits for reading client messages; see the module docs.
    credits: AtomicUsize,
    /// Credits in all: the reply room reading keeps free.
    window: usize,
}

thread_local! {
    static DEFER: Cell<bool> = const { Cell::new(false) };
    static DEFERRED: RefCell<Vec<Arc<Shared>>> = const { RefCell::new(Vec::new()) };
}

/// From now on, pushes made on this thread wake their connection tasks only
/// at the next [`wake_deferred`]. The endpoint thread does this: replies to
/// a batch of events then wake each connection once, together, instead of
/// one cross-thread wake-up per message.
pub fn defer_wakes() {
    DEFER.with(|d| d.set(true));
}

/// Wakes every connection task a deferred push is waiting on.
pub fn wake_deferred() {
    DEFERRED.with(|d| {
        for shared in d.borrow_mut().drain(..) {
            shared.wake_deferred.store(false, Ordering::Release);
            shared.waker.wake();
        }
    });
}

/// The endpoint's end of the queue.
#[derive(Debug)]
pub struct OutboundTx(Arc<Shared>);

/// The connection task's end of the queue.
#[derive(Debug)]
pub struct OutboundRx(Arc<Shared>);

/// A queue bounded to `max_messages` messages and `max_bytes` payload bytes
/// (one message is always accepted into an empty queue, whatever its size).
pub fn channel(max_messages: usize, max_bytes: usize) -> (OutboundTx, OutboundRx) {
    let window = WINDOW.min(max_messages / 2).max(1);
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        wake_deferred: AtomicBool::new(false),
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        max_messages,
        max_bytes,
        credits: AtomicUsize::new(window),
        window,
    });
    (OutboundTx(shared.clone()), OutboundRx(shared))
}

impl Clone for OutboundTx {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Self(self.0.clone())
    }
}

impl Drop for OutboundTx {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.waker.wake();
        }
    }
}

impl OutboundTx {
    /// Queues a data message if the bounds allow it.
    pub fn try_send(&self, msg: Message) -> Result<(), QueueError> {
        let p = &*self.0;
        let len = msg.len();
        let queued = p.messages.load(Ordering::Relaxed);
        if queued > 0
            && (queued >= p.max_messages || p.bytes.load(Ordering::Relaxed) + len > p.max_bytes)
        {
            // A gone connection also stops draining; report the real cause.
            return Err(if p.closed.load(Ordering::Acquire) { QueueError::Closed } else { QueueError::Full });
        }
        self.push(msg, len)
    }

    /// The endpoint has handled one client message: its credit returns.
    pub fn event_done(&self) {
        // At zero the connection may be waiting for this one.
        if self.0.credits.fetch_add(1, Ordering::AcqRel) == 0 {
            self.0.wake();
        }
    }

    /// Queues a control message (close), ignoring the bounds.
    pub fn send_control(&self, msg: Message) -> Result<(), QueueError> {
        let len = msg.len();
        self.push(msg, len)
    }

    fn push(&self, msg: Message, len: usize) -> Result<(), QueueError> {
        let p = &self.0;
        // Counted before the message is visible, so that the receiver's
        // decrement can never come first.
        p.messages.fetch_add(1, Ordering::Release);
        p.bytes.fetch_add(len, Ordering::Relaxed);
        {
            let mut queue = p.queue.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock: the receiver empties the queue under
            // it when it goes, so nothing is left behind in a dead queue.
            if p.closed.load(Ordering::Acquire) {
                drop(queue);
                p.messages.fetch_sub(1, Ordering::Relaxed);
                p.bytes.fetch_sub(len, Ordering::Relaxed);
                return Err(QueueError::Closed);
            }
            queue.push_back(msg);
        }
        p.wake();
        Ok(())
    }
}

impl Shared {
    /// Wakes the connection task, now or at this thread's next
    /// [`wake_deferred`].
    fn wake(self: &Arc<Self>) {
        if DEFER.with(Cell::get) {
            if !self.wake_deferred.swap(true, Ordering::AcqRel) {
                DEFERRED.with(|d| d.borrow_mut().push(self.clone()));
            }
        } else {
            self.waker.wake();
        }
    }
}

/// What woke a connection task waiting on its queue.
#[derive(Debug, PartialEq)]
pub enum Signal {
    /// A message to write.
    Message(Message),
    /// A read credit is free (only reported when asked for).
    Credit,
    /// Every sender is gone and the queue is empty.
    Ended,
}

impl OutboundRx {
    /// The next queued message; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Message> {
        match std::future::poll_fn(|cx| self.poll_next(cx, false)).await {
            Signal::Message(msg) => Some(msg),
            _ => None,
        }
    }

    /// Waits for a message, or with `want_credit` also for a free read
    /// credit. Registers the task's waker, which also serves [`Gate::wake`].
    pub fn poll_next(&mut self, cx: &mut Context<'_>, want_credit: bool) -> Poll<Signal> {
        let ready = |rx: &mut Self| match rx.try_recv() {
            Some(msg) => Some(Signal::Message(msg)),
            None if want_credit && rx.0.credits.load(Ordering::Acquire) > 0 => Some(Signal::Credit),
            None => None,
        };
        if let Some(signal) = ready(self) {
            return Poll::Ready(signal);
        }
        self.0.waker.register(cx.waker());
        if let Some(signal) = ready(self) {
            return Poll::Ready(signal);
        }
        if self.0.senders.load(Ordering::Acquire) == 0 {
            // The last sender may have pushed just before it went.
            return Poll::Ready(self.try_recv().map_or(Signal::Ended, Signal::Message));
        }
        Poll::Pending
    }

    /// The next queued message if one is ready now.
    pub fn try_recv(&mut self) -> Option<Message> {
        // Counted before a push is visible: zero means empty, without the lock.
        if self.0.messages.load(Ordering::Acquire) == 0 {
            return None;
        }
        let msg = self.0.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()?;
        self.0.messages.fetch_sub(1, Ordering::Relaxed);
        self.0.bytes.fetch_sub(msg.len(), Ordering::Relaxed);
        Some(msg)
    }

    /// The read gate of this queue (see the module docs).
    pub fn gate(&self) -> Gate {
        Gate(self.0.clone())
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.0.closed.store(true, Ordering::Release);
        queue.clear();
    }
}

/// Decides when a connection may read its client's next message.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Shared>);

impl Gate {
    /// Takes a credit if one is free now; [`OutboundRx::poll_next`] with
    /// `want_credit` waits for one.
    pub fn try_take_credit(&self) -> bool {
        self.0
            .credits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Wakes the connection task from outside (the server shutting down).
    pub fn wake(&self) {
        self.0.waker.wake();
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
        let (tx, mut rx) = channel(8, 1 << 20);
        let gate = rx.gate();
        // Window is min(64, 8 / 2) = 4 credits.
        for _ in 0..4 {
            assert!(gate.try_take_credit());
        }
        assert!(!gate.try_take_credit(), "a fifth credit before any was returned");
        let waiting = std::future::poll_fn(|cx| rx.poll_next(cx, true));
        let fifth = tokio::time::timeout(std::time::Duration::from_millis(20), waiting);
        assert!(fifth.await.is_err(), "woken for a credit before any was returned");
        let returned = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            tx.event_done();
            tx
        });
        assert_eq!(std::future::poll_fn(|cx| rx.poll_next(cx, true)).await, Signal::Credit);
        let tx = returned.await.unwrap();
        assert!(gate.try_take_credit());
        assert!(!gate.congested());
        for _ in 0..5 {
            tx.try_send(Message::text("r")).unwrap();
        }
        assert!(gate.congested(), "5 queued + 4 in flight > 8");
    }
}
