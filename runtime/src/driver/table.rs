//! The op table: one slot per in-flight operation, keyed by `user_data`.
//!
//! `user_data` is `generation << 32 | index`. The generation makes a late or
//! stray CQE harmless: it no longer matches the slot, so it is ignored instead
//! of waking whatever op reuses the index.

use std::collections::VecDeque;
use std::task::Waker;

use slab::Slab;

/// Where an op's completion goes. Invariants, per state:
///
/// - `Waiting`: an `Op` future owns the data; the kernel has (or will have) the SQE.
/// - `Completed`: the terminal CQE arrived; the `Op` has not yet taken it.
/// - `Streaming`: a multishot op; `done` is set by the CQE without `F_MORE`.
/// - `Orphaned`: the `Op` was dropped in flight; the table owns the data until the
///   terminal CQE, then hands it back to be completed and dropped.
pub(crate) enum Lifecycle {
    Waiting(Option<Waker>),
    Completed {
        res: i32,
        flags: u32,
    },
    Streaming {
        waker: Option<Waker>,
        results: VecDeque<(i32, u32)>,
        done: bool,
    },
    Orphaned(Box<dyn Orphan>),
}

/// The data of an op whose future was dropped while the kernel still owned it.
pub(crate) trait Orphan {
    /// Handles one CQE. `last` is true for the terminal CQE (no `F_MORE`). An
    /// implementation completes the op and drops what it produced, which closes an fd
    /// the op created or returns a provided buffer. Called with the driver borrowed
    /// only for non-terminal CQEs, so those must not submit ops.
    fn cqe(&mut self, res: i32, flags: u32, last: bool);
}

struct Slot {
    generation: u32,
    state: Lifecycle,
}

/// A checked reference to a slot, as encoded in `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    pub(crate) fn user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub(crate) fn from_user_data(user_data: u64) -> Key {
        Key {
            index: user_data as u32,
            generation: (user_data >> 32) as u32,
        }
    }
}

/// What the driver must do after a CQE reached the table.
pub(crate) enum Reaped {
    /// Nothing more (stale CQE, or stored for a future that is not waiting).
    Nothing,
    /// Wake this task.
    Wake(Waker),
    /// The last CQE of an orphan: complete and drop its data outside the driver.
    Orphan(Box<dyn Orphan>, i32, u32),
}

#[derive(Default)]
pub(crate) struct OpTable {
    slots: Slab<Slot>,
    next_generation: u32,
}

impl OpTable {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn insert(&mut self, state: Lifecycle) -> Key {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let index = self.slots.insert(Slot { generation, state });
        // The slab would need 4 billion live ops to overflow u32; the ring caps
        // in-flight ops far below that.
        Key {
            index: index as u32,
            generation,
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut Lifecycle> {
        match self.slots.get_mut(key.index as usize) {
            Some(slot) if slot.generation == key.generation => Some(&mut slot.state),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<Lifecycle> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        Some(self.slots.remove(key.index as usize).state)
    }

    /// Records one CQE.
    #[inline]
    pub(crate) fn complete(&mut self, user_data: u64, res: i32, flags: u32) -> Reaped {
        let key = Key::from_user_data(user_data);
        let more = io_uring::cqueue::more(flags);
        let Some(state) = self.get_mut(key) else {
            return Reaped::Nothing;
        };
        match state {
            Lifecycle::Waiting(waker) => {
                let waker = waker.take();
                *state = Lifecycle::Completed { res, flags };
                waker.map_or(Reaped::Nothing, Reaped::Wake)
            }
            Lifecycle::Streaming {
                waker,
                results,
                done,
            } => {
                results.push_back((res, flags));
                *done = !more;
                waker.take().map_or(Reaped::Nothing, Reaped::Wake)
            }
            Lifecycle::Orphaned(orphan) if more => {
                orphan.cqe(res, flags, false);
                Reaped::Nothing
            }
            Lifecycle::Orphaned(_) => match self.remove(key) {
                Some(Lifecycle::Orphaned(orphan)) => Reaped::Orphan(orphan, res, flags),
                _ => Reaped::Nothing,
            },
            // A second terminal CQE for a completed single-shot op cannot happen;
            // ignoring it keeps the stored result intact.
            Lifecycle::Completed { .. } => Reaped::Nothing,
        }
    }

    /// Keys of every slot, for cancelling all of them at shutdown.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .map(|(index, slot)| Key {
                index: index as u32,
                generation: slot.generation,
            })
            .collect()
    }

    /// Whether any slot still waits for a CQE from the kernel.
    pub(crate) fn has_kernel_work(&self) -> bool {
        self.slots.iter().any(|(_, slot)| match &slot.state {
            Lifecycle::Waiting(_) | Lifecycle::Orphaned(_) => true,
            Lifecycle::Streaming { done, .. } => !done,
            Lifecycle::Completed { .. } => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const F_MORE: u32 = 1 << 1; // IORING_CQE_F_MORE

    struct Counting(std::rc::Rc<std::cell::Cell<usize>>);
    impl Orphan for Counting {
        fn cqe(&mut self, _res: i32, _flags: u32, _last: bool) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn stale_generation_is_ignored() {
        let mut table = OpTable::default();
        let old = table.insert(Lifecycle::Waiting(None));
        assert!(table.remove(old).is_some());
        let new = table.insert(Lifecycle::Waiting(None));
        assert_eq!(old.index, new.index, "the slab reuses the index");
        assert!(matches!(
            table.complete(old.user_data(), 5, 0),
            Reaped::Nothing
        ));
        assert!(matches!(table.get_mut(new), Some(Lifecycle::Waiting(_))));
        table.complete(new.user_data(), 7, 0);
        assert!(matches!(
            table.get_mut(new),
            Some(Lifecycle::Completed { res: 7, .. })
        ));
    }

    #[test]
    fn multishot_streams_until_no_more() {
        let mut table = OpTable::default();
        let key = table.insert(Lifecycle::Streaming {
            waker: None,
            results: VecDeque::new(),
            done: false,
        });
        table.complete(key.user_data(), 1, F_MORE);
        table.complete(key.user_data(), 2, F_MORE);
        table.complete(key.user_data(), 3, 0);
        match table.get_mut(key) {
            Some(Lifecycle::Streaming { results, done, .. }) => {
                assert!(*done);
                assert_eq!(results.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
            }
            _ => panic!("slot lost"),
        }
    }

    #[test]
    fn orphan_gets_every_cqe_and_slot_frees_on_last() {
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut table = OpTable::default();
        let key = table.insert(Lifecycle::Orphaned(Box::new(Counting(seen.clone()))));
        table.complete(key.user_data(), 1, F_MORE);
        assert_eq!(seen.get(), 1);
        assert_eq!(table.len(), 1);
        match table.complete(key.user_data(), 0, 0) {
            Reaped::Orphan(mut orphan, res, flags) => orphan.cqe(res, flags, true),
            _ => panic!("last CQE of an orphan must hand it back"),
        }
        assert_eq!(seen.get(), 2);
        assert_eq!(table.len(), 0);
    }
}
