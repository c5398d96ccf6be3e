//! A child's piped stdin, stdout and stderr, as async streams of the core.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::rc::Rc;

use percore_runtime::op::{Read, Write};
use percore_runtime::{BufResult, IoBuf, IoBufMut, Op};

use crate::sys::Hold;

/// Offset `-1`: read or write at the current position (a pipe has no other).
const CURRENT: u64 = u64::MAX;

/// The smallest spare capacity `read_to_end` reads into.
const CHUNK: usize = 16 * 1024;

/// A pipe end, shared with the ops in flight on it: it closes when the last
/// of them is gone, so its number is never reused while an SQE names it.
#[derive(Debug)]
struct Pipe {
    fd: Rc<OwnedFd>,
}

impl Pipe {
    fn new(fd: OwnedFd) -> Pipe {
        // Left in blocking mode, as the child's end is: io_uring polls a pipe
        // itself, and the epoll backend reads and writes with `RWF_NOWAIT`.
        Pipe { fd: Rc::new(fd) }
    }

    fn read<B: IoBufMut>(&self, buf: B) -> Op<Hold<Read<B>>> {
        let read = Read::new(self.fd.as_raw_fd(), buf, CURRENT);
        Op::new(Hold::new(read, self.fd.clone()))
    }

    fn write<B: IoBuf>(&self, buf: B) -> Op<Hold<Write<B>>> {
        let write = Write::new(self.fd.as_raw_fd(), buf, CURRENT);
        Op::new(Hold::new(write, self.fd.clone()))
    }

    async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
        let mut buf = buf;
        loop {
            let (init, total) = (buf.bytes_init(), buf.bytes_total());
            if init >= total {
                return (Ok(()), buf);
            }
            let (res, slice) = self.read(buf.slice(init..total)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let err = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the pipe closed after {init} of {total} bytes"),
                    );
                    return (Err(err), buf);
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
    }

    async fn read_to_end(&self, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        let start = buf.len();
        let mut buf = buf;
        loop {
            if buf.capacity() - buf.len() < CHUNK {
                buf.reserve(CHUNK.max(buf.len()));
            }
            let (res, back) = self.read(buf).await;
            buf = back;
            match res {
                Ok(0) => return (Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
    }

    async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        let len = buf.bytes_init();
        let mut done = 0;
        let mut buf = buf;
        while done < len {
            let (res, slice) = self.write(buf.slice(done..len)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
        (Ok(()), buf)
    }

    /// The fd back; a duplicate if an op dropped in flight still holds it.
    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        match Rc::try_unwrap(self.fd) {
            Ok(fd) => Ok(fd),
            Err(shared) => shared.try_clone(),
        }
    }
}

/// Defines `read`, `read_exact` and `read_to_end` on a type with a `pipe` field.
macro_rules! read_methods {
    () => {
        /// Reads once into `buf`'s spare capacity (after its initialised
        /// bytes), returning the byte count and the buffer; `Ok(0)` is end of
        /// stream (the child closed its end, or exited), or a buffer without
        /// spare capacity. One `read(2)` SQE, no allocation.
        ///
        /// # Errors
        ///
        /// The raw OS error of `read(2)`; the buffer comes back either way.
        ///
        /// # Cancel safety
        ///
        /// Dropping the future cancels the read; bytes the kernel read into
        /// the buffer before the cancel took effect are lost with the buffer.
        pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
            self.pipe.read(buf).await
        }

        /// Reads until `buf` is full (its initialised length reaches its
        /// capacity); pass a `Slice` of it to fill only a range.
        ///
        /// # Errors
        ///
        /// `UnexpectedEof` if the pipe closes first, or the first read error;
        /// the bytes read so far stay in the returned buffer.
        ///
        /// # Cancel safety
        ///
        /// Not cancel safe: dropping the future drops the bytes read so far.
        pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
            self.pipe.read_exact(buf).await
        }

        /// Reads until end of stream, appending to `buf` (growing it as
        /// needed); returns how many bytes were appended.
        ///
        /// # Errors
        ///
        /// The first read error; the bytes read so far stay in the buffer.
        ///
        /// # Cancel safety
        ///
        /// Not cancel safe: dropping the future drops the bytes read so far.
        pub async fn read_to_end(&self, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
            self.pipe.read_to_end(buf).await
        }
    };
}

/// Defines the conversions and fd accessors every pipe end has.
macro_rules! pipe_end {
    ($ty:ident, $std:ident) => {
        impl $ty {
            /// Wraps a pipe end std made ([`std::process::Child`]'s field).
            pub fn from_std(end: std::process::$std) -> $ty {
                $ty {
                    pipe: Pipe::new(end.into()),
                }
            }

            /// The pipe's fd, to pass to another child (see also the
            /// `TryFrom` conversion into [`Stdio`]) or to use with std.
            ///
            /// # Errors
            ///
            /// `dup(2)` failing, if an op dropped in flight still holds the fd.
            pub fn into_owned_fd(self) -> io::Result<OwnedFd> {
                self.pipe.into_owned_fd()
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.fd.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.fd.as_raw_fd()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.pipe.fd.as_raw_fd())
                    .finish()
            }
        }

        /// The pipe as another child's stdio: `echo | cat` without copying
        /// through this process.
        impl TryFrom<$ty> for Stdio {
            type Error = io::Error;

            fn try_from(end: $ty) -> io::Result<Stdio> {
                end.into_owned_fd().map(Stdio::from)
            }
        }
    };
}

/// The write end of a child's stdin pipe ([`Child::stdin`](crate::Child::stdin)).
///
/// Writes take an owned buffer and give it back with the result. Dropping it
/// closes the pipe, so the child reads end of file; `wait` drops it first.
///
/// A write after the child closed its end fails with `EPIPE` (`BrokenPipe`).
/// The kernel also raises `SIGPIPE` then, which Rust programs ignore by
/// default (a program that restores the default action would die of it).
pub struct ChildStdin {
    pipe: Pipe,
}

impl ChildStdin {
    /// Writes `buf`'s initialised bytes once, returning how many the pipe
    /// took and the buffer. One `write(2)` SQE, no allocation; it waits while
    /// the pipe is full (the child is not reading): that is the backpressure.
    ///
    /// # Errors
    ///
    /// The raw OS error of `write(2)` (`EPIPE` once the child closed its
    /// end); the buffer comes back either way.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the write, but the pipe may already have
    /// taken some or all of the bytes: the count is then unknown.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.pipe.write(buf).await
    }

    /// Writes all of `buf`'s initialised bytes, writing the rest after
    /// partial writes.
    ///
    /// # Errors
    ///
    /// The first write error, or `WriteZero`; how much was written is then unknown.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: after a drop, an unknown prefix of the buffer was written.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        self.pipe.write_all(buf).await
    }
}

pipe_end!(ChildStdin, ChildStdin);

/// The read end of a child's stdout pipe ([`Child::stdout`](crate::Child::stdout)).
///
/// Reads take an owned buffer and give it back with the result; end of
/// stream is `Ok(0)`.
pub struct ChildStdout {
    pipe: Pipe,
}

impl ChildStdout {
    read_methods!();
}

pipe_end!(ChildStdout, ChildStdout);

/// The read end of a child's stderr pipe ([`Child::stderr`](crate::Child::stderr)).
///
/// Reads take an owned buffer and give it back with the result; end of
/// stream is `Ok(0)`.
pub struct ChildStderr {
    pipe: Pipe,
}

impl ChildStderr {
    read_methods!();
}

pipe_end!(ChildStderr, ChildStderr);
