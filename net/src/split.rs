//! Owned read and write halves of a stream, for a reader task and a writer task.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use crate::io::{read_methods, write_methods};
use crate::socket::Socket;

/// The read half of a stream `S` (`TcpStream`, `UnixStream`), from its `into_split`.
///
/// Both halves share the fd; it closes when both (and every op on it) are gone.
pub struct ReadHalf<S> {
    socket: Socket,
    _stream: PhantomData<fn() -> S>,
}

/// The write half of a stream `S`, from its `into_split`.
///
/// Dropping it does not shut the connection down; call
/// [`shutdown`](WriteHalf::shutdown) to send end of stream.
pub struct WriteHalf<S> {
    socket: Socket,
    _stream: PhantomData<fn() -> S>,
}

pub(crate) fn split<S>(socket: Socket) -> (ReadHalf<S>, WriteHalf<S>) {
    let read = ReadHalf {
        socket: socket.clone(),
        _stream: PhantomData,
    };
    let write = WriteHalf {
        socket,
        _stream: PhantomData,
    };
    (read, write)
}

impl<S> ReadHalf<S> {
    fn socket(&self) -> &Socket {
        &self.socket
    }

    read_methods!();

    pub(crate) fn reunite_with(
        self,
        write: WriteHalf<S>,
        make: fn(Socket) -> S,
    ) -> Result<S, ReuniteError<S>> {
        if self.socket.same_as(&write.socket) {
            drop(write);
            Ok(make(self.socket))
        } else {
            Err(ReuniteError(self, write))
        }
    }
}

impl<S> WriteHalf<S> {
    fn socket(&self) -> &Socket {
        &self.socket
    }

    write_methods!();

    /// Shuts down the writing side (`shutdown(2)` with `SHUT_WR`): the peer
    /// reads end of stream once it has read everything sent before.
    ///
    /// # Errors
    ///
    /// Any error of `shutdown(2)`.
    pub async fn shutdown(&self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Write).await
    }
}

/// Two halves that do not belong to the same stream, given back.
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the read and write halves come from different streams")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf")
            .field("fd", &self.socket.as_fd().as_raw_fd())
            .finish()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf")
            .field("fd", &self.socket.as_fd().as_raw_fd())
            .finish()
    }
}

impl<S> AsFd for ReadHalf<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl<S> AsRawFd for ReadHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_fd().as_raw_fd()
    }
}

impl<S> AsFd for WriteHalf<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl<S> AsRawFd for WriteHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_fd().as_raw_fd()
    }
}
