//! Provided-buffer rings (`IORING_REGISTER_PBUF_RING`): a pool of equal buffers
//! the kernel picks from when data arrives, so an op that waits (a multishot
//! `recv` on an idle connection) holds no buffer of its own.
//!
//! A [`BufRing`] belongs to the core it was made on. Ops that select from it
//! (`IOSQE_BUFFER_SELECT` with its [`group`](BufRing::group)) hand back a
//! buffer id in their CQE's flags; [`BufRing::take`] turns that into a
//! [`RingBuf`], which goes back into the ring when dropped. Every op that
//! selects from a ring must hold a clone of it until its last CQE, so the
//! memory the kernel picks from outlives every op that may pick.
//!
//! Where the core's kernel has receive bundles
//! ([`Features::RECV_BUNDLE`](crate::Features::RECV_BUNDLE)), one CQE may
//! name several buffers: the one its flags name and those after it in the
//! order they were put in the ring. [`BufRing::take_bundle`] turns such a CQE
//! into its first buffer and a [`Bundle`] of the others; to know which
//! buffers follow which, the ring remembers, for each buffer put in, the one
//! put in right after it.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::{fmt, io};

use crate::executor;
use crate::IoBuf;

/// `IORING_CQE_F_BUFFER`: the CQE names a selected buffer in its upper 16 bits.
const CQE_F_BUFFER: u32 = 1;
/// Bytes of one `struct io_uring_buf` entry.
const ENTRY: usize = 16;
/// The ring must be page aligned.
const RING_ALIGN: usize = 4096;

/// A ring of `capacity` buffers of `buf_size` bytes, registered with the current
/// core's ring. Cheap to clone (reference counted, core-local).
///
/// # Examples
///
/// ```
/// use percore_runtime::buf_ring::BufRing;
///
/// percore_runtime::run(async {
///     let ring = BufRing::new(64, 4096)?;
///     assert_eq!(ring.capacity(), 64);
///     assert_eq!(ring.available(), 64);
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct BufRing(Rc<Inner>);

struct Inner {
    /// `entries` × 16 bytes the kernel reads buffer addresses from; the tail is
    /// the `u16` at byte 14 (over the first entry's reserved field).
    ring: NonNull<u8>,
    /// `entries` × `buf_size` bytes: buffer `i` starts at `i * buf_size`.
    bufs: NonNull<u8>,
    entries: u16,
    buf_size: u32,
    group: u16,
    /// Where the next returned buffer goes; published to the kernel as the tail.
    tail: Cell<u16>,
    /// Buffers out of the ring (in a `RingBuf`, or picked by the kernel for a
    /// CQE not yet taken).
    out: Cell<usize>,
    /// `next[b]`: the buffer put in the ring right after buffer `b`. The kernel
    /// consumes a bundle in ring order, so the buffers of a bundle that starts
    /// at `b` are `b`, `next[b]`, `next[next[b]]`… An entry is written only
    /// when `b` is the last buffer put in (`last`): while `b` is out and not
    /// last, its entry stays as it was when the kernel took `b`; while it is
    /// last, nothing followed it into the ring, so no bundle continues past it.
    next: Box<[Cell<u16>]>,
    /// The buffer put in the ring last.
    last: Cell<u16>,
    /// Whether ops selecting from this ring ask for bundles (the core's
    /// kernel has them, and they are allowed).
    bundles: bool,
    /// The core whose ring it is registered with.
    core: u64,
}

impl BufRing {
    /// Allocates `entries` buffers of `buf_size` bytes and registers them with
    /// this core's ring under a free buffer group id.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `entries` is not a power of two in `1..=32768` or
    /// `buf_size` is 0; `Unsupported` if the kernel lacks provided-buffer rings
    /// (Linux 5.19+); otherwise the kernel's error, or running outside a percore
    /// runtime.
    pub fn new(entries: u16, buf_size: u32) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 32768 || buf_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a buffer ring needs a power-of-two count of buffers up to 32768 and a \
                     non-zero size (got {entries} buffers of {buf_size} bytes)"
                ),
            ));
        }
        let Some(core) = executor::core_uid() else {
            return Err(io::Error::other(
                "BufRing::new must be called on a percore core (inside percore::run or a Runtime)",
            ));
        };
        let ring_layout = ring_layout(entries)?;
        let bufs_layout = bufs_layout(entries, buf_size)?;
        // SAFETY: both layouts have a non-zero size (entries ≥ 1, buf_size ≥ 1).
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) });
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc::alloc(bufs_layout) });
        let (Some(ring), Some(bufs)) = (ring, bufs) else {
            alloc::handle_alloc_error(bufs_layout);
        };
        let bundles = executor::with_driver(|driver| {
            driver.features().contains(crate::Features::RECV_BUNDLE)
        });
        let mut inner = Inner {
            ring,
            bufs,
            entries,
            buf_size,
            group: 0,
            tail: Cell::new(0),
            out: Cell::new(entries as usize),
            next: (0..entries).map(|_| Cell::new(0)).collect(),
            last: Cell::new(0),
            bundles,
            core,
        };
        for bid in 0..entries {
            inner.give_back(bid);
        }
        let group = executor::with_driver(|driver| {
            let mut registrar = driver.registrar();
            let mut last = io::Error::other("no free buffer group id");
            for _ in 0..=u16::MAX {
                let group = next_group();
                // SAFETY: `ring` is page aligned, `entries` entries long, and stays
                // allocated until `Inner` drops, which unregisters it first; every
                // entry points into `bufs`, alive as long.
                match unsafe { registrar.register_buf_ring(ring.as_ptr(), entries, group) } {
                    Ok(()) => return Ok(group),
                    Err(err) if err.raw_os_error() == Some(libc::EEXIST) => last = err,
                    Err(err) => return Err(err),
                }
            }
            Err(last)
        });
        // On error `inner` drops with group 0: freed, nothing to unregister.
        inner.group = group.map_err(explain_register)?;
        Ok(BufRing(Rc::new(inner)))
    }

    /// The buffer group id ops select from (`buf_group` of the SQE).
    pub fn group(&self) -> u16 {
        self.0.group
    }

    /// Bytes per buffer: the most one selecting op can deliver at once.
    pub fn buf_size(&self) -> u32 {
        self.0.buf_size
    }

    /// How many buffers the ring has.
    pub fn capacity(&self) -> usize {
        self.0.entries as usize
    }

    /// Whether multishot receives from this ring take bundles: one CQE for
    /// several buffers when more than one buffer's worth of bytes is there
    /// ([`Features::RECV_BUNDLE`](crate::Features::RECV_BUNDLE), on the core
    /// that made the ring). Such CQEs go through [`take_bundle`](Self::take_bundle).
    pub fn bundles(&self) -> bool {
        self.0.bundles
    }

    /// How many buffers are in the ring now (not held by a [`RingBuf`]). When
    /// it reaches 0, ops that select from the ring fail with `ENOBUFS`.
    pub fn available(&self) -> usize {
        self.0.entries as usize - self.0.out.get()
    }

    /// The buffer a CQE names, holding its first `len` bytes; `None` if the CQE
    /// carries no buffer (`IORING_CQE_F_BUFFER` clear).
    ///
    /// # Safety
    ///
    /// `flags` must come from a CQE of an op that selected from this ring, and
    /// each such CQE may be taken once: a buffer id taken twice would give two
    /// `RingBuf`s over the same bytes. `len` must be the CQE's result (what the
    /// kernel wrote), at most [`buf_size`](BufRing::buf_size).
    pub unsafe fn take(&self, flags: u32, len: usize) -> Option<RingBuf> {
        if flags & CQE_F_BUFFER == 0 {
            return None;
        }
        let bid = (flags >> 16) as u16;
        debug_assert!(bid < self.0.entries && len <= self.0.buf_size as usize);
        self.0.out.set(self.0.out.get() + 1);
        Some(RingBuf(Storage::Ring {
            ring: Rc::clone(&self.0),
            bid: bid & (self.0.entries - 1),
            len: len.min(self.0.buf_size as usize) as u32,
        }))
    }

    /// The buffers a CQE of an op that may take bundles names, holding its
    /// `len` bytes: the first, and if the CQE filled more than one, the
    /// others as a [`Bundle`] (every buffer full but the last). `None` if the
    /// CQE carries no buffer (`IORING_CQE_F_BUFFER` clear). On a ring that
    /// does not take [`bundles`](Self::bundles), the one buffer the CQE
    /// names, as [`take`](Self::take).
    ///
    /// # Safety
    ///
    /// As [`take`](Self::take): `flags` come from a CQE of an op that selected
    /// from this ring (as a bundle if the ring takes bundles), each such CQE
    /// is taken once, and `len` is the CQE's result.
    #[inline]
    pub unsafe fn take_bundle(&self, flags: u32, len: usize) -> Option<(RingBuf, Option<Bundle>)> {
        let inner = &*self.0;
        // A bundle of no bytes consumed no buffer.
        if flags & CQE_F_BUFFER == 0 || (len == 0 && inner.bundles) {
            return None;
        }
        let size = inner.buf_size as usize;
        let bid = (flags >> 16) as u16 & (inner.entries - 1);
        inner.out.set(inner.out.get() + 1);
        let rest = (inner.bundles && len > size).then(|| self.rest_of(bid, len - size));
        let first = RingBuf(Storage::Ring {
            ring: Rc::clone(&self.0),
            bid,
            len: len.min(size) as u32,
        });
        Some((first, rest))
    }

    /// The buffers after `first` of a bundle, holding `len` bytes.
    #[cold]
    fn rest_of(&self, first: u16, len: usize) -> Bundle {
        let inner = &*self.0;
        let count = len.div_ceil(inner.buf_size as usize);
        let available = inner.entries as usize - inner.out.get();
        debug_assert!(count <= available, "a bundle of buffers not in the ring");
        let count = count.min(available);
        inner.out.set(inner.out.get() + count);
        Bundle {
            ring: Rc::clone(&self.0),
            // Read now, while `first` is out (see `Bundle::next`).
            next: inner.next[first as usize].get(),
            count: count as u16,
            len: len.min(count * inner.buf_size as usize),
        }
    }
}

impl Inner {
    /// Puts buffer `bid` back at the tail and publishes it to the kernel.
    fn give_back(&self, bid: u16) {
        self.next[self.last.get() as usize].set(bid);
        self.last.set(bid);
        let tail = self.tail.get();
        let index = (tail & (self.entries - 1)) as usize;
        // SAFETY: `bid < entries`, so the buffer lies inside `bufs`.
        let addr = unsafe {
            self.bufs
                .as_ptr()
                .add(bid as usize * self.buf_size as usize)
        };
        // SAFETY: entry `index` lies inside the ring. Only `addr`, `len` and `bid`
        // are written: the reserved field of entry 0 is the tail. The kernel reads
        // this entry only after the tail store below publishes it.
        unsafe {
            let entry = self.ring.as_ptr().add(index * ENTRY);
            entry.cast::<u64>().write(addr as u64);
            entry.add(8).cast::<u32>().write(self.buf_size);
            entry.add(12).cast::<u16>().write(bid);
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        self.out.set(self.out.get() - 1);
        // SAFETY: byte 14 of the page-aligned ring is 2-aligned and inside it; the
        // kernel reads it concurrently, hence the atomic store.
        let shared_tail = unsafe { AtomicU16::from_ptr(self.ring.as_ptr().add(14).cast()) };
        shared_tail.store(tail, Ordering::Release);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every op that selects from this ring holds a clone until its last CQE,
        // so none is left that may pick a buffer: the memory can go. Unregister
        // first if the ring's core is the one running here (else its ring is
        // gone, or dropped with the group).
        if self.group != 0 && executor::core_uid() == Some(self.core) {
            let _ = executor::try_with_driver(|driver| {
                driver.registrar().unregister_buf_ring(self.group)
            });
        }
        let (Ok(ring_layout), Ok(bufs_layout)) = (
            ring_layout(self.entries),
            bufs_layout(self.entries, self.buf_size),
        ) else {
            return; // cannot happen: `new` made them; leaking is the safe side
        };
        // SAFETY: allocated in `new` with these layouts, freed once here.
        unsafe {
            alloc::dealloc(self.ring.as_ptr(), ring_layout);
            alloc::dealloc(self.bufs.as_ptr(), bufs_layout);
        }
    }
}

fn ring_layout(entries: u16) -> io::Result<Layout> {
    Layout::from_size_align(entries as usize * ENTRY, RING_ALIGN)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))
}

fn bufs_layout(entries: u16, buf_size: u32) -> io::Result<Layout> {
    (entries as usize)
        .checked_mul(buf_size as usize)
        .and_then(|size| Layout::from_size_align(size, 64).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{entries} buffers of {buf_size} bytes do not fit in memory"),
            )
        })
}

/// Group ids handed out on this thread; the kernel refuses one in use (`EEXIST`).
fn next_group() -> u16 {
    thread_local! {
        static NEXT: Cell<u16> = const { Cell::new(0) };
    }
    NEXT.with(|next| {
        // Group 0 is left to users who register by hand.
        let group = next.get().wrapping_add(1).max(1);
        next.set(group);
        group
    })
}

fn explain_register(err: io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "registering a provided-buffer ring failed ({err}): it needs Linux 5.19 or later"
            ),
        ),
        _ => io::Error::new(
            err.kind(),
            format!("registering a provided-buffer ring: {err}"),
        ),
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("group", &self.0.group)
            .field("buf_size", &self.0.buf_size)
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

/// Received bytes: a buffer of a [`BufRing`] (back into the ring when dropped),
/// or a plain `Vec` when a receive had to do without the ring.
///
/// Derefs to the received bytes, and is an [`IoBuf`], so it can be written out
/// as it is (an echo sends what it received without a copy).
pub struct RingBuf(Storage);

enum Storage {
    Ring { ring: Rc<Inner>, bid: u16, len: u32 },
    Heap(Vec<u8>),
}

impl RingBuf {
    /// Whether the bytes sit in a ring buffer (false: a plain `Vec`).
    pub fn is_from_ring(&self) -> bool {
        matches!(self.0, Storage::Ring { .. })
    }
}

impl From<Vec<u8>> for RingBuf {
    fn from(vec: Vec<u8>) -> RingBuf {
        RingBuf(Storage::Heap(vec))
    }
}

impl Deref for RingBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Storage::Ring { ring, bid, len } => {
                // SAFETY: buffer `bid` lies inside `bufs`, its first `len` bytes were
                // written by the kernel, and it is out of the ring (the kernel won't
                // pick it) until this `RingBuf` drops.
                unsafe {
                    let start = ring
                        .bufs
                        .as_ptr()
                        .add(*bid as usize * ring.buf_size as usize);
                    std::slice::from_raw_parts(start, *len as usize)
                }
            }
            Storage::Heap(vec) => vec,
        }
    }
}

impl DerefMut for RingBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Storage::Ring { ring, bid, len } => {
                // SAFETY: as in `deref`; `&mut self` makes the access unique.
                unsafe {
                    let start = ring
                        .bufs
                        .as_ptr()
                        .add(*bid as usize * ring.buf_size as usize);
                    std::slice::from_raw_parts_mut(start, *len as usize)
                }
            }
            Storage::Heap(vec) => vec,
        }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        if let Storage::Ring { ring, bid, .. } = &self.0 {
            ring.give_back(*bid);
        }
    }
}

// SAFETY: the bytes live in the ring's heap allocation (or the Vec's), which
// this value keeps alive and which does not move when it moves; all `len` bytes
// are initialised (written by the kernel).
unsafe impl IoBuf for RingBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.deref().as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("len", &self.len())
            .field("from_ring", &self.is_from_ring())
            .finish()
    }
}

/// The buffers after the first that one receive completion filled, in order
/// ([`BufRing::take_bundle`]): an iterator of [`RingBuf`]s. Buffers not taken
/// from it go back to the ring when it drops.
pub struct Bundle {
    ring: Rc<Inner>,
    /// The buffer [`next`](Iterator::next) yields.
    next: u16,
    /// Buffers left to yield (all out of the ring, held by this bundle).
    count: u16,
    /// Bytes left in them.
    len: usize,
}

impl Bundle {
    /// Bytes left in the bundle's buffers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are left.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Buffers left.
    pub fn buffers(&self) -> usize {
        self.count as usize
    }
}

impl Iterator for Bundle {
    type Item = RingBuf;

    fn next(&mut self) -> Option<RingBuf> {
        if self.count == 0 {
            return None;
        }
        let bid = self.next;
        // Read the successor while `bid` is still out: once its `RingBuf`
        // drops, `bid` goes back into the ring and its entry may change.
        if self.count > 1 {
            self.next = self.ring.next[bid as usize].get();
        }
        let len = self.len.min(self.ring.buf_size as usize);
        self.count -= 1;
        self.len -= len;
        Some(RingBuf(Storage::Ring {
            ring: Rc::clone(&self.ring),
            bid,
            len: len as u32,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.count as usize, Some(self.count as usize))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for buf in self.by_ref() {
            drop(buf);
        }
    }
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("buffers", &self.count)
            .field("len", &self.len)
            .finish()
    }
}
