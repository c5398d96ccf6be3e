//! Helpers shared by the net integration tests.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;

use percore_net::{TcpListener, TcpStream};

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// A listener on 127.0.0.1 with a free port, as a std socket (`Send`) to hand to a core.
pub fn std_listener() -> std::net::TcpListener {
    let listener = percore_net::tcp::ListenOptions::new()
        .backlog(4096)
        .bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    listener.into_std().expect("into_std")
}

/// Echoes everything it reads until end of stream, then shuts down its write side.
pub async fn echo(stream: TcpStream) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut total = 0;
    loop {
        buf.clear();
        let (res, back) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            stream.shutdown(std::net::Shutdown::Write).await?;
            return Ok(total);
        }
        let (res, back) = stream.write_all(back).await;
        res?;
        buf = back;
        total += n as u64;
    }
}

/// Serves [`echo`] to every connection of `listener`, forever.
pub async fn echo_server(listener: TcpListener) {
    use futures_util::StreamExt;
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        if let Ok(stream) = stream {
            drop(percore_runtime::spawn(echo(stream)));
        }
    }
}
