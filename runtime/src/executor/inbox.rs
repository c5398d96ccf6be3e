//! A core's inbox: a lock-free MPSC queue of what other threads send it, and
//! one atomic word that says whether the core must be woken.
//!
//! The queue is crossbeam's `SegQueue` (under `--cfg loom`, a loom-visible
//! stand-in with the same contract: an item pushed before `is_empty` in
//! happens-before order is seen). The word holds `PARKED`, `CLOSED` and the
//! count of senders inside `push`. The protocol is model-checked (`ci/loom.sh`):
//!
//! - a sender counts itself in (refused if `CLOSED`), pushes, then leaves with a
//!   read-modify-write of the word: if `PARKED` is set it clears it and rings
//!   the core's bell before counting itself out, else it just counts itself out;
//! - the core sets `PARKED` with a read-modify-write, *then* looks at the queue,
//!   and blocks only if it was empty.
//!
//! Both sides' last steps are read-modify-writes of one word, so they are
//! totally ordered: if the sender's comes first, the core's acquires it and sees
//! the item; if the core's comes first, the sender sees `PARKED` and rings. No
//! lost wakeup, and exactly one sender rings per park: a busy core is never
//! sent a syscall.
//!
//! The sender count also keeps the core from freeing the inbox under a sender:
//! once an item that carries a task's last reference is queued, the core may
//! free the task and shut down, but `close` waits until every sender is out.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};

/// The core is (about to be) blocked waiting for its bell.
const PARKED: usize = 1;
/// The core has shut down: nothing pushed now would ever be taken.
const CLOSED: usize = 2;
/// One sender inside `push`; the count lives in the bits above the flags.
const SENDER: usize = 4;
/// Most items one `take` moves: a tick's share of remote work.
const TAKE_LIMIT: usize = 4096;

pub(crate) struct Inbox<T> {
    queue: Queue<T>,
    state: AtomicUsize,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Inbox<T> {
        Inbox {
            queue: Queue::new(),
            state: AtomicUsize::new(0),
        }
    }

    /// Queues `item`; calls `ring` if the core is parked (at most one sender
    /// rings per park).
    ///
    /// The inbox stays alive until this returns, even if the item carried the
    /// last reference that kept the core's tasks alive (`close` waits for it).
    ///
    /// # Errors
    ///
    /// Gives `item` back if the core has shut down.
    pub(crate) fn push(&self, item: T, ring: impl FnOnce()) -> Result<(), T> {
        if self.state.fetch_add(SENDER, Ordering::Acquire) & CLOSED != 0 {
            self.state.fetch_sub(SENDER, Ordering::Release);
            return Err(item);
        }
        self.queue.push(item);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // Release: a core that parks after this sees the item.
            let (next, rings) = if state & PARKED != 0 {
                (state & !PARKED, true)
            } else {
                (state - SENDER, false)
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if rings => {
                    ring();
                    self.state.fetch_sub(SENDER, Ordering::Release);
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(now) => state = now,
            }
        }
    }

    /// Whether something may be queued. Owning core only.
    pub(crate) fn has_items(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Takes what is queued, at most [`TAKE_LIMIT`] items, so senders that keep
    /// pushing cannot hold the core in this loop; the rest waits for the next
    /// tick (`has_items` stays true, so the core does not park). Owning core only.
    pub(crate) fn take(&self, into: &mut Vec<T>) {
        for _ in 0..TAKE_LIMIT {
            match self.queue.pop() {
                Some(item) => into.push(item),
                None => return,
            }
        }
    }

    /// Refuses everything from now on, waits for senders still inside `push`,
    /// and returns what was queued. Owning core only.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut state = self.state.fetch_or(CLOSED, Ordering::AcqRel) | CLOSED;
        while state >= SENDER {
            // A sender between its two steps; it never blocks there, so this is
            // short (shutdown only).
            crate::loom::thread::yield_now();
            state = self.state.load(Ordering::Acquire);
        }
        let mut left = Vec::new();
        while let Some(item) = self.queue.pop() {
            left.push(item);
        }
        left
    }

    /// Announces that the core is about to block; false if something arrived
    /// meanwhile (then the core must not block). Owning core only.
    pub(crate) fn park(&self) -> bool {
        // AcqRel: acquires every sender that left before, so their items show.
        self.state.fetch_or(PARKED, Ordering::AcqRel);
        if self.queue.is_empty() {
            return true;
        }
        self.unpark();
        false
    }

    /// The core is awake again. Owning core only.
    pub(crate) fn unpark(&self) {
        // A sender that rang has cleared the flag already.
        if self.state.load(Ordering::Relaxed) & PARKED != 0 {
            self.state.fetch_and(!PARKED, Ordering::Relaxed);
        }
    }
}

#[cfg(not(loom))]
use crossbeam_queue::SegQueue as Queue;

/// Under loom: a queue whose synchronisation loom sees. A mutex is stronger
/// than `SegQueue`, but the protocol above uses only what both give: an item
/// pushed before `is_empty` (in happens-before order) is seen by it.
#[cfg(loom)]
struct Queue<T>(crate::loom::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(loom)]
impl<T> Queue<T> {
    fn new() -> Queue<T> {
        Queue(crate::loom::sync::Mutex::new(
            std::collections::VecDeque::new(),
        ))
    }

    fn push(&self, item: T) {
        self.0.lock().unwrap().push_back(item);
    }

    fn pop(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Inbox, TAKE_LIMIT};

    #[test]
    fn take_moves_a_bounded_share_and_keeps_the_rest() {
        let inbox = Inbox::new();
        for i in 0..TAKE_LIMIT + 10 {
            assert!(inbox.push(i, || panic!("not parked: no bell")).is_ok());
        }
        let mut got = Vec::new();
        inbox.take(&mut got);
        assert_eq!(got.len(), TAKE_LIMIT);
        assert!(inbox.has_items(), "the rest waits for the next tick");
        inbox.take(&mut got);
        assert_eq!(
            got,
            (0..TAKE_LIMIT + 10).collect::<Vec<_>>(),
            "all, in order"
        );
        assert!(!inbox.has_items());
    }

    #[test]
    fn close_hands_back_everything_and_refuses_more() {
        let inbox = Inbox::new();
        for i in 0..TAKE_LIMIT + 1 {
            assert!(inbox.push(i, || {}).is_ok());
        }
        assert_eq!(inbox.close().len(), TAKE_LIMIT + 1);
        assert_eq!(inbox.push(7, || {}), Err(7));
    }

    #[test]
    fn only_a_parked_core_is_rung() {
        let inbox = Inbox::new();
        let rung = std::cell::Cell::new(0);
        assert!(inbox.push(1, || rung.set(rung.get() + 1)).is_ok());
        assert_eq!(rung.get(), 0, "busy core: no syscall");
        let mut got = Vec::new();
        inbox.take(&mut got);
        assert!(inbox.park());
        assert!(inbox.push(2, || rung.set(rung.get() + 1)).is_ok());
        assert!(inbox.push(3, || rung.set(rung.get() + 1)).is_ok());
        assert_eq!(rung.get(), 1, "one bell per park");
        inbox.unpark();
        assert!(!inbox.park(), "items waiting: do not block");
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

    /// Runs `f` under loom, bounded for CI time; `LOOM_MAX_PREEMPTIONS`
    /// overrides the bound for a deeper run.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(
            std::env::var("LOOM_MAX_PREEMPTIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(3),
        );
        model.check(f);
    }

    #[test]
    fn one_sender_no_lost_wakeup() {
        model(|| {
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
        model(|| {
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

    /// `close` returns only once no sender can touch the inbox any more (the
    /// core frees it after): a sender that rings does so before `close` returns.
    #[test]
    fn close_waits_for_a_ringing_sender() {
        use loom::sync::atomic::{AtomicBool, Ordering};
        model(|| {
            let inbox = Arc::new(Inbox::new());
            let freed = Arc::new(AtomicBool::new(false));
            let sender = {
                let (inbox, freed) = (inbox.clone(), freed.clone());
                thread::spawn(move || {
                    let _ = inbox.push(1u32, || {
                        assert!(!freed.load(Ordering::Relaxed), "rang a freed inbox")
                    });
                })
            };
            let parked = inbox.park();
            let _ = inbox.close();
            freed.store(true, Ordering::Relaxed);
            if parked {
                inbox.unpark();
            }
            sender.join().unwrap();
        });
    }

    #[test]
    fn a_closed_inbox_hands_items_back() {
        model(|| {
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
