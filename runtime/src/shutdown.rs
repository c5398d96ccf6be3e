//! Graceful shutdown of a whole server, every core at once: [`Shutdown`].
//!
//! One `Shutdown` is shared (cloned) by every core and task of a server:
//!
//! 1. something [begins](Shutdown::begin) it — a signal
//!    ([`begin_on_signals`](Shutdown::begin_on_signals)), an admin request, a
//!    test;
//! 2. every accept loop awaits [`begun`](Shutdown::begun) and returns, which
//!    drops (closes) its listener at once: new connects are refused;
//! 3. every connection task holds a [`Guard`] and awaits `begun` between
//!    requests: it finishes the request in hand, then closes;
//! 4. each core awaits [`drained`](Shutdown::drained) — every guard dropped —
//!    up to a grace period, and returns; what is left is cancelled when the
//!    runtime drops its tasks.
//!
//! ```
//! use std::time::Duration;
//! use percore_runtime::shutdown::Shutdown;
//! use percore_runtime::time::timeout;
//!
//! # percore_runtime::run(async {
//! let shutdown = Shutdown::new();
//! // A connection task: it works until told to finish.
//! let guard = shutdown.guard();
//! let task = percore_runtime::spawn({
//!     let shutdown = shutdown.clone();
//!     async move {
//!         shutdown.begun().await; // between requests
//!         drop(guard); // finished: the connection closes
//!     }
//! });
//! shutdown.begin();
//! assert!(timeout(Duration::from_secs(5), shutdown.drained()).await.is_ok());
//! task.await.unwrap();
//! # }).unwrap();
//! ```

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::signal::unix::{signal, SignalKind};

/// A shutdown every core and task of a server can begin and await: `Send`,
/// `Sync`, cheap to clone (clones share one state). See the [module
/// docs](self) for the sequence.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Set once by `begin`, never cleared.
    begun: AtomicBool,
    /// Live guards: work that must finish before the shutdown is drained.
    active: AtomicUsize,
    /// Who waits for `begun` and for `drained`. A waiter registers under the
    /// lock after checking the state; a state change takes the lock before
    /// waking, so no wake is lost.
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    next_id: u64,
    /// `(id, waker, wants drained rather than begun)`.
    list: Vec<(u64, Waker, bool)>,
}

impl Shutdown {
    /// A shutdown that has not begun, with no guards.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Begins the shutdown: every [`begun`](Shutdown::begun) completes, and
    /// [`drained`](Shutdown::drained) completes once no [`Guard`] is left.
    /// Later calls do nothing. Callable from any thread.
    pub fn begin(&self) {
        if self.inner.begun.swap(true, SeqCst) {
            return;
        }
        let active = self.inner.active.load(SeqCst);
        crate::trace::event!(
            INFO,
            guards = active,
            "graceful shutdown begun: waiting for the work in flight"
        );
        let drained = active == 0;
        self.inner.wake(|wants_drained| !wants_drained || drained);
    }

    /// Whether [`begin`](Shutdown::begin) was called.
    pub fn is_begun(&self) -> bool {
        self.inner.begun.load(SeqCst)
    }

    /// Completes once the shutdown has begun (at once if it has).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn begun(&self) -> Wait<'_> {
        self.wait(false)
    }

    /// Completes once the shutdown has begun and every [`Guard`] is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn drained(&self) -> Wait<'_> {
        self.wait(true)
    }

    /// Counts work in flight until the guard is dropped:
    /// [`drained`](Shutdown::drained) waits for it. `Send`: it may move to
    /// another core with its work.
    pub fn guard(&self) -> Guard {
        self.inner.active.fetch_add(1, SeqCst);
        Guard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Guards alive now.
    pub fn active(&self) -> usize {
        self.inner.active.load(SeqCst)
    }

    /// Begins the shutdown at the first `SIGTERM` or `SIGINT` (Ctrl-C): both
    /// are listened for before this returns (a signal a moment later is not
    /// missed, nor does it end the process), and a task of this core waits.
    ///
    /// # Errors
    ///
    /// As [`signal`]: outside a percore runtime, or the handlers cannot be
    /// installed.
    pub fn begin_on_signals(&self) -> io::Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let shutdown = self.clone();
        drop(crate::spawn(async move {
            {
                // Also stop waiting if the shutdown was begun another way.
                let mut begun = pin!(shutdown.begun());
                poll_fn(|cx| {
                    let signalled =
                        terminate.poll_recv(cx).is_ready() || interrupt.poll_recv(cx).is_ready();
                    if signalled || begun.as_mut().poll(cx).is_ready() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
            shutdown.begin();
        }));
        Ok(())
    }

    fn wait(&self, wants_drained: bool) -> Wait<'_> {
        Wait {
            inner: &self.inner,
            id: None,
            wants_drained,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ready(&self, wants_drained: bool) -> bool {
        self.begun.load(SeqCst) && (!wants_drained || self.active.load(SeqCst) == 0)
    }

    fn poll_state(
        &self,
        cx: &mut Context<'_>,
        id: &mut Option<u64>,
        wants_drained: bool,
    ) -> Poll<()> {
        if self.ready(wants_drained) {
            return Poll::Ready(());
        }
        let mut waiters = self.lock();
        // Checked again under the lock: a change after this check wakes us.
        if self.ready(wants_drained) {
            return Poll::Ready(());
        }
        let id = *id.get_or_insert_with(|| {
            waiters.next_id += 1;
            waiters.next_id
        });
        match waiters.list.iter_mut().find(|(entry, ..)| *entry == id) {
            Some((_, waker, _)) => waker.clone_from(cx.waker()),
            None => waiters.list.push((id, cx.waker().clone(), wants_drained)),
        }
        Poll::Pending
    }

    /// Wakes (and forgets) the waiters `which` picks by what they want.
    fn wake(&self, which: impl Fn(bool) -> bool) {
        let mut woken = Vec::new();
        self.lock().list.retain(|(_, waker, wants_drained)| {
            if which(*wants_drained) {
                woken.push(waker.clone());
                false
            } else {
                true
            }
        });
        for waker in woken {
            waker.wake();
        }
    }
}

/// A [`Shutdown::begun`] or [`Shutdown::drained`] wait; forgets its waker
/// when dropped.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    inner: &'a Inner,
    /// This wait's entry among the waiters, once it has one.
    id: Option<u64>,
    wants_drained: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.inner.poll_state(cx, &mut this.id, this.wants_drained)
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.inner.lock().list.retain(|(entry, ..)| *entry != id);
        }
    }
}

/// Work in flight that a [`Shutdown`] waits for; made by
/// [`Shutdown::guard`], done when dropped.
#[derive(Debug)]
#[must_use = "the work counts as in flight only while its guard lives"]
pub struct Guard {
    inner: Arc<Inner>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.inner.active.fetch_sub(1, SeqCst) == 1 && self.inner.begun.load(SeqCst) {
            crate::trace::event!(INFO, "graceful shutdown drained: no work in flight");
            self.inner.wake(|wants_drained| wants_drained);
        }
    }
}
