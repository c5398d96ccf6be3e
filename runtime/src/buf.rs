//! Buffers the kernel may write into: passed by value, returned with the result.
//!
//! An op takes its buffer by value and gives it back when it completes
//! (`let (res, buf) = read(fd, buf, 0).await;`), so no reference into the buffer can
//! exist while the kernel owns it, and dropping the future never frees memory the
//! kernel may still write: the buffer moves into the op table until the last CQE.

use std::io;

/// The result of an op that borrowed a buffer: the outcome, and the buffer back.
pub type BufResult<T, B> = (io::Result<T>, B);

/// A buffer the kernel may read from.
///
/// # Safety
///
/// - [`stable_ptr`](IoBuf::stable_ptr) must point to `bytes_total()` bytes that stay
///   valid and at the same address while the buffer is *moved* (heap storage: a
///   `Vec`'s, a `Box`'s), until it is dropped or mutated through `&mut self`.
/// - The first [`bytes_init`](IoBuf::bytes_init) bytes must be initialised, and
///   `bytes_init() <= bytes_total()`.
pub unsafe trait IoBuf: 'static {
    /// Pointer to the first byte.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Total capacity in bytes.
    fn bytes_total(&self) -> usize;

    /// An owned view of `range` of this buffer, for ops on part of it.
    ///
    /// # Panics
    ///
    /// If `range` is decreasing or ends past [`bytes_total`](IoBuf::bytes_total).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::IoBuf;
    ///
    /// let part = b"hello world".to_vec().slice(6..);
    /// assert_eq!(part.bytes_init(), 5);
    /// assert_eq!(part.into_inner().len(), 11);
    /// ```
    fn slice(self, range: impl std::ops::RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let (begin, end) = bounds(range, self.bytes_total());
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

/// A buffer the kernel may write into.
///
/// # Safety
///
/// Everything [`IoBuf`] promises, and [`stable_mut_ptr`](IoBufMut::stable_mut_ptr)
/// points to the same `bytes_total()` bytes, writable.
pub unsafe trait IoBufMut: IoBuf {
    /// Mutable pointer to the first byte.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `len` bytes initialised, after the kernel wrote them.
    ///
    /// # Safety
    ///
    /// The first `len` bytes must really be initialised, and `len <= bytes_total()`.
    unsafe fn set_init(&mut self, len: usize);
}

// SAFETY: a Vec's heap storage does not move when the Vec moves; `len` bytes are
// initialised by Vec's own invariant.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; the spare capacity is writable memory of the same block.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        if len > self.len() {
            // SAFETY: the caller promises `len` bytes are initialised and within capacity.
            unsafe { self.set_len(len) };
        }
    }
}

// SAFETY: a boxed slice's storage is on the heap and fully initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above, and the storage is writable through `&mut`.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _len: usize) {}
}

// SAFETY: `'static` data never moves or dies, and is initialised.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as for `&'static [u8]`.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// A range of a buffer, owned: what an op needs to read or write part of a
/// buffer (`write_all` resending the rest, `read_exact` filling the rest).
///
/// Made by [`IoBuf::slice`]; [`into_inner`](Slice::into_inner) gives the whole
/// buffer back. The range is `begin..end` of the buffer's *total* bytes; a write
/// sends `begin..min(end, bytes_init)`, a read fills from the buffer's initialised
/// length within the range.
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    /// Where the slice starts in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Where the slice ends in the buffer (exclusive).
    pub fn end(&self) -> usize {
        self.end
    }

    /// The buffer this slice was made from.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    /// Gives the whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

/// Bounds of `range` within `0..total`.
fn bounds(range: impl std::ops::RangeBounds<usize>, total: usize) -> (usize, usize) {
    use std::ops::Bound;
    let begin = match range.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&n) => n + 1,
        Bound::Excluded(&n) => n,
        Bound::Unbounded => total,
    };
    assert!(
        begin <= end && end <= total,
        "slice {begin}..{end} out of a buffer of {total} bytes"
    );
    (begin, end)
}

// SAFETY: points into `buf`'s stable storage at `begin`; the slice's initialised
// bytes are those of `buf` that fall in the range.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays in the allocation.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as for `IoBuf`; the range is writable storage of `buf`.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays in the allocation.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, len: usize) {
        // A slice that starts past the buffer's initialised end leaves a gap the
        // buffer cannot call initialised; its bytes stay written but uncounted.
        if self.begin <= self.buf.bytes_init() {
            // SAFETY: the caller promises `len` bytes from `begin` are initialised,
            // and the buffer's own bytes up to `begin` are, so `begin + len` are.
            unsafe { self.buf.set_init(self.begin + len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_pointer_survives_a_move() {
        let buf = Vec::<u8>::with_capacity(64);
        let before = buf.stable_ptr();
        let moved = Box::new(buf);
        assert_eq!(before, moved.stable_ptr());
        assert_eq!(moved.bytes_init(), 0);
        assert!(moved.bytes_total() >= 64);
    }

    #[test]
    fn slice_counts_only_its_initialised_bytes() {
        let mut buf = Vec::with_capacity(16);
        buf.extend_from_slice(b"abcdef");
        let total = buf.capacity();
        let mid = buf.slice(2..8);
        assert_eq!((mid.bytes_init(), mid.bytes_total()), (4, 6));
        let tail = mid.into_inner().slice(10..);
        assert_eq!((tail.bytes_init(), tail.bytes_total()), (0, total - 10));
        let mut rest = tail.into_inner().slice(6..);
        // SAFETY: pretend the kernel wrote 2 bytes after the 6 initialised ones.
        unsafe {
            rest.stable_mut_ptr().write_bytes(b'x', 2);
            rest.set_init(2);
        }
        assert_eq!(rest.into_inner(), b"abcdefxx");
    }

    #[test]
    #[should_panic(expected = "out of a buffer")]
    fn slice_past_the_end_panics() {
        let _ = vec![0u8; 4].slice(2..9);
    }

    #[test]
    fn set_init_never_shrinks() {
        let mut buf = vec![1u8, 2, 3];
        // SAFETY: 2 ≤ len, so those bytes are initialised.
        unsafe { buf.set_init(2) };
        assert_eq!(buf, [1, 2, 3]);
    }
}
