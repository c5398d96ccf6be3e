//! Zero-downtime restart: a new process takes the listening socket over from
//! the running one (over a Unix socket, `SCM_RIGHTS`), and not one connect is
//! refused in between. The protocol is `percore_examples::handoff`.
//!
//! Start a server, then start the same command again in another terminal:
//! the second takes the port over and the first exits once its connections
//! are done. Meanwhile, `while true; do echo hi | nc -q1 127.0.0.1 7000; done`
//! sees each answer come from one process or the other, and never a refusal.
//!
//! `cargo run -p percore-examples --example handoff -- --addr 127.0.0.1:7000 --control /tmp/percore-handoff.sock`

use std::io;
use std::path::PathBuf;

use percore::net::TcpListener;
use percore_examples::handoff;

fn main() -> io::Result<()> {
    let mut addr = String::from("127.0.0.1:7000");
    let mut control = PathBuf::from("/tmp/percore-handoff.sock");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--control", Some(value)) => control = value.into(),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{flag}: usage: --addr HOST:PORT --control PATH"),
                ))
            }
        }
    }
    let name = format!("pid {}", std::process::id());
    percore::run(async move {
        match handoff::take_over(&control).await {
            Ok((listeners, old)) => {
                eprintln!("handoff: {name} took {} listener(s) over", listeners.len());
                handoff::serve(listeners, &control, &name, Some(old)).await?;
            }
            // No server runs there: start afresh.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                let listener = TcpListener::bind(addr.as_str())?;
                eprintln!("handoff: {name} serving on {}", listener.local_addr()?);
                handoff::serve(vec![listener], &control, &name, None).await?;
            }
            Err(err) => return Err(err),
        }
        eprintln!("handoff: {name} handed over and finished its connections");
        Ok(())
    })?
}
