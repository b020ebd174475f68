//! The host functions a `wasock:plugin@0.2.0` plugin imports: the `session`
//! resource and the `endpoint` and `topics` interfaces, over the endpoint's
//! session registry.
//!
//! Everything here runs on the endpoint's own thread, inside a plugin call,
//! and never blocks: writes go to bounded per-session queues.

use super::bindings::v2::wasock::plugin::{endpoint, topics, types};
use super::host::{HostState, Sent, SessionResource, shared_session_methods};
use crate::session::{AttachError, Audience, SessionId, Subscribed};
use tokio_tungstenite::tungstenite::Message;
use wasmtime::component::Resource;

type Handle = Resource<SessionResource>;

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
    fn from_id(&mut self, id: SessionId) -> wasmtime::Result<Option<Handle>> {
        Ok(self.sessions().lookup(id).map(Resource::new_own))
    }

    fn protocol(&mut self, this: Handle) -> wasmtime::Result<Option<String>> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().protocol(id).map(str::to_owned))
    }

    fn remote_address(&mut self, this: Handle) -> wasmtime::Result<String> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().peer(id).map(|p| p.to_string()).unwrap_or_default())
    }

    fn buffered_amount(&mut self, this: Handle) -> wasmtime::Result<u64> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().buffered_amount(id) as u64)
    }

    fn set_attachment(&mut self, this: Handle, data: Vec<u8>) -> wasmtime::Result<types::AttachmentStatus> {
        let id = self.session_of(&this)?;
        Ok(match self.sessions().set_attachment(id, data) {
            Ok(()) => types::AttachmentStatus::Stored,
            Err(AttachError::TooLarge) => types::AttachmentStatus::TooLarge,
            Err(AttachError::Closed) => types::AttachmentStatus::Closed,
        })
    }

    fn subscribe(&mut self, this: Handle, topic: String) -> wasmtime::Result<types::SubscribeStatus> {
        let id = self.session_of(&this)?;
        Ok(match self.sessions().subscribe(id, &topic) {
            Subscribed::Joined => types::SubscribeStatus::Joined,
            Subscribed::AlreadyJoined => types::SubscribeStatus::AlreadyJoined,
            Subscribed::TooManyTopics => types::SubscribeStatus::TooManyTopics,
            Subscribed::BadName => types::SubscribeStatus::BadName,
            Subscribed::Closed => types::SubscribeStatus::Closed,
        })
    }

    fn unsubscribe(&mut self, this: Handle, topic: String) -> wasmtime::Result<bool> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().unsubscribe(id, &topic))
    }

    fn topics(&mut self, this: Handle) -> wasmtime::Result<Vec<String>> {
        let id = self.session_of(&this)?;
        Ok(self.sessions().topics_of(id))
    }
}

impl endpoint::Host for HostState {
    fn sessions(&mut self) -> wasmtime::Result<Vec<SessionId>> {
        Ok(HostState::sessions(self).ids())
    }

    fn broadcast_text(&mut self, text: String) -> wasmtime::Result<()> {
        HostState::sessions(self).fan_out(Audience::All, &Message::text(text), None);
        Ok(())
    }

    fn broadcast_text_except(&mut self, text: String, except: SessionId) -> wasmtime::Result<()> {
        HostState::sessions(self).fan_out(Audience::All, &Message::text(text), Some(except));
        Ok(())
    }

    fn broadcast_data(&mut self, data: Vec<u8>) -> wasmtime::Result<()> {
        HostState::sessions(self).fan_out(Audience::All, &Message::binary(data), None);
        Ok(())
    }

    fn broadcast_data_except(&mut self, data: Vec<u8>, except: SessionId) -> wasmtime::Result<()> {
        HostState::sessions(self).fan_out(Audience::All, &Message::binary(data), Some(except));
        Ok(())
    }
}

impl topics::Host for HostState {
    fn publish_text(&mut self, topic: String, text: String) -> wasmtime::Result<()> {
        self.sessions().fan_out(Audience::Topic(&topic), &Message::text(text), None);
        Ok(())
    }

    fn publish_text_except(&mut self, topic: String, text: String, except: SessionId) -> wasmtime::Result<()> {
        self.sessions().fan_out(Audience::Topic(&topic), &Message::text(text), Some(except));
        Ok(())
    }

    fn publish_data(&mut self, topic: String, data: Vec<u8>) -> wasmtime::Result<()> {
        self.sessions().fan_out(Audience::Topic(&topic), &Message::binary(data), None);
        Ok(())
    }

    fn publish_data_except(&mut self, topic: String, data: Vec<u8>, except: SessionId) -> wasmtime::Result<()> {
        self.sessions().fan_out(Audience::Topic(&topic), &Message::binary(data), Some(except));
        Ok(())
    }

    fn size(&mut self, topic: String) -> wasmtime::Result<u32> {
        Ok(u32::try_from(self.sessions().topic_size(&topic)).unwrap_or(u32::MAX))
    }

    fn members(&mut self, topic: String) -> wasmtime::Result<Vec<topics::Member>> {
        let members = self.sessions().topic_members(&topic);
        Ok(members.into_iter().map(|(id, attachment)| topics::Member { id, attachment }).collect())
    }
}
