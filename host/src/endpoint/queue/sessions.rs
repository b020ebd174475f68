//! The endpoint thread's own executor for the sessions it serves.
//!
//! A plain session runs on its endpoint's thread, polled inside the future
//! the thread blocks on while it waits for events (see the parent). As a
//! tokio task it cost every wake-up tokio's task harness, and when the
//! woken session queued an event, another turn of the driver (an empty
//! `epoll_wait`): tokio's current-thread loop polls the future it blocks on
//! only once its run queue is empty and its driver has been checked. Here
//! the thread polls a woken session and looks at the queue straight after.
//!
//! A session's waker puts the session's slot on the woken list, under the
//! queue's lock, and wakes the thread's future if it waits; a session
//! spawned from another thread (the handshake's) is put there too. Sessions
//! are polled without tokio's cooperative budget: the thread's one budget
//! would be shared by every session of a turn, and what bounds a session's
//! poll is its own flow control (a credit per message, the queue's room).
//! A session that panics is dropped (its connection with it), as tokio
//! drops a task that panics; the thread and its other sessions go on.

use super::Inner;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};

/// A session's future, as spawned onto the thread.
pub(super) type Session = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What wakers and spawners leave for the thread (under the queue's lock).
#[derive(Default)]
pub(super) struct Woken {
    /// Slots whose sessions were woken, in order (a slot may repeat).
    ready: Vec<u32>,
    /// Sessions spawned, not yet given a slot.
    spawned: Vec<Session>,
}

impl Woken {
    pub(super) fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.spawned.is_empty()
    }

    pub(super) fn spawn(&mut self, session: Session) {
        self.spawned.push(session);
    }

    pub(super) fn wake(&mut self, slot: u32) {
        self.ready.push(slot);
    }

    /// The sessions spawned and not started, to drop (outside the lock: a
    /// session's drop may push to the queue).
    pub(super) fn take_spawned(&mut self) -> Vec<Session> {
        std::mem::take(&mut self.spawned)
    }
}

/// The sessions the thread runs, each in a slot; a finished session's slot
/// is reused.
#[derive(Default)]
pub(super) struct Sessions {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// The turn being run: the woken list, swapped out of the lock (kept
    /// for its capacity).
    turn: Woken,
}

struct Slot {
    session: Session,
    waker: Waker,
    wake: Arc<SlotWake>,
}

/// A slot's waker.
struct SlotWake {
    slot: u32,
    /// On the woken list already: a session woken twice before its poll is
    /// polled once.
    queued: AtomicBool,
    queue: Arc<Inner>,
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.woke(self.slot);
        }
    }
}

impl Sessions {
    /// How many sessions run here.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Takes what `woken` lists for a turn (under the lock, which is to be
    /// released before [`poll_turn`](Self::poll_turn) runs any session).
    pub(super) fn take_turn(&mut self, woken: &mut Woken) {
        std::mem::swap(&mut self.turn, woken);
    }

    /// Runs the turn taken: starts the spawned sessions and polls each
    /// woken one once. A session woken meanwhile is left for the next turn.
    pub(super) fn poll_turn(&mut self, queue: &Arc<Inner>) {
        let mut turn = std::mem::take(&mut self.turn);
        for session in turn.spawned.drain(..) {
            let slot = self.insert(session, queue);
            turn.ready.push(slot);
        }
        for slot in turn.ready.drain(..) {
            self.poll(slot);
        }
        self.turn = turn;
    }

    fn insert(&mut self, session: Session, queue: &Arc<Inner>) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 sessions on a thread")
        });
        let wake = Arc::new(SlotWake { slot, queued: AtomicBool::new(true), queue: queue.clone() });
        let waker = Waker::from(wake.clone());
        self.slots[slot as usize] = Some(Slot { session, waker, wake });
        slot
    }

    /// Polls the session in `slot` (none there: a waker outlived its
    /// session) and frees the slot once it is done.
    fn poll(&mut self, slot: u32) {
        let Some(Some(entry)) = self.slots.get_mut(slot as usize) else { return };
        // Wakes from here on list it again.
        entry.wake.queued.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&entry.waker);
        let done = match catch_unwind(AssertUnwindSafe(|| entry.session.as_mut().poll(&mut cx))) {
            Ok(poll) => poll.is_ready(),
            Err(_) => {
                tracing::error!("a session's task panicked: its connection is dropped");
                true
            }
        };
        if done {
            let finished = self.slots[slot as usize].take();
            self.free.push(slot);
            if catch_unwind(AssertUnwindSafe(|| drop(finished))).is_err() {
                tracing::error!("a session's task panicked while it was dropped");
            }
        }
    }
}
