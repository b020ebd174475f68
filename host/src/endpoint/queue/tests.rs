//! The queue with pushers on other threads and on its own runtime: order,
//! bounds, flush points, wake-ups, timers.

use super::*;
use std::time::Duration;

fn event(id: u64) -> Event {
    Event::Disconnected { id }
}

fn id(event: Event) -> u64 {
    match event {
        Event::Disconnected { id } => id,
        other => panic!("unexpected {other:?}"),
    }
}

/// A queue of `capacity`, and a runtime of its own for the pushers.
fn queue(capacity: usize) -> (EventTx, EventRx, Runtime) {
    let (tx, rx) = channel(capacity, runtime().unwrap());
    (tx, rx, runtime().unwrap())
}

#[test]
fn keeps_order_and_waits_when_full() {
    let (tx, mut rx, rt) = queue(2);
    let tx = rt.block_on(async move {
        tx.send(event(1)).await.unwrap();
        tx.send(event(2)).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(20), tx.send(event(3)));
        assert!(third.await.is_err(), "a third event fit into a queue of two");
        tx
    });
    let pusher = std::thread::spawn(move || {
        rt.block_on(tx.send(event(3))).unwrap();
        tx
    });
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(id(rx.try_recv().unwrap()), 1);
    let tx = pusher.join().unwrap();
    assert_eq!(id(rx.try_recv().unwrap()), 2);
    assert_eq!(id(rx.try_recv().unwrap()), 3);
    assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv().err(), Some(TryRecvError::Disconnected));
    assert_eq!(rx.run_io(Wakes::default(), None).err(), Some(TryRecvError::Disconnected));
}

#[test]
fn replies_are_flushed_when_the_queue_runs_dry() {
    let (tx, mut rx, rt) = queue(8);
    rt.block_on(async {
        tx.send(event(1)).await.unwrap();
        tx.send(event(2)).await.unwrap();
    });
    let flushes = std::cell::Cell::new(0);
    let mut next = || {
        let event = rx.next_batched(|_| {
            flushes.set(flushes.get() + 1);
            (Wakes::default(), None)
        });
        id(event.unwrap())
    };
    assert_eq!(next(), 1);
    assert_eq!(next(), 2);
    assert_eq!(flushes.get(), 0, "flushed while events were still queued");
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        rt.block_on(async { tx.send(event(3)).await.unwrap() });
    });
    assert_eq!(next(), 3);
    assert_eq!(flushes.get(), 1, "not flushed before waiting for more events");
    pusher.join().unwrap();
}

#[test]
fn a_waiting_receiver_wakes_for_a_push_from_another_thread() {
    let (tx, mut rx, rt) = queue(8);
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        rt.block_on(async { tx.send(event(7)).await.unwrap() });
    });
    assert_eq!(id(rx.run_io(Wakes::default(), None).unwrap()), 7);
    pusher.join().unwrap();
    assert_eq!(rx.run_io(Wakes::default(), None).err(), Some(TryRecvError::Disconnected), "the sender is gone");
}

#[test]
fn a_session_on_the_thread_pushes_while_the_thread_waits() {
    let (tx, mut rx, _rt) = queue(8);
    let tx = Arc::new(tx);
    let pusher = tx.clone();
    // As a session on the endpoint's thread does: it runs only while
    // the thread waits for events.
    rx.io().spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        pusher.send(event(4)).await.unwrap();
    });
    assert_eq!(id(rx.run_io(Wakes::default(), None).unwrap()), 4);
    let until = Instant::now() + Duration::from_millis(10);
    assert_eq!(rx.run_io(Wakes::default(), Some(until)).err(), Some(TryRecvError::Empty), "the timer");
    assert!(Instant::now() >= until);
    drop(tx);
}

#[test]
fn a_push_from_another_endpoint_never_waits_but_is_bounded() {
    let (tx, mut rx, _rt) = queue(1);
    assert!(tx.push_now(event(1), 2));
    assert!(tx.push_now(event(2), 2), "past the capacity, within the limit");
    assert!(!tx.push_now(event(3), 2), "past the limit");
    assert_eq!(id(rx.try_recv().unwrap()), 1);
    assert_eq!(id(rx.try_recv().unwrap()), 2);
    drop(rx);
    assert!(!tx.push_now(event(4), 2), "queued into a dead queue");
}

#[test]
fn a_send_after_the_receiver_went_fails() {
    let (tx, rx, rt) = queue(1);
    drop(rx);
    assert!(rt.block_on(tx.send(event(9))).is_err(), "queued into a dead queue");
}
