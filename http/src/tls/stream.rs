//! [`TlsStream`]: a rustls connection driven by a stream's hyper `poll_read`
//! and `poll_write`.
//!
//! rustls does no I/O of its own: `read_tls` takes TLS bytes from an
//! [`io::Read`], `process_new_packets` decrypts them into its plaintext
//! buffer, `reader()` hands that plaintext out; `writer()` encrypts into its
//! outgoing buffer and `write_tls` hands that to an [`io::Write`]. The two
//! adapters below make the inner stream's `poll_read`/`poll_write` look like
//! those blocking traits, with `Pending` as `WouldBlock` — and a flag, so a
//! real `WouldBlock` error from below is never taken for `Pending` (and the
//! other way round: `Pending` is only returned after the inner stream
//! returned it, with the waker registered there, so nothing spins).

use std::fmt;
use std::future::poll_fn;
use std::io::{self, BufRead as _, Write as _};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use rustls::Connection;

/// A TLS connection over the stream `T`: hyper's [`Read`] and [`Write`] of
/// the plaintext.
///
/// Made by [`TlsAcceptor::accept`](super::TlsAcceptor::accept) and
/// [`TlsConnector::connect`](super::TlsConnector::connect), handshake done.
/// [`alpn_protocol`](Self::alpn_protocol) says what the two sides chose;
/// `poll_shutdown` sends `close_notify`, then shuts the stream's writing side.
///
/// Writes are taken into rustls' outgoing buffer (up to 64 KiB of records
/// not yet sent) and pushed to the stream at once; a full buffer makes
/// `poll_write` wait for the stream. Vectored writes are encrypted without
/// being joined first.
pub struct TlsStream<T> {
    io: T,
    conn: Connection,
    /// A TCP end of stream without `close_notify` reads as a clean end
    /// (server side) or as an `UnexpectedEof` error (client side).
    unclean_eof_is_eof: bool,
    /// `close_notify` was queued: no more writes.
    write_closed: bool,
}

impl<T> TlsStream<T> {
    /// The protocol ALPN chose (`b"h2"`, `b"http/1.1"`), or `None` if the
    /// peers agreed on none (then it is HTTP/1.1 by convention).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Whether ALPN chose HTTP/2 (`h2`): serve or speak HTTP/2 on this stream.
    pub fn is_h2(&self) -> bool {
        self.alpn_protocol() == Some(b"h2")
    }

    /// The rustls connection: protocol version, cipher suite, the peer's
    /// certificates, and on the server side the name the client asked for
    /// (SNI, [`rustls::ServerConnection::server_name`]).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The stream underneath, mutably. Reading or writing it directly breaks
    /// the TLS connection; this is for socket options and the like.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The stream underneath and the rustls connection, taken apart. Bytes
    /// rustls still held (plaintext not yet read, records not yet sent) stay
    /// in the connection.
    pub fn into_parts(self) -> (T, Connection) {
        (self.io, self.conn)
    }

    /// The stream underneath; whatever rustls still held is dropped.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: Read + Write + Unpin> TlsStream<T> {
    /// Runs the handshake of `conn` over `io` to its end.
    ///
    /// The error says what failed; the caller puts who the peer was in front.
    pub(super) async fn handshake(
        io: T,
        conn: Connection,
        unclean_eof_is_eof: bool,
    ) -> io::Result<TlsStream<T>> {
        let mut stream = TlsStream {
            io,
            conn,
            unclean_eof_is_eof,
            write_closed: false,
        };
        let mut failed = None;
        poll_fn(|cx| stream.poll_handshake(cx, &mut failed)).await?;
        Ok(stream)
    }

    /// One step of the handshake: send what rustls has for the peer, then
    /// read what the peer sends, until rustls is done and all is sent.
    ///
    /// `failed` keeps a TLS error while the alert that tells the peer why is
    /// sent (so the peer learns "unknown CA", not just a closed connection).
    fn poll_handshake(
        &mut self,
        cx: &mut Context<'_>,
        failed: &mut Option<io::Error>,
    ) -> Poll<io::Result<()>> {
        loop {
            let sent = ready!(self.poll_send(cx));
            if let Some(error) = failed.take() {
                return Poll::Ready(Err(error));
            }
            sent?;
            if !self.conn.is_handshaking() {
                // The last flight (and TLS 1.3 session tickets) went out above.
                return Poll::Ready(Ok(()));
            }
            match ready!(self.poll_read_tls(cx)) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    )))
                }
                Ok(_) => {}
                // rustls queued an alert: send it, then fail.
                Err(e) if self.conn.wants_write() => *failed = Some(e),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Reads TLS bytes from the stream into rustls and processes them.
    /// `Ok(0)` is the stream's end (or a `close_notify` already received).
    ///
    /// After a TLS error rustls may have queued an alert for the peer
    /// (`wants_write`); sending it is the caller's choice.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut reader = SyncReader {
            io: &mut self.io,
            cx,
            pending: false,
        };
        let n = match self.conn.read_tls(&mut reader) {
            Ok(n) => n,
            Err(_) if reader.pending => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match self.conn.process_new_packets() {
            Ok(_) => Poll::Ready(Ok(n)),
            Err(error) => Poll::Ready(Err(super::rustls_error(error))),
        }
    }

    /// Writes rustls' outgoing records to the stream and flushes it (the
    /// stream may hold written bytes until flushed).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_tls(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes all of rustls' outgoing TLS records to the stream.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut writer = SyncWriter {
                io: &mut self.io,
                cx,
                pending: false,
            };
            match self.conn.write_tls(&mut writer) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the stream under TLS took no bytes",
                    )))
                }
                Ok(_) => {}
                Err(_) if writer.pending => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Plaintext rustls holds, copied into `buf`; `None` if it needs more
    /// bytes from the stream.
    fn read_plaintext(&mut self, buf: &mut ReadBufCursor<'_>) -> Option<io::Result<()>> {
        let n = match self.conn.reader().into_first_chunk() {
            Ok(chunk) => {
                // An empty chunk is the end: `close_notify` received.
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.unclean_eof_is_eof => {
                return Some(Ok(()))
            }
            Err(e) => return Some(Err(e)),
        };
        self.conn.reader().consume(n);
        Some(Ok(()))
    }

    /// Encrypts what rustls takes of `bufs` and pushes it to the stream.
    fn poll_write_plaintext(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write on a TLS stream after its shutdown (close_notify sent)",
            )));
        }
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = self.conn.writer().write_vectored(bufs)?;
            let sent = self.poll_write_tls(cx)?;
            if n > 0 {
                // Taken; what the stream did not take yet goes out on the
                // next write or flush.
                return Poll::Ready(Ok(n));
            }
            // rustls' outgoing buffer was full: wait for the stream to take
            // some, then try again.
            ready!(sent);
        }
    }
}

impl<T: Read + Write + Unpin> Read for TlsStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(done) = this.read_plaintext(&mut buf) {
                return Poll::Ready(done);
            }
            // Reading may have queued records for the peer (a KeyUpdate
            // answer): send them if the stream takes them now.
            if this.conn.wants_write() {
                if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            // Then more TLS: `Ok(0)` (end of stream) is seen by rustls and
            // reported by the reader on the next turn.
            if let Err(e) = ready!(this.poll_read_tls(cx)) {
                // One try to send the alert telling the peer why, without
                // waiting; the error to report is the TLS one.
                let _ = this.poll_send(cx);
                return Poll::Ready(Err(e));
            }
        }
    }
}

impl<T: Read + Write + Unpin> Write for TlsStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_plaintext(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plaintext(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // rustls encrypts a list of slices without joining them first.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.conn.writer().flush()?;
        this.poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed {
            this.conn.send_close_notify();
            this.write_closed = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: fmt::Debug> fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.conn {
            Connection::Client(_) => "client",
            Connection::Server(_) => "server",
        };
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field("side", &side)
            .field("version", &self.conn.protocol_version())
            .field("alpn", &self.alpn_protocol().map(String::from_utf8_lossy))
            .field("write_closed", &self.write_closed)
            .finish()
    }
}

/// The stream's `poll_read` as an [`io::Read`] for rustls' `read_tls`.
struct SyncReader<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
    /// The stream returned `Pending` (its waker is registered).
    pending: bool,
}

impl<T: Read + Unpin> io::Read for SyncReader<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, buf.unfilled()) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => {
                self.pending = true;
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

/// The stream's `poll_write` as an [`io::Write`] for rustls' `write_tls`.
struct SyncWriter<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
    /// The stream returned `Pending` (its waker is registered).
    pending: bool,
}

impl<T: Write + Unpin> SyncWriter<'_, '_, T> {
    fn ready(&mut self, poll: Poll<io::Result<usize>>) -> io::Result<usize> {
        match poll {
            Poll::Ready(result) => result,
            Poll::Pending => {
                self.pending = true;
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

impl<T: Write + Unpin> io::Write for SyncWriter<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let poll = Pin::new(&mut *self.io).poll_write(self.cx, buf);
        self.ready(poll)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // rustls hands over every queued record at once: one write for all
        // of them where the stream can, else the first non-empty one.
        if self.io.is_write_vectored() {
            let poll = Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs);
            return self.ready(poll);
        }
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.write(buf),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
