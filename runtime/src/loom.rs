//! The atomics, cells and `Arc` of the cross-core channels, the inbox and the
//! task's waker count: `loom`'s model-checked versions under `--cfg loom`, the
//! std ones otherwise.
//!
//! Code that shares memory between cores imports from here, never from
//! `std::sync` directly, so the loom models (`ci/loom.sh`) can explore every
//! interleaving of it. std's `UnsafeCell` gets loom's `with`/`with_mut` API.
//! Loom's atomics are not `const`: nothing from here can sit in a `static`.

#[cfg(loom)]
pub(crate) use ::loom::{cell, hint, sync, thread};

#[cfg(not(loom))]
pub(crate) use std::{hint, thread};

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, Mutex};

    pub(crate) mod atomic {
        #[allow(unused_imports)]
        pub(crate) use std::sync::atomic::*;
    }
}

#[cfg(not(loom))]
pub(crate) mod cell {
    /// `std::cell::UnsafeCell` with loom's closure-based access methods.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared pointer to the contents.
        #[allow(dead_code)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a unique pointer to the contents.
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
