//! Wakes from another thread at full speed: none is lost.

#[test]
fn a_storm_of_remote_wakes_loses_none() {
    const WAKES: usize = 100_000;
    let runtime = percore_runtime::Runtime::builder()
        .cores(1)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::task::Waker>(1024);
    let waker_thread = std::thread::spawn(move || {
        let mut woke = 0;
        while let Ok(waker) = rx.recv() {
            waker.wake();
            woke += 1;
        }
        woke
    });
    let polls = runtime
        .run_on(0, move || async move {
            let mut polls = 0usize;
            for _ in 0..WAKES {
                let mut asked = false;
                std::future::poll_fn(|cx| {
                    polls += 1;
                    if asked {
                        return std::task::Poll::Ready(());
                    }
                    asked = true;
                    tx.send(cx.waker().clone()).expect("waker thread alive");
                    std::task::Poll::Pending
                })
                .await;
            }
            polls
        })
        .unwrap();
    assert_eq!(waker_thread.join().unwrap(), WAKES);
    assert_eq!(polls, 2 * WAKES, "every wait was ended by exactly its wake");
}
