//! Writing a plain session's queued messages straight to its socket from
//! the endpoint thread, where the replies to a batch of events are flushed,
//! instead of waking the session's task to write them.
//!
//! Measured (`bench/instructions.sh 6 topic`, BENCHMARKS "Against Bun
//! (session 19)"): a woken task's turn (tokio's schedule and poll, the
//! turn's checks, the pop, the codec's write through the socket's
//! wrappers) was most of what a delivery cost besides its system call
//! (2 268 -> 738 user-space instructions per delivery without it).
//! uWebSockets, under Bun, writes from `publish` itself the same way.
//!
//! A write may go out here only while the session's task could not be
//! writing: its codec has nothing queued, it is open and uncompressed
//! ([`crate::codec::Codec::idle`]) and the task is waiting, not running.
//! The task says so as each of its turns ends ([`Direct::end_turn`]) and
//! takes it back as the next begins; a write here holds the same state for
//! its length, so the task and a writer never write at once, on one thread
//! or two. Whatever the socket does not take at once (a slow client) is
//! kept as framed bytes for the task, which writes them before anything
//! else and only then lets writes come here again. A session over TLS, or
//! compressed, has no [`Direct`] socket: its task writes everything.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

/// Nobody writes: the task is not waiting, or has writing left to do.
const OFF: u8 = 0;
/// The task waits with nothing left to write: a writer may take over.
const CLEAN: u8 = 1;
/// The task runs a turn.
const TURN: u8 = 2;
/// A writer writes.
const WRITING: u8 = 3;
/// A writer left framed bytes for the task (a partial write).
const LEFT: u8 = 4;
/// The session is over and its socket about to close.
const DEAD: u8 = 5;

/// A session's socket as the endpoint thread may write to it.
#[derive(Debug)]
pub(super) struct Direct {
    /// The socket's descriptor; -1 for a session whose task writes all.
    fd: RawFd,
    state: AtomicU8,
}

impl Direct {
    /// For the socket `fd`, which stays open until [`retire`](Self::retire)
    /// (`None`: never written here).
    pub(super) fn new(fd: Option<RawFd>) -> Self {
        Self { fd: fd.unwrap_or(-1), state: AtomicU8::new(OFF) }
    }

    /// Takes the socket to write to it, if the task waits with nothing
    /// left to write; [`Writer::end`] gives it back.
    pub(super) fn begin_write(&self) -> Option<Writer<'_>> {
        (self.fd >= 0 && self.state.compare_exchange(CLEAN, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok())
            .then_some(Writer(self))
    }

    /// A turn of the task begins: no writer may start. True if the last
    /// writer left bytes for it (see [`super::outbound::Outbound::take_unwritten`]).
    pub(super) fn begin_turn(&self) -> bool {
        self.fd >= 0 && self.claim() == LEFT
    }

    /// A turn of the task ends; with `idle`, it waits with nothing left to
    /// write, and writers may write.
    pub(super) fn end_turn(&self, idle: bool) {
        if self.fd >= 0 {
            // From TURN, as the turn's begin left it; never out of DEAD.
            let next = if idle { CLEAN } else { OFF };
            let _ = self.state.compare_exchange(TURN, next, Ordering::Release, Ordering::Relaxed);
        }
    }

    /// The session is over: no writer will use the socket again, and none
    /// is using it now. Called before the socket closes.
    pub(super) fn retire(&self) {
        if self.fd >= 0 {
            self.claim();
            self.state.store(DEAD, Ordering::Release);
        }
    }

    /// Takes the state for the task (waiting out a writer that is writing,
    /// on another thread: not reached while the task and its writers share
    /// one, as they do); returns what it was. A turn that never ended (it
    /// panicked) is taken over as it is.
    fn claim(&self) -> u8 {
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state == WRITING {
                std::hint::spin_loop();
                continue;
            }
            if state == DEAD
                || self.state.compare_exchange_weak(state, TURN, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return state;
            }
        }
    }
}

/// The socket taken for writing ([`Direct::begin_write`]).
#[derive(Debug)]
pub(super) struct Writer<'a>(&'a Direct);

impl Writer<'_> {
    /// Writes as much of `framed` as the socket takes now, without waiting.
    pub(super) fn write(&self, framed: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `fd` is the session's open socket. It closes only
            // after `retire`, which waits while the state is WRITING, and
            // this writer holds it WRITING for its life. `framed` is valid
            // for its length; the socket is non-blocking, and MSG_NOSIGNAL
            // turns a closed peer into EPIPE instead of a signal.
            #[allow(unsafe_code)]
            let sent = unsafe { libc::send(self.0.fd, framed.as_ptr().cast(), framed.len(), libc::MSG_NOSIGNAL) };
            if let Ok(sent) = usize::try_from(sent) {
                return Ok(sent);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(err),
            }
        }
    }

    /// Gives the socket back: with `left`, bytes were left for the task
    /// (which must then be woken).
    pub(super) fn end(self, left: bool) {
        self.0.state.store(if left { LEFT } else { CLEAN }, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_come_only_between_turns_that_end_idle() {
        let direct = Direct::new(Some(0));
        assert!(direct.begin_write().is_none(), "before the task's first turn");
        direct.end_turn(false);
        assert!(direct.begin_write().is_none(), "the task has writing left");
        assert!(!direct.begin_turn());
        direct.end_turn(true);
        let writer = direct.begin_write().expect("the task waits");
        assert!(direct.begin_write().is_none(), "one writer at a time");
        writer.end(true);
        assert!(direct.begin_write().is_none(), "bytes are left for the task");
        assert!(direct.begin_turn(), "the task learns of them");
        assert!(direct.begin_write().is_none(), "during the turn");
        direct.end_turn(true);
        assert!(!direct.begin_turn());
        assert!(!direct.begin_turn(), "a turn that panicked is taken over");
        direct.retire();
        assert!(direct.begin_write().is_none(), "after the end");
        let none = Direct::new(None);
        none.end_turn(true);
        assert!(none.begin_write().is_none(), "no socket to write to");
    }
}
