//! Files on io_uring for percore: [`File`], [`DmaFile`] (`O_DIRECT`), metadata,
//! directories.
//!
//! Every operation here is one io_uring request submitted on the current core:
//! reads and writes (`IORING_OP_READ`/`WRITE`, vectored and fixed-buffer
//! variants), `fsync`, `fallocate`, `statx`, `openat`, `mkdirat`, `unlinkat`,
//! `renameat`, `linkat`, `symlinkat`. The few calls io_uring lacks (listing a
//! directory, `readlink`, `ftruncate` before Linux 6.9) run on the runtime's
//! blocking pool. Buffers are passed by value and given back with the result
//! (`let (res, buf) = file.read_at(buf, pos).await;`), so dropping a future
//! never frees memory the kernel may still write. Errors keep their
//! [`io::ErrorKind`](std::io::ErrorKind) and name the file ([`PathError`]).
//!
//! ```
//! use percore_fs::{File, OpenOptions};
//!
//! # fn main() -> std::io::Result<()> {
//! percore_runtime::run(async {
//!     let dir = std::env::temp_dir().join("percore-doc-crate");
//!     percore_fs::create_dir_all(&dir).await?;
//!
//!     // Write two blocks in one vectored write, then sync.
//!     let file = File::create(dir.join("data")).await?;
//!     let (n, _) = file.write_vectored_at(vec![vec![1u8; 4096], vec![2u8; 4096]], 0).await;
//!     assert_eq!(n?, 8192);
//!     file.sync_data().await?;
//!
//!     // Read the second block back: the buffer comes back with the result.
//!     let (n, block) = file.read_at(Vec::with_capacity(4096), 4096).await;
//!     assert_eq!(n?, 4096);
//!     assert!(block.iter().all(|&b| b == 2));
//!     assert_eq!(file.metadata().await?.len(), 8192);
//!     file.close().await?;
//!
//!     // Errors say which file.
//!     let err = OpenOptions::new().read(true).open(dir.join("missing")).await.unwrap_err();
//!     assert!(err.to_string().contains("missing"));
//!
//!     percore_fs::remove_file(dir.join("data")).await?;
//!     percore_fs::remove_dir(&dir).await
//! })?
//! # }
//! ```
//!
//! Hot files can skip the kernel's per-op fd lookup and page pinning with a
//! registered file table and registered buffers ([`FixedFiles`],
//! [`FixedBuffers`]).

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

mod blocking;
mod dir;
// An aligned allocation, and its `IoBuf`/`IoBufMut` promises.
#[allow(unsafe_code)]
mod dma_buffer;
mod dma_file;
mod error;
mod file;
// Registering buffers with the kernel, and `IoBuf` for lent buffers.
#[allow(unsafe_code)]
mod fixed;
mod metadata;
// `unsafe impl OpCode`: each op promises the kernel's pointers stay valid.
#[allow(unsafe_code)]
mod op;
mod open_options;
mod read_dir;
mod whole_file;

pub(crate) use blocking::blocking;

pub use dir::{create_dir, create_dir_all, hard_link, read_link, remove_dir, remove_file};
pub use dir::{rename, symlink};
pub use dma_buffer::DmaBuffer;
pub use dma_file::{DmaFile, DmaRead};
pub use error::{raw_os_error, PathError};
pub use file::File;
pub use fixed::{FixedBuf, FixedBuffers, FixedFile, FixedFiles};
pub use metadata::{metadata, symlink_metadata, try_exists, Metadata};
pub use open_options::OpenOptions;
pub use read_dir::{read_dir, DirEntry, ReadDir};
pub use whole_file::{copy, read, write};
