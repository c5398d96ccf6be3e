//! What acquiring from a [`Semaphore`] yields: a [`Permit`] or an error.

use std::error::Error;
use std::fmt;

use super::Semaphore;

/// Permits taken from a [`Semaphore`]; they go back when this is dropped.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// {
///     let _permit = sem.try_acquire().expect("free");
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "permits are released immediately if unused"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl<'a> Permit<'a> {
    pub(super) fn new(semaphore: &'a Semaphore, permits: usize) -> Self {
        Self { semaphore, permits }
    }

    /// Drops the permit without giving the permits back.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// sem.try_acquire().expect("free").forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(4);
    /// assert_eq!(sem.try_acquire_many(3).expect("free").num_permits(), 3);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.add_permits(self.permits);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("permits", &self.permits)
            .finish()
    }
}

/// Error from [`Semaphore::acquire`](Semaphore::acquire): the semaphore was closed.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Semaphore;
///
/// # percore_runtime::run(async {
/// let sem = Semaphore::new(0);
/// sem.close();
/// let err = sem.acquire().await.unwrap_err();
/// assert_eq!(err.to_string(), "semaphore closed");
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireError(pub(super) ());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl Error for AcquireError {}

/// Error from [`Semaphore::try_acquire`](Semaphore::try_acquire) and [`Semaphore::try_acquire_many`](Semaphore::try_acquire_many).
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{Semaphore, TryAcquireError};
///
/// let sem = Semaphore::new(0);
/// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
/// sem.close();
/// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits free, or other requests are queued first.
    NoPermits,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "semaphore closed",
            Self::NoPermits => "no permits available",
        })
    }
}

impl Error for TryAcquireError {}
