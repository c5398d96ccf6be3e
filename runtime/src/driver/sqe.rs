//! The kernel's `struct io_uring_sqe`, read field by field: what the epoll
//! backend interprets and the AddressSanitizer check records.

use std::mem::{align_of, size_of};
use std::ptr;

use io_uring::squeue;

/// The kernel's `struct io_uring_sqe` (the 64-byte layout of the io_uring
/// ABI), field by field; unions are named by their most common member, and
/// the comments name the others this crate reads.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct RawSqe {
    pub(crate) opcode: u8,
    /// `IOSQE_*` flags.
    pub(crate) flags: u8,
    /// Also the `IORING_RECVSEND_*` / `IORING_ACCEPT_*` / poll flags.
    pub(crate) ioprio: u16,
    /// The fd, or the fixed-file index with `IOSQE_FIXED_FILE`.
    pub(crate) fd: i32,
    /// `off` / `addr2`.
    pub(crate) off: u64,
    pub(crate) addr: u64,
    pub(crate) len: u32,
    /// `rw_flags`, `msg_flags`, `accept_flags`, `open_flags`, `statx_flags`,
    /// `fsync_flags`, `poll32_events`, `timeout_flags`, …
    pub(crate) op_flags: u32,
    pub(crate) user_data: u64,
    /// `buf_index` / `buf_group`.
    pub(crate) buf_index: u16,
    pub(crate) personality: u16,
    /// `splice_fd_in` / `file_index` / `addr_len`.
    pub(crate) file_index: u32,
    pub(crate) addr3: u64,
    pub(crate) pad: u64,
}

const _: () = assert!(
    size_of::<RawSqe>() == 64
        && size_of::<squeue::Entry>() == size_of::<RawSqe>()
        && align_of::<squeue::Entry>() >= align_of::<RawSqe>()
);

impl RawSqe {
    /// The fields of `entry`.
    pub(crate) fn of(entry: &squeue::Entry) -> RawSqe {
        // SAFETY: `squeue::Entry` is `#[repr(C)] pub struct Entry(sys::io_uring_sqe)`
        // (io-uring 0.7, src/squeue.rs), and `sys::io_uring_sqe` is the
        // `#[repr(C)]` bindgen copy of the kernel's `struct io_uring_sqe`, whose
        // layout `RawSqe` spells out (size and alignment asserted above). The
        // struct has no padding, and an entry starts as all-zero bytes
        // (`sqe_zeroed`) whose fields are then set, so every byte is initialised
        // and any bit pattern is valid for `RawSqe`'s integers.
        unsafe { ptr::from_ref(entry).cast::<RawSqe>().read() }
    }
}

/// Sets the `len` field of `entry` (fault injection asks for fewer bytes).
#[cfg(feature = "faults")]
pub(crate) fn set_len(entry: &mut squeue::Entry, len: u32) {
    // SAFETY: as in `RawSqe::of`, `entry` has `RawSqe`'s layout; `len` is a
    // plain `u32` field of it, written in place.
    unsafe { (*ptr::from_mut(entry).cast::<RawSqe>()).len = len };
}
