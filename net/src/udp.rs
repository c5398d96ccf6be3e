//! UDP: [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use percore_runtime::{BufResult, IoBuf, IoBufMut};
use socket2::{Domain, SockAddr, Type};

use crate::addr::{self, ToSocketAddrs};
use crate::socket::{ip_addr, Socket};

/// A UDP socket, used on the core that owns it.
///
/// # Examples
///
/// ```
/// use percore_net::UdpSocket;
///
/// percore_runtime::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     let (res, _) = a.send_to(b"ping".to_vec(), b.local_addr()?).await;
///     res?;
///     let (res, buf) = b.recv_from(Vec::with_capacity(16)).await;
///     let (n, from) = res?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// Binds a UDP socket to `addr` (port 0 picks a free one): a
    /// `SocketAddr`, `"IP:port"`, or a name (see [`ToSocketAddrs`]), each
    /// address tried in turn until one binds.
    ///
    /// A name is looked up on the calling thread, which blocks meanwhile (see
    /// [`ListenOptions::bind_tcp`](crate::tcp::ListenOptions::bind_tcp)); on a
    /// core, look it up first with [`lookup_host`](crate::lookup_host).
    ///
    /// # Errors
    ///
    /// The lookup's error, naming the host; else the last address's error of
    /// `socket(2)` or `bind(2)`, naming `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let target = addr::sealed::ToSocketAddrsPriv::to_target(&addr);
        let addrs = addr::resolve_blocking(target.clone())?;
        addr::each_blocking(&target, &addrs, "bind UDP", |addr| {
            let socket = Socket::new(Domain::for_address(addr), Type::DGRAM)?;
            socket.sock_ref().bind(&SockAddr::from(addr))?;
            Ok(UdpSocket { socket })
        })
    }

    /// Sets the default peer (`connect(2)`, which for UDP sends nothing), for
    /// [`send`](UdpSocket::send) and [`recv`](UdpSocket::recv); datagrams from
    /// other addresses are then dropped by the kernel. `addr` is what
    /// [`bind`](UdpSocket::bind) takes; the first address that connects wins.
    ///
    /// # Errors
    ///
    /// The lookup's error, naming the host; else the last address's error of
    /// `connect(2)`, naming `addr`.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let target = addr::sealed::ToSocketAddrsPriv::to_target(&addr);
        let addrs = addr::resolve_blocking(target.clone())?;
        addr::each_blocking(&target, &addrs, "connect UDP to", |addr| {
            self.socket.sock_ref().connect(&SockAddr::from(addr))
        })
    }

    /// Sends `buf`'s initialised bytes as one datagram to `addr` (`sendmsg(2)`).
    ///
    /// # Errors
    ///
    /// The raw OS error of `sendmsg(2)` (`EMSGSIZE`…); the buffer comes back.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        self.socket.send_to(buf, &SockAddr::from(addr)).await
    }

    /// Receives one datagram into `buf`'s spare capacity, with its sender
    /// (`recvmsg(2)`); the rest of a datagram larger than the space is discarded.
    ///
    /// # Errors
    ///
    /// The raw OS error of `recvmsg(2)`; the buffer comes back.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = self.socket.recv_from(buf).await;
        (res.and_then(|(n, from)| Ok((n, ip_addr(&from)?))), buf)
    }

    /// Sends one datagram to the connected peer (`send(2)`).
    ///
    /// # Errors
    ///
    /// The raw OS error of `send(2)` (`EDESTADDRREQ` if not connected…).
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.socket.write(buf).await
    }

    /// Receives one datagram from the connected peer (`recv(2)`).
    ///
    /// # Errors
    ///
    /// The raw OS error of `recv(2)`.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.socket.read(buf).await
    }

    /// Sends the buffers, in order, as one datagram (`sendmsg(2)`), to `addr`
    /// or, if `None`, to the connected peer.
    ///
    /// # Errors
    ///
    /// The raw OS error of `sendmsg(2)`; the buffers come back.
    pub async fn send_msg<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        addr: Option<SocketAddr>,
    ) -> BufResult<usize, Vec<B>> {
        let addr = addr.map(SockAddr::from);
        self.socket.send_msg(bufs, addr.as_ref()).await
    }

    /// Receives one datagram scattered over the buffers' spare capacity
    /// (`recvmsg(2)`): byte count, sender, and whether it was truncated
    /// (`MSG_TRUNC`: it did not fit).
    ///
    /// # Errors
    ///
    /// The raw OS error of `recvmsg(2)`; the buffers come back.
    pub async fn recv_msg<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
    ) -> BufResult<(usize, SocketAddr, bool), Vec<B>> {
        let (res, bufs) = self.socket.recv_msg(bufs).await;
        let res = res.and_then(|got| {
            let truncated = got.flags & libc::MSG_TRUNC != 0;
            Ok((got.len, ip_addr(&got.from)?, truncated))
        });
        (res, bufs)
    }

    /// The address this socket is bound to.
    ///
    /// # Errors
    ///
    /// Any error of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(&self.socket.local_addr()?)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(&self.socket.peer_addr()?)
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// Any error of `setsockopt(2)`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.socket.sock_ref().set_broadcast(on)
    }

    /// Wraps a std UDP socket.
    pub fn from_std(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            socket: Socket::from_fd(socket.into()),
        }
    }

    /// The std socket.
    ///
    /// # Errors
    ///
    /// `dup(2)` failing, if an op dropped in flight still holds the fd.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.socket.into_fd().map(std::net::UdpSocket::from)
    }
}

crate::fd::impl_fd!(UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.socket.as_fd().as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}
