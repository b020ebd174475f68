//! Chat rooms with identity at the door, all state held by the host.
//!
//! A client connects with `?token=T&room=R`: the upgrade hook turns away an
//! unknown token (401 `unauthorized`) or a bad room name (400 `bad room`),
//! selects the `rooms.v1` subprotocol if offered, and lets the client in
//! with its name as the session's attachment and its room as a topic. The
//! plugin keeps nothing itself, so a hot swap or a trap loses nobody's room.

use wasock_guest::{Decision, Handler, Session, UpgradeRequest, accept, reject};

#[derive(Default)]
struct Rooms;

/// A member's name and room, as kept in the session's attachment.
struct Member {
    name: String,
    room: String,
}

impl Member {
    fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.name, self.room).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (name, room) = std::str::from_utf8(bytes).ok()?.split_once('\n')?;
        Some(Self { name: name.to_owned(), room: room.to_owned() })
    }

    fn of(session: &Session) -> Option<Self> {
        Self::decode(&session.attachment()?)
    }
}

/// The name `token` belongs to, from the granted `ROOMS_TOKENS`
/// (`name=token,...`).
fn name_for(token: &str) -> Option<String> {
    let tokens = std::env::var("ROOMS_TOKENS").ok()?;
    tokens.split(',').find_map(|pair| {
        let (name, secret) = pair.split_once('=')?;
        (secret == token).then(|| name.to_owned())
    })
}

/// `[a-z0-9-]{1,32}`.
fn valid_room(room: &str) -> bool {
    (1..=32).contains(&room.len()) && room.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Handler for Rooms {
    fn on_upgrade(&mut self, request: UpgradeRequest) -> Decision {
        let Some(name) = request.query_param("token").as_deref().and_then(name_for) else {
            return reject(401, "unauthorized");
        };
        let room = request.query_param("room").unwrap_or_else(|| "lobby".to_owned());
        if !valid_room(&room) {
            return reject(400, "bad room");
        }
        let member = Member { name, room };
        accept().protocol_if_offered(&request, "rooms.v1").attachment(member.encode()).topic(&member.room).into()
    }

    fn on_connected(&mut self, session: Session) {
        if let Some(Member { name, room }) = Member::of(&session) {
            let online = wasock_guest::topic_size(&room);
            wasock_guest::publish_text(&room, &format!("* {name} joined {room} ({online} online)"));
        }
    }

    fn handle_text(&mut self, session: &Session, text: String) {
        let Some(Member { name, room }) = Member::of(session) else { return };
        if text == "/who" {
            let mut names: Vec<String> = wasock_guest::topic_members(&room)
                .into_iter()
                .filter_map(|m| Member::decode(&m.attachment?).map(|m| m.name))
                .collect();
            names.sort();
            names.dedup();
            session.write_text(&format!("online: {}", names.join(", ")));
        } else {
            wasock_guest::publish_text(&room, &format!("{name}: {text}"));
        }
    }

    fn on_disconnected(&mut self, session: &Session) {
        if let Some(Member { name, room }) = Member::of(session) {
            let online = wasock_guest::topic_size(&room);
            wasock_guest::publish_text(&room, &format!("* {name} left {room} ({online} online)"));
        }
    }
}

wasock_guest::export!(Rooms);
