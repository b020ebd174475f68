//! The endpoint's event queue: connection tasks push, the endpoint thread
//! takes events in batches.
//!
//! Bounded: a push into a full queue waits (the connection stops reading,
//! and TCP slows the client down). The thread takes everything queued under
//! one lock and works through it without touching the lock again, so each
//! event costs one uncontended lock on the pushing side and almost nothing
//! on the taking side (tokio's bounded channel took a semaphore permit and
//! gave it back under a mutex for every event). When the queue is empty the
//! thread sleeps on a condition variable; a push wakes it only then.
//!
//! [`EventRx::next_batched`] is the thread's policy on top: when to let the
//! replies of the events handled so far go out (flush the connections'
//! wake-ups), and how long to spin before sleeping.

use super::Event;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often an idle endpoint thread yields before it sleeps.
const SPIN_YIELDS: u32 = 32;

/// Most events handled before the connections they answered are woken.
const WAKE_BATCH: u32 = 64;

/// Longest a reply waits for its connection to be woken under load (checked
/// every [`CLOCK_EVERY`] events).
const WAKE_AFTER: Duration = Duration::from_millis(1);

/// How many events pass between looks at the clock for [`WAKE_AFTER`].
const CLOCK_EVERY: u32 = 4;

/// What both ends share.
struct Inner {
    state: Mutex<State>,
    /// The endpoint thread waits here for events.
    arrived: Condvar,
    capacity: usize,
}

struct State {
    events: VecDeque<Event>,
    /// Pushers waiting for room; all are woken when the thread takes a
    /// batch (a woken pusher that finds no room waits again).
    waiting: Vec<Waker>,
    /// The endpoint thread is asleep on `arrived`.
    sleeping: bool,
    /// The sending end is gone.
    sender_gone: bool,
    /// The receiving end is gone.
    closed: bool,
}

/// The sending end (one; connection tasks share it behind an `Arc`).
pub(super) struct EventTx(Arc<Inner>);

/// The endpoint thread's end.
pub(super) struct EventRx {
    inner: Arc<Inner>,
    /// Events taken from the queue, not yet handed out.
    batch: VecDeque<Event>,
    /// Events handed out since the last flush.
    since_flush: u32,
    /// When the last flush was.
    flushed_at: Instant,
}

/// The receiving end is gone.
#[derive(Debug)]
pub(super) struct Closed;

/// Why [`EventRx::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum TryRecvError {
    Empty,
    /// Every sender is gone and the queue is empty.
    Disconnected,
}

/// A queue holding at most `capacity` events.
pub(super) fn channel(capacity: usize) -> (EventTx, EventRx) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            events: VecDeque::new(),
            waiting: Vec::new(),
            sleeping: false,
            sender_gone: false,
            closed: false,
        }),
        arrived: Condvar::new(),
        capacity: capacity.max(1),
    });
    let rx = EventRx { inner: inner.clone(), batch: VecDeque::new(), since_flush: 0, flushed_at: Instant::now() };
    (EventTx(inner), rx)
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventTx {
    /// Queues `event`, waiting while the queue is full.
    pub(super) async fn send(&self, event: Event) -> Result<(), Closed> {
        let mut event = Some(event);
        poll_fn(|cx| {
            let mut state = self.0.lock();
            if state.closed {
                return Poll::Ready(Err(Closed));
            }
            if state.events.len() >= self.0.capacity {
                if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    state.waiting.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
            state.events.push_back(event.take().expect("polled after completion"));
            if std::mem::take(&mut state.sleeping) {
                self.0.arrived.notify_one();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl EventTx {
    /// Queues `event` now, never waiting: what one endpoint thread hands
    /// another (a forwarded fan-out) must not block it, or two threads
    /// forwarding to each other could wait on each other. Refused (`false`)
    /// once `limit` events are queued or the receiver is gone.
    pub(super) fn push_now(&self, event: Event, limit: usize) -> bool {
        let mut state = self.0.lock();
        if state.closed || state.events.len() >= limit {
            return false;
        }
        state.events.push_back(event);
        if std::mem::take(&mut state.sleeping) {
            self.0.arrived.notify_one();
        }
        true
    }

    /// The queue's capacity for connection tasks.
    pub(super) fn capacity(&self) -> usize {
        self.0.capacity
    }
}

impl Drop for EventTx {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sender_gone = true;
        if std::mem::take(&mut state.sleeping) {
            self.0.arrived.notify_one();
        }
    }
}

impl EventRx {
    /// The next event. When the replies of the events handed out so far
    /// are due (the queue runs dry, or under constant load every
    /// [`WAKE_BATCH`] events or [`WAKE_AFTER`], so a slow plugin's replies do
    /// not wait for a whole batch), calls `at_flush` first with the time; it
    /// returns when it wants to be called again (its next timer) even if no
    /// event comes. `None` once every sender is gone and the queue is empty.
    ///
    /// When the queue is empty the thread yields the CPU a few times before
    /// it sleeps: connection tasks that run meanwhile (on this core, when
    /// the server has one) queue their events without having to wake it, so
    /// the thread takes them as one batch instead of a wake-up and two
    /// context switches per message.
    pub(super) fn next_batched(&mut self, mut at_flush: impl FnMut(Instant) -> Option<Instant>) -> Option<Event> {
        self.since_flush += 1;
        // The clock is read every few events only: it costs as much as
        // queueing an event.
        let keep_batching = self.since_flush < WAKE_BATCH
            && (!self.since_flush.is_multiple_of(CLOCK_EVERY) || self.flushed_at.elapsed() < WAKE_AFTER);
        if keep_batching {
            match self.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
        }
        loop {
            self.since_flush = 0;
            self.flushed_at = Instant::now();
            let timer = at_flush(self.flushed_at);
            for _ in 0..SPIN_YIELDS {
                match self.try_recv() {
                    Ok(event) => return Some(event),
                    Err(TryRecvError::Disconnected) => return None,
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                }
            }
            match self.recv_until(timer) {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                // The timer is due: flush (and let the caller act) again.
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// Whether no event is waiting.
    pub(super) fn is_idle(&mut self) -> bool {
        self.batch.is_empty() && self.inner.lock().events.is_empty()
    }

    /// The next event if one is queued.
    pub(super) fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        if let Some(event) = self.batch.pop_front() {
            return Ok(event);
        }
        let mut state = self.inner.lock();
        take(&mut self.batch, &mut state)
    }

    /// The next event, sleeping until one comes or `until` passes (then
    /// `Empty`); `Disconnected` once every sender is gone and the queue is
    /// empty.
    fn recv_until(&mut self, until: Option<Instant>) -> Result<Event, TryRecvError> {
        if let Some(event) = self.batch.pop_front() {
            return Ok(event);
        }
        let mut state = self.inner.lock();
        loop {
            match take(&mut self.batch, &mut state) {
                Err(TryRecvError::Empty) => {}
                other => return other,
            }
            state.sleeping = true;
            state = match until {
                None => self.inner.arrived.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(until) => {
                    let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                        state.sleeping = false;
                        return Err(TryRecvError::Empty);
                    };
                    self.inner.arrived.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// Moves every queued event into `batch` and returns the first.
fn take(batch: &mut VecDeque<Event>, state: &mut State) -> Result<Event, TryRecvError> {
    if state.events.is_empty() {
        return Err(if state.sender_gone { TryRecvError::Disconnected } else { TryRecvError::Empty });
    }
    std::mem::swap(batch, &mut state.events);
    for waker in state.waiting.drain(..) {
        waker.wake();
    }
    Ok(batch.pop_front().expect("not empty"))
}

impl Drop for EventRx {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.closed = true;
        for waker in state.waiting.drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(id: u64) -> Event {
        Event::Disconnected { id }
    }

    fn id(event: Event) -> u64 {
        match event {
            Event::Disconnected { id } => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn keeps_order_and_waits_when_full() {
        let (tx, mut rx) = channel(2);
        tx.send(event(1)).await.unwrap();
        tx.send(event(2)).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(20), tx.send(event(3)));
        assert!(third.await.is_err(), "a third event fit into a queue of two");
        let pusher = tokio::spawn(async move {
            tx.send(event(3)).await.unwrap();
            tx
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(id(rx.try_recv().unwrap()), 1);
        let tx = pusher.await.unwrap();
        assert_eq!(id(rx.try_recv().unwrap()), 2);
        assert_eq!(id(rx.try_recv().unwrap()), 3);
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Disconnected));
        assert_eq!(rx.recv_until(None).err(), Some(TryRecvError::Disconnected));
    }

    #[test]
    fn replies_are_flushed_when_the_queue_runs_dry() {
        let (tx, mut rx) = channel(8);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            tx.send(event(1)).await.unwrap();
            tx.send(event(2)).await.unwrap();
        });
        let flushes = std::cell::Cell::new(0);
        let mut next = || {
            let event = rx.next_batched(|_| {
                flushes.set(flushes.get() + 1);
                None
            });
            id(event.unwrap())
        };
        assert_eq!(next(), 1);
        assert_eq!(next(), 2);
        assert_eq!(flushes.get(), 0, "flushed while events were still queued");
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            rt.block_on(async { tx.send(event(3)).await.unwrap() });
        });
        assert_eq!(next(), 3);
        assert_eq!(flushes.get(), 1, "not flushed before waiting for more events");
        pusher.join().unwrap();
    }

    #[test]
    fn a_sleeping_receiver_wakes_for_a_push_from_another_thread() {
        let (tx, mut rx) = channel(8);
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async { tx.send(event(7)).await.unwrap() });
        });
        assert_eq!(id(rx.recv_until(None).unwrap()), 7);
        pusher.join().unwrap();
        assert_eq!(rx.recv_until(None).err(), Some(TryRecvError::Disconnected), "the sender is gone");
    }

    #[test]
    fn a_push_from_another_endpoint_never_waits_but_is_bounded() {
        let (tx, mut rx) = channel(1);
        assert!(tx.push_now(event(1), 2));
        assert!(tx.push_now(event(2), 2), "past the capacity, within the limit");
        assert!(!tx.push_now(event(3), 2), "past the limit");
        assert_eq!(id(rx.try_recv().unwrap()), 1);
        assert_eq!(id(rx.try_recv().unwrap()), 2);
        drop(rx);
        assert!(!tx.push_now(event(4), 2), "queued into a dead queue");
    }

    #[tokio::test]
    async fn a_send_after_the_receiver_went_fails() {
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(tx.send(event(9)).await.is_err(), "queued into a dead queue");
    }
}
