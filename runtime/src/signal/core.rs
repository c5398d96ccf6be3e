//! The per-core half of signal delivery: the listeners of one core and the
//! task that wakes them when the handler rings the core's eventfd.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::task::Waker;

use super::registry::Notify;
use crate::op::PollAdd;
use crate::Op;

/// The listeners of this thread's core waiting for a signal.
#[derive(Debug, Default)]
pub(super) struct Listeners {
    /// `(listener id, waker)`: one entry per waiting listener.
    waiting: RefCell<Vec<(u64, Waker)>>,
    next_id: Cell<u64>,
    /// Whether this core's delivery task still runs (a `Signal` kept past
    /// its runtime keeps these listeners alive after the task is gone).
    delivering: Cell<bool>,
}

thread_local! {
    /// This thread's core's listeners while its delivery task runs (the task
    /// owns them: when the runtime drops its tasks, the entry goes dead).
    static LISTENERS: RefCell<Weak<Listeners>> = const { RefCell::new(Weak::new()) };
}

impl Listeners {
    /// This core's listeners, starting its delivery task on first use.
    ///
    /// # Errors
    ///
    /// The core's eventfd cannot be made.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    pub(super) fn of_this_core() -> io::Result<Rc<Listeners>> {
        let current = LISTENERS.with(|current| current.borrow().upgrade());
        if let Some(listeners) = current.filter(|listeners| listeners.delivering.get()) {
            return Ok(listeners);
        }
        // The eventfd is in its slot before any listener checks a count, so
        // a delivery after the check rings it.
        let notify = Notify::new()?;
        let listeners = Rc::new(Listeners::default());
        listeners.delivering.set(true);
        LISTENERS.with(|current| *current.borrow_mut() = Rc::downgrade(&listeners));
        drop(crate::spawn(deliver(notify, Rc::clone(&listeners))));
        Ok(listeners)
    }

    pub(super) fn new_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Wakes `waker` at the next delivery of any signal.
    pub(super) fn wait(&self, id: u64, waker: &Waker) {
        let mut waiting = self.waiting.borrow_mut();
        match waiting.iter_mut().find(|(entry, _)| *entry == id) {
            Some((_, old)) => old.clone_from(waker),
            None => waiting.push((id, waker.clone())),
        }
    }

    pub(super) fn forget(&self, id: u64) {
        self.waiting.borrow_mut().retain(|(entry, _)| *entry != id);
    }
}

/// The core's delivery task: waits for the eventfd and wakes every waiting
/// listener (each checks its own signal's count). Ends with the runtime.
async fn deliver(notify: Notify, listeners: Rc<Listeners>) {
    /// Marks the listeners orphaned when the task ends (with its runtime).
    struct Delivering(Rc<Listeners>);
    impl Drop for Delivering {
        fn drop(&mut self) {
            self.0.delivering.set(false);
        }
    }
    let listeners = Delivering(listeners);
    let listeners = &listeners.0;
    loop {
        // A readiness poll, not a read: the same on both backends, and a
        // paused clock does not wait for it.
        if let Err(err) = Op::new(PollAdd::new(notify.fd(), libc::POLLIN as u32)).await {
            // Listeners keep their counts; the next poll may work again.
            eprintln!(
                "percore: waiting for signals on core {}: {err}",
                crate::current_core()
            );
            crate::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        notify.clear();
        let waiting = std::mem::take(&mut *listeners.waiting.borrow_mut());
        for (_, waker) in waiting {
            waker.wake();
        }
    }
}
