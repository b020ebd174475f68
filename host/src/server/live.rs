//! The server's list of live WebSocket sessions, so that shutdown can reach
//! each one.
//!
//! A session waits on its outbound queue's waker, not on a shared shutdown
//! future (polling one on every turn of every session's loop costs two
//! mutexes). Stopping sets one flag and wakes every listed session; a
//! session listed after that sees the flag on its first turn.

use crate::session::{SessionId, SessionWaker};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Live sessions and the stop flag.
#[derive(Debug, Default)]
pub(super) struct LiveSessions {
    /// Each live session's waker.
    sessions: Mutex<HashMap<SessionId, SessionWaker>>,
    /// The server has started stopping.
    stopping: AtomicBool,
}

impl LiveSessions {
    /// Lists a session that has started.
    pub(super) fn insert(&self, id: SessionId, waker: SessionWaker) {
        self.lock().insert(id, waker);
    }

    /// Removes a session that has ended.
    pub(super) fn remove(&self, id: SessionId) {
        self.lock().remove(&id);
    }

    /// Whether the server has started stopping.
    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sets the stop flag and wakes every session to see it.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for waker in self.lock().values() {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionWaker>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
