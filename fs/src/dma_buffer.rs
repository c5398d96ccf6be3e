//! `DmaBuffer`: heap memory aligned for `O_DIRECT`.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use percore_runtime::registered::{self, RegisteredMem};
use percore_runtime::{IoBuf, IoBufMut};

/// A zero-initialised heap buffer whose address is aligned for direct I/O,
/// with a length (its initialised part, like a `Vec`'s) and a fixed capacity.
///
/// Reads fill it after its length, writes send its first `len()` bytes, as for
/// a `Vec<u8>`. Get one sized and aligned for a file from
/// [`DmaFile::alloc_buffer`](crate::DmaFile::alloc_buffer), which takes it from
/// the core's registered memory when it can (see [`DmaBuffer::new_registered`]).
///
/// # Examples
///
/// ```
/// use percore_fs::DmaBuffer;
///
/// let mut buf = DmaBuffer::new(8192, 4096);
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// assert!(buf.is_empty());
/// buf.extend_from_slice(b"header");
/// buf.resize(4096, 0);
/// assert_eq!(&buf[..6], b"header");
/// ```
pub struct DmaBuffer {
    ptr: NonNull<u8>,
    /// The size asked for and the alignment.
    layout: Layout,
    len: usize,
    /// The memory, if it is a chunk of registered memory; else `ptr` is a heap
    /// allocation of `layout`.
    registered: Option<RegisteredMem>,
}

// SAFETY: the buffer owns its allocation outright (no shared state), like a
// `Vec<u8>`, so it may move to and be used from another thread.
unsafe impl Send for DmaBuffer {}
// SAFETY: `&DmaBuffer` only reads the memory.
unsafe impl Sync for DmaBuffer {}

impl DmaBuffer {
    /// A buffer of `capacity` bytes (at least one `align`) at an address that is
    /// a multiple of `align`; its length is 0.
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two, or the size overflows `isize`. Aborts
    /// if the allocation fails, as `Vec` does.
    pub fn new(capacity: usize, align: usize) -> DmaBuffer {
        let size = capacity.max(align).max(1);
        let layout = match Layout::from_size_align(size, align) {
            Ok(layout) => layout,
            Err(_) => panic!("DmaBuffer of {capacity} bytes aligned to {align}: invalid layout"),
        };
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        DmaBuffer {
            ptr,
            layout,
            len: 0,
            registered: None,
        }
    }

    /// As [`DmaBuffer::new`], but in this core's registered memory when it has
    /// room (see [`percore_runtime::registered`]): then a read or write through
    /// it ([`File`](crate::File), [`DmaFile`](crate::DmaFile)) is a fixed one
    /// (`IORING_OP_READ_FIXED`/`WRITE_FIXED`), which spares the kernel pinning
    /// the pages (`O_DIRECT`) or checking and mapping the user range (buffered)
    /// on every call. Falls back to the heap for
    /// buffers over 1 MiB, when the pool is used up, when the kernel refuses to
    /// register memory (`RLIMIT_MEMLOCK`), and outside a percore runtime.
    ///
    /// # Panics
    ///
    /// As [`DmaBuffer::new`].
    pub fn new_registered(capacity: usize, align: usize) -> DmaBuffer {
        let size = capacity.max(align).max(1);
        let Ok(layout) = Layout::from_size_align(size, align) else {
            panic!("DmaBuffer of {capacity} bytes aligned to {align}: invalid layout");
        };
        match registered::alloc(size, align) {
            Some(mem) => DmaBuffer {
                // SAFETY: a chunk's pointer is never null.
                ptr: unsafe { NonNull::new_unchecked(mem.as_ptr()) },
                layout,
                len: 0,
                registered: Some(mem),
            },
            None => DmaBuffer::new(capacity, align),
        }
    }

    /// Whether the memory is a chunk of the core's registered memory.
    pub fn is_registered(&self) -> bool {
        self.registered.is_some()
    }

    /// The initialised length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes.
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The alignment of the address.
    pub fn alignment(&self) -> usize {
        self.layout.align()
    }

    /// Pointer to the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Sets the length to 0 (the bytes stay as they are).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens the length to `len`; does nothing if it is already shorter.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Sets the length to `len`, filling new bytes with `value`.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn resize(&mut self, len: usize, value: u8) {
        assert!(len <= self.capacity(), "resize past a DmaBuffer's capacity");
        if len > self.len {
            let start = self.len;
            self.len = len;
            self[start..].fill(value);
        } else {
            self.len = len;
        }
    }

    /// Appends `data`.
    ///
    /// # Panics
    ///
    /// If it does not fit the capacity (the buffer never reallocates: that
    /// would lose the alignment guarantee callers rely on).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let start = self.len;
        self.resize(start + data.len(), 0);
        self[start..].copy_from_slice(data);
    }

    /// All `capacity` bytes, whatever the length (the memory was zeroed at
    /// allocation, so every byte is initialised).
    pub fn as_full_slice(&self) -> &[u8] {
        // SAFETY: the allocation is `capacity` bytes, zeroed at allocation, and
        // `&self` keeps it alive and unaliased by writers.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.capacity()) }
    }

    /// All `capacity` bytes, mutably, whatever the length.
    pub fn as_full_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_full_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity()) }
    }
}

impl Deref for DmaBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.as_full_slice()[..self.len]
    }
}

impl DerefMut for DmaBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.as_full_mut_slice()[..len]
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        if self.registered.is_some() {
            // The chunk goes back to its pool when the field drops.
            return;
        }
        // SAFETY: `ptr` came from `alloc_zeroed` with this very layout, once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

impl fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("alignment", &self.alignment())
            .field("registered", &self.is_registered())
            .finish()
    }
}

// SAFETY: the storage is one heap allocation or one registered chunk (owned by
// `registered`), which does not move when the `DmaBuffer` moves and lives until
// it is dropped; `len <= capacity` always, and
// every byte is initialised (zeroed at allocation).
unsafe impl IoBuf for DmaBuffer {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; the allocation is writable through `&mut self`.
unsafe impl IoBufMut for DmaBuffer {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        if len > self.len {
            self.len = len.min(self.capacity());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        for align in [512, 4096, 65536] {
            let buf = DmaBuffer::new(100, align);
            assert_eq!(buf.as_ptr() as usize % align, 0);
            assert_eq!(buf.capacity(), align);
            assert!(buf.as_full_slice().iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn length_works_like_a_vec() {
        let mut buf = DmaBuffer::new(4096, 4096);
        buf.extend_from_slice(b"abc");
        buf.resize(5, b'z');
        assert_eq!(&buf[..], b"abczz");
        buf.truncate(2);
        assert_eq!(buf.bytes_init(), 2);
        // SAFETY: zeroed memory is initialised; 10 ≤ capacity.
        unsafe { buf.set_init(10) };
        assert_eq!(buf.len(), 10);
        buf.clear();
        assert!(buf.is_empty());
    }

    #[test]
    #[should_panic(expected = "capacity")]
    fn never_grows() {
        let mut buf = DmaBuffer::new(512, 512);
        buf.extend_from_slice(&[0; 513]);
    }
}
