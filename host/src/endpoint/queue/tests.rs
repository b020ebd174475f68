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
    // the thread waits for events, woken by its timer.
    tx.spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        pusher.send(event(4)).await.unwrap();
    });
    assert_eq!(id(rx.run_io(Wakes::default(), None).unwrap()), 4);
    assert_eq!(rx.sessions.len(), 0, "the finished session's slot is freed");
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

#[test]
fn a_session_spawned_from_another_thread_runs_and_its_wakes_come_back() {
    let (tx, mut rx, _rt) = queue(8);
    let tx = Arc::new(tx);
    let (ping, mut pinged) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let pusher = tx.clone();
    std::thread::spawn(move || {
        tx.spawn(async move {
            while let Some(n) = pinged.recv().await {
                pusher.send(event(n)).await.unwrap();
            }
        });
    })
    .join()
    .unwrap();
    for n in 1..=3 {
        // Woken from another thread, as a fan-out from another endpoint
        // wakes a session.
        let ping = ping.clone();
        std::thread::spawn(move || ping.send(n).unwrap());
        assert_eq!(id(rx.run_io(Wakes::default(), None).unwrap()), n);
    }
    assert_eq!(rx.sessions.len(), 1);
}

#[test]
fn a_session_that_panics_is_dropped_and_the_others_go_on() {
    let (tx, mut rx, _rt) = queue(8);
    let tx = Arc::new(tx);
    tx.spawn(async { panic!("a session's bug") });
    let pusher = tx.clone();
    tx.spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        pusher.send(event(5)).await.unwrap();
    });
    assert_eq!(id(rx.run_io(Wakes::default(), None).unwrap()), 5);
    assert_eq!(rx.sessions.len(), 0, "the panicked session's slot is freed");
}

#[test]
fn sessions_are_dropped_with_the_receiver_and_after_it() {
    struct Dropped(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let (tx, mut rx, _rt) = queue(8);
    let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (running, started) = (Dropped(dropped.clone()), Dropped(dropped.clone()));
    tx.spawn(async move {
        let _held = running;
        std::future::pending::<()>().await;
    });
    let until = Instant::now() + Duration::from_millis(5);
    assert_eq!(rx.run_io(Wakes::default(), Some(until)).err(), Some(TryRecvError::Empty));
    assert_eq!(rx.sessions.len(), 1, "the session waits on the thread");
    // Spawned, never started.
    tx.spawn(async move {
        let _held = started;
    });
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 2, "a session outlived its thread");
    tx.spawn(async {});
    let late = Dropped(dropped.clone());
    tx.spawn(async move {
        let _held = late;
    });
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 3, "spawned onto a gone thread, and kept");
}

#[test]
fn a_session_on_the_thread_that_waits_for_room_is_woken_when_a_batch_is_taken() {
    // Its waker goes through the queue's lock: woken under that lock, the
    // thread would wait on itself. Run apart, so that a hang fails.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (tx, mut rx, _rt) = queue(1);
        let tx = Arc::new(tx);
        let pusher = tx.clone();
        tx.spawn(async move {
            for n in 1..=3 {
                pusher.send(event(n)).await.unwrap();
            }
        });
        let got: Vec<u64> = (0..3).map(|_| id(rx.run_io(Wakes::default(), None).unwrap())).collect();
        done.send(got).unwrap();
    });
    let got = finished.recv_timeout(Duration::from_secs(20)).expect("the endpoint thread hung");
    assert_eq!(got, [1, 2, 3]);
}
