//! Zero-copy sends: the bytes arrive intact, and the buffer is held until the
//! kernel's notification, even when the future is dropped.

mod util;

use std::cell::Cell;
use std::future::Future;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use percore_net::{TcpListener, TcpStream, UnixStream};
use percore_runtime::IoBuf;

#[test]
fn a_large_buffer_arrives_byte_exact() {
    const LEN: usize = 8 << 20;
    let listener = util::std_listener();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    let data: Vec<u8> = (0..LEN as u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    percore_runtime::run(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (res, back) = stream.write_all_zc(sent).await;
        res.unwrap();
        assert_eq!(back.len(), LEN, "the buffer comes back whole");
        let (res, n) = {
            let (res, buf) = stream.write_zc(b"tail".to_vec()).await;
            (res, buf.len())
        };
        assert_eq!(res.unwrap(), n);
    })
    .unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), LEN + 4);
    assert!(got[..LEN] == data[..], "bytes arrive in order, intact");
    assert_eq!(&got[LEN..], b"tail");
}

/// A buffer that records when it is dropped.
struct Tracked(Vec<u8>, Rc<Cell<bool>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.set(true);
    }
}

// SAFETY: delegates to the Vec, whose heap storage stays put while moved.
unsafe impl IoBuf for Tracked {
    fn stable_ptr(&self) -> *const u8 {
        self.0.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.0.bytes_total()
    }
}

#[test]
fn a_dropped_send_keeps_its_buffer_until_the_kernel_lets_go() {
    percore_runtime::run(async {
        let listener = TcpListener::from_std(util::std_listener());
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        // The peer never reads, so a large send stays in flight.
        let (peer, _) = listener.accept().await.unwrap();
        let dropped = Rc::new(Cell::new(false));
        let buf = Tracked(vec![7u8; 32 << 20], Rc::clone(&dropped));
        {
            let mut send = std::pin::pin!(client.write_zc(buf));
            let waker = futures_util::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(send.as_mut().poll(&mut cx).is_pending());
            percore_runtime::time::sleep(Duration::from_millis(20)).await;
            assert!(
                send.as_mut().poll(&mut cx).is_pending(),
                "the peer reads nothing"
            );
        }
        assert!(!dropped.get(), "the kernel may still read it: kept");
        drop(peer);
        drop(client);
        for _ in 0..500 {
            if dropped.get() {
                break;
            }
            percore_runtime::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(dropped.get(), "freed once the notification came");
    })
    .unwrap();
}

#[test]
fn a_socket_without_zero_copy_says_so_and_returns_the_buffer() {
    percore_runtime::run(async {
        let (a, _b) = UnixStream::pair().unwrap();
        let (res, buf) = a.write_zc(vec![1u8; 64]).await;
        let err = res.expect_err("AF_UNIX has no zero-copy send");
        assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP), "{err}");
        assert_eq!(buf, vec![1u8; 64]);
    })
    .unwrap();
}
