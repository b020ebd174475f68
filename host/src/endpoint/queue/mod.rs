//! The endpoint's event queue: connection tasks push, the endpoint thread
//! takes events in batches, and runs its sessions' I/O while none are
//! queued.
//!
//! Bounded: a push into a full queue waits (the connection stops reading,
//! and TCP slows the client down). The thread takes everything queued under
//! one lock and works through it without touching the lock again, so each
//! event costs one uncontended lock on the pushing side and almost nothing
//! on the taking side (tokio's bounded channel took a semaphore permit and
//! gave it back under a mutex for every event).
//!
//! The receiving end owns the thread's tokio runtime (current-thread), on
//! which the endpoint's plain sessions run: when the queue is empty the
//! thread waits inside it, so it reads the sockets, queues the events and
//! writes the replies itself, and a message goes from the socket through
//! the plugin and back without another thread. The plugin is called
//! outside the runtime (wasmtime-wasi's sync calls start a runtime of their
//! own and may not run inside one). Sessions served on other threads (TLS)
//! push from there, and wake it.
//!
//! [`EventRx::next_batched`] is the thread's policy on top: when to let the
//! replies of the events handled so far go out (run the woken connections).

use super::Event;
use crate::session::Wakes;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

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
    capacity: usize,
}

struct State {
    events: VecDeque<Event>,
    /// Pushers waiting for room; all are woken when the thread takes a
    /// batch (a woken pusher that finds no room waits again).
    waiting: Vec<Waker>,
    /// The endpoint thread, waiting for an event.
    receiver: Option<Waker>,
    /// The sending end is gone.
    sender_gone: bool,
    /// The receiving end is gone.
    closed: bool,
}

/// Releases the lock, then wakes the endpoint thread if it waits.
fn wake_receiver(mut state: MutexGuard<'_, State>) {
    let receiver = state.receiver.take();
    drop(state);
    if let Some(receiver) = receiver {
        receiver.wake();
    }
}

/// The sending end (one; connection tasks share it behind an `Arc`).
pub(super) struct EventTx(Arc<Inner>);

/// The endpoint thread's end, and its runtime.
pub(super) struct EventRx {
    inner: Arc<Inner>,
    /// The thread's runtime: its sessions' I/O, run while it waits.
    io: Runtime,
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

/// A queue holding at most `capacity` events, whose receiving end waits in
/// `io`.
pub(super) fn channel(capacity: usize, io: Runtime) -> (EventTx, EventRx) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            events: VecDeque::new(),
            waiting: Vec::new(),
            receiver: None,
            sender_gone: false,
            closed: false,
        }),
        capacity: capacity.max(1),
    });
    let rx = EventRx { inner: inner.clone(), io, batch: VecDeque::new(), since_flush: 0, flushed_at: Instant::now() };
    (EventTx(inner), rx)
}

/// The runtime an endpoint thread waits in.
pub(super) fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why an event was not queued at once.
#[derive(Debug)]
pub enum NotQueued {
    /// The queue is full: the event, to wait with.
    Full(Event),
    /// The endpoint is gone.
    Gone,
}

impl EventTx {
    /// Queues `event`, waiting while the queue is full. (A plain `fn`: the
    /// future holds the event once; every session holds one while idle.)
    pub(super) fn send(&self, event: Event) -> impl Future<Output = Result<(), Closed>> + Send + '_ {
        let mut event = Some(event);
        poll_fn(move |cx| {
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
            wake_receiver(state);
            Poll::Ready(Ok(()))
        })
    }
}

impl EventTx {
    /// Queues `event` now, never waiting: what one endpoint thread hands
    /// another (a forwarded fan-out) must not block it, or two threads
    /// forwarding to each other could wait on each other. Refused (`false`)
    /// once `limit` events are queued or the receiver is gone.
    pub(super) fn push_now(&self, event: Event, limit: usize) -> bool {
        self.push(event, limit).is_ok()
    }

    /// Queues `event` if the queue has room now; else hands it back, for
    /// [`send`](Self::send) to wait with.
    pub(super) fn try_send(&self, event: Event) -> Result<(), NotQueued> {
        self.push(event, self.0.capacity)
    }

    /// Queues `event` unless `limit` events are queued or the receiver is
    /// gone.
    fn push(&self, event: Event, limit: usize) -> Result<(), NotQueued> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(NotQueued::Gone);
        }
        if state.events.len() >= limit {
            return Err(NotQueued::Full(event));
        }
        state.events.push_back(event);
        wake_receiver(state);
        Ok(())
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
        wake_receiver(state);
    }
}

impl EventRx {
    /// A handle on the thread's runtime, to run sessions on.
    pub(super) fn io(&self) -> tokio::runtime::Handle {
        self.io.handle().clone()
    }

    /// The next event. When the replies of the events handed out so far
    /// are due (the queue runs dry, or under constant load every
    /// [`WAKE_BATCH`] events or [`WAKE_AFTER`], so a slow plugin's replies do
    /// not wait for a whole batch), calls `at_flush` first with the time:
    /// it returns the connections to wake and when it wants to be called
    /// again (its next timer) even if no event comes. `None` once every
    /// sender is gone and the queue is empty.
    pub(super) fn next_batched(
        &mut self,
        mut at_flush: impl FnMut(Instant) -> (Wakes, Option<Instant>),
    ) -> Option<Event> {
        self.since_flush += 1;
        if !self.replies_due(self.since_flush) {
            match self.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
        }
        loop {
            self.since_flush = 0;
            self.flushed_at = Instant::now();
            let (wakes, timer) = at_flush(self.flushed_at);
            match self.run_io(wakes, timer) {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                // The timer is due: flush (and let the caller act) again.
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// The next event if it is a client message of at most `room` bytes
    /// that is queued already, and the replies of the events handed out so
    /// far are not due yet (as [`next_batched`](Self::next_batched) counts
    /// them): what a batch of messages takes after its first.
    pub(super) fn next_message(&mut self, room: usize) -> Option<Event> {
        let count = self.since_flush + 1;
        if self.replies_due(count) {
            return None;
        }
        if self.batch.is_empty() {
            let mut state = self.inner.lock();
            let first = take(&mut self.batch, &mut state).ok()?;
            self.batch.push_front(first);
        }
        let fits = match self.batch.front()? {
            Event::Text { text, .. } => text.len() <= room,
            Event::Binary { data, .. } => data.len() <= room,
            _ => false,
        };
        if !fits {
            return None;
        }
        self.since_flush = count;
        self.batch.pop_front()
    }

    /// Whether the replies are due once `count` events have been handed out
    /// since the last flush: every [`WAKE_BATCH`] events, or after
    /// [`WAKE_AFTER`]. The clock is read every few events only: it costs as
    /// much as queueing an event.
    fn replies_due(&self, count: u32) -> bool {
        count >= WAKE_BATCH || (count.is_multiple_of(CLOCK_EVERY) && self.flushed_at.elapsed() >= WAKE_AFTER)
    }

    /// Whether no event is waiting.
    pub(super) fn is_idle(&mut self) -> bool {
        self.batch.is_empty() && self.inner.lock().events.is_empty()
    }

    /// The next event if one is queued.
    pub(super) fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        Self::take_now(&self.inner, &mut self.batch)
    }

    /// Wakes `wakes` and runs the sessions' I/O until an event comes or
    /// `until` passes (then `Empty`); `Disconnected` once every sender is
    /// gone and the queue is empty. With events queued already, the woken
    /// connections still get one turn (their replies go out) first.
    fn run_io(&mut self, mut wakes: Wakes, until: Option<Instant>) -> Result<Event, TryRecvError> {
        let Self { inner, io, batch, .. } = self;
        if wakes.is_empty()
            && let Ok(event) = Self::take_now(inner, batch)
        {
            return Ok(event);
        }
        io.block_on(async {
            // Woken inside the runtime: a local schedule, no system call.
            wakes.flush();
            if !batch.is_empty() || !inner.lock().events.is_empty() {
                tokio::task::yield_now().await;
                return Self::take_now(inner, batch);
            }
            let sleep = until.map(|until| tokio::time::sleep_until(until.into()));
            let mut sleep = std::pin::pin!(sleep);
            poll_fn(|cx| {
                let mut state = inner.lock();
                match take(batch, &mut state) {
                    Err(TryRecvError::Empty) => {}
                    other => return Poll::Ready(other),
                }
                if let Some(sleep) = sleep.as_mut().as_pin_mut()
                    && sleep.poll(cx).is_ready()
                {
                    state.receiver = None;
                    return Poll::Ready(Err(TryRecvError::Empty));
                }
                state.receiver = Some(cx.waker().clone());
                Poll::Pending
            })
            .await
        })
    }

    /// [`try_recv`](Self::try_recv) on the fields (borrowed apart from the
    /// runtime).
    fn take_now(inner: &Inner, batch: &mut VecDeque<Event>) -> Result<Event, TryRecvError> {
        if let Some(event) = batch.pop_front() {
            return Ok(event);
        }
        take(batch, &mut inner.lock())
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
mod tests;
