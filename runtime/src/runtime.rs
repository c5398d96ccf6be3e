//! Starting cores: [`run`] on the current thread, [`Runtime`] for one pinned
//! worker thread per core; [`spawn_on`] another core.

mod remote;

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, Location};
use std::pin::pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle as ThreadHandle;
use std::time::Duration;

pub use remote::{spawn_on, RemoteJoinHandle};

use crate::executor::{self, Config, Core, Remote, Shared, StallHook, StallReport};
use crate::task::UnhandledPanic;
use crate::trace;
use crate::{Driver, Features, Stats};

/// The default of [`Builder::device_spin`]: more than a fast SSD or a virtio
/// disk takes for a 4 KiB read, much less than a spinning disk.
const DEVICE_SPIN: Duration = Duration::from_micros(200);

/// Runs `future` to completion on a new single-core runtime on this thread.
///
/// Tasks still running when `future` finishes are dropped; operations still in
/// flight are cancelled and drained before this returns.
///
/// # Errors
///
/// The runtime could not start: io_uring is missing or blocked (the error says
/// which, and what to do), or this thread already runs a percore runtime.
///
/// # Panics
///
/// If `future` panics, the panic is resumed here after the runtime shut down.
///
/// # Examples
///
/// ```
/// let answer = percore_runtime::run(async { 40 + 2 }).unwrap();
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F: Future>(future: F) -> io::Result<F::Output> {
    Builder::new().block_on(future)
}

/// Says once per process that `PERCORE_FAULTS` is set but cannot apply.
#[cfg(not(feature = "faults"))]
fn warn_faults_ignored() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("PERCORE_FAULTS").is_some() {
        WARNED.call_once(|| {
            eprintln!(
                "percore: PERCORE_FAULTS is set, but percore-runtime was built without its \
                 `faults` feature: no faults are injected"
            );
        });
    }
}

/// `PERCORE_SEED`, if set.
pub(crate) fn env_seed() -> io::Result<Option<u64>> {
    let Some(value) = std::env::var_os("PERCORE_SEED") else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(seed) => Ok(Some(seed)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "PERCORE_SEED={text:?} is not a seed: give a whole number from 0 to {}, \
                 or unset it",
                u64::MAX
            ),
        )),
    }
}

/// Configures and starts a runtime.
///
/// # Examples
///
/// ```
/// use percore_runtime::Runtime;
///
/// let runtime = Runtime::builder().cores(2).pin(false).ring_entries(64).build().unwrap();
/// let cores = runtime
///     .run_on_all(|core| async move { percore_runtime::current_core() == core })
///     .unwrap();
/// assert_eq!(cores, [true, true]);
/// ```
#[must_use = "a Builder does nothing until built"]
pub struct Builder {
    cores: usize,
    pin: bool,
    config: Config,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// One core, not pinned, 256 ring entries, 10 ms stall threshold.
    pub fn new() -> Builder {
        Builder {
            cores: 1,
            pin: false,
            config: Config {
                entries: 256,
                cq_entries: 0,
                budget: 128,
                coop_budget: crate::coop::DEFAULT_BUDGET,
                spin: Duration::ZERO,
                device_spin: DEVICE_SPIN,
                stall_threshold: Some(Duration::from_millis(10)),
                on_stall: None,
                unhandled_panic: UnhandledPanic::Report,
                start_paused: false,
                seed: None,
                driver: Driver::Auto,
                uring_features: None,
                #[cfg(feature = "faults")]
                faults: None,
            },
        }
    }

    /// Number of cores (worker threads) [`build`](Builder::build) starts; at least 1.
    pub fn cores(mut self, cores: usize) -> Builder {
        self.cores = cores.max(1);
        self
    }

    /// Pins worker `i` to the `i`-th CPU this process may run on (wrapping).
    pub fn pin(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }

    /// Submission queue entries per core (a power of two, 1..=32768).
    pub fn ring_entries(mut self, entries: u32) -> Builder {
        self.config.entries = entries;
        self
    }

    /// Completion queue entries per core; default twice the SQ. A CQ smaller than
    /// the ops in flight still loses nothing (the kernel keeps overflowed
    /// completions), it only costs extra enters.
    pub fn cq_entries(mut self, entries: u32) -> Builder {
        self.config.cq_entries = entries;
        self
    }

    /// Task polls per tick before the loop looks at timers and I/O again.
    pub fn budget(mut self, polls: usize) -> Builder {
        self.config.budget = polls.max(1);
        self
    }

    /// Units of cooperative budget each task poll gets (default 128): how
    /// many budgeted futures — ops, channel receives, lock acquisitions —
    /// may be ready in one poll of a task before it is made to yield (see
    /// [`coop`](crate::coop)). Zero turns the budget off, as if every task ran
    /// inside [`coop::unconstrained`](crate::coop::unconstrained).
    ///
    /// Not the same as [`budget`](Builder::budget), the task polls per tick.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let yields = percore_runtime::Builder::new()
    ///     .coop_budget(10)
    ///     .block_on(async {
    ///         let (tx, mut rx) = mpsc::unbounded_channel();
    ///         for i in 0..100 {
    ///             tx.send(i).unwrap();
    ///         }
    ///         for _ in 0..100 {
    ///             rx.recv().await.unwrap();
    ///         }
    ///         percore_runtime::stats().coop_yields
    ///     })
    ///     .unwrap();
    /// // Ten receives per poll: nine forced yields between the ten polls.
    /// assert_eq!(yields, 9);
    /// ```
    pub fn coop_budget(mut self, units: u32) -> Builder {
        self.config.coop_budget = crate::coop::per_poll(units);
        self
    }

    /// Lets an idle core poll its inbox and ring for up to `spin` before it
    /// parks in the kernel (default: zero, park at once). A few tens of µs cut
    /// the latency of cross-core hand-offs a lot — waking a parked core costs a
    /// sleep and a wake-up in the kernel (tens of µs on a VM) — at the price of
    /// that much CPU each time a core runs out of work.
    pub fn spin_before_park(mut self, spin: Duration) -> Builder {
        self.config.spin = spin;
        self
    }

    /// How long an idle core may poll its ring for device ops in flight
    /// ([`Op::device`](crate::Op::device): `DmaFile` reads and writes) before
    /// it parks; default 200 µs, zero turns it off.
    ///
    /// The core polls, for up to `budget`, only while such ops are in flight
    /// and the next of them should complete within it (their moving average
    /// latency over the number in flight): on a fast device the completion
    /// arrives while the core still runs, instead of waking a halted CPU
    /// (about 20 µs on a VM, a third of a 4 KiB `O_DIRECT` read here); a slow
    /// device (a disk, a network volume) is waited for asleep. The price is
    /// the CPU the core spends polling, time it would otherwise sleep through:
    /// `benches/benches/fs_compare.rs` prints both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Sleep in the kernel while direct reads are at the device, as fio does.
    /// let answer = percore_runtime::Builder::new()
    ///     .device_spin(Duration::ZERO)
    ///     .block_on(async { 42 })
    ///     .unwrap();
    /// assert_eq!(answer, 42);
    /// ```
    pub fn device_spin(mut self, budget: Duration) -> Builder {
        self.config.device_spin = budget;
        self
    }

    /// Report polls longer than `threshold` (`None` turns the detector off).
    pub fn stall_threshold(mut self, threshold: Option<Duration>) -> Builder {
        self.config.stall_threshold = threshold;
        self
    }

    /// Calls `hook` on every stall instead of printing it.
    pub fn on_stall(mut self, hook: impl Fn(&StallReport) + Send + Sync + 'static) -> Builder {
        self.config.on_stall = Some(Arc::new(hook) as StallHook);
        self
    }

    /// What happens to a panic in a task nobody awaits.
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Builder {
        self.config.unhandled_panic = policy;
        self
    }

    /// Starts every core with its clock paused at its first instant (see
    /// [Paused time](crate::time#paused-time)); default false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use percore_runtime::time::{self, Instant};
    ///
    /// let elapsed = percore_runtime::Builder::new()
    ///     .start_paused(true)
    ///     .block_on(async {
    ///         let start = Instant::now();
    ///         // An hour on the clock, microseconds of real time.
    ///         let never = std::future::pending::<()>();
    ///         assert!(time::timeout(Duration::from_secs(3600), never).await.is_err());
    ///         start.elapsed()
    ///     })
    ///     .unwrap();
    /// assert_eq!(elapsed, Duration::from_secs(3600));
    /// ```
    pub fn start_paused(mut self, paused: bool) -> Builder {
        self.config.start_paused = paused;
        self
    }

    /// Shuffles the order in which each core polls its ready tasks, from
    /// `seed`: the same seed gives the same order (for the same program and
    /// inputs), another seed another order — a way to shake out code that
    /// depends on the order tasks run in, and to replay a failure.
    ///
    /// Without a call to `seed`, the environment variable `PERCORE_SEED`
    /// (a `u64`) sets it; an explicit `seed` wins over the variable. Without
    /// either, tasks run first woken, first polled. `#[percore::test]` always
    /// seeds its runtime and prints the seed when the test fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// fn order(seed: u64) -> Vec<u32> {
    ///     percore_runtime::Builder::new()
    ///         .seed(seed)
    ///         .block_on(async {
    ///             let order = Rc::new(RefCell::new(Vec::new()));
    ///             let tasks: Vec<_> = (0..20)
    ///                 .map(|i| {
    ///                     let order = order.clone();
    ///                     percore_runtime::spawn(async move { order.borrow_mut().push(i) })
    ///                 })
    ///                 .collect();
    ///             for task in tasks {
    ///                 task.await.unwrap();
    ///             }
    ///             order.take()
    ///         })
    ///         .unwrap()
    /// }
    ///
    /// assert_eq!(order(7), order(7));
    /// assert_ne!(order(7), order(8));
    /// ```
    pub fn seed(mut self, seed: u64) -> Builder {
        self.config.seed = Some(seed);
        self
    }

    /// The backend every core runs on: io_uring, epoll, or (the default)
    /// io_uring where it is available and epoll where it is not. Left at
    /// [`Driver::Auto`], the `PERCORE_DRIVER` environment variable decides;
    /// an explicit choice here wins over it. See [`Driver`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::{Builder, Driver};
    ///
    /// let answer = Builder::new()
    ///     .driver(Driver::Epoll)
    ///     .block_on(async {
    ///         percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
    ///         42
    ///     })
    ///     .unwrap();
    /// assert_eq!(answer, 42);
    /// ```
    pub fn driver(mut self, driver: Driver) -> Builder {
        self.config.driver = driver;
        self
    }

    /// The newer io_uring features the cores may use where the kernel has
    /// them (default [`Features::DEFAULT`]); `Features::NONE` runs the path of
    /// older kernels on any kernel. Without a call to `uring_features`, the
    /// environment variable `PERCORE_URING_FEATURES` sets it. No effect on the
    /// epoll backend. See [`Features`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::{Builder, Features};
    ///
    /// let on = Builder::new()
    ///     .uring_features(Features::DEFAULT & !Features::RECV_BUNDLE)
    ///     .block_on(async { percore_runtime::stats().uring_features })
    ///     .unwrap();
    /// assert!(!on.contains(Features::RECV_BUNDLE));
    /// ```
    pub fn uring_features(mut self, features: Features) -> Builder {
        self.config.uring_features = Some(features);
        self
    }

    /// Injects faults into every core's I/O, as `spec` says (feature
    /// `faults`, for tests): ops failed with an errno instead of run, reads
    /// and writes on streams shortened, completions held back for a few
    /// turns, `io_uring_enter` failing before it runs, tiny rings. The same
    /// spec and seed draw the same faults.
    ///
    /// `spec` is a comma-separated list: `none` (no faults, whatever
    /// `PERCORE_FAULTS` says: for a test about exact op counts), `light` (short I/O, `EINTR`,
    /// delays: what every correct caller survives), `heavy` (those and
    /// errors that reach callers), `seed=N`, `short=P`, `delay=P[/TURNS]`,
    /// `submit=P`, `sq=N`, `cq=N`, or an errno (`eintr`, `eagain`,
    /// `ecanceled`, `econnreset`, `eio`, `enomem`, `enobufs`) `=P`; a
    /// probability `P` may end in `@kind+kind` (`read`, `write`, `recv`,
    /// `send`, `accept`, `connect`, `open`, `sync`, `other`). Without a call
    /// to `faults`, the environment variable `PERCORE_FAULTS` sets it.
    ///
    /// An op that fails with `EINTR` is submitted again by [`Op`](crate::Op),
    /// so `eintr` tests that retry; other errnos reach the caller.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the item that is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::{op::Nop, Op, Runtime};
    ///
    /// let runtime = Runtime::builder().faults("seed=3,eio=1.0@other").unwrap();
    /// let res = runtime.block_on(Op::new(Nop::new())).unwrap();
    /// assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EIO));
    /// ```
    #[cfg(feature = "faults")]
    pub fn faults(mut self, spec: &str) -> io::Result<Builder> {
        let spec = crate::driver::fault::Spec::parse(spec)?;
        self.config.faults = Some(std::sync::Arc::new(spec));
        Ok(self)
    }

    fn core_config(&self) -> io::Result<Config> {
        let mut config = self.config.clone();
        if config.cq_entries == 0 {
            config.cq_entries = config.entries.saturating_mul(2);
        }
        if config.seed.is_none() {
            config.seed = env_seed()?;
        }
        #[cfg(feature = "faults")]
        {
            if config.faults.is_none() {
                config.faults = crate::driver::fault::Spec::from_env()?;
            }
            if let Some(spec) = &config.faults {
                config.entries = spec.sq.unwrap_or(config.entries);
                config.cq_entries = spec.cq.unwrap_or(config.cq_entries).max(config.entries);
            }
        }
        #[cfg(not(feature = "faults"))]
        warn_faults_ignored();
        Ok(config)
    }

    /// Runs `future` on a single core on this thread (the `cores` setting is not
    /// used); see [`run`].
    ///
    /// # Errors
    ///
    /// As [`run`].
    #[track_caller]
    pub fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        let location = Location::caller();
        if executor::has_core() {
            return Err(executor::nested_error());
        }
        let core = Core::new(0, self.core_config()?)?;
        core.run(future, location)
    }

    /// Starts one worker thread per core, each with its own ring.
    ///
    /// # Errors
    ///
    /// A thread or ring could not be set up, or pinning failed; no thread is left
    /// running then.
    pub fn build(self) -> io::Result<Runtime> {
        let config = self.core_config()?;
        let cpus = if self.pin {
            allowed_cpus()?
        } else {
            Vec::new()
        };
        let mut runtime = Runtime {
            cores: Vec::new(),
            threads: Vec::new(),
        };
        for id in 0..self.cores {
            let cpu = (!cpus.is_empty()).then(|| cpus[id % cpus.len()]);
            let (shared, thread) = start_worker(id, cpu, config.clone())?;
            runtime.cores.push(shared);
            runtime.threads.push(thread);
        }
        // Tell every core its peers, for `spawn_on`. Each core takes its remote
        // queue in order, so this runs before any job sent after `build`.
        let peers: Arc<[Arc<Shared>]> = runtime.cores.iter().cloned().collect();
        for shared in &runtime.cores {
            let peers = Arc::clone(&peers);
            let job = Remote::Job(Box::new(move || {
                executor::with_core(|core| {
                    let _ = core.peers.set(peers);
                });
            }));
            if shared.push(job).is_err() {
                return Err(io::Error::other(format!(
                    "core {} stopped while starting",
                    shared.id
                )));
            }
        }
        Ok(runtime)
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("cores", &self.cores)
            .field("pin", &self.pin)
            .field("ring_entries", &self.config.entries)
            .field("stall_threshold", &self.config.stall_threshold)
            .finish_non_exhaustive()
    }
}

fn start_worker(
    id: usize,
    cpu: Option<usize>,
    config: Config,
) -> io::Result<(Arc<Shared>, ThreadHandle<()>)> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("percore-{id}"))
        .spawn(move || worker(id, cpu, config, ready_tx))
        .map_err(|err| io::Error::new(err.kind(), format!("starting core {id}: {err}")))?;
    match ready_rx.recv() {
        Ok(Ok(shared)) => Ok((shared, thread)),
        Ok(Err(err)) => {
            let _ = thread.join();
            Err(err)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(format!("core {id} died while starting")))
        }
    }
}

fn worker(
    id: usize,
    cpu: Option<usize>,
    config: Config,
    ready: mpsc::Sender<io::Result<Arc<Shared>>>,
) {
    if let Some(cpu) = cpu {
        if let Err(err) = pin_to(cpu) {
            let _ = ready.send(Err(io::Error::new(
                err.kind(),
                format!("pinning core {id} to CPU {cpu}: {err}"),
            )));
            return;
        }
    }
    let core = match Core::new(id, config) {
        Ok(core) => core,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let _ = ready.send(Ok(core.shared.clone()));
    let stopped = std::future::poll_fn(|cx| {
        executor::with_core(|core| {
            if core.stop.get() {
                std::task::Poll::Ready(())
            } else {
                core.stop_waker.set(Some(cx.waker().clone()));
                std::task::Poll::Pending
            }
        })
    });
    if let Err(err) = core.run(stopped, Location::caller()) {
        trace::event!(ERROR, core = id, error = %err, "core failed");
        eprintln!("percore: core {id} stopped: {err}");
    }
}

fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("sched_getaffinity: {err}"),
        ));
    }
    // SAFETY: CPU_ISSET only reads the set.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes in bounds
    // because `cpu` came from `allowed_cpus` (< CPU_SETSIZE).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A set of cores, one pinned worker thread each, each with its own ring.
///
/// Dropping it stops every core (their tasks are dropped, their rings drained)
/// and joins the threads.
pub struct Runtime {
    cores: Vec<Arc<Shared>>,
    threads: Vec<ThreadHandle<()>>,
}

impl Runtime {
    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// Every core's counters, one entry per core (index = core), readable
    /// from any thread, also while the cores are busy; for a metrics endpoint.
    ///
    /// Each core publishes its figures rather than being asked for them, so
    /// this never waits for a core and costs the cores nothing per op. How
    /// fresh they are: a core that parks (runs out of work) publishes first,
    /// so an idle core's figures are exact; a busy core publishes every 32
    /// ticks of its loop (a tick polls up to [`Builder::budget`] tasks and
    /// makes at most one `io_uring_enter`); a core stuck in one long poll (a
    /// stall) publishes again once that poll returns; a stopped core's
    /// figures are its last. Each entry is one consistent snapshot of its
    /// core; entries of different cores may be a few ticks apart. From a
    /// task, [`all_stats`](crate::all_stats) gives the same list, and
    /// [`stats`](crate::stats()) the calling core's own figures, exact.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use percore_runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().cores(2).build().unwrap();
    /// runtime
    ///     .run_on(1, || percore_runtime::time::sleep(Duration::from_millis(1)))
    ///     .unwrap();
    /// // Core 1 publishes when it parks, a moment after the task finished.
    /// let mut stats = runtime.stats();
    /// for _ in 0..10_000 {
    ///     if stats[1].timers_fired >= 1 {
    ///         break;
    ///     }
    ///     std::thread::sleep(Duration::from_millis(1));
    ///     stats = runtime.stats();
    /// }
    /// assert_eq!(stats.len(), 2);
    /// assert_eq!(stats[1].core, 1);
    /// assert!(stats[1].timers_fired >= 1);
    /// ```
    pub fn stats(&self) -> Vec<Stats> {
        self.cores
            .iter()
            .map(|shared| shared.stats.read())
            .collect()
    }

    /// Builds a future with `f` on core `core`, runs it there as a task, and
    /// returns a `Send` handle to its output, without waiting. The future need
    /// not be `Send`; only the closure and the output cross threads.
    ///
    /// Callable from any thread: a plain thread, or a task on any core (on the
    /// target core itself, the task is spawned directly). From a task of this
    /// runtime, the free function [`spawn_on`] does the same without a
    /// `Runtime` at hand.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `core` is out of range;
    /// an error if the core has stopped. If it stops before the task finishes,
    /// the handle resolves to a cancelled [`JoinError`](crate::JoinError).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use percore_runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().cores(2).build().unwrap();
    /// let handle = runtime
    ///     .spawn_on(1, || {
    ///         let local = Rc::new(20); // need not be Send: it stays on core 1
    ///         async move { *local + percore_runtime::current_core() as i32 }
    ///     })
    ///     .unwrap();
    /// assert_eq!(futures_executor::block_on(handle).unwrap(), 21);
    ///
    /// let err = runtime.spawn_on(5, || async {}).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    #[track_caller]
    pub fn spawn_on<F, Fut>(&self, core: usize, f: F) -> io::Result<RemoteJoinHandle<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_at(core, f, Location::caller())
    }

    fn spawn_at<F, Fut>(
        &self,
        core: usize,
        f: F,
        location: &'static Location<'static>,
    ) -> io::Result<RemoteJoinHandle<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let Some(shared) = self.cores.get(core) else {
            return Err(remote::no_such_core(core, self.cores.len()));
        };
        remote::spawn_to(shared, f, location)
    }

    /// Builds a future with `f` on core `core`, runs it there as a task, and
    /// blocks this thread until it finishes. The future need not be `Send`; only
    /// the closure and the output cross threads.
    ///
    /// # Errors
    ///
    /// `core` is out of range, the core has stopped, or this is called from a
    /// percore core (blocking it would deadlock).
    ///
    /// # Panics
    ///
    /// If the task panics, the panic is resumed here.
    #[track_caller]
    pub fn run_on<F, Fut>(&self, core: usize, f: F) -> io::Result<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        refuse_on_core()?;
        let handle = self.spawn_at(core, f, Location::caller())?;
        wait(core, handle)
    }

    /// Runs `f(core)` on every core at once and collects each core's output, in
    /// core order.
    ///
    /// # Errors
    ///
    /// As [`run_on`](Runtime::run_on).
    ///
    /// # Panics
    ///
    /// If a task panics, the first such panic is resumed here (after all finished).
    #[track_caller]
    pub fn run_on_all<F, Fut>(&self, f: F) -> io::Result<Vec<Fut::Output>>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        refuse_on_core()?;
        let location = Location::caller();
        let f = Arc::new(f);
        let handles = (0..self.cores.len())
            .map(|core| {
                let f = f.clone();
                self.spawn_at(core, move || f(core), location)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut outputs = Vec::with_capacity(handles.len());
        for (core, handle) in handles.into_iter().enumerate() {
            outputs.push(wait(core, handle)?);
        }
        Ok(outputs)
    }
}

fn refuse_on_core() -> io::Result<()> {
    if executor::has_core() {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "Runtime::run_on blocks its thread and was called from a percore core; \
             spawn the work instead (Runtime::spawn_on)",
        ));
    }
    Ok(())
}

/// Blocks this (non-core) thread until the task of `handle` finishes.
fn wait<T>(core: usize, handle: RemoteJoinHandle<T>) -> io::Result<T> {
    match block_on(handle) {
        Ok(value) => Ok(value),
        Err(err) => match err.try_into_panic() {
            Ok(payload) => panic::resume_unwind(payload),
            Err(_) => Err(io::Error::other(format!(
                "core {core} stopped before the task finished"
            ))),
        },
    }
}

/// Polls `future` on this thread, parking it between wakes.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        trace::event!(
            INFO,
            cores = self.cores.len(),
            "runtime dropped: stopping every core"
        );
        for shared in &self.cores {
            let _ = shared.push(Remote::Shutdown);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        trace::event!(INFO, "runtime stopped: every core joined");
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("cores", &self.cores.len())
            .finish()
    }
}
