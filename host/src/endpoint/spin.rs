//! How long the endpoint thread yields the CPU, when its queue runs dry,
//! before it sleeps.
//!
//! Yielding lets connection tasks on the same core queue more events, which
//! the thread then takes as one batch without being woken: under load that
//! saves a wake-up and two context switches per message. Under light load
//! every event comes long after the queue ran dry, yielding catches nothing,
//! and each yield is a system call that burns the core the connection tasks
//! need. So the budget adapts: doubled when yielding caught an event, halved
//! when it did not, never below one yield (so that rising load is noticed).

/// The most yields before sleeping.
pub(super) const MAX_YIELDS: u32 = 32;

/// The current budget of yields.
#[derive(Debug)]
pub(super) struct Spin(u32);

impl Default for Spin {
    fn default() -> Self {
        Self(MAX_YIELDS)
    }
}

impl Spin {
    /// How many times to yield this time.
    pub(super) fn yields(&self) -> u32 {
        self.0
    }

    /// Yielding caught an event.
    pub(super) fn caught(&mut self) {
        self.0 = (self.0 * 2).min(MAX_YIELDS);
    }

    /// Yielding caught nothing: the thread goes to sleep.
    pub(super) fn missed(&mut self) {
        self.0 = (self.0 / 2).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_when_idle_and_grows_back_under_load() {
        let mut spin = Spin::default();
        assert_eq!(spin.yields(), MAX_YIELDS);
        for _ in 0..10 {
            spin.missed();
        }
        assert_eq!(spin.yields(), 1, "never below one yield");
        spin.caught();
        assert_eq!(spin.yields(), 2);
        for _ in 0..10 {
            spin.caught();
        }
        assert_eq!(spin.yields(), MAX_YIELDS, "capped");
        spin.missed();
        assert_eq!(spin.yields(), MAX_YIELDS / 2);
    }
}
