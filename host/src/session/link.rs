//! What one session's two sides share: the endpoint thread's end
//! ([`SessionTx`]) and the connection task's end ([`SessionRx`]) of the
//! outbound queue, the read credits, and the one waker that serves both.
//!
//! The connection task waits on [`SessionRx::poll_next`], which a queued
//! message, a returned credit, the last sender going away or
//! [`SessionWaker::wake`] (server shutdown) wakes. The endpoint side never
//! wakes the task itself: each push or returned credit notes its session in
//! a [`Wakes`] list, and whoever owns the list (the session registry, for
//! the endpoint thread) flushes it, so that the replies to a batch of events
//! wake each connection once instead of once per message.

use super::credit::Credits;
use super::outbound::{Outbound, QueueError};
use futures_util::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio_tungstenite::tungstenite::Message;

/// What both ends share.
#[derive(Debug)]
struct Link {
    outbound: Outbound,
    credits: Credits,
    /// The connection task.
    waker: AtomicWaker,
    /// The session is in some [`Wakes`] list already.
    wake_pending: AtomicBool,
    /// Live [`SessionTx`] handles; at zero the queue ends.
    senders: AtomicUsize,
    /// A write was refused for a full queue: the plugin is owed an
    /// `on-drain` once the queue has room.
    drain_wanted: AtomicBool,
}

/// A session's outbound queue bounded to `max_messages` messages and
/// `max_bytes` payload bytes, with read credits sized to it.
pub fn link(max_messages: usize, max_bytes: usize) -> (SessionTx, SessionRx) {
    let link = Arc::new(Link {
        outbound: Outbound::new(max_messages, max_bytes),
        credits: Credits::new(max_messages),
        waker: AtomicWaker::new(),
        wake_pending: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        drain_wanted: AtomicBool::new(false),
    });
    (SessionTx(link.clone()), SessionRx(link))
}

/// Sessions whose connection tasks are to be woken, each listed once.
/// Flushed on drop, so no wake-up is ever lost.
#[derive(Debug, Default)]
pub struct Wakes(Vec<Arc<Link>>);

impl Wakes {
    fn defer(&mut self, link: &Arc<Link>) {
        if !link.wake_pending.swap(true, Ordering::AcqRel) {
            self.0.push(link.clone());
        }
    }

    /// Whether no connection is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wakes every listed connection task.
    pub fn flush(&mut self) {
        for link in self.0.drain(..) {
            link.wake_pending.store(false, Ordering::Release);
            link.waker.wake();
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The endpoint's end of a session's queue.
#[derive(Debug)]
pub struct SessionTx(Arc<Link>);

impl Clone for SessionTx {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Self(self.0.clone())
    }
}

impl Drop for SessionTx {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.waker.wake();
        }
    }
}

impl SessionTx {
    /// Queues a data message if the bounds allow it.
    pub fn try_send(&self, msg: Message, wakes: &mut Wakes) -> Result<(), QueueError> {
        self.0.outbound.try_push(msg)?;
        wakes.defer(&self.0);
        Ok(())
    }

    /// Queues a control message (close), ignoring the bounds.
    pub fn send_control(&self, msg: Message, wakes: &mut Wakes) -> Result<(), QueueError> {
        self.0.outbound.push_control(msg)?;
        wakes.defer(&self.0);
        Ok(())
    }

    /// The endpoint has taken one client message of this session off its
    /// queue: the read credit returns.
    pub fn give_credit(&self, wakes: &mut Wakes) {
        if self.0.credits.give_back() {
            wakes.defer(&self.0);
        }
    }

    /// Whether the queue is still at least half full (see
    /// [`Outbound::backed_up`]).
    pub fn backed_up(&self) -> bool {
        self.0.outbound.backed_up()
    }

    /// Payload bytes queued and not yet taken by the connection.
    pub fn queued_bytes(&self) -> usize {
        self.0.outbound.bytes()
    }

    /// Asks the connection to report when the queue has room again (see
    /// [`SessionRx::take_drained`]); it is woken to look, in case it has
    /// emptied the queue already.
    pub fn want_drain(&self, wakes: &mut Wakes) {
        self.0.drain_wanted.store(true, Ordering::Release);
        wakes.defer(&self.0);
    }
}

/// What woke a connection task waiting on its queue.
#[derive(Debug, PartialEq)]
pub enum Signal {
    /// A message to write.
    Message(Message),
    /// A read credit is free (only reported when asked for).
    Credit,
    /// The queue refused a write for being full and has room again (see
    /// [`SessionRx::take_drained`]).
    Drained,
    /// Every sender is gone and the queue is empty.
    Ended,
}

/// The connection task's end of a session's queue.
#[derive(Debug)]
pub struct SessionRx(Arc<Link>);

impl SessionRx {
    /// Waits for a message, or with `want_credit` also for a free read
    /// credit. Registers the task's waker, which also serves
    /// [`SessionWaker::wake`].
    pub fn poll_next(&mut self, cx: &mut Context<'_>, want_credit: bool) -> Poll<Signal> {
        let ready = |rx: &mut Self| match rx.try_recv() {
            Some(msg) => Some(Signal::Message(msg)),
            None if want_credit && rx.0.credits.any_free() => Some(Signal::Credit),
            None if rx.take_drained() => Some(Signal::Drained),
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
        self.0.outbound.try_pop()
    }

    /// Takes a read credit if one is free now; [`poll_next`](Self::poll_next)
    /// with `want_credit` waits for one.
    pub fn try_take_credit(&self) -> bool {
        self.0.credits.try_take()
    }

    /// Whether the queue is too full to read more client messages: it has
    /// no room left for the replies of a full window of them.
    pub fn congested(&self) -> bool {
        self.0.outbound.congested(self.0.credits.window())
    }

    /// Whether the plugin is owed an `on-drain` now: a write was refused
    /// for a full queue, and the queue is no longer backed up. Reports each
    /// such episode once.
    pub fn take_drained(&self) -> bool {
        self.0.drain_wanted.load(Ordering::Acquire)
            && !self.0.outbound.backed_up()
            && self.0.drain_wanted.swap(false, Ordering::AcqRel)
    }

    /// A handle that wakes this task from outside.
    pub fn waker(&self) -> SessionWaker {
        SessionWaker(self.0.clone())
    }
}

impl Drop for SessionRx {
    fn drop(&mut self) {
        self.0.outbound.close();
    }
}

/// Wakes a connection task from outside its endpoint (the server stopping).
#[derive(Debug, Clone)]
pub struct SessionWaker(Arc<Link>);

impl SessionWaker {
    /// Wakes the task.
    pub fn wake(&self) {
        self.0.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn next(rx: &mut SessionRx, want_credit: bool) -> impl Future<Output = Signal> + '_ {
        std::future::poll_fn(move |cx| rx.poll_next(cx, want_credit))
    }

    #[tokio::test]
    async fn a_message_wakes_the_task_only_when_its_wakes_are_flushed() {
        let (tx, mut rx) = link(8, 1 << 20);
        let mut wakes = Wakes::default();
        let waiting = tokio::time::timeout(Duration::from_millis(20), next(&mut rx, false));
        assert!(waiting.await.is_err(), "nothing queued yet");
        tx.try_send(Message::text("a"), &mut wakes).unwrap();
        tx.try_send(Message::text("b"), &mut wakes).unwrap();
        assert_eq!(wakes.0.len(), 1, "one wake-up per session");
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            wakes.flush();
            (tx, wakes)
        });
        assert_eq!(next(&mut rx, false).await, Signal::Message(Message::text("a")));
        assert_eq!(rx.try_recv(), Some(Message::text("b")));
        let (tx, _) = pusher.join().unwrap();
        drop(tx);
        assert_eq!(next(&mut rx, false).await, Signal::Ended);
    }

    #[tokio::test]
    async fn a_returned_credit_wakes_a_task_waiting_for_one() {
        let (tx, mut rx) = link(8, 1 << 20);
        while rx.try_take_credit() {}
        let waiting = tokio::time::timeout(Duration::from_millis(20), next(&mut rx, true));
        assert!(waiting.await.is_err(), "woken for a credit before any was returned");
        let returned = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            let mut wakes = Wakes::default();
            tx.give_credit(&mut wakes);
            tx
        });
        assert_eq!(next(&mut rx, true).await, Signal::Credit);
        let tx = returned.join().unwrap();
        assert!(rx.try_take_credit());
        assert!(!rx.congested());
        let mut wakes = Wakes::default();
        for _ in 0..5 {
            tx.try_send(Message::text("r"), &mut wakes).unwrap();
        }
        assert!(rx.congested(), "5 queued + 4 in flight > 8");
        drop(rx);
        assert_eq!(tx.try_send(Message::text(""), &mut wakes), Err(QueueError::Closed));
    }
}
