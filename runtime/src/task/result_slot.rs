//! A `Send` one-shot for the result of work done on another thread: a blocking
//! job (`spawn_blocking`) or a task on another core (`spawn_on`).
//!
//! The producer holds a [`Completer`], which fills the slot exactly once — with
//! the result, or with a cancelled `JoinError` if it is dropped first (the job
//! never ran, the core stopped) — so the awaiting side never waits forever. The
//! consumer polls the slot from any thread or executor.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::JoinError;

enum State<T> {
    /// Not finished.
    Pending,
    /// Finished (or cancelled).
    Done(Result<T, JoinError>),
    /// The consumer took the result.
    Taken,
}

/// The shared slot; `extra` is whatever else both sides need (e.g. an abort flag).
pub(crate) struct ResultSlot<T, X = ()> {
    state: Mutex<State<T>>,
    waker: AtomicWaker,
    pub(crate) extra: X,
}

impl<T, X> ResultSlot<T, X> {
    /// A pending slot, and the completer that fills it.
    pub(crate) fn new(extra: X) -> (Arc<ResultSlot<T, X>>, Completer<T, X>) {
        let slot = Arc::new(ResultSlot {
            state: Mutex::new(State::Pending),
            waker: AtomicWaker::new(),
            extra,
        });
        let completer = Completer {
            slot: Arc::clone(&slot),
        };
        (slot, completer)
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code that can panic runs under this lock, so poisoning cannot leave
        // the state half-updated.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the result is there (or was taken).
    pub(crate) fn is_finished(&self) -> bool {
        !matches!(*self.lock(), State::Pending)
    }

    fn take(&self) -> Option<Result<T, JoinError>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(result) => Some(result),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Polls for the result; `what` names the handle in the panic message.
    ///
    /// # Panics
    ///
    /// If polled again after the result was taken.
    pub(crate) fn poll_result(
        &self,
        cx: &mut Context<'_>,
        what: &str,
    ) -> Poll<Result<T, JoinError>> {
        if let Some(result) = self.take() {
            return Poll::Ready(result);
        }
        // Register, then look again: a producer finishing in between either
        // sees the new waker or left its result for the second look.
        self.waker.register(cx.waker());
        match self.take() {
            Some(result) => Poll::Ready(result),
            None => {
                assert!(
                    !matches!(*self.lock(), State::Taken),
                    "{what} polled after completion"
                );
                Poll::Pending
            }
        }
    }
}

/// The producer's side: fills the slot exactly once.
pub(crate) struct Completer<T, X = ()> {
    slot: Arc<ResultSlot<T, X>>,
}

impl<T, X> Completer<T, X> {
    pub(crate) fn slot(&self) -> &Arc<ResultSlot<T, X>> {
        &self.slot
    }

    pub(crate) fn complete(self, result: Result<T, JoinError>) {
        self.fill(result);
        // `Drop` finds the slot filled and does nothing.
    }

    fn fill(&self, result: Result<T, JoinError>) {
        {
            let mut state = self.slot.lock();
            if !matches!(*state, State::Pending) {
                return;
            }
            *state = State::Done(result);
        }
        // If the consumer is gone, nobody is registered and the result is
        // dropped with the last `Arc`.
        self.slot.waker.wake();
    }
}

impl<T, X> Drop for Completer<T, X> {
    fn drop(&mut self) {
        self.fill(Err(JoinError::cancelled()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_completer_cancels() {
        let (slot, completer) = ResultSlot::<u8>::new(());
        assert!(!slot.is_finished());
        drop(completer);
        assert!(slot.is_finished());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match slot.poll_result(&mut cx, "test") {
            Poll::Ready(Err(err)) => assert!(err.is_cancelled()),
            _ => panic!("a dropped completer must cancel"),
        }
    }

    #[test]
    fn the_result_is_delivered_once() {
        let (slot, completer) = ResultSlot::<u8>::new(());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(slot.poll_result(&mut cx, "test").is_pending());
        completer.complete(Ok(5));
        assert!(matches!(
            slot.poll_result(&mut cx, "test"),
            Poll::Ready(Ok(5))
        ));
    }
}
