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
//! wake each connection once instead of once per message. A flush writes a
//! plain session's queued messages to its socket itself when it may
//! ([`super::direct`]), and wakes the task only for what is left.

use super::credit::Credits;
use super::direct::Direct;
use super::outbound::{Outbound, QueueError};
use futures_util::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use std::os::fd::RawFd;
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
    /// The task must look even if a flush writes its messages for it (a
    /// returned credit, an `on-drain` owed).
    must_look: AtomicBool,
    /// Live [`SessionTx`] handles; at zero the queue ends.
    senders: AtomicUsize,
    /// A write was refused for a full queue: the plugin is owed an
    /// `on-drain` once the queue has room.
    drain_wanted: AtomicBool,
    /// The socket, as a flush may write to it.
    direct: Direct,
}

/// A session's outbound queue bounded to `max_messages` messages and
/// `max_bytes` payload bytes, with read credits sized to it.
pub fn link(max_messages: usize, max_bytes: usize) -> (SessionTx, SessionRx) {
    link_to(None, max_messages, max_bytes)
}

/// The same, for a session whose queued messages a flush may write to the
/// socket `fd` itself (see [`super::direct`]), which must stay open until
/// the [`SocketGuard`] of the returned [`SessionRx`] is dropped (or the
/// `SessionRx` itself).
pub fn link_to(fd: Option<RawFd>, max_messages: usize, max_bytes: usize) -> (SessionTx, SessionRx) {
    let link = Arc::new(Link {
        outbound: Outbound::new(max_messages, max_bytes),
        credits: Credits::new(max_messages),
        waker: AtomicWaker::new(),
        wake_pending: AtomicBool::new(false),
        must_look: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        drain_wanted: AtomicBool::new(false),
        direct: Direct::new(fd),
    });
    (SessionTx(link.clone()), SessionRx(link))
}

impl Link {
    /// Writes what is queued straight to the socket if the task lets it;
    /// true if the task must still be woken (something is left, or it
    /// must look).
    fn write_queued(&self, sent: Option<&Sent>) -> bool {
        let Some(writer) = self.direct.begin_write() else {
            return true;
        };
        let mut framed = crate::codec::take_spare(0);
        let (mut count, mut bytes, mut left) = (0, 0, false);
        // A chunk at a time: a client that reads slowly leaves at most one
        // chunk's rest outside the queue's bounds, the rest stays queued.
        loop {
            let (n, b) =
                self.outbound.drain_front(|msg| framed.len() < CHUNK && crate::codec::encode_data(&mut framed, msg));
            if n == 0 {
                break;
            }
            (count, bytes) = (count + n, bytes + b);
            // On an error, the task's next write meets it and ends the session.
            let written = writer.write(&framed).unwrap_or(0);
            if written < framed.len() {
                framed.drain(..written);
                self.outbound.put_unwritten(std::mem::take(&mut framed));
                left = true;
                break;
            }
            framed.clear();
        }
        writer.end(left);
        crate::codec::recycle(framed);
        if let Some(sent) = sent {
            sent.messages.inc_by(count as u64);
            sent.bytes.inc_by(bytes as u64);
        }
        // A message the flush does not write (a close) stays queued.
        left || !self.outbound.is_empty() || self.must_look.load(Ordering::Acquire)
    }
}

/// About how many framed bytes a flush writes to a socket at once.
const CHUNK: usize = 64 << 10;

/// The counters a flush counts the messages it writes in.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Messages written.
    pub messages: Counter,
    /// Their payload bytes.
    pub bytes: Counter,
}

/// Sessions whose connection tasks are to be woken, each listed once.
/// Flushed on drop, so no wake-up is ever lost.
#[derive(Debug, Default)]
pub struct Wakes {
    links: Vec<Arc<Link>>,
    /// Where a flush counts what it writes itself.
    sent: Option<Sent>,
}

impl Wakes {
    /// Counts what flushes write in `sent` from now on.
    pub fn count_in(&mut self, sent: Sent) {
        self.sent = Some(sent);
    }

    /// An empty list counting where this one does.
    pub fn fresh(&self) -> Self {
        Self { links: Vec::new(), sent: self.sent.clone() }
    }

    fn defer(&mut self, link: &Arc<Link>) {
        if !link.wake_pending.swap(true, Ordering::AcqRel) {
            self.links.push(link.clone());
        }
    }

    /// Whether no connection is listed.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Writes each listed connection's queued messages to its socket where
    /// it may, and wakes every listed connection task that is left
    /// something to do.
    pub fn flush(&mut self) {
        for link in self.links.drain(..) {
            link.wake_pending.store(false, Ordering::Release);
            if link.write_queued(self.sent.as_ref()) {
                link.must_look.store(false, Ordering::Release);
                link.waker.wake();
            }
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
            self.0.must_look.store(true, Ordering::Release);
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
        self.0.must_look.store(true, Ordering::Release);
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

    /// A turn of the task begins: a flush no longer writes to the socket
    /// (see [`super::direct`]). Returns the framed bytes the last one left
    /// unwritten, to be written before anything else.
    pub fn begin_turn(&self) -> Option<Vec<u8>> {
        if self.0.direct.begin_turn() { self.0.outbound.take_unwritten() } else { None }
    }

    /// A turn of the task ends; with `idle` (the task waits, its codec has
    /// nothing queued) a flush may write to the socket until the next.
    pub fn end_turn(&self, idle: bool) {
        self.0.direct.end_turn(idle);
    }

    /// What the task keeps to stop the flushes' writes before its socket
    /// closes.
    pub fn socket_guard(&self) -> SocketGuard {
        SocketGuard(self.0.clone())
    }
}

impl Drop for SessionRx {
    fn drop(&mut self) {
        self.0.direct.retire();
        self.0.outbound.close();
    }
}

/// Held by whatever owns a session's socket, and dropped before it: from
/// then on no flush writes to the socket (see [`link_to`]).
#[derive(Debug)]
pub struct SocketGuard(Arc<Link>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.direct.retire();
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
mod tests;
