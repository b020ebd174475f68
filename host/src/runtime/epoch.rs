//! The epoch ticker: the engine's epoch advances every [`EPOCH_TICK`] while
//! plugins are being called, so a call that runs past its deadline traps;
//! and the [`EpochClock`] the host reads the same count from.
//!
//! [`IDLE_TICKS`] after the last call's deadline (no call can still be
//! running then) the ticker parks, so an idle server
//! spends no CPU on it (it was most of an idle server's CPU: 100 wake-ups
//! a second); the next call wakes it as it arms its deadline. Parking is a
//! handshake under one lock (the ticker announces it, then re-checks for a
//! call armed meanwhile), so no call can run with the ticker asleep.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// How often the engine's epoch advances; the unit of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Ticks without a plugin call after which the ticker parks (one second).
pub(super) const IDLE_TICKS: u64 = 100;

/// The epoch ticker's count as the host sees it: a call records the epoch
/// it must end by, and a host wait measures what is left of it.
#[derive(Debug)]
pub struct EpochClock {
    /// Ticks so far (the engine's epoch advances with it).
    ticks: AtomicU64,
    /// When the clock started.
    base: Instant,
    /// When the last tick was (or the ticker woke), in nanoseconds since
    /// `base`.
    last_tick: AtomicU64,
    /// The latest tick by which every call armed so far must have ended.
    busy_until: AtomicU64,
    /// The ticker is parked (or about to): the next call wakes it.
    parked: AtomicBool,
    /// Held while parking and waking, so that neither is missed.
    idle: Mutex<()>,
    /// Where the parked ticker waits.
    wake: Condvar,
}

impl EpochClock {
    pub(super) fn new() -> Self {
        Self {
            ticks: AtomicU64::new(0),
            base: Instant::now(),
            last_tick: AtomicU64::new(0),
            busy_until: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            idle: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn tick(&self) {
        self.last_tick.store(self.nanos(), Ordering::Release);
        self.ticks.fetch_add(1, Ordering::AcqRel);
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.ticks.load(Ordering::Acquire)
    }

    /// A plugin call of at most `ticks` starts: wakes the ticker if it is
    /// parked; the current tick, to count the call's deadline from.
    pub fn arm(&self, ticks: u64) -> u64 {
        let now = self.now();
        let ends = now.saturating_add(ticks);
        // Calls within one tick share their end: no write (the ticker reads
        // an end at least as late either way).
        if self.busy_until.load(Ordering::SeqCst) < ends {
            self.busy_until.fetch_max(ends, Ordering::SeqCst);
        }
        if self.parked.load(Ordering::SeqCst) {
            self.unpark();
        }
        now
    }

    /// Whether no call can be running and none started for a while.
    fn idle(&self) -> bool {
        self.now() >= self.busy_until.load(Ordering::SeqCst).saturating_add(IDLE_TICKS)
    }

    /// Whether the ticker is parked.
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// Wakes the ticker; its next tick is a whole tick from now.
    pub(super) fn unpark(&self) {
        let _idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if self.parked.swap(false, Ordering::SeqCst) {
            self.last_tick.store(self.nanos(), Ordering::Release);
            self.wake.notify_one();
        }
    }

    /// About how long until tick `deadline` (within one tick).
    pub fn until(&self, deadline: u64) -> Duration {
        let now = self.now();
        if deadline <= now {
            return Duration::ZERO;
        }
        let last_tick = Duration::from_nanos(self.last_tick.load(Ordering::Acquire));
        let since_tick = self.base.elapsed().saturating_sub(last_tick);
        let ticks = u32::try_from(deadline - now).unwrap_or(u32::MAX);
        EPOCH_TICK.saturating_mul(ticks).saturating_sub(since_tick)
    }

    /// The ticker thread's loop, until `stop` (whoever sets it unparks).
    pub(super) fn run_ticker(&self, engine: &Engine, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(EPOCH_TICK);
            self.tick();
            engine.increment_epoch();
            if self.idle() {
                self.park(stop);
            }
        }
    }

    /// Parks until a call arms (or `stop`), unless one did meanwhile.
    fn park(&self, stop: &AtomicBool) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.store(true, Ordering::SeqCst);
        // A call armed after the check above saw `parked` false and did
        // not wake us: look again now that it is set.
        if !self.idle() {
            self.parked.store(false, Ordering::SeqCst);
            return;
        }
        while self.parked.load(Ordering::SeqCst) && !stop.load(Ordering::Relaxed) {
            idle = self.wake.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_ticker_parks_when_no_call_comes_and_a_call_wakes_it() {
        let engine = Engine::default();
        let clock = Arc::new(EpochClock::new());
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (clock, stop) = (clock.clone(), stop.clone());
            std::thread::spawn(move || clock.run_ticker(&engine, &stop))
        };
        let started = Instant::now();
        while !clock.is_parked() {
            assert!(started.elapsed() < Duration::from_secs(30), "never parked");
            std::thread::sleep(EPOCH_TICK);
        }
        let parked_at = clock.now();
        assert!(parked_at >= IDLE_TICKS, "parked after {parked_at} ticks");
        std::thread::sleep(EPOCH_TICK * 5);
        assert_eq!(clock.now(), parked_at, "ticked while parked");
        // A call arms: the ticker runs again, and a wait right after is
        // measured from the wake-up, not from the tick before parking.
        let now = clock.arm(10);
        assert!(!clock.is_parked());
        assert!(clock.until(now + 10) > EPOCH_TICK * 8, "{:?} left of 10 ticks", clock.until(now + 10));
        while clock.now() == now {
            assert!(started.elapsed() < Duration::from_secs(30), "never ticked again");
            std::thread::sleep(EPOCH_TICK);
        }
        // A call longer than the idle time keeps it ticking to its end.
        let armed = clock.arm(IDLE_TICKS * 2);
        while clock.now() < armed + IDLE_TICKS * 2 {
            assert!(!clock.is_parked(), "parked at tick {} during a call armed at {armed}", clock.now());
            assert!(started.elapsed() < Duration::from_secs(60), "stopped ticking during a call");
            std::thread::sleep(EPOCH_TICK);
        }
        stop.store(true, Ordering::Relaxed);
        clock.unpark();
        ticker.join().unwrap();
    }
}
