//! [`Session`]: a handle to one connection, as the contract's `session`
//! resource with the same methods. The SDK wraps the resource so that,
//! inside a batch of messages, a write to the client that sent the message
//! goes through `batch.reply-*` and tells the host where the plugin is, and
//! every other host call first says so if it has not been said yet
//! ([`crate::batch`]). Outside a batch each method is the resource's own.

use crate::__bindings::wasock::plugin::batch::{reply_data, reply_text};
use crate::__bindings::wasock::plugin::types::{self, AttachmentStatus, SendStatus, SessionId, SubscribeStatus};
use crate::batch;

/// One live WebSocket connection to this plugin's endpoint. The host keeps
/// the truth about it: a handle is only a reference, dropping one never
/// closes the connection, and one kept after its connection ended reports
/// [`SendStatus::Closed`].
#[derive(Debug)]
#[repr(transparent)]
pub struct Session(types::Session);

impl Session {
    /// Wraps a handle the host gave.
    pub(crate) fn new(inner: types::Session) -> Self {
        Self(inner)
    }

    /// Wraps handles the host gave.
    pub(crate) fn all(inner: Vec<types::Session>) -> Vec<Self> {
        inner.into_iter().map(Self).collect()
    }

    /// Views a handle the host lent as a [`Session`].
    #[allow(unsafe_code)]
    pub(crate) fn lent(inner: &types::Session) -> &Self {
        // SAFETY: `Session` is `repr(transparent)` over `types::Session`,
        // so both have one layout, and the lifetime is the borrow's.
        unsafe { &*(inner as *const types::Session).cast::<Self>() }
    }

    /// The resource's handle number: which session this handle is, within
    /// one call.
    pub(crate) fn handle(&self) -> u32 {
        self.0.handle()
    }

    /// A new owned handle to a live session of this instance (one found with
    /// [`crate::sessions`] or [`crate::topic_members`]); `None` when no live
    /// session here has that id.
    pub fn from_id(id: SessionId) -> Option<Session> {
        batch::settle();
        types::Session::from_id(id).map(Self)
    }

    /// The session's id: unique for the server's lifetime, never 0.
    pub fn id(&self) -> SessionId {
        batch::settle();
        self.0.id()
    }

    /// The request path the client connected with, e.g. `/chat`.
    pub fn path(&self) -> String {
        batch::settle();
        self.0.path()
    }

    /// The request's query string without the `?`, if it had one.
    pub fn query(&self) -> Option<String> {
        batch::settle();
        self.0.query()
    }

    /// The subprotocol chosen at the upgrade, if one was.
    pub fn protocol(&self) -> Option<String> {
        batch::settle();
        self.0.protocol()
    }

    /// The client's address and port (the TCP peer).
    pub fn remote_address(&self) -> String {
        batch::settle();
        self.0.remote_address()
    }

    /// Whether the connection is still open and `close` was not called.
    pub fn is_open(&self) -> bool {
        batch::settle();
        self.0.is_open()
    }

    /// Bytes queued for the client and not yet written to its socket.
    pub fn buffered_amount(&self) -> u64 {
        batch::settle();
        self.0.buffered_amount()
    }

    /// The bytes last stored with [`set_attachment`](Self::set_attachment).
    pub fn attachment(&self) -> Option<Vec<u8>> {
        batch::settle();
        self.0.attachment()
    }

    /// Stores a small value with the session, replacing the last; it
    /// survives plugin restarts and upgrades.
    pub fn set_attachment(&self, data: &[u8]) -> AttachmentStatus {
        batch::settle();
        self.0.set_attachment(data)
    }

    /// Queues a text message to the client.
    pub fn write_text(&self, text: &str) -> SendStatus {
        batch::reply(self, |message| reply_text(message, text), || self.0.write_text(text))
    }

    /// Queues a binary message to the client.
    pub fn write_data(&self, data: &[u8]) -> SendStatus {
        batch::reply(self, |message| reply_data(message, data), || self.0.write_data(data))
    }

    /// Makes the session a member of `topic`.
    pub fn subscribe(&self, topic: &str) -> SubscribeStatus {
        batch::settle();
        self.0.subscribe(topic)
    }

    /// Ends the session's membership of `topic`; whether it was one.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        batch::settle();
        self.0.unsubscribe(topic)
    }

    /// The topics the session is a member of, in the order it joined.
    pub fn topics(&self) -> Vec<String> {
        batch::settle();
        self.0.topics()
    }

    /// Closes the connection with code 1000 once the messages queued are
    /// sent. No event of it reaches the plugin afterwards, except
    /// `on_disconnected`.
    pub fn close(&self) {
        batch::settle();
        self.0.close()
    }

    /// Like [`close`](Self::close), with a close code and reason.
    pub fn close_with(&self, code: u16, reason: &str) {
        batch::settle();
        self.0.close_with(code, reason)
    }
}
