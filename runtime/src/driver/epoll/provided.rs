//! Provided-buffer rings as this backend reads them: the memory layout the
//! kernel reads (`struct io_uring_buf_ring`), picked from in user space.

use std::sync::atomic::{AtomicU16, Ordering};

/// A provided-buffer ring this backend picks from, as the kernel would but
/// for the order: it picks the buffer returned last (a stack), so a core
/// cycles through the few buffers still warm in its cache rather than all of
/// the ring's (the kernel takes them in turn; for a 16 MiB ring that copies
/// every receive into memory long evicted).
pub(super) struct Provided {
    ring: *mut u8,
    entries: u16,
    /// The oldest entry not yet picked (the kernel's private head): the
    /// buffers on offer are the entries from `head` up to the owner's tail.
    head: u16,
}

/// Bytes of an entry that describe its buffer (address, length, id); the last
/// two are reserved, and entry 0's are the ring's tail.
const ENTRY_BUFFER: usize = 14;

impl Provided {
    /// The ring at `ring`, `entries` long (a power of two), nothing picked yet.
    pub(super) fn new(ring: *mut u8, entries: u16) -> Provided {
        Provided {
            ring,
            entries,
            head: 0,
        }
    }

    /// The buffer returned last, not yet taken: address, length, id, and the
    /// entry it is in (for [`take`](Self::take)).
    pub(super) fn peek(&self) -> Option<(u64, u32, u16, u16)> {
        // SAFETY: byte 14 of the ring (the tail over entry 0's reserved field)
        // is 2-aligned and inside the registered ring, valid until it is
        // unregistered; the owner stores it atomically.
        let tail = unsafe { AtomicU16::from_ptr(self.ring.add(14).cast()) }.load(Ordering::Acquire);
        if tail == self.head {
            return None;
        }
        let last = tail.wrapping_sub(1);
        // SAFETY: the entry lies inside the ring; the owner wrote it before
        // publishing the tail read above (acquire).
        unsafe {
            let entry = self.entry(last);
            Some((
                entry.cast::<u64>().read(),
                entry.add(8).cast::<u32>().read(),
                entry.add(12).cast::<u16>().read(),
                last,
            ))
        }
    }

    /// Takes the buffer [`peek`](Self::peek) found in entry `picked`: the
    /// oldest entry's buffer moves into its place, and the oldest entry leaves
    /// the offer, so the offer stays the run from `head` to the tail.
    pub(super) fn take(&mut self, picked: u16) {
        if picked != self.head {
            // SAFETY: both entries lie inside the ring and between `head` and
            // the tail, so they are the consumer's (this backend's): the owner
            // writes only at its tail and never reads an entry back. Only the
            // buffer bytes move; entry 0's reserved bytes (the tail) stay.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.entry(self.head),
                    self.entry(picked),
                    ENTRY_BUFFER,
                )
            };
        }
        self.head = self.head.wrapping_add(1);
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
    }

    fn pick(ring: &mut Provided) -> Option<u16> {
        let (addr, len, bid, entry) = ring.peek()?;
        assert_eq!((addr, len), (0x1000 * u64::from(bid), 100 + u32::from(bid)));
        ring.take(entry);
        Some(bid)
    }

    #[test]
    fn picks_the_buffer_returned_last_and_loses_none() {
        let mut owner = Owner {
            memory: vec![0; 4],
            tail: 0,
        };
        let mut ring = Provided {
            ring: owner.memory.as_mut_ptr().cast(),
            entries: 4,
            head: 0,
        };
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
        // The ring wraps: entry 0's tail bytes survive the moves.
        for bid in [2, 0] {
            owner.give(bid);
        }
        assert_eq!(pick(&mut ring), Some(0));
        assert_eq!(pick(&mut ring), Some(2));
        assert_eq!(pick(&mut ring), None);
    }
}
