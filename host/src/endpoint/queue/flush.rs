//! When the replies of the events handed out so far go out: the endpoint
//! thread's batching policy on top of the queue. Events queued already are
//! handed out without a flush; the replies are flushed (the woken
//! connections run) when the queue runs dry, and under constant load every
//! [`WAKE_BATCH`] events or [`WAKE_AFTER`], so a slow plugin's replies do
//! not wait for a whole batch.

use super::{Event, EventRx, TryRecvError};
use crate::session::Wakes;
use std::time::{Duration, Instant};

/// Most events handled before the connections they answered are woken.
const WAKE_BATCH: u32 = 64;

/// Longest a reply waits for its connection to be woken under load (checked
/// every [`CLOCK_EVERY`] events).
const WAKE_AFTER: Duration = Duration::from_millis(1);

/// How many events pass between looks at the clock for [`WAKE_AFTER`].
const CLOCK_EVERY: u32 = 4;

impl EventRx {
    /// The next event. When the replies of the events handed out so far
    /// are due (the queue runs dry, or under constant load every
    /// [`WAKE_BATCH`] events or [`WAKE_AFTER`], so a slow plugin's replies do
    /// not wait for a whole batch), calls `at_flush` first with the time:
    /// it returns the connections to wake and when it wants to be called
    /// again (its next timer) even if no event comes. `None` once every
    /// sender is gone and the queue is empty.
    pub(in crate::endpoint) fn next_batched(
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
    pub(in crate::endpoint) fn next_message(&mut self, room: usize) -> Option<Event> {
        let count = self.since_flush + 1;
        if self.replies_due(count) {
            return None;
        }
        if self.batch.is_empty() {
            let first = Self::take_now(&self.inner, &mut self.batch).ok()?;
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
}
