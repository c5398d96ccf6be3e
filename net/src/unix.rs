//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].
//!
//! Addresses are [`socket2::SockAddr`] (pathname, abstract or unnamed);
//! `addr.as_pathname()` gives the path of a pathname address.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use percore_runtime::{BufResult, IoBuf, IoBufMut};
use socket2::{Domain, SockAddr, Type};

use crate::compat::Compat;
use crate::error::context;
use crate::incoming::Incoming;
use crate::io::{read_methods, write_methods};
use crate::socket::Socket;
use crate::split::{ReadHalf, ReuniteError, WriteHalf};
use crate::tcp::ListenOptions;

fn unix_addr(path: &Path) -> io::Result<SockAddr> {
    SockAddr::unix(path).map_err(|err| context(err, format!("unix address {}", path.display())))
}

/// A Unix stream socket listening for connections.
pub struct UnixListener {
    socket: Socket,
}

impl UnixListener {
    /// Binds to `path` (which must not exist) and listens, backlog 1024.
    ///
    /// # Errors
    ///
    /// Any error of `socket(2)`, `bind(2)` (`EADDRINUSE` if the path exists) or
    /// `listen(2)`, naming the path.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let socket = Socket::new(Domain::UNIX, Type::STREAM)?;
        ListenOptions::new()
            .reuse_addr(false)
            .listen(&socket, &unix_addr(path)?)
            .map_err(|err| context(err, format!("listen on {}", path.display())))?;
        Ok(UnixListener { socket })
    }

    /// Accepts one connection with its peer address (usually unnamed).
    ///
    /// # Errors
    ///
    /// The raw OS error of `accept4(2)` (`EMFILE`…).
    pub async fn accept(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (socket, addr) = self.socket.accept().await?;
        Ok((UnixStream { socket }, addr))
    }

    /// The stream of accepted connections, on multishot accept (see [`Incoming`]).
    /// It shares the listening socket, which closes when both are gone.
    pub fn incoming(&self) -> Incoming<UnixStream> {
        Incoming::new(self.socket.shared_fd().clone(), UnixStream::from_socket)
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// Wraps a listening std socket.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener {
            socket: Socket::from_fd(listener.into()),
        }
    }

    /// The std listener.
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.socket
            .into_fd()
            .map(std::os::unix::net::UnixListener::from)
    }
}

/// A Unix stream connection: the same owned-buffer API as [`TcpStream`](crate::TcpStream).
pub struct UnixStream {
    socket: Socket,
}

impl UnixStream {
    /// Connects to the listener at `path`.
    ///
    /// # Errors
    ///
    /// Any error of `socket(2)` or `connect(2)` (`ENOENT`, `ECONNREFUSED`…), naming the path.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let socket = Socket::new(Domain::UNIX, Type::STREAM)?;
        socket
            .connect(unix_addr(path)?)
            .await
            .map_err(|err| context(err, format!("connect to {}", path.display())))?;
        Ok(UnixStream { socket })
    }

    /// A connected pair (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// Any error of `socketpair(2)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore_runtime::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let (res, _) = a.write_all(b"over a pair".to_vec()).await;
    ///     res?;
    ///     let (res, buf) = b.read_exact(Vec::with_capacity(11)).await;
    ///     res?;
    ///     assert_eq!(buf, b"over a pair");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        Ok((
            UnixStream::from_socket(Socket::from_fd(a.into())),
            UnixStream::from_socket(Socket::from_fd(b.into())),
        ))
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    pub(crate) fn from_socket(socket: Socket) -> UnixStream {
        UnixStream { socket }
    }

    read_methods!();
    write_methods!();

    /// Writes `buf`'s initialised bytes once, with `fds` attached
    /// (`SCM_RIGHTS`): the peer's [`read_with_fds`](UnixStream::read_with_fds)
    /// gets its own fds for the same open files. One `sendmsg(2)` with
    /// `MSG_NOSIGNAL`.
    ///
    /// The fds travel with the first byte of `buf`, so `buf` must not be
    /// empty. A partial write (the count is less than the length) sent the
    /// fds all the same: write the rest with [`write_all`](UnixStream::write_all).
    /// The op sends duplicates of `fds` (`F_DUPFD_CLOEXEC`), so yours may be
    /// closed as soon as the future is done or dropped.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty `buf`; `dup(2)`'s error; the raw OS error of
    /// `sendmsg(2)` (`EPIPE`, `ETOOMANYREFS`, `EINVAL` for more than 253
    /// fds…). The buffer comes back either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream as StdUnixStream;
    /// use percore_net::UnixStream;
    ///
    /// percore_runtime::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     // Hand one end of another pair over `a`.
    ///     let (mut mine, theirs) = StdUnixStream::pair()?;
    ///     let (res, _) = a.write_with_fds(b"take this".to_vec(), &[theirs.as_fd()]).await;
    ///     res?;
    ///     drop(theirs);
    ///     let (res, buf) = b.read_with_fds(Vec::with_capacity(16), 1).await;
    ///     let (n, mut fds) = res?;
    ///     assert_eq!((&buf[..n], fds.len()), (&b"take this"[..], 1));
    ///     // The received fd is that end.
    ///     StdUnixStream::from(fds.remove(0)).write_all(b"through it")?;
    ///     let mut got = String::new();
    ///     mine.read_to_string(&mut got)?;
    ///     assert_eq!(got, "through it");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn write_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        if buf.bytes_init() == 0 {
            let err = io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_with_fds needs at least one byte to carry the fds on a stream",
            );
            return (Err(err), buf);
        }
        self.socket.send_fds(buf, fds).await
    }

    /// Reads once into `buf`'s spare capacity, taking up to `max_fds` fds the
    /// peer sent along (`SCM_RIGHTS`): the byte count and the fds, which are
    /// yours and close-on-exec (`MSG_CMSG_CLOEXEC`). One `recvmsg(2)`.
    ///
    /// A read stops at a write that carried fds, so the fds come with the
    /// bytes they were sent with; `Ok((0, _))` is end of stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the peer sent more than `max_fds` fds in one write
    /// (`MSG_CTRUNC`): the fds that fit are closed and the kernel closed the
    /// rest, while the bytes received are in the returned buffer (its
    /// initialised length grew by their count). Else the raw OS error of
    /// `recvmsg(2)`. The buffer comes back either way.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the read; fds the kernel received before
    /// the cancel took effect are closed (never leaked), and the bytes with
    /// them are lost with the buffer.
    pub async fn read_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        self.socket.recv_fds(buf, max_fds).await
    }

    /// Wraps the stream in [`Compat`], for the poll-based I/O traits of
    /// futures-io, tokio and hyper (crate features), with 16 KiB buffers each way.
    pub fn into_compat(self) -> Compat<UnixStream> {
        self.into_compat_with_capacity(crate::compat::DEFAULT_CAPACITY)
    }

    /// As [`into_compat`](UnixStream::into_compat), with `capacity` bytes of buffer each way.
    pub fn into_compat_with_capacity(self, capacity: usize) -> Compat<UnixStream> {
        let socket = self.socket.clone();
        Compat::build(self, socket, capacity)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`).
    ///
    /// # Errors
    ///
    /// Any error of `shutdown(2)`.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how).await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// Any error of `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        self.socket.peer_addr()
    }

    /// Splits into an owned read half and write half.
    pub fn into_split(self) -> (ReadHalf<UnixStream>, WriteHalf<UnixStream>) {
        crate::split::split(self.socket)
    }

    /// Wraps a connected std stream.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream::from_socket(Socket::from_fd(stream.into()))
    }

    /// The std stream.
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.socket
            .into_fd()
            .map(std::os::unix::net::UnixStream::from)
    }
}

impl ReadHalf<UnixStream> {
    /// Puts the halves of a [`UnixStream`] back together.
    ///
    /// # Errors
    ///
    /// The halves, if they come from different streams.
    pub fn reunite(
        self,
        write: WriteHalf<UnixStream>,
    ) -> Result<UnixStream, ReuniteError<UnixStream>> {
        self.reunite_with(write, UnixStream::from_socket)
    }
}

/// A Unix datagram socket.
pub struct UnixDatagram {
    socket: Socket,
}

impl UnixDatagram {
    /// Binds a datagram socket to `path` (which must not exist).
    ///
    /// # Errors
    ///
    /// Any error of `socket(2)` or `bind(2)`, naming the path.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let socket = Socket::new(Domain::UNIX, Type::DGRAM)?;
        socket
            .sock_ref()
            .bind(&unix_addr(path)?)
            .map_err(|err| context(err, format!("bind {}", path.display())))?;
        Ok(UnixDatagram { socket })
    }

    /// A datagram socket bound to no address (it can send, and receive replies
    /// only once connected).
    ///
    /// # Errors
    ///
    /// Any error of `socket(2)`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            socket: Socket::new(Domain::UNIX, Type::DGRAM)?,
        })
    }

    /// A connected pair (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// Any error of `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        Ok((
            UnixDatagram {
                socket: Socket::from_fd(a.into()),
            },
            UnixDatagram {
                socket: Socket::from_fd(b.into()),
            },
        ))
    }

    /// Sets the default peer for [`send`](UnixDatagram::send)/[`recv`](UnixDatagram::recv).
    ///
    /// # Errors
    ///
    /// Any error of `connect(2)`, naming the path.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        self.socket
            .sock_ref()
            .connect(&unix_addr(path)?)
            .map_err(|err| context(err, format!("connect to {}", path.display())))
    }

    /// Sends `buf`'s initialised bytes as one datagram to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a path too long for `sun_path`; the raw OS error of
    /// `sendmsg(2)`. The buffer comes back.
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        match SockAddr::unix(path) {
            Ok(addr) => self.socket.send_to(buf, &addr).await,
            Err(err) => (Err(err), buf),
        }
    }

    /// Receives one datagram into `buf`'s spare capacity, with its sender.
    ///
    /// # Errors
    ///
    /// The raw OS error of `recvmsg(2)`; the buffer comes back.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SockAddr), B> {
        self.socket.recv_from(buf).await
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// The raw OS error of `send(2)`.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.socket.write(buf).await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// The raw OS error of `recv(2)`.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.socket.read(buf).await
    }

    /// Sends one datagram to the connected peer with `fds` attached
    /// (`SCM_RIGHTS`); an empty datagram may carry them. One `sendmsg(2)`. The
    /// op sends duplicates of `fds`, so yours may close once the future is
    /// done or dropped.
    ///
    /// # Errors
    ///
    /// `dup(2)`'s error; the raw OS error of `sendmsg(2)` (`EINVAL` for more
    /// than 253 fds…). The buffer comes back either way.
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        self.socket.send_fds(buf, fds).await
    }

    /// Receives one datagram from the connected peer with up to `max_fds` fds
    /// sent along: byte count and fds (yours, close-on-exec). The rest of a
    /// datagram larger than `buf`'s spare capacity is discarded.
    ///
    /// # Errors
    ///
    /// As [`UnixStream::read_with_fds`]: `InvalidData` if more than `max_fds`
    /// fds came (the ones that fit are closed).
    ///
    /// # Cancel safety
    ///
    /// As [`UnixStream::read_with_fds`]: fds received before the cancel took
    /// effect are closed, and that datagram is lost.
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        self.socket.recv_fds(buf, max_fds).await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.socket.local_addr()
    }

    /// Wraps a std datagram socket.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            socket: Socket::from_fd(socket.into()),
        }
    }

    /// The std socket.
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        self.socket
            .into_fd()
            .map(std::os::unix::net::UnixDatagram::from)
    }
}

crate::fd::impl_fd!(UnixListener, UnixStream, UnixDatagram);

macro_rules! debug_fd {
    ($($ty:ident),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.socket.as_fd().as_raw_fd())
                    .finish()
            }
        }
    )*};
}

debug_fd!(UnixListener, UnixStream, UnixDatagram);
