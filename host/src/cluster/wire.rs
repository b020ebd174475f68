//! What nodes say to each other over NATS, and on which subjects.
//!
//! - `wasock.1.<route>.pub`: a fan-out (a publish to a topic, or a
//!   broadcast) made on one node, for the members on the others. Binary:
//!   `w1`, kind (0 text, 1 binary), whether a topic follows (0 or 1), the
//!   sending node (u64, big-endian), the topic's length (u16) and bytes, then
//!   the payload as it goes to the clients. The plugin's `except` stays on
//!   the node that made it (session ids are the node's).
//! - `wasock.1.<route>.presence`: a node's members of every topic of the
//!   route, with attachments, as JSON (sent when they changed, and
//!   at least every [`super::RESEND_EVERY`] as a heartbeat).
//!
//! `<route>` is the route's bytes in hex: routes may hold `.`, `*` or `>`,
//! which mean something in a NATS subject.

use crate::session::{Members, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Every node subscribes to this.
pub const SUBJECTS: &str = "wasock.1.>";

/// The subject of `route`'s fan-outs.
pub fn fan_out_subject(route: &str) -> String {
    format!("wasock.1.{}.pub", hex(route))
}

/// The subject of `route`'s presence reports.
pub fn presence_subject(route: &str) -> String {
    format!("wasock.1.{}.presence", hex(route))
}

/// What a message on [`SUBJECTS`] is about.
#[derive(Debug, PartialEq, Eq)]
pub enum Subject {
    /// A fan-out for `route`.
    FanOut(String),
    /// A presence report for `route`.
    Presence(String),
}

/// Parses a subject this module made; `None` for anything else.
pub fn parse_subject(subject: &str) -> Option<Subject> {
    let rest = subject.strip_prefix("wasock.1.")?;
    let (route, kind) = rest.split_once('.')?;
    let route = unhex(route)?;
    match kind {
        "pub" => Some(Subject::FanOut(route)),
        "presence" => Some(Subject::Presence(route)),
        _ => None,
    }
}

/// A fan-out as it travels.
#[derive(Debug, PartialEq)]
pub struct FanOut {
    /// The node it came from.
    pub node: NodeId,
    /// The topic, or `None` for every session.
    pub topic: Option<String>,
    /// The message for the clients.
    pub msg: Message,
}

/// Encodes a fan-out from `node`.
pub fn encode_fan_out(node: NodeId, topic: Option<&str>, msg: &Message) -> Option<Bytes> {
    let (kind, payload): (u8, &[u8]) = match msg {
        Message::Text(text) => (0, text.as_bytes()),
        Message::Binary(data) => (1, data),
        _ => return None,
    };
    let topic = topic.unwrap_or_default();
    let topic_len = u16::try_from(topic.len()).ok()?;
    let mut out = Vec::with_capacity(14 + topic.len() + payload.len());
    out.extend_from_slice(b"w1");
    out.push(kind);
    out.push(u8::from(!topic.is_empty()));
    out.extend_from_slice(&node.to_be_bytes());
    out.extend_from_slice(&topic_len.to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(payload);
    Some(out.into())
}

/// Decodes a fan-out; `None` if it is not one (or its text is not UTF-8).
pub fn decode_fan_out(bytes: &Bytes) -> Option<FanOut> {
    let head = bytes.get(..14)?;
    if &head[..2] != b"w1" {
        return None;
    }
    let node = NodeId::from_be_bytes(head[4..12].try_into().ok()?);
    let topic_len = usize::from(u16::from_be_bytes([head[12], head[13]]));
    let topic = std::str::from_utf8(bytes.get(14..14 + topic_len)?).ok()?;
    let payload = bytes.slice(14 + topic_len..);
    let msg = match head[2] {
        0 => Message::Text(payload.try_into().ok()?),
        1 => Message::Binary(payload),
        _ => return None,
    };
    let topic = match head[3] {
        0 => None,
        1 => Some(topic.to_owned()),
        _ => return None,
    };
    Some(FanOut { node, topic, msg })
}

/// A presence report.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// The reporting node.
    pub node: NodeId,
    /// Its members of every topic of the route.
    pub topics: HashMap<String, Members>,
}

fn hex(s: &str) -> String {
    s.bytes().fold(String::with_capacity(s.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_outs_and_subjects_round_trip() {
        for (topic, msg) in [(Some("room"), Message::text("héllo")), (None, Message::binary(vec![0, 255]))] {
            let bytes = encode_fan_out(42, topic, &msg).unwrap();
            let back = decode_fan_out(&bytes).unwrap();
            assert_eq!(back, FanOut { node: 42, topic: topic.map(str::to_owned), msg });
        }
        assert_eq!(decode_fan_out(&Bytes::from_static(b"w1\x00\x00short")), None);
        assert_eq!(decode_fan_out(&Bytes::from_static(b"w1\x00\x01\0\0\0\0\0\0\0\x01\x00\x09room")), None);
        let mut bad = encode_fan_out(1, None, &Message::binary(vec![0xff])).unwrap().to_vec();
        bad[2] = 0;
        assert_eq!(decode_fan_out(&bad.into()), None, "text that is not UTF-8");
        let subject = fan_out_subject("/js/rooms.v1");
        assert!(!subject[9..].contains(['/', '*', '>']) && subject.matches('.').count() == 3, "{subject}");
        assert_eq!(parse_subject(&subject), Some(Subject::FanOut("/js/rooms.v1".into())));
        assert_eq!(parse_subject(&presence_subject("/a")), Some(Subject::Presence("/a".into())));
        assert_eq!(parse_subject("wasock.1.zz.pub"), None);
        assert_eq!(parse_subject("other.subject"), None);
    }
}
