//! A group of tasks awaited together (asyncio's `gather` / `TaskGroup`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{spawn, JoinError, JoinHandle};

/// A set of tasks on the current core, awaited as they finish.
///
/// Dropping the set aborts every task still in it.
///
/// # Examples
///
/// ```
/// use percore_runtime::task::JoinSet;
///
/// percore_runtime::run(async {
///     let mut set = JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(result) = set.join_next().await {
///         sum += result.unwrap();
///     }
///     assert_eq!(sum, 285);
/// })
/// .unwrap();
/// ```
pub struct JoinSet<T: 'static> {
    tasks: FuturesUnordered<Indexed<T>>,
    next_index: usize,
}

/// A handle that remembers its spawn order, so results can be put back in order.
struct Indexed<T> {
    index: usize,
    handle: JoinHandle<T>,
}

impl<T> Future for Indexed<T> {
    type Output = (usize, Result<T, JoinError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.handle)
            .poll(cx)
            .map(|result| (index, result))
    }
}

/// Why [`JoinSet::try_join_all`] stopped.
#[derive(Debug)]
pub enum TryJoinError<E> {
    /// A task returned this error.
    Failed(E),
    /// A task panicked or was cancelled.
    Task(JoinError),
}

impl<E: fmt::Display> fmt::Display for TryJoinError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryJoinError::Failed(err) => write!(f, "a task failed: {err}"),
            TryJoinError::Task(err) => write!(f, "a task did not finish: {err}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TryJoinError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryJoinError::Failed(err) => Some(err),
            TryJoinError::Task(err) => Some(err),
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: FuturesUnordered::new(),
            next_index: 0,
        }
    }

    /// Spawns `future` on the current core into the set.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        let handle = spawn(future);
        self.tasks.push(Indexed {
            index: self.next_index,
            handle,
        });
        self.next_index += 1;
    }

    /// Number of tasks not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether every task has been joined.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to finish; `None` when the set is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a result is only taken out of the set when it is returned.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.tasks.next().await.map(|(_, result)| result)
    }

    /// Aborts every task in the set; they stay in it and join as cancelled.
    pub fn abort_all(&mut self) {
        for task in self.tasks.iter() {
            task.handle.abort();
        }
    }

    /// Waits for every task and returns their outputs in spawn order.
    ///
    /// # Panics
    ///
    /// If a task panicked, that panic is resumed here (the others are aborted).
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs: Vec<Option<T>> = (0..self.next_index).map(|_| None).collect();
        while let Some((index, result)) = self.tasks.next().await {
            match result {
                Ok(value) => outputs[index] = Some(value),
                // A cancelled task (by `abort_all`) has no output to report.
                Err(err) => {
                    if let Ok(payload) = err.try_into_panic() {
                        self.abort_all();
                        std::panic::resume_unwind(payload)
                    }
                }
            }
        }
        outputs.into_iter().flatten().collect()
    }
}

impl<U: 'static, E: 'static> JoinSet<Result<U, E>> {
    /// Waits for every task; on the first error (or panic) aborts the rest and
    /// returns it. On success the outputs come in spawn order.
    ///
    /// # Errors
    ///
    /// The first task error, as [`TryJoinError::Failed`], or a panic or
    /// cancellation, as [`TryJoinError::Task`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::task::{JoinSet, TryJoinError};
    ///
    /// percore_runtime::run(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn(async { Ok::<_, String>(1) });
    ///     set.spawn(async { Err("bad input".to_string()) });
    ///     set.spawn(std::future::pending::<Result<i32, String>>());
    ///     match set.try_join_all().await {
    ///         Err(TryJoinError::Failed(err)) => assert_eq!(err, "bad input"),
    ///         other => panic!("unexpected {other:?}"),
    ///     }
    /// })
    /// .unwrap();
    /// ```
    pub async fn try_join_all(mut self) -> Result<Vec<U>, TryJoinError<E>> {
        let mut outputs: Vec<Option<U>> = (0..self.next_index).map(|_| None).collect();
        while let Some((index, result)) = self.tasks.next().await {
            match result {
                Ok(Ok(value)) => outputs[index] = Some(value),
                Ok(Err(err)) => {
                    self.abort_all();
                    return Err(TryJoinError::Failed(err));
                }
                Err(err) => {
                    self.abort_all();
                    return Err(TryJoinError::Task(err));
                }
            }
        }
        Ok(outputs.into_iter().flatten().collect())
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T: 'static> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for task in self.tasks.iter() {
            task.handle.abort();
        }
    }
}

impl<T: 'static> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}
