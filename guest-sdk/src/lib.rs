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
//! [`SendStatus::QueueFull`] when the client does not keep up. Two handles are equal when they refer to
//! the same session.

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "stateful-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "wasock_guest::__bindings",
    });
}

use __bindings::wasock::plugin::endpoint;
pub use __bindings::wasock::plugin::types::{AttachmentError, SendStatus, Session, SessionId};

/// The events of one endpoint. The host calls them one at a time, in the
/// order they happened.
pub trait Handler: Default + 'static {
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

    /// The connection ended (called exactly once per session, last).
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
    endpoint::sessions()
}

/// Sends `text` to every live session of this endpoint, in one host call.
/// Returns how many sessions it was queued to.
pub fn broadcast_text(text: &str) -> u32 {
    endpoint::broadcast_text(text, None)
}

/// Sends `text` to every live session but `except`.
pub fn broadcast_text_except(text: &str, except: &Session) -> u32 {
    endpoint::broadcast_text(text, Some(except.id()))
}

/// Sends `data` to every live session of this endpoint, in one host call.
pub fn broadcast_data(data: &[u8]) -> u32 {
    endpoint::broadcast_data(data, None)
}

/// Sends `data` to every live session but `except`.
pub fn broadcast_data_except(data: &[u8], except: &Session) -> u32 {
    endpoint::broadcast_data(data, Some(except.id()))
}

#[doc(hidden)]
pub mod __private {
    pub use crate::__bindings::exports::wasock::plugin::handler::Guest;
    pub use crate::__bindings::exports::wasock::plugin::lifecycle::Guest as LifecycleGuest;
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
                    sessions: ::std::vec::Vec<$crate::Session>,
                    state: ::std::option::Option<::std::vec::Vec<u8>>,
                ) {
                    with_state(|p| $crate::Handler::on_restore(p, sessions, state))
                }
                fn snapshot() -> ::std::vec::Vec<u8> {
                    with_state(|p| $crate::Handler::snapshot(p))
                }
            }

            impl $crate::__private::Guest for __WasockPlugin {
                fn on_connected(session: $crate::Session) {
                    with_state(|p| $crate::Handler::on_connected(p, session))
                }
                fn handle_text(session: &$crate::Session, text: ::std::string::String) {
                    with_state(|p| $crate::Handler::handle_text(p, session, text))
                }
                fn handle_binary(session: &$crate::Session, data: ::std::vec::Vec<u8>) {
                    with_state(|p| $crate::Handler::handle_binary(p, session, data))
                }
                fn on_pong(session: &$crate::Session, data: ::std::vec::Vec<u8>) {
                    with_state(|p| $crate::Handler::on_pong(p, session, data))
                }
                fn on_disconnected(session: &$crate::Session) {
                    with_state(|p| $crate::Handler::on_disconnected(p, session))
                }
            }

            $crate::__bindings::__export_plugin!(__WasockPlugin);
        };
    };
}
