//! `TlsStream` over an in-memory pipe that takes a few bytes per call and
//! holds little: partial writes, backpressure, `Pending` without spinning,
//! and random bytes thrown at the handshake.

#![cfg(feature = "tls")]

mod tls_common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use hyper::rt::{Read, ReadBufCursor, Write};
use percore_http::tls::TlsStream;
use tls_common::{read_some, shutdown, write_all, Pki};

/// One direction of a pipe.
#[derive(Default)]
struct Direction {
    bytes: VecDeque<u8>,
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of an in-memory pipe: each call moves at most `chunk` bytes, and
/// at most `capacity` bytes wait in each direction.
struct PipeEnd {
    rx: Rc<RefCell<Direction>>,
    tx: Rc<RefCell<Direction>>,
    chunk: usize,
    capacity: usize,
    /// `poll_read` calls, to check nobody polls without being woken.
    reads: Rc<Cell<usize>>,
}

fn pipe(chunk: usize, capacity: usize) -> (PipeEnd, PipeEnd) {
    let (a, b) = (Rc::default(), Rc::default());
    let end = |rx: &Rc<RefCell<Direction>>, tx: &Rc<RefCell<Direction>>| PipeEnd {
        rx: rx.clone(),
        tx: tx.clone(),
        chunk,
        capacity,
        reads: Rc::default(),
    };
    (end(&a, &b), end(&b, &a))
}

impl Read for PipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.reads.set(self.reads.get() + 1);
        let mut rx = self.rx.borrow_mut();
        if rx.bytes.is_empty() {
            if rx.closed {
                return Poll::Ready(Ok(()));
            }
            rx.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = rx.bytes.len().min(buf.remaining()).min(self.chunk);
        let taken: Vec<u8> = rx.bytes.drain(..n).collect();
        buf.put_slice(&taken);
        if let Some(writer) = rx.writer.take() {
            writer.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Write for PipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut tx = self.tx.borrow_mut();
        if tx.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = self.capacity - tx.bytes.len();
        if room == 0 {
            tx.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room).min(self.chunk);
        tx.bytes.extend(&buf[..n]);
        if let Some(reader) = tx.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut tx = self.tx.borrow_mut();
        tx.closed = true;
        if let Some(reader) = tx.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        for direction in [&self.tx, &self.rx] {
            let mut direction = direction.borrow_mut();
            direction.closed = true;
            for waker in [direction.reader.take(), direction.writer.take()]
                .into_iter()
                .flatten()
            {
                waker.wake();
            }
        }
    }
}

/// Both handshakes over one pipe, run together.
async fn handshake(
    pki: &Pki,
    chunk: usize,
    capacity: usize,
) -> (TlsStream<PipeEnd>, TlsStream<PipeEnd>) {
    let (client_end, server_end) = pipe(chunk, capacity);
    let acceptor = pki.acceptor();
    let server = percore::spawn(async move { acceptor.accept(server_end).await });
    let client = pki
        .connector()
        .connect("localhost", client_end)
        .await
        .unwrap();
    let server = server.await.unwrap().unwrap();
    (client, server)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[percore::test]
async fn data_crosses_a_pipe_that_takes_seven_bytes_at_a_time_both_ways_at_once() {
    let pki = Pki::new("trickle");
    // Seven bytes per call, at most 100 waiting: every TLS record is written
    // in many partial writes, and writers wait on a full pipe.
    let (client_end, server_end) = pipe(7, 100);
    let up = pattern(256 * 1024, 0x5a);
    let down = pattern(300 * 1024, 0xa5);
    let (acceptor, down2) = (pki.acceptor(), down.clone());
    // Each side runs its handshake and exchange in one task: the server's
    // session tickets wait in the full pipe until the client reads.
    let server_task = percore::spawn(async move {
        let mut server = acceptor.accept(server_end).await?;
        assert!(server.is_h2());
        exchange(&mut server, &down2).await
    });
    let mut client = pki
        .connector()
        .connect("localhost", client_end)
        .await
        .unwrap();
    assert!(client.is_h2());
    let got = exchange(&mut client, &up).await.unwrap();
    assert!(
        got == down,
        "the client read {} bytes, not what was sent",
        got.len()
    );
    let got = server_task.await.unwrap().unwrap();
    assert!(
        got == up,
        "the server read {} bytes, not what was sent",
        got.len()
    );
}

/// Writes `out` then close_notify while reading to the end, in one task:
/// each side waits on both directions, so neither waits for the other.
async fn exchange<T: Read + Write + Unpin>(stream: &mut T, out: &[u8]) -> io::Result<Vec<u8>> {
    let (mut sent, mut shut, mut eof) = (0, false, false);
    let mut got = Vec::new();
    let mut buf = vec![0; 4096];
    std::future::poll_fn(|cx| {
        while !shut {
            let step = if sent < out.len() {
                Pin::new(&mut *stream)
                    .poll_write(cx, &out[sent..])
                    .map_ok(|n| sent += n)
            } else {
                Pin::new(&mut *stream)
                    .poll_shutdown(cx)
                    .map_ok(|()| shut = true)
            };
            match step {
                Poll::Ready(result) => result?,
                Poll::Pending => break,
            }
        }
        while !eof {
            let mut rb = hyper::rt::ReadBuf::new(&mut buf);
            match Pin::new(&mut *stream).poll_read(cx, rb.unfilled()) {
                Poll::Ready(result) => result?,
                Poll::Pending => break,
            }
            let n = rb.filled().len();
            eof = n == 0;
            got.extend_from_slice(&buf[..n]);
        }
        if shut && eof {
            Poll::Ready(Ok(std::mem::take(&mut got)))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[percore::test]
async fn a_read_with_nothing_to_read_polls_the_stream_once_and_waits() {
    let pki = Pki::new("no-spin");
    let (mut client, server) = handshake(&pki, 16 * 1024, 64 * 1024).await;
    let reads = client.get_ref().reads.clone();
    let mut buf = [0; 64];
    let mut read = Box::pin(read_some(&mut client, &mut buf));
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    // The first poll takes what the server sent after the handshake (TLS 1.3
    // session tickets): no plaintext, then the stream says Pending.
    assert!(read.as_mut().poll(&mut cx).is_pending());
    for _ in 0..3 {
        let before = reads.get();
        assert!(read.as_mut().poll(&mut cx).is_pending());
        // One look at the stream, which said Pending: no loop around it.
        assert_eq!(reads.get() - before, 1);
    }
    drop(read);
    drop(server);
}

#[percore::test]
async fn a_full_pipe_makes_the_writer_wait_rather_than_buffer_without_end() {
    let pki = Pki::new("backpressure");
    let (mut client, server) = handshake(&pki, 16 * 1024, 16 * 1024).await;
    // Nobody reads the server's end: the pipe fills, then rustls' 64 KiB of
    // outgoing records, and then poll_write says Pending.
    let data = vec![7u8; 1 << 20];
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut taken = 0;
    loop {
        match Pin::new(&mut client).poll_write(&mut cx, &data[taken..]) {
            Poll::Ready(Ok(n)) => {
                assert!(n > 0);
                taken += n;
                assert!(taken < data.len(), "1 MiB taken with nobody reading");
            }
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => break,
        }
    }
    assert!(
        taken <= 16 * 1024 + 64 * 1024 + 16 * 1024,
        "{taken} bytes taken before the writer waited"
    );
    drop(server);
}

#[percore::test]
async fn random_bytes_at_the_handshake_are_errors_never_panics() {
    let pki = Pki::new("fuzz");
    let acceptor = pki.acceptor();
    let connector = pki.connector();
    let mut state = 0x853c_49e6_748f_ea9b_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..200 {
        let len = (next() % 3000) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the rounds look like a TLS handshake record at first.
        if round % 2 == 0 && len >= 5 {
            bytes[..3].copy_from_slice(&[0x16, 0x03, 0x01]);
        }
        // Garbage to a server, then to a client.
        for server_side in [true, false] {
            let (mut peer, end) = pipe(4096, 1 << 20);
            write_all(&mut peer, &bytes).await.unwrap();
            shutdown(&mut peer).await.unwrap();
            let result = if server_side {
                acceptor.accept(end).await.map(drop)
            } else {
                connector.connect("localhost", end).await.map(drop)
            };
            let err = result.expect_err("random bytes made a TLS handshake");
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "round {round}: {:?}: {err}",
                err.kind()
            );
        }
    }
}
