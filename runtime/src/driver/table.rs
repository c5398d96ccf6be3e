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
/// - `Linked`: an op with a linked timeout (`Op::deadline` on io_uring): two
///   CQEs, the op's and the timeout's, in either order; the slot is freed
///   only once both arrived (see [`Linked`]).
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
    Linked(Box<Linked>),
}

impl Lifecycle {
    /// Drops the state, the common `Waiting` one without the drop glue of
    /// every state (a jump table).
    #[inline]
    pub(crate) fn discard(self) {
        match self {
            Lifecycle::Waiting(waker) => drop(waker),
            other => drop(other),
        }
    }
}

/// Set in the `user_data` of a linked timeout: the slot's own `user_data`
/// with the generation's top bit flipped. Such a CQE matches no slot as it
/// is, so the hot path does not look at it; the miss path flips the bit
/// back and finds the op the timeout is linked to, which keeps the slot (and
/// so the generation) until this CQE arrived.
pub(crate) const LINKED_TIMEOUT: u64 = 1 << 63;

/// The slot of an op with a linked timeout: what its two CQEs said so far.
pub(crate) struct Linked {
    /// The task to wake when the op's CQE arrives (or the timeout's, after it).
    pub(crate) waker: Option<Waker>,
    /// The op's CQE.
    pub(crate) op: Option<(i32, u32)>,
    /// The linked timeout's CQE: `-ETIME` if it fired and cancelled the op,
    /// `-ECANCELED` if the op finished first, or the error of a cancel that
    /// came too late (`-EALREADY`, `-ENOENT`).
    pub(crate) timer: Option<i32>,
    /// The op's data, once its future was dropped in flight: completed and
    /// dropped when both CQEs arrived.
    pub(crate) orphan: Option<Box<dyn Orphan>>,
    /// The future took the op's result already: the slot only waits for the
    /// timeout's CQE.
    pub(crate) taken: bool,
    /// The timeout the kernel reads when the SQE is submitted; boxed with the
    /// rest, so it does not move while the slab grows.
    pub(crate) timespec: io_uring::types::Timespec,
}

impl Linked {
    pub(crate) fn new(waker: Option<Waker>, after: std::time::Duration) -> Box<Linked> {
        Box::new(Linked {
            waker,
            op: None,
            timer: None,
            orphan: None,
            taken: false,
            timespec: io_uring::types::Timespec::from(after),
        })
    }

    /// Whether the linked timeout fired (and so cancelled or interrupted the
    /// op, if the op was still running); false while its CQE is unknown.
    pub(crate) fn fired(&self) -> bool {
        self.timer.is_some_and(|res| res != -libc::ECANCELED)
    }
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

    /// Frees `key`'s slot, which the caller has just seen `Completed` (and
    /// taken the result of) under the same borrow of the table: no second
    /// generation check, and no drop glue for a state that owns nothing.
    #[inline]
    pub(crate) fn free_completed(&mut self, key: Key) {
        let slot = self.slots.remove(key.index as usize);
        debug_assert!(
            slot.generation == key.generation && matches!(slot.state, Lifecycle::Completed { .. }),
            "free_completed on a slot that is not the caller's completed op"
        );
        // A `Completed` state is two integers: forgetting it leaks nothing.
        std::mem::forget(slot);
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
            return self.miss(user_data, res);
        };
        match state {
            Lifecycle::Waiting(_) => {
                // The old state is `Waiting`: moved out, not run through the
                // drop glue of every state.
                match std::mem::replace(state, Lifecycle::Completed { res, flags }) {
                    Lifecycle::Waiting(Some(waker)) => Reaped::Wake(waker),
                    _ => Reaped::Nothing,
                }
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
            _ => self.complete_other(key, res, flags, more),
        }
    }

    /// [`complete`](Self::complete) for the states the hot path does not
    /// expect: orphans, linked ops, and a completed op (a CQE too many).
    #[cold]
    #[inline(never)]
    fn complete_other(&mut self, key: Key, res: i32, flags: u32, more: bool) -> Reaped {
        let Some(state) = self.get_mut(key) else {
            return Reaped::Nothing;
        };
        match state {
            Lifecycle::Orphaned(orphan) if more => {
                orphan.cqe(res, flags, false);
                Reaped::Nothing
            }
            Lifecycle::Orphaned(_) => match self.remove(key) {
                Some(Lifecycle::Orphaned(orphan)) => Reaped::Orphan(orphan, res, flags),
                _ => Reaped::Nothing,
            },
            Lifecycle::Linked(linked) => {
                linked.op = Some((res, flags));
                self.linked(key)
            }
            // A second terminal CQE for a completed single-shot op cannot happen;
            // ignoring it keeps the stored result intact.
            Lifecycle::Completed { .. } | Lifecycle::Waiting(_) | Lifecycle::Streaming { .. } => {
                Reaped::Nothing
            }
        }
    }

    /// A CQE whose `user_data` matches no slot: a linked timeout's, or a
    /// stale one (ignored).
    #[cold]
    #[inline(never)]
    fn miss(&mut self, user_data: u64, res: i32) -> Reaped {
        let key = Key::from_user_data(user_data ^ LINKED_TIMEOUT);
        match self.get_mut(key) {
            Some(Lifecycle::Linked(linked)) if linked.timer.is_none() => {
                linked.timer = Some(res);
                self.linked(key)
            }
            _ => Reaped::Nothing,
        }
    }

    /// One of the two CQEs of a linked slot arrived: frees the slot once
    /// both did and nobody needs it, hands an orphan back, or wakes the task.
    #[cold]
    #[inline(never)]
    fn linked(&mut self, key: Key) -> Reaped {
        let Some(Lifecycle::Linked(linked)) = self.get_mut(key) else {
            return Reaped::Nothing;
        };
        let both = linked.op.is_some() && linked.timer.is_some();
        if !both {
            // The op's result is worth a poll (its future may take it and
            // leave the slot to the timeout's CQE); the timeout's alone is not.
            return match linked.op {
                Some(_) if linked.orphan.is_none() => {
                    linked.waker.take().map_or(Reaped::Nothing, Reaped::Wake)
                }
                _ => Reaped::Nothing,
            };
        }
        if linked.orphan.is_none() && !linked.taken {
            // The future has yet to take the result; it frees the slot.
            return linked.waker.take().map_or(Reaped::Nothing, Reaped::Wake);
        }
        let Some(Lifecycle::Linked(linked)) = self.remove(key) else {
            return Reaped::Nothing;
        };
        let fired = linked.fired();
        match (linked.orphan, linked.op) {
            (Some(orphan), Some((res, flags))) => {
                Reaped::Orphan(orphan, linked_result(res, fired), flags)
            }
            _ => Reaped::Nothing,
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
            Lifecycle::Linked(linked) => linked.op.is_none() || linked.timer.is_none(),
        })
    }
}

/// The result an op with a linked timeout reports: `-ETIMEDOUT` if it was
/// cancelled or interrupted because the timeout `fired` (an op cancelled
/// before it did anything), else its own.
pub(crate) fn linked_result(res: i32, fired: bool) -> i32 {
    match res {
        // Only the linked timeout cancels a live op: a dropped op's result
        // is nobody's.
        r if r == -libc::ECANCELED => -libc::ETIMEDOUT,
        r if r == -libc::EINTR && fired => -libc::ETIMEDOUT,
        r => r,
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

    fn linked(table: &mut OpTable) -> Key {
        table.insert(Lifecycle::Linked(Linked::new(
            None,
            std::time::Duration::from_millis(1),
        )))
    }

    #[test]
    fn a_linked_slot_takes_both_cqes_in_either_order() {
        let mut table = OpTable::default();
        // The op first, then its timeout (cancelled: the op won).
        let key = linked(&mut table);
        table.complete(key.user_data(), 5, 0);
        match table.get_mut(key) {
            Some(Lifecycle::Linked(linked)) => {
                assert_eq!(linked.op, Some((5, 0)));
                assert!(!linked.fired());
            }
            _ => panic!("slot lost"),
        }
        table.complete(key.user_data() ^ LINKED_TIMEOUT, -libc::ECANCELED, 0);
        match table.get_mut(key) {
            // Kept for the future to take, which frees it.
            Some(Lifecycle::Linked(linked)) => assert_eq!(linked.timer, Some(-libc::ECANCELED)),
            _ => panic!("slot lost"),
        }
        // The timeout first (it fired), then the op it cancelled.
        let key = linked(&mut table);
        table.complete(key.user_data() ^ LINKED_TIMEOUT, -libc::ETIME, 0);
        table.complete(key.user_data(), -libc::ECANCELED, 0);
        match table.get_mut(key) {
            Some(Lifecycle::Linked(linked)) => {
                assert!(linked.fired());
                let (res, _) = linked.op.unwrap();
                assert_eq!(linked_result(res, linked.fired()), -libc::ETIMEDOUT);
            }
            _ => panic!("slot lost"),
        }
        // A second timeout CQE, or one for no slot, is ignored.
        assert!(matches!(
            table.complete(key.user_data() ^ LINKED_TIMEOUT, -libc::ETIME, 0),
            Reaped::Nothing
        ));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_taken_or_orphaned_linked_slot_frees_on_the_second_cqe() {
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut table = OpTable::default();
        // Taken after the op's CQE: freed by the timeout's.
        let taken = linked(&mut table);
        table.complete(taken.user_data(), 1, 0);
        if let Some(Lifecycle::Linked(linked)) = table.get_mut(taken) {
            linked.taken = true;
        }
        assert_eq!(table.len(), 1);
        assert!(table.has_kernel_work());
        table.complete(taken.user_data() ^ LINKED_TIMEOUT, -libc::ECANCELED, 0);
        assert_eq!(table.len(), 0);
        // Orphaned in flight: handed back once both arrived, whatever the order.
        for timer_first in [false, true] {
            let key = linked(&mut table);
            if let Some(Lifecycle::Linked(linked)) = table.get_mut(key) {
                linked.orphan = Some(Box::new(Counting(seen.clone())));
            }
            let (first, second) = if timer_first {
                (key.user_data() ^ LINKED_TIMEOUT, key.user_data())
            } else {
                (key.user_data(), key.user_data() ^ LINKED_TIMEOUT)
            };
            assert!(matches!(
                table.complete(first, -libc::ECANCELED, 0),
                Reaped::Nothing
            ));
            assert_eq!(table.len(), 1, "kept until the second CQE");
            match table.complete(second, -libc::ECANCELED, 0) {
                Reaped::Orphan(mut orphan, res, flags) => orphan.cqe(res, flags, true),
                _ => panic!("the second CQE hands the orphan back"),
            }
            assert_eq!(table.len(), 0);
        }
        assert_eq!(seen.get(), 2);
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
