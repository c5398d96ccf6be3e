//! Sockets on io_uring for percore: TCP, UDP and Unix, on the core they are used on.

#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
