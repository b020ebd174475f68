//! Inbound flow control: read credits.
//!
//! A connection reads a client message only with a credit. At most
//! [`WINDOW`] of one session's messages wait for the plugin at once; the
//! endpoint gives the credit back when it takes the message off its queue.
//! A client that sends faster than the plugin handles is slowed down by TCP
//! instead of growing the endpoint's queue.

use std::sync::atomic::{AtomicU32, Ordering};

/// Most client messages of one session waiting for the plugin at once.
const WINDOW: usize = 64;

/// One session's read credits (32-bit: a window is at most [`WINDOW`],
/// and a session's size is idle memory).
#[derive(Debug)]
pub(super) struct Credits {
    /// Credits not taken.
    free: AtomicU32,
    /// Credits in all: also the reply room reading keeps free in the
    /// outbound queue.
    window: u32,
}

impl Credits {
    /// A full window, at most half of an outbound queue of `queue_messages`
    /// (so the replies to a window of messages fit), at least one.
    pub(super) fn new(queue_messages: usize) -> Self {
        let window = WINDOW.min(queue_messages / 2).max(1) as u32;
        Self { free: AtomicU32::new(window), window }
    }

    /// Credits in all.
    pub(super) fn window(&self) -> usize {
        self.window as usize
    }

    /// Takes a credit if one is free.
    pub(super) fn try_take(&self) -> bool {
        self.free.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
    }

    /// Whether a credit is free.
    pub(super) fn any_free(&self) -> bool {
        self.free.load(Ordering::Acquire) > 0
    }

    /// Gives one credit back; true if none was free (the connection may be
    /// waiting for this one).
    pub(super) fn give_back(&self) -> bool {
        self.free.fetch_add(1, Ordering::AcqRel) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_credits_comes_back_one_by_one() {
        let credits = Credits::new(8);
        assert_eq!(credits.window(), 4);
        for _ in 0..4 {
            assert!(credits.try_take());
        }
        assert!(!credits.try_take() && !credits.any_free());
        assert!(credits.give_back(), "the first one back may wake a waiter");
        assert!(!credits.give_back());
        assert_eq!(Credits::new(1).window(), 1);
        assert_eq!(Credits::new(10_000).window(), 64);
    }
}
