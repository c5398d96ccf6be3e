//! The `chat` example's server: a room that spans cores. Every line a client
//! sends reaches every client, on whichever core its connection landed.
//!
//! Each core keeps its own clients; lines go to the other cores through the
//! runtime's mesh of cross-core channels. A client that does not read loses
//! lines (its queue is bounded) instead of growing the server's memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::StreamExt;
use percore::channel::mesh::{MeshHalf, MeshReceiver, MeshSender};
use percore::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use percore::net::{TcpListener, TcpStream};
use percore::sync::mpsc;

/// Longest line relayed; a longer one is cut.
const MAX_LINE: usize = 1024;
/// Lines queued for one client before it starts missing some.
const CLIENT_QUEUE: usize = 256;

/// A line, shared by every client (and core) it goes to.
pub type Line = Arc<str>;

/// The clients of this core, by id: each has a bounded queue its writer drains.
#[derive(Default)]
struct Room {
    next_id: u64,
    clients: HashMap<u64, mpsc::Sender<Line>>,
}

impl Room {
    /// Gives `line` to every local client; a client whose queue is full misses it.
    fn deliver(&mut self, line: &Line) {
        self.clients.retain(|_, queue| {
            !matches!(
                queue.try_send(line.clone()),
                Err(mpsc::TrySendError::Closed(_))
            )
        });
    }
}

/// Relays lines said on this core to the other cores, and delivers locally.
async fn relay_out(
    room: Rc<RefCell<Room>>,
    mut said: mpsc::Receiver<Line>,
    mut peers: MeshSender<Line>,
) {
    while let Some(line) = said.recv().await {
        room.borrow_mut().deliver(&line);
        let cores: Vec<usize> = (0..peers.cores()).filter(|&c| c != peers.core()).collect();
        for core in cores {
            // Waits while that core's channel is full: backpressure across cores.
            let _ = peers.send_to(core, line.clone()).await;
        }
    }
}

/// Delivers lines said on other cores to this core's clients.
async fn relay_in(room: Rc<RefCell<Room>>, mut from_peers: MeshReceiver<Line>) {
    while let Some((_core, line)) = from_peers.recv().await {
        room.borrow_mut().deliver(&line);
    }
}

/// Reads lines from a client and says them, until it leaves.
async fn read_lines(read: OwnedReadHalf, name: String, say: mpsc::Sender<Line>) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (res, back) = read.read(buf).await;
        buf = back;
        if res? == 0 {
            return Ok(());
        }
        for &byte in &buf {
            if byte == b'\n' {
                let text = String::from_utf8_lossy(&pending);
                let line: Line = format!("{name}: {}\n", text.trim_end()).into();
                pending.clear();
                if say.send(line).await.is_err() {
                    return Ok(());
                }
            } else if pending.len() < MAX_LINE {
                pending.push(byte);
            }
        }
    }
}

/// Writes the client's queued lines to it, all that are queued in one write.
async fn write_lines(write: OwnedWriteHalf, mut queue: mpsc::Receiver<Line>) -> io::Result<()> {
    let mut out = Vec::with_capacity(4096);
    while let Some(line) = queue.recv().await {
        out.clear();
        out.extend_from_slice(line.as_bytes());
        while let Ok(line) = queue.try_recv() {
            out.extend_from_slice(line.as_bytes());
        }
        let (res, back) = write.write_all(out).await;
        res?;
        out = back;
    }
    Ok(())
}

async fn join(stream: TcpStream, core: usize, room: Rc<RefCell<Room>>, say: mpsc::Sender<Line>) {
    let (queue_tx, queue_rx) = mpsc::channel(CLIENT_QUEUE);
    let id = {
        let mut room = room.borrow_mut();
        room.next_id += 1;
        let id = room.next_id;
        room.clients.insert(id, queue_tx);
        id
    };
    let name = format!("core{core}#{id}");
    let (read, write) = stream.into_split();
    let writer = percore::spawn(write_lines(write, queue_rx));
    let _ = say.send(format!("* {name} joined\n").into()).await;
    let _ = read_lines(read, name.clone(), say.clone()).await;
    room.borrow_mut().clients.remove(&id);
    writer.abort();
    let _ = say.send(format!("* {name} left\n").into()).await;
}

/// Runs this core's part of the room: accepts on `listener`, and exchanges
/// lines with the other cores through `mesh` (this core's half).
pub async fn serve(core: usize, listener: TcpListener, mesh: MeshHalf<Line>) {
    let (peers_tx, peers_rx) = mesh.split();
    let room = Rc::new(RefCell::new(Room::default()));
    let (say, said) = mpsc::channel(1024);
    drop(percore::spawn(relay_out(room.clone(), said, peers_tx)));
    drop(percore::spawn(relay_in(room.clone(), peers_rx)));
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        if let Ok(stream) = next {
            drop(percore::spawn(join(
                stream,
                core,
                room.clone(),
                say.clone(),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::SocketAddr;
    use std::time::Duration;

    use percore::channel::mesh::Mesh;

    use super::*;

    #[test]
    fn a_line_said_on_one_core_reaches_clients_on_the_other() {
        let runtime = percore::Runtime::builder().cores(2).build().unwrap();
        let mesh = Mesh::<Line>::new(2, 64);
        let mut addrs = Vec::new();
        for core in 0..2 {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            let listener = TcpListener::bind(any).unwrap();
            addrs.push(listener.local_addr().unwrap());
            let listener = listener.into_std().unwrap();
            let half = mesh.take(core).unwrap();
            let _server = runtime
                .spawn_on(core, move || {
                    serve(core, TcpListener::from_std(listener), half)
                })
                .unwrap();
        }
        let connect = |addr| {
            let stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            BufReader::new(stream)
        };
        let mut on_core0 = connect(addrs[0]);
        let mut on_core1 = connect(addrs[1]);
        // Wait until each room knows its client: each reads its own "joined".
        let mut line = String::new();
        for client in [&mut on_core0, &mut on_core1] {
            loop {
                line.clear();
                client.read_line(&mut line).unwrap();
                if line.contains("joined") && line.contains("#1") {
                    break;
                }
            }
        }
        on_core0
            .get_mut()
            .write_all(b"hello from core 0\n")
            .unwrap();
        loop {
            line.clear();
            assert!(on_core1.read_line(&mut line).unwrap() > 0, "closed");
            if line.contains("hello from core 0") {
                break;
            }
        }
        assert!(line.starts_with("core0#1: "), "{line}");
    }
}
