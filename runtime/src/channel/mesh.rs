//! A full mesh of [`spsc`] channels between the cores of a runtime, and
//! key sharding over it.
//!
//! [`Mesh::new`] builds, once and outside the cores, one bounded channel per
//! ordered pair of distinct cores: `n·(n−1)` channels, each with its own
//! backpressure. Each core then [takes](Mesh::take) its [`MeshHalf`] — the
//! senders to every other core and the receivers from them — which is `Send`
//! and is moved to its core, typically in the closure of
//! [`Runtime::run_on_all`](crate::Runtime::run_on_all). [`MeshHalf::recv`]
//! takes from every peer in turn (round-robin), parking one waker on every
//! empty channel, so a waiting core costs nothing until a peer sends.
//!
//! # Sending to oneself
//!
//! A core sends to itself through a local queue inside its half, not a
//! channel: [`send_to`](MeshHalf::send_to) its own index never waits and is
//! not bounded by the capacity (the half is both ends, so waiting for itself
//! to receive could never end), and [`recv`](MeshHalf::recv) takes those
//! values in the core's own turn of the round-robin. After
//! [`split`](MeshHalf::split), sender and receiver may live in different
//! tasks, so self-sends go through a bounded channel like any other pair.
//!
//! # Deadlock
//!
//! Channels are bounded: two cores that only send to each other stop once
//! both channels are full. A core that sends and receives a lot at once
//! should [`split`](MeshHalf::split) its half and receive in another task.
//!
//! # Examples
//!
//! Each of two cores sends its index to the other and receives one value:
//!
//! ```
//! use percore_runtime::channel::mesh::Mesh;
//! use percore_runtime::Runtime;
//!
//! let runtime = Runtime::builder().cores(2).build().unwrap();
//! let mesh = Mesh::new(runtime.cores(), 16);
//! let got = runtime
//!     .run_on_all(move |core| {
//!         let mut half = mesh.take(core).expect("each core takes its half once");
//!         async move {
//!             let other = 1 - core;
//!             half.send_to(other, core).await.expect("the other half is alive");
//!             half.recv().await
//!         }
//!     })
//!     .unwrap();
//! // (from, value): core 0 got 1 from core 1, core 1 got 0 from core 0.
//! assert_eq!(got, [Some((1, 1)), Some((0, 0))]);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::spsc::{self, Receiver, Sender};
use super::{SendError, TryRecvError, TrySendError};

/// The core that owns `key` among `cores` cores: stable for a key, spread
/// evenly over keys.
///
/// The key is hashed with `std`'s [`DefaultHasher::new`] (SipHash with fixed
/// keys, so no per-process randomness), and the 64-bit hash is mapped to
/// `0..cores` by its high bits. The same key gives the same core in every
/// process built with the same Rust version for the same target; `std` does
/// not promise the hash across Rust versions, so do not persist the result.
///
/// # Panics
///
/// If `cores` is 0.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::mesh::shard_of;
///
/// let core = shard_of("user:42", 4);
/// assert!(core < 4);
/// assert_eq!(shard_of("user:42", 4), core);
/// ```
pub fn shard_of<K: Hash + ?Sized>(key: &K, cores: usize) -> usize {
    assert!(cores > 0, "shard_of needs at least one core");
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // Multiply-high: uses every bit of the hash, no modulo bias to speak of.
    ((u128::from(hasher.finish()) * cores as u128) >> 64) as usize
}

/// Every core's [`MeshHalf`], until each is [taken](Mesh::take); `Send` and
/// `Sync`, to share with the closure of
/// [`run_on_all`](crate::Runtime::run_on_all).
///
/// Halves never taken keep their channels open (a peer's
/// [`recv`](MeshHalf::recv) waits for them) until the `Mesh` is dropped.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::mesh::Mesh;
///
/// let mesh = Mesh::<u32>::new(3, 8);
/// assert_eq!(mesh.cores(), 3);
/// let half = mesh.take(2).unwrap();
/// assert_eq!((half.core(), half.peers().collect::<Vec<_>>()), (2, vec![0, 1]));
/// assert!(mesh.take(2).is_none(), "a half is taken once");
/// ```
pub struct Mesh<T> {
    halves: Mutex<Vec<Option<MeshHalf<T>>>>,
    cores: usize,
}

impl<T> Mesh<T> {
    /// Connects `cores` cores, each to every other, with channels holding at
    /// least `capacity` values each (rounded up to a power of two).
    ///
    /// # Panics
    ///
    /// If `cores` or `capacity` is 0.
    pub fn new(cores: usize, capacity: usize) -> Mesh<T> {
        assert!(cores > 0, "a Mesh needs at least one core");
        assert!(capacity > 0, "Mesh capacity must be at least 1");
        let mut halves: Vec<MeshHalf<T>> = (0..cores)
            .map(|core| MeshHalf::empty(core, cores, capacity))
            .collect();
        for from in 0..cores {
            for to in (0..cores).filter(|&to| to != from) {
                let (tx, rx) = spsc::channel(capacity);
                halves[from].sender.tx[to] = Some(tx);
                halves[to].receiver.rx[from] = Some(rx);
            }
        }
        Mesh {
            halves: Mutex::new(halves.into_iter().map(Some).collect()),
            cores,
        }
    }

    /// Takes core `core`'s half; `None` if it was taken already or `core`
    /// is not below [`cores`](Self::cores).
    pub fn take(&self, core: usize) -> Option<MeshHalf<T>> {
        // Only ever locked here, at setup; a panic cannot happen under it.
        let mut halves = self.halves.lock().unwrap_or_else(|p| p.into_inner());
        halves.get_mut(core)?.take()
    }

    /// Number of cores the mesh connects.
    pub fn cores(&self) -> usize {
        self.cores
    }
}

impl<T> fmt::Debug for Mesh<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("cores", &self.cores)
            .finish_non_exhaustive()
    }
}

/// One core's end of a [`Mesh`]: sends to any core, receives from all of
/// them as `(from, value)`. `Send`; a [`Stream`] of what it receives.
///
/// Dropping it closes its channels: peers' sends to this core fail with the
/// value, and peers receive what it sent, then (once every half is gone)
/// `None`.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::mesh::Mesh;
///
/// let mesh = Mesh::new(2, 4);
/// let (mut a, mut b) = (mesh.take(0).unwrap(), mesh.take(1).unwrap());
/// a.try_send_to(1, "hi").unwrap();
/// a.try_send_to(0, "me").unwrap(); // to itself: a local queue
/// drop(a);
/// percore_runtime::run(async move {
///     assert_eq!(b.recv().await, Some((0, "hi")));
///     assert_eq!(b.recv().await, None, "core 0 is gone and all was received");
/// })
/// .unwrap();
/// ```
pub struct MeshHalf<T> {
    sender: MeshSender<T>,
    receiver: MeshReceiver<T>,
}

impl<T> MeshHalf<T> {
    fn empty(core: usize, cores: usize, capacity: usize) -> MeshHalf<T> {
        MeshHalf {
            sender: MeshSender {
                core,
                tx: (0..cores).map(|_| None).collect(),
                capacity,
            },
            receiver: MeshReceiver {
                core,
                rx: (0..cores).map(|_| None).collect(),
                local: VecDeque::new(),
                next: 0,
            },
        }
    }

    /// This half's core index.
    pub fn core(&self) -> usize {
        self.sender.core
    }

    /// Number of cores in the mesh.
    pub fn cores(&self) -> usize {
        self.sender.tx.len()
    }

    /// The other cores' indices, in order.
    pub fn peers(&self) -> impl Iterator<Item = usize> {
        let core = self.core();
        (0..self.cores()).filter(move |&other| other != core)
    }

    /// Sends `value` to core `core`, waiting while that channel is full; to
    /// this half's own core it is queued locally and never waits.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if that core's half was dropped.
    ///
    /// # Panics
    ///
    /// If `core` is not below [`cores`](Self::cores).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future before it completes drops the
    /// value unsent. [`try_send_to`](Self::try_send_to) keeps it.
    pub async fn send_to(&mut self, core: usize, value: T) -> Result<(), SendError<T>> {
        if core == self.core() {
            self.receiver.local.push_back(value);
            return Ok(());
        }
        self.sender.send_to(core, value).await
    }

    /// Sends `value` to core `core` if there is room right now (always, for
    /// this half's own core).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    ///
    /// # Panics
    ///
    /// If `core` is not below [`cores`](Self::cores).
    pub fn try_send_to(&mut self, core: usize, value: T) -> Result<(), TrySendError<T>> {
        if core == self.core() {
            self.receiver.local.push_back(value);
            return Ok(());
        }
        self.sender.try_send_to(core, value)
    }

    /// Sends `value` to the core that owns `key`, [`shard_of(key)`](shard_of);
    /// as [`send_to`](Self::send_to).
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::mesh::{shard_of, Mesh};
    ///
    /// let mesh = Mesh::new(2, 4);
    /// let (mut a, mut b) = (mesh.take(0).unwrap(), mesh.take(1).unwrap());
    /// percore_runtime::run(a.send_to_owner("apple", 1)).unwrap().unwrap();
    /// let owner = if shard_of("apple", 2) == 0 { &mut a } else { &mut b };
    /// assert_eq!(owner.try_recv(), Ok((0, 1)));
    /// ```
    pub async fn send_to_owner<K: Hash + ?Sized>(
        &mut self,
        key: &K,
        value: T,
    ) -> Result<(), SendError<T>> {
        let owner = shard_of(key, self.cores());
        self.send_to(owner, value).await
    }

    /// Receives the next `(from, value)`, taking from each core in turn;
    /// waits while nothing is queued. `None` once every other half is
    /// dropped and everything was received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no value.
    pub fn recv(&mut self) -> Recv<'_, T> {
        self.receiver.recv()
    }

    /// Receives the next `(from, value)` if one is queued right now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is queued; [`TryRecvError::Disconnected`]
    /// if nothing is queued and every other half is gone.
    pub fn try_recv(&mut self) -> Result<(usize, T), TryRecvError> {
        self.receiver.try_recv()
    }

    /// Polls for the next `(from, value)`: the body of [`Recv`] and of the
    /// [`Stream`] impl. Registers `cx`'s waker on every empty channel.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, T)>> {
        self.receiver.poll_recv(cx)
    }

    /// Splits this half so that one task can send while another receives.
    ///
    /// Values this half queued for itself stay first in line for the
    /// receiver; from now on, sends to the own core go through a bounded
    /// channel, and the receiver's `recv` returns `None` only once the sender
    /// is dropped too.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::mesh::Mesh;
    ///
    /// let mesh = Mesh::new(1, 4);
    /// let (mut tx, mut rx) = mesh.take(0).unwrap().split();
    /// percore_runtime::run(async move {
    ///     let sending = percore_runtime::spawn(async move {
    ///         for i in 0..10 {
    ///             tx.send_to(0, i).await.unwrap(); // waits for room: capacity 4
    ///         }
    ///     });
    ///     let mut got = Vec::new();
    ///     while let Some((_, i)) = rx.recv().await {
    ///         got.push(i);
    ///     }
    ///     sending.await.unwrap();
    ///     assert_eq!(got, (0..10).collect::<Vec<_>>());
    /// })
    /// .unwrap();
    /// ```
    pub fn split(self) -> (MeshSender<T>, MeshReceiver<T>) {
        let MeshHalf {
            mut sender,
            mut receiver,
        } = self;
        let (tx, rx) = spsc::channel(sender.capacity);
        sender.tx[sender.core] = Some(tx);
        receiver.rx[receiver.core] = Some(rx);
        (sender, receiver)
    }
}

// Values are only ever moved, never pinned.
impl<T> Unpin for MeshHalf<T> {}
impl<T> Unpin for MeshReceiver<T> {}

impl<T> Stream for MeshHalf<T> {
    type Item = (usize, T);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(usize, T)>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for MeshHalf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshHalf")
            .field("core", &self.core())
            .field("cores", &self.cores())
            .field("local", &self.receiver.local.len())
            .finish()
    }
}

/// The sending side of a [split](MeshHalf::split) [`MeshHalf`]; `Send`.
pub struct MeshSender<T> {
    core: usize,
    /// One sender per core; `None` for the own core until split.
    tx: Vec<Option<Sender<T>>>,
    /// Of each channel, for the self channel `split` makes.
    capacity: usize,
}

impl<T> MeshSender<T> {
    /// This sender's core index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Number of cores in the mesh.
    pub fn cores(&self) -> usize {
        self.tx.len()
    }

    fn channel(&mut self, core: usize) -> &mut Sender<T> {
        let cores = self.tx.len();
        match self.tx.get_mut(core) {
            Some(Some(tx)) => tx,
            _ => panic!("core {core} is not in this mesh of {cores} cores"),
        }
    }

    /// Sends `value` to core `core` (its own included), waiting while that
    /// channel is full. As [`MeshHalf::send_to`] otherwise.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if that core's receiver was dropped.
    ///
    /// # Panics
    ///
    /// If `core` is not below [`cores`](Self::cores).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future drops the value unsent.
    pub async fn send_to(&mut self, core: usize, value: T) -> Result<(), SendError<T>> {
        self.channel(core).send(value).await
    }

    /// Sends `value` to core `core` if there is room right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    ///
    /// # Panics
    ///
    /// If `core` is not below [`cores`](Self::cores).
    pub fn try_send_to(&mut self, core: usize, value: T) -> Result<(), TrySendError<T>> {
        self.channel(core).try_send(value)
    }

    /// Sends `value` to the core that owns `key`, [`shard_of(key)`](shard_of).
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to).
    pub async fn send_to_owner<K: Hash + ?Sized>(
        &mut self,
        key: &K,
        value: T,
    ) -> Result<(), SendError<T>> {
        let owner = shard_of(key, self.cores());
        self.send_to(owner, value).await
    }
}

impl<T> fmt::Debug for MeshSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshSender")
            .field("core", &self.core)
            .field("cores", &self.cores())
            .finish()
    }
}

/// The receiving side of a [split](MeshHalf::split) [`MeshHalf`], or of a
/// whole one; `Send`, and a [`Stream`] of `(from, value)`.
pub struct MeshReceiver<T> {
    core: usize,
    /// One receiver per core, `None` once it reported the end (and for the
    /// own core until split).
    rx: Vec<Option<Receiver<T>>>,
    /// Values the unsplit half sent to itself; received in the own turn,
    /// before the self channel.
    local: VecDeque<T>,
    /// The core whose turn it is.
    next: usize,
}

impl<T> MeshReceiver<T> {
    /// This receiver's core index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Receives the next `(from, value)`; as [`MeshHalf::recv`], but `None`
    /// only once the own [`MeshSender`] is dropped too.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no value.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { receiver: self }
    }

    /// Receives the next `(from, value)` if one is queued right now.
    ///
    /// # Errors
    ///
    /// As [`MeshHalf::try_recv`].
    pub fn try_recv(&mut self) -> Result<(usize, T), TryRecvError> {
        let next = self.turns(|rx| match rx.try_recv() {
            Ok(value) => Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        });
        match next {
            Poll::Ready(Some(next)) => Ok(next),
            Poll::Ready(None) => Err(TryRecvError::Disconnected),
            Poll::Pending => Err(TryRecvError::Empty),
        }
    }

    /// Polls for the next `(from, value)`, registering `cx`'s waker on every
    /// empty channel.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, T)>> {
        crate::coop::budgeted(cx, |cx| self.turns(|rx| rx.poll_recv_unbudgeted(cx)))
    }

    /// Asks each core in turn, from `next`, with `poll` (whose `Pending`
    /// means empty): the first value, `Pending` if some channel is still
    /// open, or `None` if all have ended.
    fn turns(
        &mut self,
        mut poll: impl FnMut(&mut Receiver<T>) -> Poll<Option<T>>,
    ) -> Poll<Option<(usize, T)>> {
        let cores = self.rx.len();
        let mut open = false;
        for step in 0..cores {
            let from = (self.next + step) % cores;
            let value = if from == self.core && !self.local.is_empty() {
                self.local.pop_front()
            } else if let Some(rx) = &mut self.rx[from] {
                match poll(rx) {
                    Poll::Ready(Some(value)) => Some(value),
                    Poll::Ready(None) => {
                        self.rx[from] = None;
                        None
                    }
                    Poll::Pending => {
                        open = true;
                        None
                    }
                }
            } else {
                None
            };
            if let Some(value) = value {
                self.next = (from + 1) % cores;
                return Poll::Ready(Some((from, value)));
            }
        }
        if open {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}

impl<T> Stream for MeshReceiver<T> {
    type Item = (usize, T);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(usize, T)>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for MeshReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshReceiver")
            .field("core", &self.core)
            .field("cores", &self.rx.len())
            .finish_non_exhaustive()
    }
}

/// Future returned by [`MeshHalf::recv`] and [`MeshReceiver::recv`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it loses no value.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Recv<'a, T> {
    receiver: &'a mut MeshReceiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<(usize, T)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
