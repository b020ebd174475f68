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
//! The receiving end owns the thread's tokio runtime (current-thread), whose
//! driver the endpoint's plain sessions' sockets and timers are registered
//! with, and the sessions themselves ([`sessions`], an executor of its
//! own): when the queue is empty the thread waits inside the runtime,
//! polling the sessions that wake, so it reads the sockets, queues the
//! events and writes the replies itself, and a message goes from the socket
//! through the plugin and back without another thread. The plugin is called
//! outside the runtime (wasmtime-wasi's sync calls start a runtime of their
//! own and may not run inside one). Sessions served on other threads (TLS)
//! push from there, and wake it.
//!
//! [`flush`] is the thread's policy on top: when to let the replies of the
//! events handled so far go out (run the woken connections).

mod flush;
mod sessions;

use super::Event;
use crate::session::Wakes;
use sessions::{Session, Sessions, Woken};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;
use tokio::runtime::Runtime;

/// Most turns of the woken sessions in one poll of the thread's future
/// before the driver gets a turn (sessions that keep waking each other
/// must not keep the sockets from being read).
const TURNS: u32 = 8;

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
    /// The thread's sessions that were woken or spawned, to poll.
    woken: Woken,
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
    /// The thread's sessions (dropped before the runtime their sockets are
    /// registered with).
    sessions: Sessions,
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
            woken: Woken::default(),
            sender_gone: false,
            closed: false,
        }),
        capacity: capacity.max(1),
    });
    let rx = EventRx {
        inner: inner.clone(),
        sessions: Sessions::default(),
        io,
        batch: VecDeque::new(),
        since_flush: 0,
        flushed_at: Instant::now(),
    };
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

    /// The session in `slot` was woken: lists it, and wakes the thread if
    /// it waits.
    fn woke(&self, slot: u32) {
        let mut state = self.lock();
        state.woken.wake(slot);
        wake_receiver(state);
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

    /// Runs `session` on the receiving end's thread (from any thread),
    /// polled while the thread waits for events; dropped at once if the
    /// receiver is gone, and with the receiver.
    pub(super) fn spawn(&self, session: impl Future<Output = ()> + Send + 'static) {
        let session: Session = Box::pin(tokio::task::unconstrained(session));
        let mut state = self.0.lock();
        if state.closed {
            drop(state);
            drop(session);
            return;
        }
        state.woken.spawn(session);
        wake_receiver(state);
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
    /// A handle on the thread's runtime, to register sessions' sockets
    /// with.
    pub(super) fn io(&self) -> tokio::runtime::Handle {
        self.io.handle().clone()
    }

    /// Whether no event is waiting.
    pub(super) fn is_idle(&mut self) -> bool {
        self.batch.is_empty() && self.inner.lock().events.is_empty()
    }

    /// The next event if one is queued.
    pub(super) fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        Self::take_now(&self.inner, &mut self.batch)
    }

    /// Wakes `wakes` and runs the sessions until an event comes or `until`
    /// passes (then `Empty`); `Disconnected` once every sender is gone and
    /// the queue is empty. With events queued already, the woken sessions
    /// still get a turn (their replies go out) and the driver one (the
    /// sockets ready meanwhile are read, so constant load cannot keep them
    /// waiting) before they are taken.
    fn run_io(&mut self, mut wakes: Wakes, until: Option<Instant>) -> Result<Event, TryRecvError> {
        let Self { inner, sessions, io, batch, .. } = self;
        if wakes.is_empty()
            && let Ok(event) = Self::take_now(inner, batch)
        {
            return Ok(event);
        }
        io.block_on(async {
            // Woken inside the runtime: listed, no system call.
            wakes.flush();
            let mut turn_driver = !batch.is_empty() || !inner.lock().events.is_empty();
            let sleep = until.map(|until| tokio::time::sleep_until(until.into()));
            let mut sleep = std::pin::pin!(sleep);
            poll_fn(|cx| {
                for _ in 0..TURNS {
                    let mut state = inner.lock();
                    // Wakes while the sessions run are seen below, without it.
                    state.receiver = None;
                    if !state.woken.is_empty() {
                        sessions.take_turn(&mut state.woken);
                        drop(state);
                        sessions.poll_turn(inner);
                        continue;
                    }
                    if turn_driver && (!batch.is_empty() || !state.events.is_empty()) {
                        turn_driver = false;
                        break;
                    }
                    if let Some(event) = batch.pop_front() {
                        return Poll::Ready(Ok(event));
                    }
                    match take(batch, &mut state) {
                        (Err(TryRecvError::Empty), _) => {}
                        (other, pushers) => {
                            drop(state);
                            wake_all(pushers);
                            return Poll::Ready(other);
                        }
                    }
                    if let Some(sleep) = sleep.as_mut().as_pin_mut()
                        && sleep.poll(cx).is_ready()
                    {
                        return Poll::Ready(Err(TryRecvError::Empty));
                    }
                    state.receiver = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                // The driver's turn: tokio polls this future again after it.
                cx.waker().wake_by_ref();
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
        let (taken, pushers) = take(batch, &mut inner.lock());
        wake_all(pushers);
        taken
    }
}

/// Moves every queued event into `batch` and returns the first, with the
/// pushers that waited for room: to wake once the lock is released (a
/// session on this thread is woken through this lock).
fn take(batch: &mut VecDeque<Event>, state: &mut State) -> (Result<Event, TryRecvError>, Vec<Waker>) {
    if state.events.is_empty() {
        let gone = if state.sender_gone { TryRecvError::Disconnected } else { TryRecvError::Empty };
        return (Err(gone), Vec::new());
    }
    std::mem::swap(batch, &mut state.events);
    (Ok(batch.pop_front().expect("not empty")), std::mem::take(&mut state.waiting))
}

/// Wakes the pushers [`take`] handed out (with the lock released).
fn wake_all(pushers: Vec<Waker>) {
    for waker in pushers {
        waker.wake();
    }
}

impl Drop for EventRx {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.closed = true;
        let pushers = std::mem::take(&mut state.waiting);
        let spawned = state.woken.take_spawned();
        drop(state);
        wake_all(pushers);
        // Dropped inside the runtime, as tokio drops its tasks.
        let _entered = self.io.enter();
        drop(spawned);
        drop(std::mem::take(&mut self.sessions));
    }
}

#[cfg(test)]
mod tests;
