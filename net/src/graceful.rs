//! Graceful shutdown for a core's connections: [`Connections`].
//!
//! A [`Shutdown`] says *when* a server stops; `Connections` is how a core's
//! connection tasks learn it without a cost per request. A task
//! [`track`](Connections::track)s its stream; at the shutdown,
//! [`finish`](Connections::finish) shuts the reading side of every tracked
//! stream (`shutdown(2)` with `SHUT_RD`): a pending read returns what was
//! already received, then end of stream, so the task answers what it has and
//! ends by itself — no read is cancelled and no received byte is lost, and
//! the connection closes with a FIN rather than a reset. A task that does
//! not read to the end of its stream (hyper's connection loop) awaits
//! [`finishing`](Connections::finishing) instead.
//!
//! ```
//! use percore_net::graceful::Connections;
//! use percore_net::{TcpListener, TcpStream};
//! use percore_runtime::shutdown::Shutdown;
//!
//! percore_runtime::run(async {
//!     let shutdown = Shutdown::new();
//!     let connections = Connections::new(&shutdown);
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let client = TcpStream::connect(listener.local_addr()?).await?;
//!     let (stream, _) = listener.accept().await?;
//!     let stream = connections.track(stream);
//!     // An echo connection: it ends at end of stream.
//!     let task = percore_runtime::spawn(async move {
//!         loop {
//!             let (res, buf) = stream.read(Vec::with_capacity(64)).await;
//!             if res? == 0 {
//!                 return std::io::Result::Ok(());
//!             }
//!             stream.write_all(buf).await.0?;
//!         }
//!     });
//!     // The server shuts down: the connection finishes by itself.
//!     drop(listener);
//!     shutdown.begin();
//!     connections.finish().await;
//!     shutdown.drained().await;
//!     task.await.expect("no panic")?;
//!     let (res, _) = client.read(Vec::with_capacity(8)).await;
//!     assert_eq!(res?, 0, "FIN");
//!     std::io::Result::Ok(())
//! })
//! .unwrap()
//! .unwrap();
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::{Rc, Weak};

use percore_runtime::shutdown::{Guard, Shutdown};
use percore_runtime::sync::Event;

use crate::TcpStream;

/// One core's connections of a server, so that its [`Shutdown`] can tell
/// each to finish (see the [module docs](self)). Cheap to clone; `!Send`:
/// one per core.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shutdown: Shutdown,
    finishing: Event,
    next_key: Cell<u64>,
    live: RefCell<HashMap<u64, Weak<TcpStream>>>,
}

impl Connections {
    /// A core's connections of `shutdown`'s server.
    pub fn new(shutdown: &Shutdown) -> Connections {
        Connections {
            inner: Rc::new(Inner {
                shutdown: shutdown.clone(),
                finishing: Event::new(),
                next_key: Cell::new(0),
                live: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// Tracks `stream` until the returned handle is dropped; the server's
    /// shutdown waits for it.
    pub fn track(&self, stream: TcpStream) -> Tracked {
        let stream = Rc::new(stream);
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        self.inner
            .live
            .borrow_mut()
            .insert(key, Rc::downgrade(&stream));
        Tracked {
            stream,
            key,
            connections: Rc::clone(&self.inner),
            _guard: self.inner.shutdown.guard(),
        }
    }

    /// A guard of the server's shutdown, for a connection that is not
    /// tracked (it waits for [`finishing`](Connections::finishing)).
    pub fn guard(&self) -> Guard {
        self.inner.shutdown.guard()
    }

    /// Whether the shutdown has begun: answer what is in hand, then close.
    pub fn is_finishing(&self) -> bool {
        self.inner.finishing.is_set()
    }

    /// Completes once the connections are told to finish.
    pub async fn finishing(&self) {
        self.inner.finishing.wait().await;
    }

    /// Tells every connection to finish: sets
    /// [`is_finishing`](Connections::is_finishing) and shuts the reading
    /// side of every tracked stream.
    pub async fn finish(&self) {
        self.inner.finishing.set();
        let live: Vec<Rc<TcpStream>> = self
            .inner
            .live
            .borrow()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        // All at once: one ring round trip for every connection, not one each.
        // (A stream already closed by its peer has nothing left to stop.)
        let shut = live
            .iter()
            .map(|stream| stream.shutdown(std::net::Shutdown::Read));
        futures_util::future::join_all(shut).await;
    }

    /// Tracked connections still open.
    pub fn live(&self) -> usize {
        self.inner.live.borrow().len()
    }
}

/// A tracked connection's stream (see [`Connections::track`]).
#[derive(Debug)]
pub struct Tracked {
    stream: Rc<TcpStream>,
    key: u64,
    connections: Rc<Inner>,
    _guard: Guard,
}

impl Tracked {
    /// The stream back, no longer tracked (the server's shutdown stops
    /// waiting for it): to hand it to another core
    /// ([`TcpStream::rehome`]), whose server tracks it again.
    ///
    /// # Errors
    ///
    /// Gives it back while the shutdown holds the stream to shut it down.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::graceful::Connections;
    /// use percore_net::{TcpListener, TcpStream};
    /// use percore_runtime::shutdown::Shutdown;
    ///
    /// percore_runtime::run(async {
    ///     let shutdown = Shutdown::new();
    ///     let connections = Connections::new(&shutdown);
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (stream, _) = listener.accept().await?;
    ///     let tracked = connections.track(stream);
    ///     assert_eq!((connections.live(), shutdown.active()), (1, 1));
    ///     let Ok(stream) = tracked.untrack() else {
    ///         panic!("nothing else holds it");
    ///     };
    ///     // No longer counted, and the connection is as it was.
    ///     assert_eq!((connections.live(), shutdown.active()), (0, 0));
    ///     stream.write_all(b"still open".to_vec()).await.0?;
    ///     let (n, buf) = client.read(Vec::with_capacity(16)).await;
    ///     assert_eq!(&buf[..n?], b"still open");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn untrack(self) -> Result<TcpStream, Tracked> {
        if Rc::strong_count(&self.stream) != 1 {
            return Err(self);
        }
        let stream = Rc::clone(&self.stream);
        // Untracks it and releases its guard.
        drop(self);
        match Rc::into_inner(stream) {
            Some(stream) => Ok(stream),
            // Checked above, and nothing ran since on this single thread.
            None => unreachable!("a tracked stream is held by its handle alone"),
        }
    }
}

impl Deref for Tracked {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.connections.live.borrow_mut().remove(&self.key);
    }
}
