//! The endpoint's registry of live sessions and of the handles the plugin
//! holds on them.
//!
//! The host owns the truth about who is connected: this registry outlives any
//! one plugin instance (it moves to the fresh instance after a trap or an
//! upgrade). The plugin sees sessions only through resource handles, whose
//! `rep` indexes `handles`; a handle maps to a session id, never to a slot
//! that could be reused, so a stale handle can only ever report `closed`.

use super::outbound::{OutboundTx, QueueError};
use crate::manifest::{Limits, QueueFull};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Identifies one connection for the life of the server; never reused.
pub type SessionId = u64;

/// What the host keeps about one live session.
#[derive(Debug, Clone)]
pub struct Live {
    /// Request path it connected with.
    pub path: String,
    /// Request query, without `?`.
    pub query: Option<String>,
    /// Its outbound queue.
    out: OutboundTx,
    /// The handle rep passed as `borrow<session>` in this session's events.
    borrow_rep: u32,
    /// `close` was called: writes fail and events are no longer delivered.
    closing: bool,
    /// The plugin's per-session bytes, kept across instances.
    attachment: Option<Box<[u8]>>,
    /// Since when the outbound queue has been refusing writes.
    full_since: Option<Instant>,
}

/// Live sessions by id (ids grow, so iteration is oldest first), the handle
/// table, and the per-session policies from the plugin's limits.
#[derive(Debug)]
pub struct Sessions {
    live: BTreeMap<SessionId, Live>,
    handles: slab::Slab<SessionId>,
    on_full: QueueFull,
    full_grace: Duration,
    attachment_limit: usize,
    plugin: std::sync::Arc<str>,
}

/// Why an attachment was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// Over the plugin's `attachment-bytes`.
    TooLarge,
    /// The session has ended.
    Closed,
}

impl Sessions {
    /// An empty registry applying `limits` (for `plugin`'s log lines).
    pub fn new(plugin: std::sync::Arc<str>, limits: &Limits) -> Self {
        Self {
            live: BTreeMap::new(),
            handles: slab::Slab::new(),
            on_full: limits.on_queue_full,
            full_grace: limits.queue_full_grace(),
            attachment_limit: limits.attachment_bytes,
            plugin,
        }
    }

    /// Registers a new session; returns the rep of a fresh owned handle to it.
    pub fn insert(
        &mut self,
        id: SessionId,
        path: String,
        query: Option<String>,
        out: OutboundTx,
    ) -> u32 {
        let borrow_rep = self.new_handle(id);
        self.live.insert(
            id,
            Live {
                path,
                query,
                out,
                borrow_rep,
                closing: false,
                attachment: None,
                full_since: None,
            },
        );
        self.new_handle(id)
    }

    /// A copy of this registry for a new plugin version: the same sessions
    /// (and outbound queues and attachments) with a fresh handle table, under
    /// the new version's limits. The original stays intact, so the old
    /// version can keep serving if the new one fails to start.
    pub fn fork(&self, plugin: std::sync::Arc<str>, limits: &Limits) -> Self {
        let mut fork = Self::new(plugin, limits);
        fork.live = self.live.clone();
        fork.reset_handles();
        fork
    }

    /// Forgets a session and its borrow handle. Owned handles the plugin
    /// still holds stay valid and report `closed`.
    pub fn remove(&mut self, id: SessionId) -> Option<Live> {
        let live = self.live.remove(&id)?;
        self.handles.try_remove(live.borrow_rep as usize);
        Some(live)
    }

    /// A new handle rep for `id`, whether or not it is live.
    fn new_handle(&mut self, id: SessionId) -> u32 {
        u32::try_from(self.handles.insert(id)).expect("fewer than 2^32 session handles")
    }

    /// A fresh owned handle to a live session.
    pub fn open(&mut self, id: SessionId) -> Option<u32> {
        self.live.contains_key(&id).then(|| self.new_handle(id))
    }

    /// Releases an owned handle the plugin dropped.
    pub fn drop_handle(&mut self, rep: u32) {
        self.handles.try_remove(rep as usize);
    }

    /// The session a handle refers to; `None` for a rep this registry never
    /// handed out (a host bug, reported as a trap).
    pub fn resolve(&self, rep: u32) -> Option<SessionId> {
        self.handles.get(rep as usize).copied()
    }

    /// A live session that has not been closed by the plugin, and the rep to
    /// pass as its borrow handle.
    pub fn deliverable(&self, id: SessionId) -> Option<u32> {
        self.live
            .get(&id)
            .filter(|l| !l.closing)
            .map(|l| l.borrow_rep)
    }

    /// The rep of a live session's borrow handle, closing or not.
    pub fn borrow_rep(&self, id: SessionId) -> Option<u32> {
        self.live.get(&id).map(|l| l.borrow_rep)
    }

    /// The endpoint has taken one client message of `id` off its queue: its
    /// read credit returns. Returns the rep to pass as the session's borrow
    /// handle if the message is to be delivered (the session is live and not
    /// closed by the plugin).
    pub fn event_done(&self, id: SessionId) -> Option<u32> {
        let live = self.live.get(&id)?;
        live.out.event_done();
        (!live.closing).then_some(live.borrow_rep)
    }

    /// A live session's data.
    pub fn get(&self, id: SessionId) -> Option<&Live> {
        self.live.get(&id)
    }

    /// Whether `id` is live and not closing.
    pub fn is_open(&self, id: SessionId) -> bool {
        self.deliverable(id).is_some()
    }

    /// Ids of every live session, oldest first.
    pub fn ids(&self) -> Vec<SessionId> {
        self.live.keys().copied().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Queues a message to one session, applying the full-queue policy.
    pub fn send(&mut self, id: SessionId, msg: Message) -> Result<(), QueueError> {
        let (on_full, grace) = (self.on_full, self.full_grace);
        match self.live.get_mut(&id) {
            Some(live) if !live.closing => {
                let result = live.out.try_send(msg);
                if police(live, &result, on_full, grace) {
                    self.close_slow(id);
                }
                result
            }
            _ => Err(QueueError::Closed),
        }
    }

    /// Queues a message to every open session but `except`; returns how many
    /// took it.
    pub fn broadcast(&mut self, msg: &Message, except: Option<SessionId>) -> u32 {
        let (on_full, grace) = (self.on_full, self.full_grace);
        let mut sent = 0;
        let mut slow = Vec::new();
        for (id, live) in self.live.iter_mut() {
            if live.closing || Some(*id) == except {
                continue;
            }
            let result = live.out.try_send(msg.clone());
            if result.is_ok() {
                sent += 1;
            } else if police(live, &result, on_full, grace) {
                slow.push(*id);
            }
        }
        for id in slow {
            self.close_slow(id);
        }
        sent
    }

    fn close_slow(&mut self, id: SessionId) {
        tracing::warn!(plugin = %self.plugin, session = id, "outbound queue stayed full; closing the session with 1008");
        self.close(id, Some(1008), "client too slow: outbound queue full");
    }

    /// The session's attachment.
    pub fn attachment(&self, id: SessionId) -> Option<Vec<u8>> {
        self.live.get(&id)?.attachment.as_deref().map(<[u8]>::to_vec)
    }

    /// Stores the session's attachment.
    pub fn set_attachment(&mut self, id: SessionId, data: Vec<u8>) -> Result<(), AttachError> {
        if data.len() > self.attachment_limit {
            return Err(AttachError::TooLarge);
        }
        let live = self.live.get_mut(&id).ok_or(AttachError::Closed)?;
        live.attachment = Some(data.into_boxed_slice());
        Ok(())
    }

    /// Starts closing a session: queues the close frame after what is already
    /// queued and stops delivering its events. Closing twice does nothing.
    pub fn close(&mut self, id: SessionId, code: Option<u16>, reason: &str) {
        let Some(live) = self.live.get_mut(&id) else {
            return;
        };
        if live.closing {
            return;
        }
        live.closing = true;
        let frame = close_frame(code, reason);
        // A closed queue means the connection is already going away.
        let _ = live.out.send_control(Message::Close(Some(frame)));
    }

    /// Drops every handle (the plugin instance that held them is gone) and
    /// makes new borrow handles for the live sessions.
    pub fn reset_handles(&mut self) {
        self.handles.clear();
        let ids: Vec<SessionId> = self.live.keys().copied().collect();
        for id in ids {
            let rep = self.new_handle(id);
            if let Some(live) = self.live.get_mut(&id) {
                live.borrow_rep = rep;
            }
        }
    }
}

/// Tracks how long a session's queue has refused writes; true when the
/// `close` policy says the session must go.
fn police(live: &mut Live, result: &Result<(), QueueError>, on_full: QueueFull, grace: Duration) -> bool {
    match result {
        Err(QueueError::Full) => {
            let since = *live.full_since.get_or_insert_with(Instant::now);
            on_full == QueueFull::Close && since.elapsed() >= grace
        }
        _ => {
            live.full_since = None;
            false
        }
    }
}

/// A close frame the wire allows: `code` if it may be sent, else 1000, and
/// `reason` cut at a character boundary to fit the 123-byte limit.
pub fn close_frame(code: Option<u16>, reason: &str) -> CloseFrame {
    let code = code
        .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
        .unwrap_or(1000);
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::outbound;

    #[test]
    fn stale_handles_never_reach_a_new_session() {
        let mut s = Sessions::new("t".into(), &Limits::default());
        let (tx, _rx) = outbound::channel(8, 1024);
        let own = s.insert(1, "/a".into(), None, tx.clone());
        assert_eq!(s.resolve(own), Some(1));
        s.remove(1);
        let own2 = s.insert(2, "/a".into(), None, tx);
        assert_ne!(own, own2);
        assert_eq!(s.resolve(own), Some(1));
        assert_eq!(s.send(1, Message::text("x")), Err(QueueError::Closed));
        assert!(s.send(2, Message::text("x")).is_ok());
    }

    #[test]
    fn close_frames_are_sanitized() {
        assert_eq!(u16::from(close_frame(Some(1005), "").code), 1000);
        assert_eq!(u16::from(close_frame(Some(4001), "").code), 4001);
        assert_eq!(u16::from(close_frame(None, "").code), 1000);
        let long = "é".repeat(100);
        assert_eq!(close_frame(None, &long).reason.len(), 122);
    }
}
