//! A core's inbox: what other threads send it, and the parked flag that tells a
//! sender whether the core must be woken.
//!
//! For now a locked `Vec`; the protocol around it is what matters and is
//! model-checked (`cargo test` with `--cfg loom`, see `ci/loom.sh`):
//!
//! - the core sets `parked` *before* it looks at the queue, under the lock, and
//!   only blocks if the queue was empty;
//! - a sender pushes and reads `parked` in one lock section, and rings the bell
//!   (the core's eventfd) if it was set.
//!
//! Whichever lock section comes second sees the other side's write, so a core
//! never sleeps on an item it was not told about: no lost wakeup. A busy core
//! (`parked` clear) is never sent a syscall.

use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};

struct Queue<T> {
    items: Vec<T>,
    /// The core has shut down: nothing pushed now would ever be taken.
    closed: bool,
}

pub(crate) struct Inbox<T> {
    queue: Mutex<Queue<T>>,
    /// Set by senders after pushing; lets the core skip the lock when nothing came.
    has_items: AtomicBool,
    /// The core is (about to be) blocked waiting for its bell.
    parked: AtomicBool,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Inbox<T> {
        Inbox {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
            }),
            has_items: AtomicBool::new(false),
            parked: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent (a
        // push or a take is one call), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`; calls `ring` (still under the lock) if the core is parked.
    ///
    /// All of it happens under the lock: once an item that carries a task's
    /// last reference is queued, the core may free the task, and with it what
    /// owns this inbox, as soon as it has taken the item — so a sender touches
    /// nothing after unlocking.
    ///
    /// # Errors
    ///
    /// Gives `item` back if the core has shut down.
    pub(crate) fn push(&self, item: T, ring: impl FnOnce()) -> Result<(), T> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(item);
        }
        queue.items.push(item);
        self.has_items.store(true, Ordering::Release);
        if self.parked.load(Ordering::SeqCst) {
            ring();
        }
        drop(queue);
        Ok(())
    }

    /// Whether something may have arrived since the last `take`.
    pub(crate) fn has_items(&self) -> bool {
        self.has_items.load(Ordering::Acquire)
    }

    /// Takes everything queued.
    pub(crate) fn take(&self, into: &mut Vec<T>) {
        self.has_items.store(false, Ordering::Relaxed);
        into.append(&mut self.queue().items);
    }

    /// Refuses everything from now on and returns what was still queued.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut queue = self.queue();
        queue.closed = true;
        std::mem::take(&mut queue.items)
    }

    /// Announces that the core is about to block; false if something arrived
    /// meanwhile (then the core must not block).
    pub(crate) fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        let empty = self.queue().items.is_empty();
        if !empty {
            self.parked.store(false, Ordering::SeqCst);
        }
        empty
    }

    /// The core is awake again.
    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_inbox {
    use super::Inbox;
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// The core's eventfd: a counter the bell increments and a blocked read
    /// resets.
    struct Bell {
        count: Mutex<u64>,
        rung: Condvar,
    }

    impl Bell {
        fn ring(&self) {
            *self.count.lock().unwrap() += 1;
            self.rung.notify_one();
        }

        /// The core's `io_uring_enter` waiting on its eventfd read.
        fn wait(&self) {
            let mut count = self.count.lock().unwrap();
            while *count == 0 {
                count = self.rung.wait(count).unwrap();
            }
            *count = 0;
        }
    }

    /// The core's loop as the executor runs it: take what came, otherwise park
    /// and block until rung. A lost wakeup leaves it blocked forever, which
    /// loom reports as a deadlock.
    fn core_receives(inbox: &Inbox<u32>, bell: &Bell, expected: usize) -> Vec<u32> {
        let mut got = Vec::new();
        while got.len() < expected {
            if inbox.has_items() {
                inbox.take(&mut got);
                continue;
            }
            if inbox.park() {
                bell.wait();
                inbox.unpark();
            }
            inbox.take(&mut got);
        }
        got
    }

    fn bell() -> Arc<Bell> {
        Arc::new(Bell {
            count: Mutex::new(0),
            rung: Condvar::new(),
        })
    }

    #[test]
    fn one_sender_no_lost_wakeup() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::new());
            let bell = bell();
            let sender = {
                let (inbox, bell) = (inbox.clone(), bell.clone());
                thread::spawn(move || {
                    for i in 0..2 {
                        assert!(inbox.push(i, || bell.ring()).is_ok());
                    }
                })
            };
            let got = core_receives(&inbox, &bell, 2);
            sender.join().unwrap();
            assert_eq!(got, [0, 1], "every item once, in order");
        });
    }

    #[test]
    fn two_senders_no_lost_wakeup() {
        let mut model = loom::model::Builder::new();
        // Bounded for CI time; LOOM_MAX_PREEMPTIONS overrides it for a deeper run.
        model.preemption_bound = Some(
            std::env::var("LOOM_MAX_PREEMPTIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(3),
        );
        model.check(|| {
            let inbox = Arc::new(Inbox::new());
            let bell = bell();
            let senders: Vec<_> = (0..2)
                .map(|i| {
                    let (inbox, bell) = (inbox.clone(), bell.clone());
                    thread::spawn(move || assert!(inbox.push(i, || bell.ring()).is_ok()))
                })
                .collect();
            let mut got = core_receives(&inbox, &bell, 2);
            for sender in senders {
                sender.join().unwrap();
            }
            got.sort_unstable();
            assert_eq!(got, [0, 1]);
        });
    }

    #[test]
    fn a_closed_inbox_hands_items_back() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::new());
            let sender = {
                let inbox = inbox.clone();
                thread::spawn(move || inbox.push(7u32, || {}))
            };
            let left = inbox.close();
            let pushed = sender.join().unwrap();
            // Either the core took it at close, or the sender got it back.
            assert_eq!(left.len() + usize::from(pushed.is_err()), 1);
        });
    }
}
