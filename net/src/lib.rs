//! Sockets on io_uring for percore: TCP, UDP and Unix, on the core they are used on.
//!
//! Every socket operation is one io_uring SQE owned by an [`Op`](percore_runtime::Op)
//! future: reads and writes take an owned buffer and give it back with the result
//! (`let (res, buf) = stream.read(buf).await;`), so dropping a future mid-read
//! never frees memory the kernel still writes into. Listeners accept with one
//! multishot SQE ([`Incoming`]); a listener per core with `SO_REUSEPORT`
//! ([`tcp::ListenOptions`]) shares a port across cores, and a
//! [`balance::Balance`] moves fresh connections from a busy core's listener
//! to the least-loaded core.
//!
//! Sockets are `!Send`: they belong to the core that uses them. To move one to
//! another core, `into_std` it, send the std socket, and `from_std` it there.
//!
//! ```
//! use percore_net::{TcpListener, TcpStream};
//!
//! percore_runtime::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     // An echo server for one connection.
//!     let server = percore_runtime::spawn(async move {
//!         let (stream, _peer) = listener.accept().await?;
//!         let (res, buf) = stream.read(Vec::with_capacity(64)).await;
//!         res?;
//!         let (res, _) = stream.write_all(buf).await;
//!         res
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     let (res, _) = client.write_all(b"ping".to_vec()).await;
//!     res?;
//!     let (res, reply) = client.read_exact(Vec::with_capacity(4)).await;
//!     res?;
//!     assert_eq!(reply, b"ping");
//!     server.await.expect("server task")?;
//!     std::io::Result::Ok(())
//! })
//! .unwrap()
//! .unwrap();
//! ```
//!
//! # Features
//!
//! - `futures-io`: `futures_io::AsyncRead`/`AsyncWrite` on [`compat::Compat`].
//! - `tokio`: `tokio::io::AsyncRead`/`AsyncWrite` on [`compat::Compat`] (the
//!   traits only; no tokio runtime is started).
//! - `hyper`: `hyper::rt::Read`/`Write` on [`compat::Compat`], to run hyper 1.x.
//! - `tracing`: percore-runtime's `tracing` events, and one when an
//!   [`Incoming`] backs off after an accept error (`EMFILE`, `ENFILE`, …).

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

mod addr;
pub mod balance;
pub mod compat;
mod error;
mod fd;
pub mod graceful;
mod incoming;
mod io;
// The ops hand raw pointers to the kernel: the one module that needs `unsafe`.
#[allow(unsafe_code)]
mod op;
mod recv;
mod socket;
mod split;
pub mod tcp;
pub mod udp;
pub mod unix;

/// socket2, whose `SockAddr` is the address type of Unix sockets here and whose
/// `SockRef` sets any option on a percore socket (`SockRef::from(&stream)`).
pub use socket2;

pub use addr::{lookup_host, ToSocketAddrs};
pub use incoming::Incoming;
pub use percore_runtime::buf_ring::{BufRing, RingBuf};
pub use recv::RecvStream;
pub use split::{ReadHalf, ReuniteError, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

#[cfg(test)]
mod tests {
    /// Has two impls for `Send` types, so naming `some_item` on one without
    /// fixing `A` is ambiguous and fails to compile; for `!Send` types only the
    /// `()` impl applies.
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }

    impl<T: ?Sized> AmbiguousIfSend<()> for T {}

    struct IsSend;

    impl<T: ?Sized + Send> AmbiguousIfSend<IsSend> for T {}

    /// Compile-time check that each listed type is `!Send`.
    macro_rules! assert_not_send {
        ($($ty:ty),+ $(,)?) => {
            $(let _ = <$ty as AmbiguousIfSend<_>>::some_item;)+
        };
    }

    #[test]
    fn sockets_belong_to_their_core() {
        use crate::*;
        assert_not_send!(
            TcpListener,
            TcpStream,
            UdpSocket,
            UnixListener,
            UnixStream,
            UnixDatagram,
            ReadHalf<TcpStream>,
            WriteHalf<TcpStream>,
            Incoming<TcpStream>,
            balance::Balanced,
            compat::Compat<TcpStream>,
        );
    }

    #[test]
    fn a_balance_is_shared_by_every_core() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::balance::Balance>();
    }
}
