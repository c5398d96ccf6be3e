//! Provided-buffer rings as this backend reads them: the memory layout the
//! kernel reads (`struct io_uring_buf_ring`), picked from in user space.

use std::sync::atomic::{AtomicU16, Ordering};

/// A provided-buffer ring this backend picks from, as the kernel would but
/// for the order: it picks the buffer returned last (a stack), so a core
/// cycles through the few buffers still warm in its cache rather than all of
/// the ring's (the kernel takes them in turn; for a 16 MiB ring that copies
/// every receive into memory long evicted).
///
/// Returned buffers are moved off the ring onto a stack of the backend's own
/// as soon as it looks: consuming the ring's entries in order, as the kernel
/// does, leaves the owner's protocol as it is (it writes only at its tail,
/// over entries consumed), and the stack keeps the order of returns across
/// picks made with no return between them — a turn that receives on 32
/// connections takes the 32 buffers returned last, not one warm buffer and
/// then the ring's oldest.
pub(super) struct Provided {
    ring: *mut u8,
    entries: u16,
    /// The next entry to read (the kernel's private head): the entries from
    /// here up to the owner's tail are buffers returned since the last look.
    head: u16,
    /// The buffers on offer, the one returned last on top: address, length
    /// and id, as their entries gave them.
    free: Vec<(u64, u32, u16)>,
}

impl Provided {
    /// The ring at `ring`, `entries` long (a power of two), nothing read yet.
    pub(super) fn new(ring: *mut u8, entries: u16) -> Provided {
        Provided {
            ring,
            entries,
            head: 0,
            free: Vec::with_capacity(usize::from(entries)),
        }
    }

    /// The buffer returned last, not yet taken: address, length and id.
    pub(super) fn peek(&mut self) -> Option<(u64, u32, u16)> {
        self.collect();
        self.free.last().copied()
    }

    /// Takes the buffer [`peek`](Self::peek) gave.
    pub(super) fn take(&mut self) {
        self.free.pop();
    }

    /// Moves the buffers returned since the last look onto the stack, in the
    /// order they were returned.
    fn collect(&mut self) {
        // SAFETY: byte 14 of the ring (the tail over entry 0's reserved field)
        // is 2-aligned and inside the registered ring, valid until it is
        // unregistered; the owner stores it atomically.
        let tail = unsafe { AtomicU16::from_ptr(self.ring.add(14).cast()) }.load(Ordering::Acquire);
        while self.head != tail {
            // SAFETY: the entry lies inside the ring; the owner wrote it
            // before publishing the tail read above (acquire), and writes it
            // again only after this backend consumed it (`head` moved past).
            let buffer = unsafe {
                let entry = self.entry(self.head);
                (
                    entry.cast::<u64>().read(),
                    entry.add(8).cast::<u32>().read(),
                    entry.add(12).cast::<u16>().read(),
                )
            };
            self.free.push(buffer);
            self.head = self.head.wrapping_add(1);
        }
    }

    /// Entry `index` (modulo the ring's size).
    fn entry(&self, index: u16) -> *mut u8 {
        // SAFETY: `entries` is a power of two, so the masked index is inside
        // the ring of `entries` × 16 bytes.
        unsafe { self.ring.add(usize::from(index & (self.entries - 1)) * 16) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of 4 entries in 16-byte-aligned memory, and a way to offer a
    /// buffer as `BufRing` does (write the entry, then publish the tail).
    struct Owner {
        memory: Vec<u128>,
        tail: u16,
    }

    impl Owner {
        fn new() -> Owner {
            Owner {
                memory: vec![0; 4],
                tail: 0,
            }
        }

        fn give(&mut self, bid: u16) {
            let entry = (self.tail & 3) as usize;
            let bytes = self.memory.as_mut_ptr().cast::<u8>();
            // SAFETY: `entry` < 4, the vector holds 4 × 16 bytes; the tail
            // bytes of entry 0 are written only through the atomic below.
            unsafe {
                let at = bytes.add(entry * 16);
                at.cast::<u64>().write(0x1000 * u64::from(bid));
                at.add(8).cast::<u32>().write(100 + u32::from(bid));
                at.add(12).cast::<u16>().write(bid);
            }
            self.tail = self.tail.wrapping_add(1);
            // SAFETY: bytes 14..16 of the ring are the tail, 2-aligned.
            unsafe { AtomicU16::from_ptr(bytes.add(14).cast()) }
                .store(self.tail, Ordering::Release);
        }

        fn ring(&mut self) -> Provided {
            Provided::new(self.memory.as_mut_ptr().cast(), 4)
        }
    }

    fn pick(ring: &mut Provided) -> Option<u16> {
        let (addr, len, bid) = ring.peek()?;
        assert_eq!((addr, len), (0x1000 * u64::from(bid), 100 + u32::from(bid)));
        ring.take();
        Some(bid)
    }

    #[test]
    fn picks_the_buffer_returned_last_and_loses_none() {
        let mut owner = Owner::new();
        let mut ring = owner.ring();
        for bid in 0..4 {
            owner.give(bid);
        }
        assert_eq!(pick(&mut ring), Some(3));
        // What was given back last goes out first, over and over.
        for _ in 0..10 {
            owner.give(3);
            assert_eq!(pick(&mut ring), Some(3));
        }
        let mut rest: Vec<u16> = std::iter::from_fn(|| pick(&mut ring)).collect();
        rest.sort_unstable();
        assert_eq!(rest, [0, 1, 2], "every buffer offered is picked once");
        assert_eq!(pick(&mut ring), None);
        // The ring wraps: entry 0's tail bytes are never read as a buffer's.
        for bid in [2, 0] {
            owner.give(bid);
        }
        assert_eq!(pick(&mut ring), Some(0));
        assert_eq!(pick(&mut ring), Some(2));
        assert_eq!(pick(&mut ring), None);
    }

    #[test]
    fn picks_without_returns_between_take_the_next_returned_last() {
        let mut owner = Owner::new();
        let mut ring = owner.ring();
        for bid in 0..4 {
            owner.give(bid);
        }
        // A turn receives on three sockets: three picks, nothing returned.
        let turn: Vec<_> = (0..3).filter_map(|_| pick(&mut ring)).collect();
        assert_eq!(turn, [3, 2, 1]);
        // Returned in another order, they go out in the reverse of it.
        for bid in [2, 3, 1] {
            owner.give(bid);
        }
        let turn: Vec<_> = (0..3).filter_map(|_| pick(&mut ring)).collect();
        assert_eq!(
            turn,
            [1, 3, 2],
            "the coldest buffer, 0, stays at the bottom"
        );
        assert_eq!(pick(&mut ring), Some(0));
        assert_eq!(pick(&mut ring), None);
    }

    #[test]
    fn a_peek_without_a_take_leaves_the_buffer_on_top() {
        let mut owner = Owner::new();
        let mut ring = owner.ring();
        owner.give(1);
        assert_eq!(ring.peek().map(|(_, _, bid)| bid), Some(1));
        owner.give(2);
        // A receive that found nothing took nothing; one returned since wins.
        assert_eq!(ring.peek().map(|(_, _, bid)| bid), Some(2));
        assert_eq!(pick(&mut ring), Some(2));
        assert_eq!(pick(&mut ring), Some(1));
    }
}
