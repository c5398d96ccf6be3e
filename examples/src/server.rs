//! `--addr`/`--cores` flags and one `SO_REUSEPORT` listener per core.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use percore::net::tcp::ListenOptions;
use percore::net::TcpListener;

/// The flags of the server examples: `--addr 127.0.0.1:PORT --cores N`.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// Where to listen (port 0 picks a free one, printed at start).
    pub addr: SocketAddr,
    /// How many cores, one listener each.
    pub cores: usize,
}

impl Flags {
    /// Reads the flags from the command line; defaults: `127.0.0.1:<port>`, all cores.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unknown flag or a value that does not parse.
    pub fn parse(default_port: u16) -> io::Result<Flags> {
        let mut flags = Flags {
            addr: SocketAddr::from(([127, 0, 0, 1], default_port)),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().unwrap_or_default();
            let bad = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{flag} {value:?}: {what}"),
                )
            };
            match flag.as_str() {
                "--addr" => flags.addr = value.parse().map_err(|_| bad("not an address"))?,
                "--cores" => {
                    flags.cores = value.parse().map_err(|_| bad("not a number"))?;
                    if flags.cores == 0 {
                        return Err(bad("at least 1"));
                    }
                }
                _ => return Err(bad("usage: --addr IP:PORT --cores N")),
            }
        }
        Ok(flags)
    }
}

/// Binds one `SO_REUSEPORT` listener per core on `flags.addr` (the kernel
/// spreads connections across them), prints one line, and runs
/// `serve(core, listener)` on every core until the process is killed.
///
/// # Errors
///
/// Binding fails, or the runtime cannot start.
pub fn serve_per_core<F, Fut>(name: &str, flags: Flags, serve: F) -> io::Result<()>
where
    F: Fn(usize, TcpListener) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let options = ListenOptions::new().reuse_port(true).backlog(4096);
    let first = options.bind_tcp(flags.addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first.into_std()?];
    for _ in 1..flags.cores {
        listeners.push(options.bind_tcp(addr)?.into_std()?);
    }
    let listeners = Arc::new(Mutex::new(listeners));
    let runtime = percore::Runtime::builder().cores(flags.cores).build()?;
    println!("{name}: listening on {addr} ({} cores)", flags.cores);
    runtime.run_on_all(move |core| {
        let listener = listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let served = listener.map(|std| serve(core, TcpListener::from_std(std)));
        async move {
            if let Some(served) = served {
                served.await;
            }
        }
    })?;
    Ok(())
}
