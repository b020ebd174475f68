//! What a plugin exports, whichever contract it was built against: one
//! [`Exports`] with a method per event, so that the endpoint never sees
//! contract versions. A 0.1 component has no `upgrade` or `on-drain`; its
//! events reach it exactly as they did under 0.1.

use super::bindings::v1::exports::wasock::plugin as v1;
use super::bindings::v2::exports::wasock::plugin as v2;
use super::host::{HostState, SessionResource, SessionV1};
use crate::session::{UpgradeAccept, UpgradeDecision, UpgradeReject, UpgradeRequest};
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre, Resource};

pub use v2::messages::{Kind as MessageKind, Message};

impl Message {
    /// A message of `kind` and `len` bytes from the call's session number
    /// `session`.
    pub fn new(session: u32, kind: MessageKind, len: u32) -> Self {
        Self { session, kind, len }
    }
}

/// The contract a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `wasock:plugin@0.1.0`.
    V0_1,
    /// `wasock:plugin@0.2.0`.
    V0_2,
}

impl Contract {
    /// The version, e.g. `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1.0",
            Self::V0_2 => "0.2.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wasock:plugin@{}", self.version())
    }
}

/// Where a component's exports are, found once per compiled plugin.
pub(super) enum Indices {
    V1 {
        handler: v1::handler::GuestIndices,
        lifecycle: Option<v1::lifecycle::GuestIndices>,
    },
    V2 {
        handler: v2::handler::GuestIndices,
        lifecycle: Option<v2::lifecycle::GuestIndices>,
        upgrade: Option<v2::upgrade::GuestIndices>,
        messages: Option<v2::messages::GuestIndices>,
    },
}

impl Indices {
    /// Finds the exports of 0.2, else of 0.1; 0.2's complaint if neither.
    pub(super) fn new(pre: &InstancePre<HostState>) -> wasmtime::Result<Self> {
        match v2::handler::GuestIndices::new(pre) {
            Ok(handler) => Ok(Self::V2 {
                handler,
                lifecycle: v2::lifecycle::GuestIndices::new(pre).ok(),
                upgrade: v2::upgrade::GuestIndices::new(pre).ok(),
                messages: v2::messages::GuestIndices::new(pre).ok(),
            }),
            Err(v2_err) => match v1::handler::GuestIndices::new(pre) {
                Ok(handler) => Ok(Self::V1 { handler, lifecycle: v1::lifecycle::GuestIndices::new(pre).ok() }),
                Err(_) => Err(v2_err),
            },
        }
    }

    pub(super) fn has_upgrade(&self) -> bool {
        matches!(self, Self::V2 { upgrade: Some(_), .. })
    }

    pub(super) fn contract(&self) -> Contract {
        match self {
            Self::V1 { .. } => Contract::V0_1,
            Self::V2 { .. } => Contract::V0_2,
        }
    }

    /// The exports of `instance`.
    pub(super) fn load(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<Exports> {
        Ok(match self {
            Self::V1 { handler, lifecycle } => Exports::V1 {
                handler: handler.load(&mut *store, instance)?,
                lifecycle: lifecycle.as_ref().map(|l| l.load(&mut *store, instance)).transpose()?,
            },
            Self::V2 { handler, lifecycle, upgrade, messages } => Exports::V2 {
                handler: handler.load(&mut *store, instance)?,
                lifecycle: lifecycle.as_ref().map(|l| l.load(&mut *store, instance)).transpose()?,
                upgrade: upgrade.as_ref().map(|u| u.load(&mut *store, instance)).transpose()?,
                messages: messages.as_ref().map(|m| m.load(&mut *store, instance)).transpose()?,
            },
        })
    }
}

/// A plugin instance's exports.
pub enum Exports {
    /// A 0.1 component.
    V1 {
        /// Its events.
        handler: v1::handler::Guest,
        /// `restore` / `snapshot`, if it has them.
        lifecycle: Option<v1::lifecycle::Guest>,
    },
    /// A 0.2 component.
    V2 {
        /// Its events.
        handler: v2::handler::Guest,
        /// `restore` / `snapshot`, if it has them.
        lifecycle: Option<v2::lifecycle::Guest>,
        /// The upgrade hook, if it has one.
        upgrade: Option<v2::upgrade::Guest>,
        /// Batches of messages, if it takes them.
        messages: Option<v2::messages::Guest>,
    },
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports")
            .field("lifecycle", &self.has_lifecycle())
            .field("upgrade", &self.has_upgrade())
            .field("batches", &self.takes_batches())
            .finish_non_exhaustive()
    }
}

type Store_ = Store<HostState>;

impl Exports {
    /// A new session; the plugin gets an owned handle (`rep`).
    pub fn on_connected(&self, store: &mut Store_, rep: u32) -> wasmtime::Result<()> {
        match self {
            Self::V1 { handler, .. } => handler.call_on_connected(store, Resource::<SessionV1>::new_own(rep)),
            Self::V2 { handler, .. } => handler.call_on_connected(store, Resource::<SessionResource>::new_own(rep)),
        }
    }

    /// A text message, lent the session's borrow handle `rep`.
    pub fn handle_text(&self, store: &mut Store_, rep: u32, text: &str) -> wasmtime::Result<()> {
        match self {
            Self::V1 { handler, .. } => handler.call_handle_text(store, Resource::new_borrow(rep), text),
            Self::V2 { handler, .. } => handler.call_handle_text(store, Resource::new_borrow(rep), text),
        }
    }

    /// A binary message.
    pub fn handle_binary(&self, store: &mut Store_, rep: u32, data: &[u8]) -> wasmtime::Result<()> {
        match self {
            Self::V1 { handler, .. } => handler.call_handle_binary(store, Resource::new_borrow(rep), data),
            Self::V2 { handler, .. } => handler.call_handle_binary(store, Resource::new_borrow(rep), data),
        }
    }

    /// A pong.
    pub fn on_pong(&self, store: &mut Store_, rep: u32, data: &[u8]) -> wasmtime::Result<()> {
        match self {
            Self::V1 { handler, .. } => handler.call_on_pong(store, Resource::new_borrow(rep), data),
            Self::V2 { handler, .. } => handler.call_on_pong(store, Resource::new_borrow(rep), data),
        }
    }

    /// A full queue has room again (0.2 only).
    pub fn on_drain(&self, store: &mut Store_, rep: u32) -> wasmtime::Result<()> {
        match self {
            Self::V1 { .. } => Ok(()),
            Self::V2 { handler, .. } => handler.call_on_drain(store, Resource::new_borrow(rep)),
        }
    }

    /// The session ended.
    pub fn on_disconnected(&self, store: &mut Store_, rep: u32) -> wasmtime::Result<()> {
        match self {
            Self::V1 { handler, .. } => handler.call_on_disconnected(store, Resource::new_borrow(rep)),
            Self::V2 { handler, .. } => handler.call_on_disconnected(store, Resource::new_borrow(rep)),
        }
    }

    /// Whether the plugin takes several messages per call (`messages`).
    pub fn takes_batches(&self) -> bool {
        matches!(self, Self::V2 { messages: Some(_), .. })
    }

    /// Several messages in one call (see [`super::batch`]), sent by the
    /// sessions whose new owned handles are `sessions` (a message names its
    /// session by index there); their payloads are cut from `texts` and
    /// `data` in turn. Only for a plugin that
    /// [takes batches](Self::takes_batches).
    pub fn handle_messages(
        &self,
        store: &mut Store_,
        sessions: impl Iterator<Item = u32>,
        messages: &[Message],
        texts: &str,
        data: &[u8],
    ) -> wasmtime::Result<()> {
        match self {
            Self::V2 { messages: Some(m), .. } => {
                let sessions: Vec<Resource<SessionResource>> = sessions.map(Resource::new_own).collect();
                m.call_handle_messages(store, &sessions, messages, texts, data)
            }
            _ => Err(wasmtime::format_err!("the plugin takes no batches of messages")),
        }
    }

    /// Whether the plugin exports `lifecycle`.
    pub fn has_lifecycle(&self) -> bool {
        matches!(self, Self::V1 { lifecycle: Some(_), .. } | Self::V2 { lifecycle: Some(_), .. })
    }

    /// Hands a fresh instance owned handles `reps` and the old `state`;
    /// does nothing without `lifecycle`.
    pub fn restore(&self, store: &mut Store_, reps: &[u32], state: Option<&[u8]>) -> wasmtime::Result<()> {
        match self {
            Self::V1 { lifecycle: Some(l), .. } => {
                let handles: Vec<_> = reps.iter().map(|&r| Resource::<SessionV1>::new_own(r)).collect();
                l.call_restore(store, &handles, state)
            }
            Self::V2 { lifecycle: Some(l), .. } => {
                let handles: Vec<_> = reps.iter().map(|&r| Resource::<SessionResource>::new_own(r)).collect();
                l.call_restore(store, &handles, state)
            }
            _ => Ok(()),
        }
    }

    /// The state to hand to a successor; `None` without `lifecycle`.
    pub fn snapshot(&self, store: &mut Store_) -> Option<wasmtime::Result<Vec<u8>>> {
        match self {
            Self::V1 { lifecycle: Some(l), .. } => Some(l.call_snapshot(store)),
            Self::V2 { lifecycle: Some(l), .. } => Some(l.call_snapshot(store)),
            _ => None,
        }
    }

    /// Whether the plugin exports the upgrade hook.
    pub fn has_upgrade(&self) -> bool {
        matches!(self, Self::V2 { upgrade: Some(_), .. })
    }

    /// Asks the upgrade hook; without one, accepts.
    pub fn on_upgrade(&self, store: &mut Store_, request: &UpgradeRequest) -> wasmtime::Result<UpgradeDecision> {
        let Self::V2 { upgrade: Some(hook), .. } = self else {
            return Ok(UpgradeDecision::Accept(UpgradeAccept::default()));
        };
        let wit_request = v2::upgrade::Request {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            remote_address: request.remote.to_string(),
            protocols: request.protocols.clone(),
        };
        Ok(match hook.call_on_upgrade(store, &wit_request)? {
            v2::upgrade::Decision::Accept(a) => UpgradeDecision::Accept(UpgradeAccept {
                protocol: a.protocol,
                headers: a.headers,
                attachment: a.attachment,
                topics: a.topics,
                shard_key: a.shard_key,
            }),
            v2::upgrade::Decision::Reject(r) => {
                UpgradeDecision::Reject(UpgradeReject { status: r.status, headers: r.headers, body: r.body })
            }
        })
    }
}
