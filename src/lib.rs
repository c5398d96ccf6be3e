//! percore: a thread-per-core async runtime for Linux, on io_uring.
//!
//! Each core runs its own completion-based event loop; files, sockets and
//! timers are async APIs of the core they are used on. This crate is the facade:
//! it re-exports the runtime ([`percore_runtime`]) and the `#[percore::main]` /
//! `#[percore::test]` macros.
//!
//! ```
//! use std::time::Duration;
//!
//! # fn main() -> std::io::Result<()> {
//! percore::run(async {
//!     let handle = percore::spawn(async {
//!         percore::time::sleep(Duration::from_millis(1)).await;
//!         "done"
//!     });
//!     assert_eq!(handle.await.unwrap(), "done");
//! })?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]

pub use percore_macros::{main, test};
pub use percore_runtime::*;

/// Sockets: TCP, UDP and Unix on io_uring (the `percore-net` crate).
pub use percore_net as net;

/// Files and directories on io_uring (the `percore-fs` crate).
pub use percore_fs as fs;

/// Child processes: `Command`, async pipes, exit through a pidfd (the `percore-process` crate).
pub use percore_process as process;

/// HTTP/1.1 and HTTP/2 server and client on hyper (the `percore-http` crate,
/// feature `http`).
#[cfg(feature = "http")]
pub use percore_http as http;
