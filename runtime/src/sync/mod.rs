//! Core-local synchronisation primitives: asyncio's `Lock`, `Event`,
//! `Semaphore` and `Queue`, for tasks that share one core.
//!
//! Every task of a percore executor runs on the thread that spawned it, so
//! these primitives need no atomics and no OS locks: they are built on
//! `Rc`, `Cell` and `RefCell`, are neither `Send` nor `Sync`, and cost about
//! as much as the bookkeeping they do. To coordinate *across* cores, use a
//! cross-core channel instead.
//!
//! | Type | Purpose |
//! | --- | --- |
//! | [`Mutex`] | exclusive access, guard may be held across `.await` |
//! | [`RwLock`] | many readers or one writer |
//! | [`Semaphore`] | limit concurrency to a number of permits |
//! | [`Event`] | a flag tasks can wait to be set |
//! | [`oneshot`] | send one value to one task |
//! | [`mpsc`] | bounded or unbounded FIFO queue, many producers, one consumer |
//!
//! # Fairness
//!
//! Waiting tasks are served first come, first served. When a lock, permits
//! or a channel slot are released they are handed directly to the first
//! waiter, so a task that arrives later (even one calling a `try_` method)
//! cannot take them first.
//!
//! # Cancel safety
//!
//! Every future here may be dropped at any point without deadlocking the
//! others: a future that was handed something but dropped before it saw it
//! passes it on to the next waiter. Each method's `# Cancel safety` section
//! says exactly what is lost, if anything.
//!
//! # Examples
//!
//! ```
//! use percore_runtime::sync::{mpsc, Mutex};
//! use std::rc::Rc;
//!
//! # percore_runtime::run(async {
//! let total = Rc::new(Mutex::new(0));
//! let (tx, mut rx) = mpsc::channel(16);
//! for i in 1..=3 {
//!     tx.send(i).await.expect("receiver is alive");
//! }
//! drop(tx);
//! while let Some(i) = rx.recv().await {
//!     *total.lock().await += i;
//! }
//! assert_eq!(*total.lock().await, 6);
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod event;
pub mod mpsc;
mod mpsc_chan;
mod mpsc_recv;
mod mpsc_unbounded;
mod mutex;
pub mod oneshot;
mod rwlock;
mod rwlock_guard;
mod semaphore;
mod semaphore_permit;
mod waiters;

pub use event::{Event, Wait};
pub use mutex::{Lock, Mutex, MutexGuard};
pub use rwlock::{ReadLock, RwLock, WriteLock};
pub use rwlock_guard::{RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Acquire, Semaphore};
pub use semaphore_permit::{AcquireError, Permit, TryAcquireError};

#[cfg(test)]
mod tests {
    use super::*;

    /// Has two impls for `Send` types, so naming `some_item` on one without
    /// fixing `A` is ambiguous and fails to compile; for `!Send` types only
    /// the `()` impl applies.
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }

    impl<T: ?Sized> AmbiguousIfSend<()> for T {}

    struct IsSend;

    impl<T: ?Sized + Send> AmbiguousIfSend<IsSend> for T {}

    /// Compile-time check that each listed type is `!Send`.
    macro_rules! assert_not_send {
        ($($ty:ty),+ $(,)?) => {
            $(let _ = <$ty as AmbiguousIfSend<_>>::some_item;)+
        };
    }

    #[test]
    fn everything_is_not_send() {
        // `u8` payloads: the primitives must be `!Send` even for `Send` data.
        assert_not_send!(
            Mutex<u8>,
            MutexGuard<'static, u8>,
            Lock<'static, u8>,
            RwLock<u8>,
            RwLockReadGuard<'static, u8>,
            RwLockWriteGuard<'static, u8>,
            ReadLock<'static, u8>,
            WriteLock<'static, u8>,
            Semaphore,
            Permit<'static>,
            Acquire<'static>,
            Event,
            Wait<'static>,
            oneshot::Sender<u8>,
            oneshot::Receiver<u8>,
            oneshot::Closed<'static, u8>,
            mpsc::Sender<u8>,
            mpsc::Receiver<u8>,
            mpsc::SendFuture<'static, u8>,
            mpsc::Recv<'static, u8>,
            mpsc::UnboundedSender<u8>,
            mpsc::UnboundedReceiver<u8>,
        );
    }
}
