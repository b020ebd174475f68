//! The link's two ends: wake-ups, credits, and the flush's own writes.

use super::*;
use std::time::Duration;

fn next(rx: &mut SessionRx, want_credit: bool) -> impl Future<Output = Signal> + '_ {
    std::future::poll_fn(move |cx| rx.poll_next(cx, want_credit))
}

#[tokio::test]
async fn a_message_wakes_the_task_only_when_its_wakes_are_flushed() {
    let (tx, mut rx) = link(8, 1 << 20);
    let mut wakes = Wakes::default();
    let waiting = tokio::time::timeout(Duration::from_millis(20), next(&mut rx, false));
    assert!(waiting.await.is_err(), "nothing queued yet");
    tx.try_send(Message::text("a"), &mut wakes).unwrap();
    tx.try_send(Message::text("b"), &mut wakes).unwrap();
    assert_eq!(wakes.links.len(), 1, "one wake-up per session");
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        wakes.flush();
        (tx, wakes)
    });
    assert_eq!(next(&mut rx, false).await, Signal::Message(Message::text("a")));
    assert_eq!(rx.try_recv(), Some(Message::text("b")));
    let (tx, _) = pusher.join().unwrap();
    drop(tx);
    assert_eq!(next(&mut rx, false).await, Signal::Ended);
}

#[tokio::test]
async fn a_returned_credit_wakes_a_task_waiting_for_one() {
    let (tx, mut rx) = link(8, 1 << 20);
    while rx.try_take_credit() {}
    let waiting = tokio::time::timeout(Duration::from_millis(20), next(&mut rx, true));
    assert!(waiting.await.is_err(), "woken for a credit before any was returned");
    let returned = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        let mut wakes = Wakes::default();
        tx.give_credit(&mut wakes);
        tx
    });
    assert_eq!(next(&mut rx, true).await, Signal::Credit);
    let tx = returned.join().unwrap();
    assert!(rx.try_take_credit());
    assert!(!rx.congested());
    let mut wakes = Wakes::default();
    for _ in 0..5 {
        tx.try_send(Message::text("r"), &mut wakes).unwrap();
    }
    assert!(rx.congested(), "5 queued + 4 in flight > 8");
    drop(rx);
    assert_eq!(tx.try_send(Message::text(""), &mut wakes), Err(QueueError::Closed));
}

/// Counts the wake-ups of a task.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connected loopback pair: the server's end non-blocking (as tokio keeps
/// a session's socket), the client's blocking with a read timeout.
fn sockets() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (server, client)
}

/// A link whose flushes may write to the server's end of a loopback pair,
/// with no task waiting yet; and the client's end.
fn direct_link(max_bytes: usize) -> (SessionTx, SessionRx, std::net::TcpStream, std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let (server, client) = sockets();
    let (tx, rx) = link_to(Some(server.as_raw_fd()), 8, max_bytes);
    (tx, rx, server, client)
}

/// The task's side as it waits: its waker registered with nothing queued,
/// the turn ended idle.
fn wait_idle(rx: &mut SessionRx, count: &Arc<Count>) {
    assert!(rx.begin_turn().is_none());
    let waker = std::task::Waker::from(count.clone());
    assert!(rx.poll_next(&mut Context::from_waker(&waker), false).is_pending());
    rx.end_turn(true);
}

#[test]
fn a_flush_writes_a_waiting_sessions_messages_itself_and_wakes_it_for_the_rest() {
    use std::io::Read;
    let (tx, mut rx, _server, mut client) = direct_link(1 << 20);
    let count = Arc::new(Count::default());
    let mut wakes = Wakes::default();
    tx.try_send(Message::text("a"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(count.get(), 0);
    assert_eq!(rx.try_recv(), Some(Message::text("a")), "not written before the task's first turn");

    wait_idle(&mut rx, &count);
    tx.try_send(Message::text("b"), &mut wakes).unwrap();
    tx.try_send(Message::binary(vec![7; 3]), &mut wakes).unwrap();
    wakes.flush();
    let mut got = [0; 8];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, [0x81, 1, b'b', 0x82, 3, 7, 7, 7]);
    assert_eq!(count.get(), 0, "nothing left for the task");
    assert_eq!(rx.try_recv(), None);

    // A close is the task's to write: what is before it goes now.
    tx.try_send(Message::text("c"), &mut wakes).unwrap();
    tx.send_control(Message::Close(None), &mut wakes).unwrap();
    wakes.flush();
    client.read_exact(&mut got[..3]).unwrap();
    assert_eq!(got[..3], [0x81, 1, b'c']);
    assert_eq!(count.get(), 1, "woken for the close");
    assert!(rx.begin_turn().is_none());
    assert_eq!(rx.try_recv(), Some(Message::Close(None)));

    // During a turn the task writes everything.
    tx.try_send(Message::text("d"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(rx.try_recv(), Some(Message::text("d")));
    rx.end_turn(false);
    tx.try_send(Message::text("e"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(rx.try_recv(), Some(Message::text("e")), "a turn that ended with writing left");

    // A returned credit the task waits for still wakes it.
    wait_idle(&mut rx, &count);
    while rx.try_take_credit() {}
    tx.give_credit(&mut wakes);
    wakes.flush();
    assert_eq!(count.get(), 2, "woken for a credit");

    // Once the socket's owner lets it go, nothing more is written to it.
    wait_idle(&mut rx, &count);
    drop(rx.socket_guard());
    tx.try_send(Message::text("f"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(count.get(), 3);
    assert_eq!(rx.try_recv(), Some(Message::text("f")));
}

#[test]
fn what_the_socket_does_not_take_is_left_for_the_task_in_order() {
    use std::io::Read;
    let (tx, mut rx, _server, mut client) = direct_link(64 << 20);
    let count = Arc::new(Count::default());
    let mut wakes = Wakes::default();
    wait_idle(&mut rx, &count);
    // Larger than loopback's socket buffers, with the client not reading.
    let big: Vec<u8> = (0..32 << 20).map(|i: u32| i as u8).collect();
    tx.try_send(Message::binary(big.clone()), &mut wakes).unwrap();
    tx.try_send(Message::text("after"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(count.get(), 1, "woken for what is left");
    let left = rx.begin_turn().expect("the rest of the frame");
    tx.try_send(Message::text("later"), &mut wakes).unwrap();
    wakes.flush();
    assert_eq!(rx.try_recv(), Some(Message::text("after")), "what was not framed stays queued, in order");
    assert_eq!(rx.try_recv(), Some(Message::text("later")), "queued behind the rest during the turn");
    let mut expect = vec![0x82, 127];
    expect.extend_from_slice(&(big.len() as u64).to_be_bytes());
    expect.extend_from_slice(&big);
    assert!(left.len() < expect.len(), "some of it was written");
    let mut got = vec![0; expect.len() - left.len()];
    client.read_exact(&mut got).unwrap();
    got.extend_from_slice(&left);
    assert!(got == expect, "the bytes written and the bytes left make the frame");
    rx.end_turn(true);
    assert!(rx.begin_turn().is_none(), "left only once");
}
