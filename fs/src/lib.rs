//! Files on io_uring for percore: `File`, `DmaFile`, metadata and directories.

#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
