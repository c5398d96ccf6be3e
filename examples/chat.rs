//! A chat server whose rooms span cores: every line a client sends reaches every
//! client, on whichever core its connection landed.
//!
//! Each core has its clients and one `SO_REUSEPORT` listener; lines go to the
//! other cores through the runtime's mesh of cross-core channels. A client that
//! does not read loses lines (its queue is bounded) instead of growing the
//! server's memory. Try it with `nc 127.0.0.1 7070` in two terminals.
//!
//! `cargo run -p percore-examples --example chat -- --addr 127.0.0.1:7070 --cores 2`

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::StreamExt;
use percore::channel::mesh::{Mesh, MeshReceiver, MeshSender};
use percore::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use percore::net::{TcpListener, TcpStream};
use percore::sync::mpsc;
use percore_examples::server::{serve_per_core, Flags};

/// Longest line relayed; a longer one is cut.
const MAX_LINE: usize = 1024;
/// Lines queued for one client before it starts missing some.
const CLIENT_QUEUE: usize = 256;

/// A line, shared by every client (and core) it goes to.
type Line = Arc<str>;

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

fn main() -> io::Result<()> {
    let flags = Flags::parse(7070)?;
    let mesh = Arc::new(Mesh::<Line>::new(flags.cores, 1024));
    serve_per_core("chat", flags, move |core, listener: TcpListener| {
        let half = mesh.take(core);
        async move {
            let Some(half) = half else { return };
            let (peers_tx, peers_rx) = half.split();
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
    })
}
