//! The upgrade hook's request and answers, with the helpers a plugin needs
//! to decide: query parameters (percent-decoded), headers, offered
//! subprotocols; [`accept`] as a builder and [`reject`] in one call.
//!
//! ```ignore
//! fn on_upgrade(&mut self, request: UpgradeRequest) -> Decision {
//!     match request.query_param("token") {
//!         Some(token) if token == "secret" => accept().protocol_if_offered(&request, "chat.v1").topic("lobby").into(),
//!         _ => reject(401, "unauthorized"),
//!     }
//! }
//! ```

pub use crate::__bindings::exports::wasock::plugin::upgrade::{Accept, Decision, Reject, Request as UpgradeRequest};

/// An acceptance that selects no subprotocol, adds nothing and joins no
/// topic; add to it with its builder methods.
pub fn accept() -> Accept {
    Accept { protocol: None, headers: Vec::new(), attachment: None, topics: Vec::new(), shard_key: None }
}

/// Turns the client away with `status` (400-599) and a short `body`.
pub fn reject(status: u16, body: &str) -> Decision {
    Decision::Reject(Reject { status, headers: Vec::new(), body: body.to_owned() })
}

impl Accept {
    /// Selects `protocol` if the client offered it.
    pub fn protocol_if_offered(mut self, request: &UpgradeRequest, protocol: &str) -> Self {
        if request.offers(protocol) {
            self.protocol = Some(protocol.to_owned());
        }
        self
    }

    /// Adds a header to the 101 response.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the session's first attachment.
    pub fn attachment(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.attachment = Some(data.into());
        self
    }

    /// Joins `topic` on arrival.
    pub fn topic(mut self, topic: &str) -> Self {
        self.topics.push(topic.to_owned());
        self
    }

    /// Keeps sessions with the same key on one instance (several instances
    /// per endpoint).
    pub fn shard_key(mut self, key: &str) -> Self {
        self.shard_key = Some(key.to_owned());
        self
    }
}

impl From<Accept> for Decision {
    fn from(accept: Accept) -> Self {
        Decision::Accept(accept)
    }
}

impl UpgradeRequest {
    /// The first value of query parameter `name`, percent-decoded (`+` is a
    /// space); `None` if absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the client offered subprotocol `protocol`.
    pub fn offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
    }
}

/// Percent-decodes a query component; invalid escapes stay as they are.
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> UpgradeRequest {
        UpgradeRequest {
            path: "/".into(),
            query: Some(query.into()),
            headers: vec![("x-a".into(), "1".into())],
            remote_address: "127.0.0.1:1".into(),
            protocols: vec!["a.v1".into()],
        }
    }

    #[test]
    fn query_params_are_decoded() {
        let r = request("token=se%63ret&room=a+b&empty&bad=%zz&end=%4");
        assert_eq!(r.query_param("token").as_deref(), Some("secret"));
        assert_eq!(r.query_param("room").as_deref(), Some("a b"));
        assert_eq!(r.query_param("empty").as_deref(), Some(""));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(r.query_param("end").as_deref(), Some("%4"));
        assert_eq!(r.query_param("none"), None);
        assert_eq!(r.header("X-A"), Some("1"));
        assert!(r.offers("a.v1") && !r.offers("b"));
        let a = accept().protocol_if_offered(&r, "a.v1").protocol_if_offered(&r, "b");
        assert_eq!(a.protocol.as_deref(), Some("a.v1"));
    }
}
