//! TCP: [`TcpListener`], [`TcpStream`] and its owned halves.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use percore_runtime::time::timeout;
use socket2::{Domain, SockAddr, Type};

use crate::addr::{self, ToSocketAddrs};
use crate::compat::Compat;
use crate::incoming::Incoming;
use crate::io::{read_methods, write_methods};
use crate::socket::{ip_addr, Socket};
use crate::split::{ReadHalf, ReuniteError, WriteHalf};

/// How a listening socket is set up: `SO_REUSEADDR`, `SO_REUSEPORT`, backlog.
///
/// # Examples
///
/// One listener per core on the same port; the kernel spreads connections:
///
/// ```
/// use percore_net::tcp::ListenOptions;
///
/// let options = ListenOptions::new().reuse_port(true).backlog(4096);
/// let first = options.bind_tcp("127.0.0.1:0")?;
/// let second = options.bind_tcp(first.local_addr()?)?;
/// assert_eq!(first.local_addr()?, second.local_addr()?);
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use = "options do nothing until a socket is bound"]
pub struct ListenOptions {
    reuse_addr: bool,
    reuse_port: bool,
    backlog: i32,
}

impl Default for ListenOptions {
    fn default() -> ListenOptions {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// `SO_REUSEADDR` on, `SO_REUSEPORT` off, a backlog of 1024.
    pub fn new() -> ListenOptions {
        ListenOptions {
            reuse_addr: true,
            reuse_port: false,
            backlog: 1024,
        }
    }

    /// Sets `SO_REUSEADDR` (rebinding a port with connections in `TIME_WAIT`).
    pub fn reuse_addr(mut self, on: bool) -> ListenOptions {
        self.reuse_addr = on;
        self
    }

    /// Sets `SO_REUSEPORT`: several sockets (one per core) bind the same address
    /// and the kernel balances incoming connections between them.
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }

    /// The `listen(2)` backlog (the kernel caps it at `net.core.somaxconn`).
    pub fn backlog(mut self, backlog: i32) -> ListenOptions {
        self.backlog = backlog;
        self
    }

    /// Binds a TCP listener to `addr` with these options: a `SocketAddr`, an
    /// `"IP:port"` string, or a name (`"localhost:8080"`); see [`ToSocketAddrs`].
    /// With several addresses, each is tried in turn until one binds.
    ///
    /// A name is looked up on the calling thread, which blocks meanwhile
    /// (`bind` is synchronous): bind before the cores start, as a server
    /// building one listener per core does, or on a core look the name up
    /// first with [`lookup_host`](crate::lookup_host) (on the blocking pool)
    /// and bind the address. Literal addresses never look anything up.
    ///
    /// # Errors
    ///
    /// The lookup's error, naming the host; else the last address's error of
    /// `socket(2)`, `setsockopt(2)`, `bind(2)` or `listen(2)`, naming `addr`.
    pub fn bind_tcp(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let target = addr::sealed::ToSocketAddrsPriv::to_target(&addr);
        let addrs = addr::resolve_blocking(target.clone())?;
        addr::each_blocking(&target, &addrs, "listen on", |addr| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM)?;
            self.listen(&socket, &SockAddr::from(addr))?;
            Ok(TcpListener { socket })
        })
    }

    pub(crate) fn listen(&self, socket: &Socket, addr: &SockAddr) -> io::Result<()> {
        let sock = socket.sock_ref();
        if self.reuse_addr {
            sock.set_reuse_address(true)?;
        }
        if self.reuse_port {
            sock.set_reuse_port(true)?;
        }
        sock.bind(addr)?;
        sock.listen(self.backlog)
    }
}

/// A TCP socket listening for connections, used on the core that accepts.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
/// use percore_net::{TcpListener, TcpStream};
///
/// percore_runtime::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = percore_runtime::spawn(async move {
///         let stream = TcpStream::connect(addr).await?;
///         let (res, _) = stream.write_all(b"hi".to_vec()).await;
///         res
///     });
///     let mut incoming = listener.incoming();
///     let stream = incoming.next().await.expect("never ends")?;
///     let (res, buf) = stream.read_exact(Vec::with_capacity(2)).await;
///     res?;
///     assert_eq!(buf, b"hi");
///     client.await.expect("client task")?;
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Binds to `addr` with [`ListenOptions::new`] (`SO_REUSEADDR`, backlog
    /// 1024): a `SocketAddr`, `"IP:port"`, or a name, looked up on the calling
    /// thread (see [`ListenOptions::bind_tcp`]).
    ///
    /// # Errors
    ///
    /// As [`ListenOptions::bind_tcp`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        ListenOptions::new().bind_tcp(addr)
    }

    /// Accepts one connection (one `accept4(2)` SQE) with its peer address.
    ///
    /// # Errors
    ///
    /// The raw OS error of `accept4(2)`: `EMFILE`/`ENFILE` when out of fds
    /// (the connection stays queued; the listener stays usable).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the accept; a connection the kernel accepted
    /// anyway is closed (its fd never leaks), so that one client sees a reset.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept().await?;
        Ok((TcpStream { socket }, ip_addr(&addr)?))
    }

    /// The stream of accepted connections, on multishot accept; see [`Incoming`]
    /// for how it handles errors and fd exhaustion.
    ///
    /// The stream shares the listening socket: it keeps accepting after the
    /// listener is dropped, and the socket closes when both are gone.
    pub fn incoming(&self) -> Incoming<TcpStream> {
        Incoming::new(self.socket.shared_fd().clone(), TcpStream::from_socket)
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(&self.socket.local_addr()?)
    }

    /// Wraps a listening std socket.
    pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
        TcpListener {
            socket: Socket::from_fd(listener.into()),
        }
    }

    /// The std listener (in the blocking mode it was created with).
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.socket.into_fd().map(std::net::TcpListener::from)
    }
}

/// A TCP connection, used on the core it was accepted or connected on.
///
/// Reads and writes take an owned buffer and give it back with the result
/// (`let (res, buf) = stream.read(buf).await;`). `&self` methods let one task
/// read while another writes; [`into_split`](TcpStream::into_split) makes owned
/// halves for that. Dropping the stream closes the fd once no op uses it any more.
///
/// # Examples
///
/// A reader task and a writer task on one connection:
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore_runtime::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _peer) = listener.accept().await?;
///     let (read, write) = client.into_split();
///     let writer = percore_runtime::spawn(async move {
///         let (res, _) = write.write_all(b"ping".to_vec()).await;
///         res?;
///         write.shutdown().await
///     });
///     // The server echoes until end of stream.
///     loop {
///         let (res, buf) = server.read(Vec::with_capacity(64)).await;
///         if res? == 0 {
///             break;
///         }
///         let (res, _) = server.write_all(buf).await;
///         res?;
///     }
///     let (res, echoed) = read.read_exact(Vec::with_capacity(4)).await;
///     res?;
///     assert_eq!(echoed, b"ping");
///     writer.await.expect("writer task")?;
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    /// Connects to `addr` (`connect(2)` as one SQE): a `SocketAddr`, an
    /// `"IP:port"` string, or a name such as `"localhost:8080"` or
    /// `("example.com", 443)` (see [`ToSocketAddrs`]).
    ///
    /// A name is looked up on the blocking pool
    /// ([`spawn_blocking`](percore_runtime::spawn_blocking)), so the core keeps
    /// running; a literal address connects at once. Each address is tried in
    /// turn until one connects.
    ///
    /// # Errors
    ///
    /// The lookup's error, naming the host; else the error of `socket(2)` or
    /// `connect(2)` (`ECONNREFUSED`…) for the last address tried, naming `addr`.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let target = addr::sealed::ToSocketAddrsPriv::to_target(&addr);
        TcpStream::connect_target(target).await
    }

    async fn connect_target(target: addr::Target) -> io::Result<TcpStream> {
        // The fast path: one literal address, nothing to look up or keep.
        if let addr::Target::One(addr) = target {
            return TcpStream::connect_one(addr)
                .await
                .map_err(|err| addr::last_error(&target, 1, "connect to", Some((addr, err))));
        }
        let addrs = addr::resolve(target.clone()).await?;
        let mut last = None;
        for &addr in &addrs {
            match TcpStream::connect_one(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some((addr, err)),
            }
        }
        Err(addr::last_error(&target, addrs.len(), "connect to", last))
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM)?;
        socket.connect(SockAddr::from(addr)).await?;
        Ok(TcpStream { socket })
    }

    /// Connects to `addr` as [`connect`](TcpStream::connect) does, giving up
    /// after `limit` (the lookup of a name included).
    ///
    /// # Errors
    ///
    /// As [`connect`](TcpStream::connect); `TimedOut` after `limit`.
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        limit: Duration,
    ) -> io::Result<TcpStream> {
        let target = addr::sealed::ToSocketAddrsPriv::to_target(&addr);
        match timeout(limit, TcpStream::connect_target(target.clone())).await {
            Ok(res) => res,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {target}: no answer within {limit:?}"),
            )),
        }
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    pub(crate) fn into_socket(self) -> Socket {
        self.socket
    }

    pub(crate) fn from_socket(socket: Socket) -> TcpStream {
        TcpStream { socket }
    }

    read_methods!();
    write_methods!();

    /// Wraps the stream in [`Compat`], for the poll-based I/O traits of
    /// futures-io, tokio and hyper (crate features), with 16 KiB buffers each way.
    pub fn into_compat(self) -> Compat<TcpStream> {
        self.into_compat_with_capacity(crate::compat::DEFAULT_CAPACITY)
    }

    /// As [`into_compat`](TcpStream::into_compat), with `capacity` bytes of buffer each way.
    pub fn into_compat_with_capacity(self, capacity: usize) -> Compat<TcpStream> {
        let socket = self.socket.clone();
        Compat::build(self, socket, capacity)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`): after
    /// `Shutdown::Write` the peer reads end of stream.
    ///
    /// # Errors
    ///
    /// Any error of `shutdown(2)` (`ENOTCONN`…).
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how).await
    }

    /// The local address of the connection.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(&self.socket.local_addr()?)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// Any error of `getpeername(2)` (`ENOTCONN` once the peer is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(&self.socket.peer_addr()?)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// # Errors
    ///
    /// Any error of `setsockopt(2)`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.sock_ref().set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// Any error of `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.sock_ref().tcp_nodelay()
    }

    /// Splits into an owned read half and write half, for two tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        crate::split::split(self.socket)
    }

    /// Wraps a connected std stream (from another thread, or another core's
    /// [`into_std`](TcpStream::into_std)).
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            socket: Socket::from_fd(stream.into()),
        }
    }

    /// The std stream, e.g. to move the connection to another core.
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.socket.into_fd().map(std::net::TcpStream::from)
    }
}

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
pub type OwnedReadHalf = ReadHalf<TcpStream>;
/// The write half of a [`TcpStream`], from [`TcpStream::into_split`].
pub type OwnedWriteHalf = WriteHalf<TcpStream>;

impl ReadHalf<TcpStream> {
    /// Puts the halves back together.
    ///
    /// # Errors
    ///
    /// The halves, if they come from different streams.
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError<TcpStream>> {
        self.reunite_with(write, TcpStream::from_socket)
    }
}

crate::fd::impl_fd!(TcpListener, TcpStream);

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.socket.as_fd().as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.socket.as_fd().as_raw_fd())
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}
