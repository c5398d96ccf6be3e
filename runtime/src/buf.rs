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
    fn set_init_never_shrinks() {
        let mut buf = vec![1u8, 2, 3];
        // SAFETY: 2 ≤ len, so those bytes are initialised.
        unsafe { buf.set_init(2) };
        assert_eq!(buf, [1, 2, 3]);
    }
}
