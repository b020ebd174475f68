//! A client's upgrade request as the plugin's upgrade hook sees it, and the
//! hook's answer, checked against the request and the plugin's limits
//! before anything of it reaches the client.
//!
//! These are the host's own types: the runtime converts them to and from
//! the WIT records, the server builds the HTTP response from them.

use crate::manifest::Limits;
use std::net::SocketAddr;

/// One HTTP header: lower-case name, value.
pub type Header = (String, String);

/// What the upgrade hook is told about a client.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// Request path.
    pub path: String,
    /// Request query, without `?`.
    pub query: Option<String>,
    /// Every header, names in lower case, in the order sent.
    pub headers: Vec<Header>,
    /// The TCP peer.
    pub remote: SocketAddr,
    /// The subprotocols offered, in the client's order.
    pub protocols: Vec<String>,
}

/// The hook lets the client in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeAccept {
    /// The subprotocol selected, one of those offered.
    pub protocol: Option<String>,
    /// Extra headers for the 101.
    pub headers: Vec<Header>,
    /// The session's first attachment.
    pub attachment: Option<Vec<u8>>,
    /// Topics the session joins before `on-connected`.
    pub topics: Vec<String>,
    /// Instance affinity (several instances per endpoint).
    pub shard_key: Option<String>,
}

/// The hook, or the host on its behalf, turns the client away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReject {
    /// HTTP status, 400-599.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<Header>,
    /// A short `text/plain` body.
    pub body: String,
}

impl UpgradeReject {
    /// The answer when the hook trapped, overran its deadline or answered
    /// something the host cannot honour: 500, and nothing of the plugin's.
    pub fn internal() -> Self {
        Self { status: 500, headers: Vec::new(), body: "internal error in the endpoint's plugin\n".into() }
    }

    /// The answer when no instance can decide (it is restarting): 503.
    pub fn unavailable() -> Self {
        Self { status: 503, headers: Vec::new(), body: "endpoint is restarting\n".into() }
    }
}

/// The hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeDecision {
    /// Complete the handshake.
    Accept(UpgradeAccept),
    /// Answer with an HTTP error.
    Reject(UpgradeReject),
}

/// Headers the handshake itself sets: a plugin may not.
const HANDSHAKE_HEADERS: [&str; 3] = ["upgrade", "connection", "content-length"];

impl UpgradeDecision {
    /// Checks the answer against `request` and `limits`; the first problem,
    /// in words for the log, if the host cannot honour it.
    pub fn check(&self, request: &UpgradeRequest, limits: &Limits) -> Result<(), String> {
        match self {
            Self::Accept(accept) => {
                if let Some(protocol) = &accept.protocol
                    && !request.protocols.contains(protocol)
                {
                    return Err(format!("selected subprotocol `{protocol}`, which the client did not offer"));
                }
                if accept.attachment.as_ref().is_some_and(|a| a.len() > limits.attachment_bytes) {
                    return Err("attachment over limits.attachment-bytes".into());
                }
                if accept.topics.len() > limits.topics_per_session {
                    return Err("more topics than limits.topics-per-session".into());
                }
                if let Some(topic) = accept.topics.iter().find(|t| !topic_name_ok(t, limits)) {
                    return Err(format!("bad topic name `{topic}`"));
                }
                check_headers(&accept.headers)
            }
            Self::Reject(reject) => {
                if !(400..=599).contains(&reject.status) {
                    return Err(format!("rejected with status {}, outside 400-599", reject.status));
                }
                check_headers(&reject.headers)
            }
        }
    }
}

/// Whether `topic` may name a topic under `limits`.
pub fn topic_name_ok(topic: &str, limits: &Limits) -> bool {
    !topic.is_empty() && topic.len() <= limits.topic_name_bytes
}

fn check_headers(headers: &[Header]) -> Result<(), String> {
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if HANDSHAKE_HEADERS.contains(&lower.as_str()) || lower.starts_with("sec-websocket-") {
            return Err(format!("sets handshake header `{name}`"));
        }
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || hyper::header::HeaderValue::from_str(value).is_err()
        {
            return Err(format!("bad header `{name}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> UpgradeRequest {
        UpgradeRequest {
            path: "/r".into(),
            query: None,
            headers: vec![],
            remote: "127.0.0.1:1".parse().unwrap(),
            protocols: vec!["a.v1".into()],
        }
    }

    #[test]
    fn answers_the_host_cannot_honour_are_refused() {
        let limits = Limits::default();
        let accept = |f: fn(&mut UpgradeAccept)| {
            let mut a = UpgradeAccept::default();
            f(&mut a);
            UpgradeDecision::Accept(a).check(&request(), &limits)
        };
        assert!(accept(|_| {}).is_ok());
        assert!(accept(|a| a.protocol = Some("a.v1".into())).is_ok());
        assert!(accept(|a| a.protocol = Some("b.v1".into())).is_err());
        assert!(accept(|a| a.headers = vec![("x-ok".into(), "1".into())]).is_ok());
        assert!(accept(|a| a.headers = vec![("Sec-WebSocket-Accept".into(), "x".into())]).is_err());
        assert!(accept(|a| a.headers = vec![("bad name".into(), "x".into())]).is_err());
        assert!(accept(|a| a.headers = vec![("x".into(), "a\nb".into())]).is_err());
        assert!(accept(|a| a.topics = vec![String::new()]).is_err());
        assert!(accept(|a| a.topics = vec!["t".repeat(129)]).is_err());
        assert!(accept(|a| a.attachment = Some(vec![0; 4097])).is_err());
        let reject = |status| {
            UpgradeDecision::Reject(UpgradeReject { status, headers: vec![], body: String::new() })
                .check(&request(), &limits)
        };
        assert!(reject(401).is_ok());
        assert!(reject(599).is_ok());
        assert!(reject(200).is_err());
        assert!(reject(600).is_err());
    }
}
