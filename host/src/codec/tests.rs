//! The codec against hand-made client frames over an in-memory socket:
//! messages as sent (whole, fragmented, split across reads, several per
//! read), the answers it owes (pong, close reply), and each way a client
//! can break the protocol.

use super::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A masked client frame.
pub(super) fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

pub(super) fn pair(max_message: usize) -> (Codec<DuplexStream>, DuplexStream) {
    let (server, client) = tokio::io::duplex(1 << 20);
    (Codec::server(server, max_message, 8 << 10), client)
}

async fn next(codec: &mut Codec<DuplexStream>) -> Result<Message, Error> {
    codec.next().await.expect("a message")
}

/// The next server frame on the client's side: opcode and payload.
async fn server_frame(client: &mut DuplexStream) -> (u8, Vec<u8>) {
    let (first, payload) = server_frame_bits(client).await;
    assert_eq!(first & 0xF0, 0x80, "final, no reserved bits");
    (first & 0x0F, payload)
}

/// The next server frame on the client's side: its first byte (FIN, RSV
/// bits, opcode) and payload.
pub(super) async fn server_frame_bits(client: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0; 2];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "unmasked");
    let len = match head[1] {
        126 => u64::from(client.read_u16().await.unwrap()),
        127 => client.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let mut payload = vec![0; len as usize];
    client.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

#[tokio::test]
async fn messages_arrive_whole_however_the_bytes_are_cut() {
    let (mut codec, mut client) = pair(1 << 20);
    let mut bytes = frame(true, frame::TEXT, "héllo".as_bytes());
    bytes.extend(frame(true, frame::BINARY, &[0, 1, 2]));
    // A fragmented text, a character split between two frames, a ping
    // between the fragments.
    let (a, b) = "naïve".as_bytes().split_at(3);
    bytes.extend(frame(false, frame::TEXT, a));
    bytes.extend(frame(true, frame::PING, b"p"));
    bytes.extend(frame(true, frame::CONTINUATION, b));
    let big: Vec<u8> = (0..200_000).map(|i| i as u8).collect();
    bytes.extend(frame(true, frame::BINARY, &big));
    // Everything at once, then everything a few bytes at a time.
    for chunk in [bytes.len(), 7] {
        for piece in bytes.chunks(chunk) {
            client.write_all(piece).await.unwrap();
        }
        assert_eq!(next(&mut codec).await.unwrap(), Message::text("héllo"));
        assert_eq!(next(&mut codec).await.unwrap(), Message::binary(vec![0, 1, 2]));
        assert_eq!(next(&mut codec).await.unwrap(), Message::Ping(Bytes::from_static(b"p")));
        assert_eq!(next(&mut codec).await.unwrap(), Message::text("naïve"));
        assert_eq!(next(&mut codec).await.unwrap(), Message::binary(big.clone()));
        assert_eq!(codec.pending.capacity(), 0, "an idle session holds no read bytes");
        codec.flush().await.unwrap();
        assert_eq!(server_frame(&mut client).await, (frame::PONG, b"p".to_vec()));
        assert_eq!(codec.out.capacity(), 0, "nor write bytes once flushed");
    }
}

#[tokio::test]
async fn server_messages_go_out_as_single_unmasked_frames() {
    let (mut codec, mut client) = pair(1 << 20);
    codec.feed(Message::text("hi")).await.unwrap();
    codec.feed(Message::binary(vec![9; 70_000])).await.unwrap();
    codec.flush().await.unwrap();
    assert_eq!(server_frame(&mut client).await, (frame::TEXT, b"hi".to_vec()));
    assert_eq!(server_frame(&mut client).await, (frame::BINARY, vec![9; 70_000]));
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_and_ends_the_stream() {
    let (mut codec, mut client) = pair(1 << 20);
    client.write_all(&frame(true, frame::CLOSE, &[0x03, 0xE8, b'b', b'y', b'e'])).await.unwrap();
    let Message::Close(Some(close)) = next(&mut codec).await.unwrap() else { panic!("a close") };
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1000, "bye"));
    assert!(codec.next().await.is_none(), "the stream ends after the reply");
    assert_eq!(server_frame(&mut client).await, (frame::CLOSE, vec![0x03, 0xE8, b'b', b'y', b'e']));

    // A code no endpoint may send (1005) is answered with 1002.
    let (mut codec, mut client) = pair(1 << 20);
    client.write_all(&frame(true, frame::CLOSE, &[0x03, 0xED])).await.unwrap();
    let Message::Close(Some(close)) = next(&mut codec).await.unwrap() else { panic!("a close") };
    assert_eq!(u16::from(close.code), 1002);
    assert!(codec.next().await.is_none());
    assert_eq!(server_frame(&mut client).await.1[..2], [0x03, 0xEA]);
}

#[tokio::test]
async fn after_the_server_closes_the_clients_close_is_the_reply() {
    let (mut codec, mut client) = pair(1 << 20);
    codec.send(Message::Close(Some(CloseFrame { code: CloseCode::Away, reason: "bye".into() }))).await.unwrap();
    assert_eq!(server_frame(&mut client).await, (frame::CLOSE, vec![0x03, 0xE9, b'b', b'y', b'e']));
    codec.send(Message::text("dropped")).await.unwrap();
    client.write_all(&frame(true, frame::TEXT, b"late")).await.unwrap();
    client.write_all(&frame(true, frame::CLOSE, &[0x03, 0xE9])).await.unwrap();
    assert_eq!(next(&mut codec).await.unwrap(), Message::text("late"));
    assert!(matches!(next(&mut codec).await.unwrap(), Message::Close(Some(_))));
    assert!(codec.next().await.is_none());
    drop(codec);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "nothing after the close: {rest:?}");
}

#[tokio::test]
async fn oversized_frames_and_messages_fail_at_the_header() {
    // Only the header is sent: the limit is applied before any payload.
    let (mut codec, mut client) = pair(1000);
    client.write_all(&frame(true, frame::BINARY, &[0; 1001])[..8]).await.unwrap();
    assert!(matches!(next(&mut codec).await, Err(Error::TooLarge("frame too big"))));

    let (mut codec, mut client) = pair(1000);
    client.write_all(&frame(false, frame::TEXT, &[b'a'; 600])).await.unwrap();
    client.write_all(&frame(true, frame::CONTINUATION, &[b'a'; 600])[..8]).await.unwrap();
    assert!(matches!(next(&mut codec).await, Err(Error::TooLarge("message too big"))));

    let (mut codec, mut client) = pair(1000);
    client.write_all(&frame(true, frame::BINARY, &[7; 1000])).await.unwrap();
    assert_eq!(next(&mut codec).await.unwrap(), Message::binary(vec![7; 1000]), "the limit itself is allowed");
}

#[tokio::test]
async fn bad_utf8_fails_fast_inside_a_fragmented_text() {
    let (mut codec, mut client) = pair(1 << 20);
    // Invalid in the first fragment; the message never ends.
    client.write_all(&frame(false, frame::TEXT, &[b'o', b'k', 0xFF])).await.unwrap();
    assert!(matches!(next(&mut codec).await, Err(Error::BadUtf8)));

    let (mut codec, mut client) = pair(1 << 20);
    client.write_all(&frame(true, frame::TEXT, &[0xE2, 0x82])).await.unwrap();
    assert!(matches!(next(&mut codec).await, Err(Error::BadUtf8)), "a truncated character at the end");

    let (mut codec, mut client) = pair(1 << 20);
    client.write_all(&frame(true, frame::CLOSE, &[0x03, 0xE8, 0xC0])).await.unwrap();
    assert!(matches!(next(&mut codec).await, Err(Error::BadUtf8)), "a close reason");
}

#[tokio::test]
async fn protocol_violations_are_named() {
    let cases: [(Vec<u8>, &str); 4] = [
        (frame(true, frame::CONTINUATION, b"x"), "continuation frame outside a message"),
        (
            [frame(false, frame::TEXT, b"a"), frame(true, frame::TEXT, b"b")].concat(),
            "a new message inside a fragmented one",
        ),
        (frame(true, frame::CLOSE, &[3]), "close frame of one byte"),
        (vec![0x81, 0x02, b'h', b'i'], "unmasked client frame"),
    ];
    for (bytes, want) in cases {
        let (mut codec, mut client) = pair(1 << 20);
        client.write_all(&bytes).await.unwrap();
        match next(&mut codec).await {
            Err(Error::Protocol(what)) => assert_eq!(what, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_end_of_the_socket_ends_the_stream() {
    let (mut codec, client) = pair(1 << 20);
    drop(client);
    assert!(codec.next().await.is_none());
}

/// A flushed write buffer serves the thread's next session that writes,
/// unless it grew large; no session keeps one once it has flushed.
#[tokio::test(flavor = "current_thread")]
async fn sessions_of_a_thread_write_from_one_spare_buffer() {
    let (mut a, mut client_a) = pair(1 << 20);
    let (mut b, mut client_b) = pair(1 << 20);
    a.send(Message::binary(vec![1; 1000])).await.unwrap();
    assert_eq!(server_frame(&mut client_a).await, (frame::BINARY, vec![1; 1000]));
    assert_eq!(a.out.capacity(), 0, "a flushed session keeps no buffer");
    b.feed(Message::text("hi")).await.unwrap();
    assert!(b.out.capacity() >= 1000, "b took a's buffer ({} bytes)", b.out.capacity());
    b.flush().await.unwrap();
    assert_eq!(server_frame(&mut client_b).await, (frame::TEXT, b"hi".to_vec()));
    // A buffer past the bound goes back to the allocator.
    let big = vec![2; SPARE_MAX * 2];
    a.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(server_frame(&mut client_a).await, (frame::BINARY, big));
    b.feed(Message::text("hi")).await.unwrap();
    assert!(b.out.capacity() <= SPARE_MAX, "the thread kept {} bytes", b.out.capacity());
}
