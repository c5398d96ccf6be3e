//! Operations, one file per io_uring opcode, each an [`OpCode`](crate::OpCode).
//!
//! They are the building blocks `percore-net` and `percore-fs` wrap; they take raw
//! fds, which must stay open until the op completes (the kernel holds its own
//! reference to the file once the SQE is submitted, so closing early is not
//! unsound, only a logic error).
//!
//! `future.rs` holds the futures every operation runs in: [`Op`](crate::Op)
//! and [`MultiOp`](crate::MultiOp); `deadline.rs` the one of an op with a
//! deadline, [`Deadline`] ([`Op::deadline`](crate::Op::deadline)).

mod close;
mod deadline;
pub(crate) mod future;
mod nop;
mod openat;
mod poll_add;
mod read;
mod write;

pub use close::Close;
pub use deadline::Deadline;
pub use nop::Nop;
pub use openat::OpenAt;
pub use poll_add::PollAdd;
pub use read::Read;
pub use write::Write;
