//! Signals as async events: [`ctrl_c`] and [`unix::signal`], with tokio's
//! names and shapes.
//!
//! No user code runs in signal context. The first listener of a signal
//! installs percore's handler for it, for the rest of the process; the
//! handler counts the delivery and rings an eventfd of every core that
//! listens. On each such core a task waits on its eventfd (a poll op, on
//! either driver backend) and wakes the core's listeners, which compare the
//! count with the last one they saw. So any number of listeners, on any
//! number of cores, each see every signal — several deliveries between two
//! `recv`s count as one, as with tokio.
//!
//! Once a signal has a listener, its default action (ending the process, for
//! `SIGINT` and `SIGTERM`) no longer happens, even after every listener is
//! gone: the process decides what the signal means from then on.
//!
//! ```no_run
//! # percore_runtime::run(async {
//! use percore_runtime::signal::unix::{signal, SignalKind};
//!
//! let mut terminate = signal(SignalKind::terminate())?;
//! terminate.recv().await;
//! println!("SIGTERM: shutting down");
//! # std::io::Result::Ok(()) }).unwrap().unwrap();
//! ```

mod core;
mod registry;
pub mod unix;

use std::io;

/// Completes at the next `SIGINT` (Ctrl-C in a terminal) after the call.
///
/// The first call installs the handler: from then on `SIGINT` no longer ends
/// the process by itself (see the [module docs](self)).
///
/// # Errors
///
/// The handler cannot be installed (`sigaction(2)` failed).
///
/// # Panics
///
/// Awaited outside a percore runtime.
///
/// # Examples
///
/// ```no_run
/// # percore_runtime::run(async {
/// percore_runtime::signal::ctrl_c().await?;
/// println!("Ctrl-C: bye");
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut interrupt = unix::signal(unix::SignalKind::interrupt())?;
    interrupt.recv().await;
    Ok(())
}
