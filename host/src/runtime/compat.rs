//! The host functions of the frozen `wasock:plugin@0.1.0` contract, for
//! components built before 0.2: the same registry behind them, with 0.1's
//! signatures (`session.open`, `result` from `set-attachment`, broadcasts
//! with an `option` and a count). They behave exactly as they did in 0.1.

use super::bindings::v1::wasock::plugin::{endpoint, types};
use super::host::{HostState, Sent, SessionV1, shared_session_methods};
use crate::session::{AttachError, Audience, SessionId};
use tokio_tungstenite::tungstenite::Message;
use wasmtime::component::Resource;

type Handle = Resource<SessionV1>;

impl From<Sent> for types::SendStatus {
    fn from(sent: Sent) -> Self {
        match sent {
            Sent::Queued => Self::Queued,
            Sent::Closed => Self::Closed,
            Sent::QueueFull => Self::QueueFull,
        }
    }
}

impl types::Host for HostState {}

impl types::HostSession for HostState {
    shared_session_methods!(Handle);
    fn open(&mut self, id: SessionId) -> wasmtime::Result<Option<Handle>> {
        Ok(self.sessions().lookup(id).map(Resource::new_own))
    }

    fn set_attachment(&mut self, this: Handle, data: Vec<u8>) -> wasmtime::Result<Result<(), types::AttachmentError>> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().set_attachment(id, data).map_err(|e| match e {
            AttachError::TooLarge => types::AttachmentError::TooLarge,
            AttachError::Closed => types::AttachmentError::Closed,
        }))
    }
}

impl endpoint::Host for HostState {
    fn sessions(&mut self) -> wasmtime::Result<Vec<SessionId>> {
        Ok(HostState::sessions(self).ids())
    }

    fn broadcast_text(&mut self, text: String, except: Option<SessionId>) -> wasmtime::Result<u32> {
        Ok(HostState::sessions(self).fan_out(Audience::All, &Message::text(text), except))
    }

    fn broadcast_data(&mut self, data: Vec<u8>, except: Option<SessionId>) -> wasmtime::Result<u32> {
        Ok(HostState::sessions(self).fan_out(Audience::All, &Message::binary(data), except))
    }
}
