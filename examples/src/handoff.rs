//! Zero-downtime restart: the running server hands its listening sockets to
//! the process that replaces it, over a Unix socket (`SCM_RIGHTS`).
//!
//! Each generation serves a small echo ("`<name>: <what you sent>`") and
//! listens on a control socket. The next generation connects there and
//! receives the listening sockets ([`UnixStream::read_with_fds`]), starts
//! accepting on them and says so; the old one then stops accepting, finishes
//! the connections it has and returns. The listening socket is never closed
//! in between — for a moment both processes hold it — so a client connecting
//! throughout is never refused: a connection that arrives meanwhile waits in
//! the socket's backlog for whichever process accepts it first.
//!
//! Stopping an accept that is in flight would cancel it, and a connection
//! the kernel accepted just before the cancel took effect would be reset.
//! So the old server stops its accept loops the polite way: it sets a flag
//! and connects to its own listeners until each loop has taken a connection
//! and seen the flag. (The new server may get some of those connections: it
//! echoes nothing to them, since they close at once.)

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use percore::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The byte the listeners travel with.
const LISTENERS: &[u8] = b"L";
/// The new server's answer: it is accepting.
const ACCEPTING: &[u8] = b"A";
/// The most listeners one handoff carries.
const MAX_LISTENERS: usize = 64;

/// Takes the listening sockets over from the server whose control socket is
/// at `control`. Pass the stream to [`serve`], which tells the old server to
/// stop once this one accepts.
///
/// # Errors
///
/// Connecting to `control` (`ENOENT`, `ECONNREFUSED`: no server runs there),
/// or a peer that sends no listener.
pub async fn take_over(control: &Path) -> io::Result<(Vec<TcpListener>, UnixStream)> {
    let old = UnixStream::connect(control).await?;
    let (res, _) = old
        .read_with_fds(Vec::with_capacity(1), MAX_LISTENERS)
        .await;
    let (n, fds) = res?;
    if n == 0 || fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: the old server sent no listener", control.display()),
        ));
    }
    let listeners = fds
        .into_iter()
        .map(|fd| TcpListener::from_std(std::net::TcpListener::from(fd)))
        .collect();
    Ok((listeners, old))
}

/// Serves on `listeners` as `name` until a successor takes them over through
/// the control socket bound at `control`; then stops accepting, finishes the
/// connections in flight and returns. `predecessor` is the stream from
/// [`take_over`], if this server took over from another: it is told to stop
/// once this one accepts.
///
/// # Errors
///
/// Binding `control`, or telling the predecessor to stop.
pub async fn serve(
    listeners: Vec<TcpListener>,
    control: &Path,
    name: &str,
    predecessor: Option<UnixStream>,
) -> io::Result<()> {
    let name: Rc<str> = name.into();
    let stop = Rc::new(Cell::new(false));
    let live = Rc::new(Cell::new(0usize));
    let listeners: Vec<Rc<TcpListener>> = listeners.into_iter().map(Rc::new).collect();
    let acceptors: Vec<_> = listeners
        .iter()
        .map(|listener| {
            percore::spawn(accept_loop(
                listener.clone(),
                stop.clone(),
                live.clone(),
                name.clone(),
            ))
        })
        .collect();
    // The control socket for the next generation, in place of the old one's.
    let _ = std::fs::remove_file(control);
    let control = UnixListener::bind(control)?;
    if let Some(old) = predecessor {
        let (res, _) = old.write_all(ACCEPTING.to_vec()).await;
        res?;
    }
    let _successor = hand_off(&control, &listeners).await?;
    // Stop accepting: each loop ends after the accept it is in.
    stop.set(true);
    for (listener, acceptor) in listeners.iter().zip(acceptors) {
        let addr = listener.local_addr()?;
        for _ in 0..1000 {
            if acceptor.is_finished() {
                break;
            }
            drop(TcpStream::connect(addr).await);
            percore::time::sleep(Duration::from_millis(1)).await;
        }
        // Only if the successor took every wake-up for a second.
        acceptor.abort();
    }
    // Finish the connections in flight.
    while live.get() > 0 {
        percore::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Waits for a successor on `control`, sends it `listeners`, and returns
/// once it says it accepts. One that fails on the way is skipped.
async fn hand_off(control: &UnixListener, listeners: &[Rc<TcpListener>]) -> io::Result<UnixStream> {
    loop {
        let (next, _) = control.accept().await?;
        let fds: Vec<BorrowedFd<'_>> = listeners.iter().map(|l| l.as_fd()).collect();
        let (res, _) = next.write_with_fds(LISTENERS.to_vec(), &fds).await;
        if let Err(err) = res {
            eprintln!("handoff: sending the listeners: {err}");
            continue;
        }
        let (res, answer) = next.read(Vec::with_capacity(1)).await;
        match res {
            Ok(1) if answer == ACCEPTING => return Ok(next),
            other => eprintln!("handoff: the successor did not take over ({other:?}); serving on"),
        }
    }
}

async fn accept_loop(
    listener: Rc<TcpListener>,
    stop: Rc<Cell<bool>>,
    live: Rc<Cell<usize>>,
    name: Rc<str>,
) {
    while !stop.get() {
        match listener.accept().await {
            Ok((stream, _)) => {
                live.set(live.get() + 1);
                let (live, name) = (live.clone(), name.clone());
                drop(percore::spawn(async move {
                    let _ = echo(stream, &name).await;
                    live.set(live.get() - 1);
                }));
            }
            // Out of fds, say: the connection stays queued; try again soon.
            Err(err) => {
                eprintln!("handoff: accept: {err}");
                percore::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Answers each read with `name: ` and what was read, until end of stream.
async fn echo(stream: TcpStream, name: &str) -> io::Result<()> {
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
        if res? == 0 {
            return Ok(());
        }
        let mut reply = format!("{name}: ").into_bytes();
        reply.extend_from_slice(&buf);
        let (res, _) = stream.write_all(reply).await;
        res?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Instant;

    use super::*;

    fn control_path() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("percore-handoff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("control.sock")
    }

    /// One request: connect, send a line, read the answer; which server
    /// answered. A refused connect is `Err(refused)`.
    fn request(addr: SocketAddr) -> Result<String, io::Error> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"ping\n")?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    }

    /// Two generations, each on its own runtime (as two processes would be):
    /// the old serves, the new takes its listener over mid-stream, a third
    /// takeover ends the new one. A client connecting in a loop throughout
    /// is never refused, and every request is answered.
    #[test]
    fn a_client_connecting_throughout_a_handoff_is_never_refused() {
        let control = control_path();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let old = {
            let control = control.clone();
            thread::spawn(move || {
                percore::run(async move {
                    let listener = TcpListener::from_std(listener);
                    serve(vec![listener], &control, "old", None).await
                })
                .unwrap()
            })
        };
        let client_done = Arc::new(AtomicBool::new(false));
        let client = {
            let done = client_done.clone();
            thread::spawn(move || {
                let (mut answers, mut refused, mut failed) = (Vec::new(), 0, Vec::new());
                while !done.load(Ordering::Relaxed) {
                    match request(addr) {
                        Ok(line) => answers.push(line),
                        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => refused += 1,
                        Err(err) => failed.push(err.to_string()),
                    }
                }
                (answers, refused, failed)
            })
        };
        // Let the old one serve a while, then take over.
        thread::sleep(Duration::from_millis(100));
        while !control.exists() {
            thread::sleep(Duration::from_millis(1));
        }
        let new = {
            let control = control.clone();
            thread::spawn(move || {
                percore::run(async move {
                    let (listeners, old) = take_over(&control).await?;
                    serve(listeners, &control, "new", Some(old)).await
                })
                .unwrap()
            })
        };
        let started = Instant::now();
        old.join().unwrap().unwrap();
        eprintln!(
            "handoff: the old server finished {:?} after the takeover began",
            started.elapsed()
        );
        thread::sleep(Duration::from_millis(100));
        client_done.store(true, Ordering::Relaxed);
        let (answers, refused, failed) = client.join().unwrap();
        // End the new one the same way: a last takeover that keeps the
        // listener only to close it.
        percore::run({
            let control = control.clone();
            async move {
                let (listeners, old) = take_over(&control).await.unwrap();
                let (res, _) = old.write_all(ACCEPTING.to_vec()).await;
                res.unwrap();
                drop(listeners);
            }
        })
        .unwrap();
        new.join().unwrap().unwrap();

        let by = |name: &str| answers.iter().filter(|l| l.starts_with(name)).count();
        eprintln!(
            "handoff: {} answers ({} by old, {} by new), {refused} refused, {} failed",
            answers.len(),
            by("old: "),
            by("new: "),
            failed.len()
        );
        assert_eq!(refused, 0, "connects refused during the handoff");
        assert!(failed.is_empty(), "requests that failed: {failed:?}");
        assert!(
            answers.iter().all(|l| l.ends_with(": ping\n")),
            "{answers:?}"
        );
        assert!(
            by("old: ") > 0 && by("new: ") > 0,
            "both generations served"
        );
        // The new generation answered the last requests.
        assert!(answers.last().unwrap().starts_with("new: "));
    }
}
