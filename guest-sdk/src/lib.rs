//! Write wasock WebSocket plugins in Rust.
//!
//! A plugin is a type that implements [`Handler`] (every method has a no-op
//! default, so implement only the events you need) and is exported with
//! [`export!`]. The plugin's state is `&mut self`; it lives as long as the
//! plugin instance.
//!
//! ```ignore
//! use wasock_guest::{Handler, Session};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_connected(&mut self, session: Session) {
//!         session.write_text("Welcome to the chat room!");
//!     }
//!     fn handle_text(&mut self, session: &Session, text: String) {
//!         session.write_text(&format!("You said: {text}"));
//!     }
//! }
//!
//! wasock_guest::export!(Echo);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` as a `cdylib`:
//! the output `.wasm` is the component.
//!
//! # Sessions
//! [`Session`] is a handle to one connection. `on_connected` hands you an
//! owned one: keep it (e.g. in a `Vec`) to write to that client later, or let
//! it drop. Later events lend you `&Session`. Dropping a handle never closes
//! the connection. A write returns a [`SendStatus`] instead of failing:
//! [`SendStatus::Closed`] through a handle whose connection has ended,
//! [`SendStatus::QueueFull`] when the client does not keep up (then
//! [`Handler::on_drain`] tells you when it has room again). Two handles are
//! equal when they refer to the same session.
//!
//! # Rooms and who may connect
//! [`Handler::on_upgrade`] decides who connects, before the handshake:
//! [`reject`] with a status and a body, or [`accept`] with a subprotocol,
//! the session's first attachment and the topics it joins. Topics are held
//! by the host ([`Session::subscribe`], [`publish_text`], [`topic_members`]),
//! and like attachments they survive restarts and upgrades, so a plugin
//! that keeps its state there needs no `on_restore` at all.

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "batched-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "wasock_guest::__bindings",
    });
}

#[doc(hidden)]
pub mod batch;
mod session;
mod upgrade;

pub use __bindings::wasock::plugin::topics::Member;
pub use __bindings::wasock::plugin::types::{AttachmentStatus, SendStatus, SessionId, SubscribeStatus};
use __bindings::wasock::plugin::{endpoint, topics};
pub use session::Session;
pub use upgrade::{Accept, Decision, Reject, UpgradeRequest, accept, reject};

/// The events of one endpoint. The host calls them one at a time, in the
/// order they happened.
pub trait Handler: Default + 'static {
    /// A client asks to connect: [`accept`] it (the default) or [`reject`]
    /// it. Runs under the call deadline, before any session exists.
    fn on_upgrade(&mut self, request: UpgradeRequest) -> Decision {
        let _ = request;
        accept().into()
    }

    /// A client connected. Keep `session` to write to it later.
    fn on_connected(&mut self, session: Session) {
        let _ = session;
    }

    /// The client sent a text message.
    fn handle_text(&mut self, session: &Session, text: String) {
        let _ = (session, text);
    }

    /// The client sent a binary message.
    fn handle_binary(&mut self, session: &Session, data: Vec<u8>) {
        let _ = (session, data);
    }

    /// The client answered a heartbeat ping.
    fn on_pong(&mut self, session: &Session, data: Vec<u8>) {
        let _ = (session, data);
    }

    /// A write to `session` returned [`SendStatus::QueueFull`] and its
    /// queue has room again.
    fn on_drain(&mut self, session: &Session) {
        let _ = session;
    }

    /// The connection ended (called exactly once per session, last). The
    /// session has left its topics; its attachment is still readable.
    fn on_disconnected(&mut self, session: &Session) {
        let _ = session;
    }

    /// This instance takes over an endpoint whose clients are still
    /// connected: after the previous instance trapped (`state` is `None`),
    /// or on an upgrade (`state` is what the old version's
    /// [`snapshot`](Handler::snapshot) returned). Called before any other
    /// event; keep the sessions you want to write to later.
    fn on_restore(&mut self, sessions: Vec<Session>, state: Option<Vec<u8>>) {
        let _ = (sessions, state);
    }

    /// A new version is about to replace this instance: return the state to
    /// hand over to its [`on_restore`](Handler::on_restore).
    fn snapshot(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Session {}

/// The ids of every live session of this endpoint, oldest first (the host's
/// list: right even after the plugin was restarted or upgraded).
pub fn sessions() -> Vec<SessionId> {
    batch::settle();
    endpoint::sessions()
}

/// Sends `text` to every live session of this endpoint, in one host call.
pub fn broadcast_text(text: &str) {
    batch::settle();
    endpoint::broadcast_text(text);
}

/// Sends `text` to every live session but `except`.
pub fn broadcast_text_except(text: &str, except: &Session) {
    batch::settle();
    endpoint::broadcast_text_except(text, except.id());
}

/// Sends `data` to every live session of this endpoint, in one host call.
pub fn broadcast_data(data: &[u8]) {
    batch::settle();
    endpoint::broadcast_data(data);
}

/// Sends `data` to every live session but `except`.
pub fn broadcast_data_except(data: &[u8], except: &Session) {
    batch::settle();
    endpoint::broadcast_data_except(data, except.id());
}

/// Sends `text` to every member of `topic`, in one host call.
pub fn publish_text(topic: &str, text: &str) {
    batch::settle();
    topics::publish_text(topic, text);
}

/// Sends `text` to every member of `topic` but `except`.
pub fn publish_text_except(topic: &str, text: &str, except: &Session) {
    batch::settle();
    topics::publish_text_except(topic, text, except.id());
}

/// Sends `data` to every member of `topic`, in one host call.
pub fn publish_data(topic: &str, data: &[u8]) {
    batch::settle();
    topics::publish_data(topic, data);
}

/// Sends `data` to every member of `topic` but `except`.
pub fn publish_data_except(topic: &str, data: &[u8], except: &Session) {
    batch::settle();
    topics::publish_data_except(topic, data, except.id());
}

/// How many sessions are in `topic`.
pub fn topic_size(topic: &str) -> u32 {
    batch::settle();
    topics::size(topic)
}

/// The members of `topic` (ids and attachments), in the order they joined.
pub fn topic_members(topic: &str) -> Vec<Member> {
    batch::settle();
    topics::members(topic)
}

#[doc(hidden)]
pub mod __private {
    pub use crate::__bindings::exports::wasock::plugin::handler::Guest;
    pub use crate::__bindings::exports::wasock::plugin::lifecycle::Guest as LifecycleGuest;
    pub use crate::__bindings::exports::wasock::plugin::messages::{Guest as MessagesGuest, Message};
    pub use crate::__bindings::exports::wasock::plugin::upgrade::Guest as UpgradeGuest;
    pub use crate::__bindings::wasock::plugin::types::Session as Handle;

    /// The SDK's view of a handle the host gave.
    pub fn owned(handle: Handle) -> crate::Session {
        crate::Session::new(handle)
    }

    /// The SDK's view of handles the host gave.
    pub fn all(handles: Vec<Handle>) -> Vec<crate::Session> {
        crate::Session::all(handles)
    }

    /// The SDK's view of a handle the host lent.
    pub fn lent(handle: &Handle) -> &crate::Session {
        crate::Session::lent(handle)
    }
}

/// Exports a [`Handler`] type as the plugin. The type's `Default` value is
/// the initial state, made on the first event.
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        const _: () = {
            struct __WasockPlugin;

            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            fn with_state<R>(f: impl FnOnce(&mut $ty) -> R) -> R {
                STATE.with(|state| {
                    let mut state = state.borrow_mut();
                    f(state.get_or_insert_with(<$ty as ::std::default::Default>::default))
                })
            }

            impl $crate::__private::LifecycleGuest for __WasockPlugin {
                fn restore(
                    sessions: ::std::vec::Vec<$crate::__private::Handle>,
                    state: ::std::option::Option<::std::vec::Vec<u8>>,
                ) {
                    with_state(|p| $crate::Handler::on_restore(p, $crate::__private::all(sessions), state))
                }
                fn snapshot() -> ::std::vec::Vec<u8> {
                    with_state(|p| $crate::Handler::snapshot(p))
                }
            }

            impl $crate::__private::MessagesGuest for __WasockPlugin {
                fn handle_messages(
                    sessions: ::std::vec::Vec<$crate::__private::Handle>,
                    messages: ::std::vec::Vec<$crate::__private::Message>,
                    texts: ::std::string::String,
                    data: ::std::vec::Vec<u8>,
                ) {
                    let sessions = $crate::__private::all(sessions);
                    with_state(|p| $crate::batch::dispatch(p, &sessions, &messages, &texts, &data))
                }
            }

            impl $crate::__private::UpgradeGuest for __WasockPlugin {
                fn on_upgrade(request: $crate::UpgradeRequest) -> $crate::Decision {
                    with_state(|p| $crate::Handler::on_upgrade(p, request))
                }
            }

            impl $crate::__private::Guest for __WasockPlugin {
                fn on_connected(session: $crate::__private::Handle) {
                    with_state(|p| $crate::Handler::on_connected(p, $crate::__private::owned(session)))
                }
                fn handle_text(session: &$crate::__private::Handle, text: ::std::string::String) {
                    with_state(|p| $crate::Handler::handle_text(p, $crate::__private::lent(session), text))
                }
                fn handle_binary(session: &$crate::__private::Handle, data: ::std::vec::Vec<u8>) {
                    with_state(|p| $crate::Handler::handle_binary(p, $crate::__private::lent(session), data))
                }
                fn on_pong(session: &$crate::__private::Handle, data: ::std::vec::Vec<u8>) {
                    with_state(|p| $crate::Handler::on_pong(p, $crate::__private::lent(session), data))
                }
                fn on_drain(session: &$crate::__private::Handle) {
                    with_state(|p| $crate::Handler::on_drain(p, $crate::__private::lent(session)))
                }
                fn on_disconnected(session: &$crate::__private::Handle) {
                    with_state(|p| $crate::Handler::on_disconnected(p, $crate::__private::lent(session)))
                }
            }

            $crate::__bindings::__export_plugin!(__WasockPlugin);
        };
    };
}
