//! A percore stream as hyper's [`Read`](hyper::rt::Read) and
//! [`Write`](hyper::rt::Write).
//!
//! Today [`Io`] wraps percore-net's `Compat` (a buffer per direction); it is
//! the one place the server, the client and TLS take their bytes from, so the
//! I/O path can change under them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::ReadBufCursor;
use percore_net::compat::Compat;
use percore_net::TcpStream;

/// A TCP connection as hyper's `Read`/`Write`.
#[derive(Debug)]
pub struct Io {
    inner: Compat<TcpStream>,
}

impl Io {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> Io {
        Io {
            inner: stream.into_compat(),
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &TcpStream {
        self.inner.get_ref()
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
