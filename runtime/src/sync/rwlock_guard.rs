//! Guards of [`RwLock`](super::RwLock).

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::rwlock::{release, Access, State};

/// Releases access on drop; declared last in guards so it runs after the
/// guard's borrow of the value is gone.
pub(super) struct Release<'a>(pub(super) &'a RefCell<State>, pub(super) Access);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        release(self.0, self.1);
    }
}

/// Shared read access to an [`RwLock`](super::RwLock); released on drop.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::RwLock;
///
/// let lock = RwLock::new(vec![1, 2]);
/// let guard = lock.try_read().expect("unlocked");
/// assert_eq!(guard.len(), 2);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    // Dropped before `_release`, so the value is free before others get in.
    pub(super) value: Ref<'a, T>,
    pub(super) _release: Release<'a>,
}

/// Exclusive write access to an [`RwLock`](super::RwLock); released on drop.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::RwLock;
///
/// let lock = RwLock::new(vec![1]);
/// lock.try_write().expect("unlocked").push(2);
/// assert_eq!(*lock.try_read().expect("unlocked"), [1, 2]);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    // Dropped before `_release`, so the value is free before others get in.
    pub(super) value: RefMut<'a, T>,
    pub(super) _release: Release<'a>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
