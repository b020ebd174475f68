//! The epoch clock: the engine's epoch counts [`EPOCH_TICK`]s of wall time,
//! so a plugin call that runs past its deadline traps; and the
//! [`EpochClock`] the host reads the same count from.
//!
//! The epoch is advanced lazily. A call brings it up to the wall clock as
//! it arms its deadline (so the deadline counts from now), and records in
//! its [`CallSlot`] the tick it must end by. The ticker thread wakes only
//! when it has to: at the end tick of a call still running, every tick
//! while a call runs past its end, and otherwise once per
//! [scan period](EpochClock::scan_ticks) (no longer than any call's
//! deadline, so a call armed just after a wake-up is seen by its end). Under a
//! steady stream of short calls that is ~11 wake-ups a second at the default
//! 100 ms deadline, where a ticker that advanced every tick woke 100 times a
//! second (about a tenth of a light-load message's CPU, measured in
//! session 15).
//!
//! [`IDLE_TICKS`] after the last call's deadline (no call can still be
//! running then) the ticker parks, so an idle server spends no CPU on it;
//! the next call wakes it as it arms its deadline. Parking is a handshake
//! under one lock (the ticker announces it, then re-checks for a call armed
//! meanwhile), so no call can run with the ticker asleep.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// The unit of call deadlines: the epoch counts these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Ticks without a plugin call after which the ticker parks (one second).
pub(super) const IDLE_TICKS: u64 = 100;

/// One store's running call, as the ticker sees it.
#[derive(Debug)]
pub struct CallSlot {
    /// The tick the running call must end by; 0 while none runs.
    ends: AtomicU64,
    /// The store's call deadline in ticks.
    deadline: u64,
}

impl CallSlot {
    /// The store's call deadline in ticks.
    pub fn deadline(&self) -> u64 {
        self.deadline
    }
}

/// A running call; dropping it tells the ticker the call ended.
#[derive(Debug)]
#[must_use = "the call counts as running until this is dropped"]
pub struct RunningCall(Arc<CallSlot>);

impl Drop for RunningCall {
    fn drop(&mut self) {
        self.0.ends.store(0, Ordering::SeqCst);
    }
}

/// The engine's epoch as the host sees it: a call records the tick it must
/// end by, and a host wait measures what is left of it.
#[derive(Debug)]
pub struct EpochClock {
    /// The engine whose epoch this advances.
    engine: Engine,
    /// Tick 0.
    base: Instant,
    /// Ticks the engine's epoch has been advanced by: behind the wall clock
    /// between wake-ups and calls.
    ticks: AtomicU64,
    /// Wall-clock ticks no call needed (idle spells), left out of the count.
    skipped: AtomicU64,
    /// Held while advancing the epoch, so each tick is counted once.
    advancing: Mutex<()>,
    /// The latest tick by which every call armed so far must have ended.
    busy_until: AtomicU64,
    /// The ticker is parked (or about to): the next call wakes it.
    parked: AtomicBool,
    /// Held while parking and waking, so that neither is missed.
    idle: Mutex<()>,
    /// Where the ticker waits, parked or until its next wake-up.
    wake: Condvar,
    /// The tick the ticker sleeps until; `u64::MAX` while it is awake (a
    /// call armed then wakes it again, so none is missed by its scan).
    wake_at: AtomicU64,
    /// Every store's call slot (a slot only this holds is a dropped
    /// store's, pruned at the next scan or registration).
    slots: Mutex<Vec<Arc<CallSlot>>>,
    /// Times the ticker woke (for tests and profiles).
    wakeups: AtomicU64,
}

/// [`EPOCH_TICK`] in nanoseconds.
const TICK_NANOS: u64 = 10_000_000;
const _: () = assert!(EPOCH_TICK.as_nanos() == TICK_NANOS as u128);

impl EpochClock {
    pub(super) fn new(engine: Engine) -> Self {
        Self {
            engine,
            base: Instant::now(),
            ticks: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            advancing: Mutex::new(()),
            busy_until: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            idle: Mutex::new(()),
            wake: Condvar::new(),
            wake_at: AtomicU64::new(u64::MAX),
            slots: Mutex::new(Vec::new()),
            wakeups: AtomicU64::new(0),
        }
    }

    /// A slot for a store whose calls may take `deadline` ticks.
    pub fn slot(&self, deadline: u64) -> Arc<CallSlot> {
        let slot = Arc::new(CallSlot { ends: AtomicU64::new(0), deadline });
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Pruned here only when the list would grow (the ticker's scans
        // prune too), so registering many stores stays linear.
        if slots.len() == slots.capacity() {
            slots.retain(|s| Arc::strong_count(s) > 1);
        }
        slots.push(slot.clone());
        slot
    }

    /// The tick the wall clock is at at `now`.
    fn wall_tick(&self, now: Instant) -> u64 {
        let nanos = u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        (nanos / TICK_NANOS).saturating_sub(self.skipped.load(Ordering::Acquire))
    }

    /// Brings the engine's epoch up to the wall clock; the current tick.
    /// Ticks past the tick the ticker parks at need no epoch (no call can be
    /// waiting for them), so after an idle spell they are skipped, not
    /// counted one by one.
    fn catch_up(&self, now: Instant) -> u64 {
        let ticks = self.ticks.load(Ordering::Acquire);
        if ticks >= self.wall_tick(now) {
            return ticks;
        }
        let _advancing = self.advancing.lock().unwrap_or_else(|e| e.into_inner());
        let (mut ticks, wall) = (self.ticks.load(Ordering::Acquire), self.wall_tick(now));
        let needed = self.busy_until.load(Ordering::SeqCst).saturating_add(IDLE_TICKS);
        let counted = wall.min(needed.max(ticks));
        self.skipped.fetch_add(wall.saturating_sub(counted), Ordering::AcqRel);
        while ticks < counted {
            self.engine.increment_epoch();
            ticks += 1;
            self.ticks.store(ticks, Ordering::Release);
        }
        ticks
    }

    /// The current tick (as far as the epoch has been advanced).
    pub fn now(&self) -> u64 {
        self.ticks.load(Ordering::Acquire)
    }

    /// A call on `slot`'s store starts at `now`: brings the epoch up to now
    /// and wakes the ticker if it would wake too late for this call. The
    /// call counts as running until the returned guard drops; the tick it
    /// must end by.
    pub fn arm(&self, slot: &Arc<CallSlot>, now: Instant) -> (RunningCall, u64) {
        let ends = self.rearm(slot, now);
        (RunningCall(slot.clone()), ends)
    }

    /// Gives the call running on `slot` a whole deadline again from `now`
    /// (a batch's next message); the tick it must end by now.
    pub fn rearm(&self, slot: &CallSlot, now: Instant) -> u64 {
        let ends = self.catch_up(now).saturating_add(slot.deadline);
        slot.ends.store(ends, Ordering::SeqCst);
        // Calls within one tick share their end: no write (the ticker reads
        // an end at least as late either way).
        if self.busy_until.load(Ordering::SeqCst) < ends {
            self.busy_until.fetch_max(ends, Ordering::SeqCst);
        }
        // With a scan period no longer than any deadline, the ticker wakes
        // in time for this call: only a new store with a shorter deadline,
        // or a call armed while the ticker is awake, wakes it.
        if self.parked.load(Ordering::SeqCst) || ends < self.wake_at.load(Ordering::SeqCst) {
            self.unpark();
        }
        ends
    }

    /// Whether no call can be running and none started for a while.
    fn idle(&self, now: u64) -> bool {
        now >= self.busy_until.load(Ordering::SeqCst).saturating_add(IDLE_TICKS)
    }

    /// Whether the ticker is parked.
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// How many times the ticker has woken.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Wakes the ticker, parked or asleep until its next wake-up.
    pub(super) fn unpark(&self) {
        let _idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.store(false, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// How long until tick `deadline` begins.
    pub fn until(&self, deadline: u64) -> Duration {
        let at = deadline.saturating_add(self.skipped.load(Ordering::Acquire)).saturating_mul(TICK_NANOS);
        Duration::from_nanos(at).saturating_sub(self.base.elapsed())
    }

    /// The scan period: the shortest deadline of any store, so that a call
    /// armed after a scan (its end counted from a tick no earlier than the
    /// scan's) ends no earlier than the next scan.
    fn scan_ticks(slots: &[Arc<CallSlot>]) -> u64 {
        slots.iter().map(|s| s.deadline.max(1)).min().unwrap_or(IDLE_TICKS)
    }

    /// The tick the ticker must next wake at: the end of the earliest call
    /// still running, the next tick if one runs past its end, the next scan,
    /// or the tick it may park at, whichever comes first.
    fn next_wake(&self, now: u64) -> u64 {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| Arc::strong_count(s) > 1);
        let mut next = now.saturating_add(Self::scan_ticks(&slots));
        for slot in slots.iter() {
            let ends = slot.ends.load(Ordering::SeqCst);
            if ends != 0 {
                next = next.min(ends.max(now + 1));
            }
        }
        next.min(self.busy_until.load(Ordering::SeqCst).saturating_add(IDLE_TICKS))
    }

    /// The ticker thread's loop, until `stop` (whoever sets it unparks).
    /// It holds the `idle` lock except while it waits, so an arm that wakes
    /// it waits for it to wait and no wake-up is lost.
    pub(super) fn run_ticker(&self, stop: &AtomicBool) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while !stop.load(Ordering::Relaxed) {
            self.wake_at.store(u64::MAX, Ordering::SeqCst);
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            let now = self.catch_up(Instant::now());
            if self.idle(now) {
                self.parked.store(true, Ordering::SeqCst);
                // A call armed after the check above saw `parked` false:
                // its deadline is in `busy_until` by now.
                if self.idle(now) {
                    while self.parked.load(Ordering::SeqCst) && !stop.load(Ordering::Relaxed) {
                        idle = self.wake.wait(idle).unwrap_or_else(|e| e.into_inner());
                    }
                    continue;
                }
                self.parked.store(false, Ordering::SeqCst);
            }
            let next = self.next_wake(now);
            self.wake_at.store(next, Ordering::SeqCst);
            idle = self.wake.wait_timeout(idle, self.until(next)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` with a clock whose ticker runs, then stops the ticker.
    fn with_ticker(test: impl FnOnce(&EpochClock)) {
        let clock = Arc::new(EpochClock::new(Engine::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (clock, stop) = (clock.clone(), stop.clone());
            std::thread::spawn(move || clock.run_ticker(&stop))
        };
        test(&clock);
        stop.store(true, Ordering::Relaxed);
        clock.unpark();
        ticker.join().unwrap();
    }

    fn wait_for(what: &str, started: Instant, mut done: impl FnMut() -> bool) {
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(EPOCH_TICK);
        }
    }

    #[test]
    fn the_ticker_parks_when_no_call_comes_and_a_call_wakes_it() {
        with_ticker(|clock| {
            let started = Instant::now();
            wait_for("never parked", started, || clock.is_parked());
            let parked_at = clock.now();
            assert!(parked_at >= IDLE_TICKS, "parked after {parked_at} ticks");
            std::thread::sleep(EPOCH_TICK * 5);
            assert_eq!(clock.now(), parked_at, "ticked while parked");
            // A call arms: the ticker runs again, and a wait right after is
            // measured from now, not from the tick before parking.
            let slot = clock.slot(10);
            let (call, ends) = clock.arm(&slot, Instant::now());
            assert!(!clock.is_parked());
            assert!(clock.until(ends) > EPOCH_TICK * 8, "{:?} left of 10 ticks", clock.until(ends));
            drop(call);
            wait_for("never ticked again", started, || clock.now() > parked_at);
            // A call longer than the idle time keeps it ticking to its end.
            let long = clock.slot(IDLE_TICKS * 2);
            let (_call, ends) = clock.arm(&long, Instant::now());
            while clock.now() < ends {
                assert!(!clock.is_parked(), "parked at tick {} during a call that ends at {ends}", clock.now());
                assert!(started.elapsed() < Duration::from_secs(60), "stopped ticking during a call");
                std::thread::sleep(EPOCH_TICK);
            }
        });
    }

    /// Calls that end long before their deadline wake the ticker about once
    /// a scan period (10 ticks here), not once a tick as before: the bound
    /// allows twice that and three more.
    #[test]
    fn short_calls_do_not_wake_the_ticker_every_tick() {
        with_ticker(|clock| {
            let slot = clock.slot(10);
            let (woken, started) = (clock.wakeups(), Instant::now());
            for _ in 0..60 {
                let (call, _) = clock.arm(&slot, Instant::now());
                drop(call);
                std::thread::sleep(EPOCH_TICK);
            }
            let (wakeups, ticks) = (clock.wakeups() - woken, started.elapsed().as_millis() / EPOCH_TICK.as_millis());
            let bound = u64::try_from(ticks).unwrap() / 5 + 3;
            assert!(wakeups <= bound, "{wakeups} wake-ups in {ticks} ticks of short calls (at most {bound})");
        });
    }

    /// A call still running at its end has the epoch brought to its end by
    /// the ticker, with no other call to do it.
    #[test]
    fn a_running_call_sees_the_epoch_reach_its_end() {
        with_ticker(|clock| {
            let slot = clock.slot(30);
            let (_call, ends) = clock.arm(&slot, Instant::now());
            wait_for("the epoch never reached the call's end", Instant::now(), || clock.now() >= ends);
        });
    }
}
