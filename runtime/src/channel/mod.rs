//! Bounded channels between cores: values cross threads, each end stays on
//! whichever thread (or percore core) holds it.
//!
//! - [`spsc`]: one sender, one receiver; a lock-free ring buffer with each
//!   side's index on its own cache line, the fastest way to feed one core
//!   from another.
//! - [`mpsc`]: any number of senders (clone the [`mpsc::Sender`]), one
//!   receiver; a lock-free bounded queue that keeps each sender's order.
//! - [`mesh`]: every core of a runtime connected to every other by one
//!   `spsc` channel per ordered pair, a fair receive from all peers, and
//!   [`shard_of`](mesh::shard_of) to send a key to the core that owns it.
//!
//! Both ends are `Send` and work from any thread: a percore core, a plain
//! thread with any executor (`futures_executor::block_on`), or a thread that
//! only uses the `try_` methods. A full channel makes `send` wait
//! (backpressure) and an empty one makes `recv` wait; waking crosses threads
//! through the task's `Waker`, so a percore task parked on a channel is woken
//! through its core's remote queue. Errors give the unsent value back.
//!
//! Unlike [`crate::sync`], whose primitives are for tasks of one core and
//! use no atomics, these are built on atomics, and their interleavings are
//! model-checked with loom (`runtime/tests/loom_channel.rs` and
//! `loom_mpsc.rs`).
//!
//! # Closing
//!
//! Dropping every sender lets the receiver drain what was sent, then `recv`
//! returns `None`. Dropping (or [closing](spsc::Receiver::close)) the receiver
//! makes every later send fail with the value, and wakes waiting senders;
//! dropping it also drops the queued values. Values still in a channel when
//! both ends are gone are dropped with it, exactly once.
//!
//! # Examples
//!
//! A percore core produces, a plain thread consumes:
//!
//! ```
//! use percore_runtime::channel::spsc;
//!
//! let (mut tx, mut rx) = spsc::channel(4);
//! let consumer = std::thread::spawn(move || {
//!     futures_executor::block_on(async {
//!         let mut got = Vec::new();
//!         while let Some(word) = rx.recv().await {
//!             got.push(word);
//!         }
//!         got
//!     })
//! });
//! percore_runtime::run(async move {
//!     for word in ["one", "core", "to", "another", "thread"] {
//!         tx.send(word).await.expect("receiver is alive");
//!     }
//! })
//! .unwrap();
//! assert_eq!(consumer.join().unwrap(), ["one", "core", "to", "another", "thread"]);
//! ```

mod atomic_waker;
mod error;
pub mod mesh;
pub mod mpsc;
mod ring;
pub mod spsc;
mod waiters;

pub use error::{SendError, TryRecvError, TrySendError};
