//! A chat server whose room spans cores: every line a client sends reaches every
//! client, on whichever core its connection landed. The server is
//! `percore_examples::chat`; try it with `nc 127.0.0.1 7070` in two terminals.
//!
//! `cargo run -p percore-examples --example chat -- --addr 127.0.0.1:7070 --cores 2`

use std::io;
use std::sync::Arc;

use percore::channel::mesh::Mesh;
use percore::net::TcpListener;
use percore_examples::chat::{self, Line};
use percore_examples::server::{serve_per_core, Flags};

fn main() -> io::Result<()> {
    let flags = Flags::parse(7070)?;
    let mesh = Arc::new(Mesh::<Line>::new(flags.cores, 1024));
    // At a shutdown the chat connections (untracked) close when the server exits.
    serve_per_core(
        "chat",
        flags,
        move |core, listener: TcpListener, _connections| {
            let half = mesh.take(core);
            async move {
                if let Some(half) = half {
                    chat::serve(core, listener, half).await;
                }
            }
        },
    )
}
