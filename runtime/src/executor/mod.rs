//! One core's event loop: run queue, registry of live tasks, timers, ring.
//!
//! A tick polls ready tasks up to a budget, takes what other threads sent, fires
//! expired timers, then makes at most one `io_uring_enter` — blocking in it only
//! when nothing is ready — and wakes the tasks whose operations completed.
//!
//! Two budgets keep the loop turning. The *tick* budget
//! ([`Builder::budget`](crate::Builder::budget)) bounds the task polls between
//! two looks at timers and I/O; the *cooperative* budget
//! ([`coop`](crate::coop), [`Builder::coop_budget`](crate::Builder::coop_budget))
//! bounds what one poll may do: each poll starts with it full, every
//! budgeted future that is ready spends a unit, and once it is spent the
//! task yields, so a task whose futures are always ready still returns to
//! the loop.

mod device;
mod inbox;
mod shared;

use std::alloc::Layout;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

pub(crate) use shared::{Remote, Shared};

use crate::driver::{Driver, Io, Registrar, Wait};
use crate::registered::Tables;
use crate::stats::{self, Counters};
use crate::task::arena::Arena;
use crate::task::raw::{self, Runnable};
use crate::task::{JoinHandle, UnhandledPanic};
use crate::time::wheel::Wheel;
use crate::time::Clock;
use crate::trace;
use crate::Stats;

/// A poll that took longer than the stall threshold.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StallReport {
    /// The core whose loop was blocked.
    pub core: usize,
    /// How long the poll took (measured with a coarse clock: a few ms of error).
    pub duration: Duration,
    /// Where the task was spawned.
    pub location: &'static Location<'static>,
}

/// Called with every stall; the default prints it on stderr.
pub(crate) type StallHook = Arc<dyn Fn(&StallReport) + Send + Sync>;

/// What a core is configured with (from the `Builder`).
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) entries: u32,
    pub(crate) cq_entries: u32,
    /// Task polls per tick.
    pub(crate) budget: usize,
    /// Units of cooperative budget per task poll (`coop::OFF`: no limit).
    pub(crate) coop_budget: i64,
    /// How long an idle core polls before it parks.
    pub(crate) spin: Duration,
    /// How long an idle core may poll for device ops in flight (`Op::device`).
    pub(crate) device_spin: Duration,
    pub(crate) stall_threshold: Option<Duration>,
    pub(crate) on_stall: Option<StallHook>,
    pub(crate) unhandled_panic: UnhandledPanic,
    /// The clock starts paused (`Builder::start_paused`).
    pub(crate) start_paused: bool,
    /// Shuffle the poll order from this seed (`Builder::seed`, `PERCORE_SEED`).
    pub(crate) seed: Option<u64>,
    /// The backend to run on (`Builder::driver`, `PERCORE_DRIVER`).
    pub(crate) driver: Driver,
    /// The newer io_uring features allowed (`Builder::uring_features`;
    /// `None`: `PERCORE_URING_FEATURES`, else the default).
    pub(crate) uring_features: Option<crate::Features>,
    /// Faults to inject (`Builder::faults`, `PERCORE_FAULTS`).
    #[cfg(feature = "faults")]
    pub(crate) faults: Option<std::sync::Arc<crate::driver::fault::Spec>>,
}

thread_local! {
    /// The core running on this thread, if any; set only while `Core::run` runs.
    static CORE: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    run_queue: RefCell<VecDeque<Runnable>>,
    pub(crate) driver: RefCell<Io>,
    /// The driver's registered buffer and file tables, as this core uses
    /// them. Declared after `driver`, so the ring is closed before registered
    /// memory can be freed.
    tables: RefCell<Tables>,
    pub(crate) timers: RefCell<Wheel>,
    /// Tick 0 of the timer wheel.
    pub(crate) origin: Instant,
    /// What the timers read: the OS's clock, or a paused virtual one.
    pub(crate) clock: Clock,
    /// State of the poll-order shuffle; used only if `config.seed` is set.
    rng: Cell<u64>,
    /// With a seed: tasks that yielded (`yield_now`), queued again only once
    /// every task ready before them ran, as FIFO order guarantees unseeded.
    yielded: RefCell<Vec<Waker>>,
    /// Batches the yielded tasks have waited through.
    yield_batches: Cell<u32>,
    /// Unique among all cores this process ever ran: timer keys carry it, so a
    /// timer polled on another core is never mistaken for one of this wheel's.
    pub(crate) uid: u64,
    /// A waker for every task that waits (polled, not finished), so shutdown can
    /// reach idle tasks and drop them on this thread. Tasks never polled sit in
    /// the run queue instead, and shutdown drops them from there.
    registry: RefCell<Slab<Waker>>,
    shutting_down: Cell<bool>,
    /// Tasks allocated and not yet freed; if some outlive the core, it leaks
    /// `shared`, which their wakers may still reach.
    live_tasks: Cell<usize>,
    /// Where this core's task cells live; leaked with `shared` if tasks outlive
    /// the core.
    arena: std::mem::ManuallyDrop<Arena>,
    /// Set by a `Remote::Shutdown`; a worker's main future waits for it.
    pub(crate) stop: Cell<bool>,
    pub(crate) stop_waker: Cell<Option<Waker>>,
    pub(crate) counters: Counters,
    /// Ticks until the core publishes its counters again while busy.
    publish_in: Cell<u32>,
    /// Every core of this core's `Runtime`, by index (for `spawn_on`); set by
    /// `Builder::build` once all are started, never for a `run` core.
    pub(crate) peers: OnceCell<Arc<[Arc<Shared>]>>,
    pub(crate) config: Config,
    wake_buf: RefCell<Vec<Waker>>,
    remote_buf: RefCell<Vec<Remote>>,
    /// A task pushed an op that should reach the kernel before the tick ends.
    pub(crate) flush: Cell<bool>,
    /// Device ops in flight and their recent latency: how long to poll for them.
    pub(crate) device: device::DeviceOps,
    /// Units of cooperative budget the task polled now has spent (see
    /// [`coop`](crate::coop)); zeroed before every task poll (a constant: one
    /// store), compared with `config.coop_budget` when a unit is spent.
    /// [`unconstrained`](crate::coop::unconstrained) sets it to `i64::MIN`,
    /// which no count of units brings up to the budget.
    pub(crate) coop_spent: Cell<i64>,
}

impl Core {
    pub(crate) fn new(id: usize, config: Config) -> io::Result<Core> {
        let mut shared = Shared::new(id)?;
        let offload: crate::driver::Offload = Box::new(|job| drop(crate::spawn_blocking(job)));
        #[allow(unused_mut)]
        let mut driver = Io::new(
            config.driver,
            config.entries,
            config.cq_entries,
            config.uring_features,
            shared.eventfd(),
            offload,
        )?;
        #[cfg(feature = "faults")]
        if let Some(spec) = config.faults.as_ref().filter(|spec| spec.is_active()) {
            driver.set_faults(crate::driver::fault::Faults::new(
                std::sync::Arc::clone(spec),
                id,
            ));
        }
        if let Some(ring_fd) = driver.dup_ring_fd()? {
            shared.set_ring_fd(ring_fd);
        }
        shared.stats.publish(&Stats {
            core: id,
            driver: driver.kind(),
            uring_features: driver.features(),
            ..Stats::default()
        });
        trace::event!(INFO, core = id, driver = %driver.kind(), "core started");
        let shared = Arc::new(shared);
        let origin = Instant::now();
        Ok(Core {
            shared,
            run_queue: RefCell::new(VecDeque::with_capacity(256)),
            driver: RefCell::new(driver),
            tables: RefCell::new(Tables::default()),
            timers: RefCell::new(Wheel::new()),
            origin,
            clock: Clock::new(origin, config.start_paused),
            yielded: RefCell::new(Vec::new()),
            yield_batches: Cell::new(0),
            // Each core of a seeded runtime gets its own stream.
            rng: Cell::new(splitmix(
                config.seed.unwrap_or(0) ^ (id as u64).wrapping_mul(PHI),
            )),
            uid: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            registry: RefCell::new(Slab::new()),
            shutting_down: Cell::new(false),
            live_tasks: Cell::new(0),
            arena: std::mem::ManuallyDrop::new(Arena::new()),
            stop: Cell::new(false),
            stop_waker: Cell::new(None),
            counters: Counters::default(),
            publish_in: Cell::new(PUBLISH_EVERY),
            peers: OnceCell::new(),
            config,
            wake_buf: RefCell::new(Vec::new()),
            remote_buf: RefCell::new(Vec::new()),
            flush: Cell::new(false),
            device: device::DeviceOps::default(),
            coop_spent: Cell::new(0),
        })
    }

    /// Runs `future` to completion on this thread, then drops every task still
    /// alive and drains the ring.
    ///
    /// # Errors
    ///
    /// Another runtime already runs on this thread, or the ring failed.
    pub(crate) fn run<F: Future>(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> io::Result<F::Output> {
        if has_core() {
            return Err(nested_error());
        }
        let _guard = Enter::new(self);
        // SAFETY: `future` may borrow from our caller's frame; we do not return
        // before it completed or was dropped — `shutdown` drops every task.
        let mut main = unsafe { self.spawn_unchecked(future, location) };
        let looped = self.event_loop(&main);
        let output = match looped {
            Ok(()) => {
                let mut cx = Context::from_waker(Waker::noop());
                match std::pin::Pin::new(&mut main).poll(&mut cx) {
                    Poll::Ready(output) => Some(output),
                    Poll::Pending => None,
                }
            }
            Err(_) => None,
        };
        drop(main);
        self.shutdown();
        looped?;
        match output {
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) => match err.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(err) => Err(io::Error::other(err.to_string())),
            },
            None => Err(io::Error::other("the main task did not finish")),
        }
    }

    fn event_loop<T>(&self, main: &JoinHandle<T>) -> io::Result<()> {
        loop {
            self.clock.new_round();
            self.run_tasks();
            if main.is_finished() {
                return Ok(());
            }
            if self.shared.has_remote() {
                self.drain_remote();
            }
            self.fire_timers();
            // A full SQ makes the driver reap while tasks run; wake those tasks
            // now, or the loop could park with them still asleep.
            self.complete_io();
            let idle = self.run_queue.borrow().is_empty();
            self.io(idle)?;
        }
    }

    /// Polls up to `budget` ready tasks. Four copies of one loop (timed or
    /// not, seeded or not), chosen once per tick, so the common case pays
    /// for neither the stall clock nor the shuffle.
    fn run_tasks(&self) {
        let fifo = || self.run_queue.borrow_mut().pop_front();
        match (self.config.stall_threshold, self.config.seed.is_some()) {
            (None, false) => self.run_batch(fifo),
            (None, true) => {
                self.run_batch(|| self.draw_runnable());
                self.requeue_yielded_after_batch();
            }
            (Some(threshold), false) => self.run_batch_timed(threshold, fifo),
            (Some(threshold), true) => {
                self.run_batch_timed(threshold, || self.draw_runnable());
                self.requeue_yielded_after_batch();
            }
        }
    }

    #[inline(always)]
    fn run_batch(&self, next: impl Fn() -> Option<Runnable>) {
        for polled in 0..self.config.budget {
            let Some(runnable) = next() else {
                return stats::add(&self.counters.polls, polled as u64);
            };
            self.coop_spent.set(0);
            runnable.run();
            self.flush_if_asked();
        }
        stats::add(&self.counters.polls, self.config.budget as u64);
    }

    /// [`run_batch`](Self::run_batch), reporting polls longer than `threshold`
    /// on the core's clock.
    #[inline(always)]
    fn run_batch_timed(&self, threshold: Duration, next: impl Fn() -> Option<Runnable>) {
        let mut start = self.clock.coarse();
        for polled in 0..self.config.budget {
            let Some(runnable) = next() else {
                return stats::add(&self.counters.polls, polled as u64);
            };
            let location = runnable.location();
            self.coop_spent.set(0);
            runnable.run();
            self.flush_if_asked();
            let end = self.clock.coarse();
            if end.saturating_sub(start) >= threshold {
                self.report_stall(location, end.saturating_sub(start));
            }
            start = end;
        }
        stats::add(&self.counters.polls, self.config.budget as u64);
    }

    /// With a seed: one of the ready tasks drawn at random, so the order
    /// they were woken in does not decide the order they run in.
    fn draw_runnable(&self) -> Option<Runnable> {
        if self.run_queue.borrow().is_empty() {
            self.requeue_yielded();
        }
        let mut queue = self.run_queue.borrow_mut();
        if queue.len() < 2 {
            return queue.pop_front();
        }
        let state = self.rng.get().wrapping_add(PHI);
        self.rng.set(state);
        let index = (splitmix(state) % queue.len() as u64) as usize;
        queue.swap_remove_front(index)
    }

    /// At the end of a seeded batch: yielded tasks go back once the tasks
    /// ready before them ran (the queue is empty), or after
    /// `YIELD_PATIENCE` batches, so that a queue that never empties cannot
    /// starve them.
    fn requeue_yielded_after_batch(&self) {
        if self.yielded.borrow().is_empty() {
            return;
        }
        let waited = self.yield_batches.get() + 1;
        if self.run_queue.borrow().is_empty() || waited >= YIELD_PATIENCE {
            self.requeue_yielded();
        } else {
            self.yield_batches.set(waited);
        }
    }

    /// Queues the tasks that yielded (seeded cores only).
    fn requeue_yielded(&self) {
        if self.yielded.borrow().is_empty() {
            return;
        }
        self.yield_batches.set(0);
        let yielded = self.yielded.take();
        for waker in yielded {
            waker.wake();
        }
    }

    /// Submits now if a task asked for it (`Op::submit_now`) and more tasks
    /// wait to run; with none left, the enter that ends the tick submits (and
    /// waits) in one call.
    fn flush_if_asked(&self) {
        if self.flush.get() {
            self.flush.set(false);
            if !self.run_queue.borrow().is_empty() {
                self.driver.borrow_mut().submit_now();
            }
        }
    }

    fn report_stall(&self, location: &'static Location<'static>, duration: Duration) {
        stats::add(&self.counters.stalls, 1);
        let report = StallReport {
            core: self.shared.id,
            duration,
            location,
        };
        trace::event!(
            WARN,
            core = report.core,
            duration_ms = duration.as_millis() as u64,
            task = %location,
            "a poll blocked the core"
        );
        match &self.config.on_stall {
            Some(hook) => hook(&report),
            None => eprintln!(
                "percore: core {} stalled for {} ms polling the task spawned at {}; \
                 move blocking work off the core (spawn_blocking) or yield more often",
                report.core,
                duration.as_millis(),
                location
            ),
        }
    }

    fn drain_remote(&self) {
        let mut items = self.remote_buf.take();
        self.shared.take(&mut items);
        stats::add(&self.counters.remote_wakes, items.len() as u64);
        for item in items.drain(..) {
            match item {
                Remote::Task(notified) => notified.schedule(),
                Remote::Release(task) => task.release(),
                Remote::Job(job) => job(),
                Remote::Shutdown => {
                    self.stop.set(true);
                    if let Some(waker) = self.stop_waker.take() {
                        waker.wake();
                    }
                }
            }
        }
        *self.remote_buf.borrow_mut() = items;
    }

    /// Spends a unit of the cooperative budget of the task polled now;
    /// false, spending nothing, if none is left (see [`coop`](crate::coop)).
    #[inline(always)]
    pub(crate) fn coop_take(&self) -> bool {
        let spent = self.coop_spent.get();
        if spent >= self.config.coop_budget {
            return false;
        }
        self.coop_spent.set(spent + 1);
        true
    }

    /// The task polled now has no cooperative budget left: it yields, to run
    /// again once the core has fired its timers and reaped its I/O (its
    /// waker goes with the wakes of this tick's completions, into `woken`).
    #[cold]
    #[inline(never)]
    pub(crate) fn coop_defer(&self, woken: &mut Vec<Waker>, waker: &Waker) {
        stats::add(&self.counters.coop_yields, 1);
        woken.push(crate::task::raw::op_waker(waker));
    }

    /// An op that finished at once while the task has no budget left: its
    /// result goes in a slot of its own, completed, and the task yields
    /// ([`coop_defer`](Self::coop_defer)); its next poll takes it.
    #[cold]
    pub(crate) fn coop_stash(
        &self,
        ops: &mut crate::driver::Ops,
        res: i32,
        flags: u32,
        waker: &Waker,
    ) -> crate::driver::Key {
        let key = ops
            .table
            .insert(crate::driver::Lifecycle::Completed { res, flags });
        self.coop_defer(&mut ops.woken, waker);
        key
    }

    /// Wakes the tasks of every timer due on the core's clock.
    pub(crate) fn fire_timers(&self) {
        let mut timers = self.timers.borrow_mut();
        let Some(next) = timers.next_expiration() else {
            return;
        };
        let now = self.now_tick(self.clock.now());
        if next > now {
            return;
        }
        let mut fired = self.wake_buf.take();
        let count = timers.advance(now, &mut fired);
        drop(timers);
        stats::add(&self.counters.timers_fired, count as u64);
        for waker in fired.drain(..) {
            waker.wake();
        }
        *self.wake_buf.borrow_mut() = fired;
    }

    /// One pass over the ring; blocks only if `idle` and no timer is due.
    fn io(&self, idle: bool) -> io::Result<()> {
        self.publish_now_and_then();
        if idle && self.clock.is_paused() {
            return self.io_paused();
        }
        if idle {
            let spin = if self.device.due_within(self.config.device_spin) {
                self.config.device_spin.max(self.config.spin)
            } else {
                self.config.spin
            };
            if !spin.is_zero() && self.spin(spin)? {
                return Ok(());
            }
        }
        let wait = if idle { self.park_timeout() } else { None };
        let turned = match wait {
            Some(timeout) if self.shared.park() => {
                stats::add(&self.counters.parks, 1);
                self.publish_stats();
                let turned = self.driver.borrow_mut().turn(Wait::Park(timeout));
                self.shared.unpark();
                turned
            }
            _ => self.driver.borrow_mut().turn(Wait::No),
        };
        self.complete_io();
        turned
    }

    /// An idle core whose clock is paused: collects what completed; then, if
    /// nothing on the core will finish by itself, jumps the clock to the next
    /// timer (auto-advance) instead of waiting for it. Otherwise it waits in
    /// real time, the clock standing still: for ops that complete on their
    /// own, for a wake, and while blocking jobs of this core run, in 1 ms
    /// steps (a job's end is counted after its result wakes the task).
    fn io_paused(&self) -> io::Result<()> {
        self.driver.borrow_mut().turn(Wait::No)?;
        self.complete_io();
        if !self.run_queue.borrow().is_empty() || self.shared.has_remote() {
            return Ok(());
        }
        let ops = {
            let driver = self.driver.borrow();
            driver.holding > 0 || driver.holds_completions()
        };
        let jobs = self.shared.holds.any();
        let next = self.timers.borrow().next_expiration();
        if let (false, false, Some(tick)) = (ops, jobs, next) {
            self.clock
                .jump_to(self.origin + Duration::from_millis(tick));
            return Ok(());
        }
        if self.park_timeout().is_none() {
            return Ok(()); // a timer is due already
        }
        let timeout = jobs.then_some(Duration::from_millis(1));
        if self.shared.park() {
            stats::add(&self.counters.parks, 1);
            self.publish_stats();
            let turned = self.driver.borrow_mut().turn(Wait::Park(timeout));
            self.shared.unpark();
            turned?;
        }
        self.complete_io();
        Ok(())
    }

    /// Before parking, polls the inbox and the ring for up to `spin` (shared
    /// memory only; the kernel is entered only if completion work is flagged).
    /// True if work turned up, so the loop goes on without parking.
    fn spin(&self, spin: Duration) -> io::Result<bool> {
        stats::add(&self.counters.spins, 1);
        let deadline = Instant::now() + spin;
        loop {
            if self.shared.has_remote() {
                return Ok(true);
            }
            self.driver.borrow_mut().turn(Wait::No)?;
            self.complete_io();
            if !self.run_queue.borrow().is_empty() {
                return Ok(true);
            }
            // A due timer is work too; past the deadline, park.
            let timer_due = self.park_timeout().is_none();
            if timer_due || Instant::now() >= deadline {
                return Ok(timer_due);
            }
            std::hint::spin_loop();
        }
    }

    /// `None`: do not block. `Some(None)`: block until woken. `Some(Some(d))`:
    /// block at most `d` (the next timer).
    fn park_timeout(&self) -> Option<Option<Duration>> {
        let Some(tick) = self.timers.borrow().next_expiration() else {
            return Some(None);
        };
        let deadline = self.origin + Duration::from_millis(tick);
        let now = self.clock.now();
        if deadline <= now {
            return None;
        }
        Some(Some(deadline - now))
    }

    /// Wakes tasks whose ops completed and finishes orphans, outside the driver borrow.
    fn complete_io(&self) {
        let mut driver = self.driver.borrow_mut();
        if driver.ops.woken.is_empty() && driver.ops.orphans.is_empty() {
            if !driver.ops.failed_rings.is_empty() {
                drop(driver);
                self.retry_failed_rings();
            }
            return;
        }
        let mut woken = std::mem::take(&mut driver.ops.woken);
        let orphans = std::mem::take(&mut driver.ops.orphans);
        drop(driver);
        for waker in woken.drain(..) {
            waker.wake();
        }
        for (mut orphan, res, flags) in orphans {
            orphan.cqe(res, flags, true);
        }
        self.driver.borrow_mut().ops.woken = woken;
        self.retry_failed_rings();
    }

    /// Rings, through their eventfds, the peers a `MSG_RING` failed to wake.
    fn retry_failed_rings(&self) {
        let failed = std::mem::take(&mut self.driver.borrow_mut().ops.failed_rings);
        let Some(peers) = self.peers.get() else {
            return;
        };
        for id in failed {
            if let Some(peer) = peers.get(id) {
                peer.notify();
            }
        }
    }

    /// Milliseconds since `origin`, rounded down: a timer fires when this reaches
    /// its (rounded up) tick, so never early.
    pub(crate) fn now_tick(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// The tick of `deadline`, rounded up.
    pub(crate) fn deadline_tick(&self, deadline: Instant) -> u64 {
        crate::time::ceil_ms(deadline.saturating_duration_since(self.origin))
    }

    /// Spawns `future` on this core.
    ///
    /// # Safety
    ///
    /// If `F` is not `'static`, what it borrows must outlive the task: the caller
    /// drives it to completion or drops it (shutdown does) before that.
    pub(crate) unsafe fn spawn_unchecked<F: Future>(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        // SAFETY: lifetimes are our caller's obligation.
        let (runnable, join) =
            unsafe { raw::allocate(future, &self.shared, &self.arena, location) };
        self.live_tasks.set(self.live_tasks.get() + 1);
        let handle = JoinHandle::from_join(raw::Join::new(join));
        if self.shutting_down.get() {
            // No new work during shutdown: the task is cancelled before it runs.
            drop(runnable);
            return handle;
        }
        stats::add(&self.counters.spawned, 1);
        self.run_queue.borrow_mut().push_back(runnable);
        handle
    }

    /// Drops every task still alive (on this thread, as `!Send` futures require),
    /// then what other threads sent.
    fn shutdown(&self) {
        trace::event!(
            DEBUG,
            core = self.shared.id,
            tasks = self.live_tasks.get(),
            in_flight = self.driver.borrow().in_flight(),
            "core shutting down: dropping its tasks, draining its ring"
        );
        self.shutting_down.set(true);
        loop {
            self.requeue_yielded();
            let registry = self.registry.take();
            for (_, waker) in registry {
                waker.wake();
            }
            let mut remote = Vec::new();
            self.shared.take(&mut remote);
            self.drop_remote(remote);
            let mut dropped = false;
            loop {
                let next = self.run_queue.borrow_mut().pop_front();
                let Some(runnable) = next else { break };
                runnable.cancel();
                dropped = true;
            }
            self.complete_io();
            if !dropped && self.registry.borrow().is_empty() && !self.shared.has_remote() {
                break;
            }
        }
        // Sleeping timers hold wakers of tasks that are gone now.
        *self.timers.borrow_mut() = Wheel::new();
        // From now on a wake from another thread is refused at once (and the
        // task, already cancelled, freed by whoever drops it).
        let late = self.shared.close();
        self.drop_remote(late);
        loop {
            let next = self.run_queue.borrow_mut().pop_front();
            let Some(runnable) = next else { break };
            runnable.cancel();
        }
        self.publish_stats();
        trace::event!(INFO, core = self.shared.id, "core stopped");
    }

    fn drop_remote(&self, items: Vec<Remote>) {
        for item in items {
            match item {
                Remote::Task(notified) => notified.schedule(),
                Remote::Release(task) => task.release(),
                Remote::Job(_) | Remote::Shutdown => {}
            }
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let driver = self.driver.borrow();
        let io = driver.ops.counters;
        Stats {
            core: self.shared.id,
            driver: driver.kind(),
            enters: io.enters,
            sqes: io.sqes,
            cqes: io.cqes,
            polls: self.counters.polls.get(),
            parks: self.counters.parks.get(),
            spins: self.counters.spins.get(),
            stalls: self.counters.stalls.get(),
            timers_fired: self.counters.timers_fired.get(),
            coop_yields: self.counters.coop_yields.get(),
            spawned: self.counters.spawned.get(),
            remote_wakes: self.counters.remote_wakes.get(),
            overflows: io.overflows,
            sq_full: io.sq_full,
            msg_rings: io.msg_rings,
            faults: io.faults,
            uring_features: driver.features(),
            in_flight: driver.in_flight(),
            timers: self.timers.borrow().len(),
            tasks: self.live_tasks.get(),
            task_bytes: self.arena.in_use(),
        }
    }
}

impl Core {
    /// Every `PUBLISH_EVERY` ticks, publishes the counters for other threads
    /// (a busy core that never parks).
    #[inline]
    fn publish_now_and_then(&self) {
        let left = self.publish_in.get() - 1;
        if left == 0 {
            self.publish_in.set(PUBLISH_EVERY);
            self.publish_stats();
        } else {
            self.publish_in.set(left);
        }
    }

    /// Publishes the counters for `Runtime::stats`: when the core parks (so
    /// an idle core's figures are exact), every `PUBLISH_EVERY` ticks, and
    /// when it stops. Never per op.
    #[cold]
    fn publish_stats(&self) {
        self.shared.stats.publish(&self.stats());
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.live_tasks.get() > 0 {
            // Tasks outlive the core (a `JoinHandle` returned from `run`, a waker
            // kept by another thread): they point at `shared`, so it must never
            // be freed. One small struct, leaked on purpose.
            std::mem::forget(self.shared.clone());
        }
        // SAFETY: `arena` is not used after this; it is taken exactly once.
        let arena = unsafe { std::mem::ManuallyDrop::take(&mut self.arena) };
        if self.live_tasks.get() > 0 {
            arena.leak();
        }
    }
}

/// Sets `CORE` for the duration of `Core::run`, even if it unwinds.
struct Enter;

impl Enter {
    fn new(core: &Core) -> Enter {
        CORE.with(|current| current.set(core));
        Enter
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CORE.with(|current| current.set(ptr::null()));
    }
}

pub(crate) fn nested_error() -> io::Error {
    io::Error::other(
        "a percore runtime is already running on this thread; starting another one \
         inside it would block it forever: spawn the future instead",
    )
}

/// Batches of polls (of `budget` each) a yielded task waits on a seeded core
/// for the queue to empty before it is queued anyway.
const YIELD_PATIENCE: u32 = 1024;

/// Ticks between two publications of a busy core's counters (a parking core
/// publishes at every park as well).
const PUBLISH_EVERY: u32 = 32;

/// The golden-ratio increment of splitmix64.
const PHI: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function: a well-mixed 64-bit value from a counter.
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The current core's clock, or the OS's outside a runtime.
pub(crate) fn clock_now() -> Instant {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    match unsafe { core.as_ref() } {
        Some(core) => core.clock.now(),
        None => Instant::now(),
    }
}

/// The current core's clock as read at most one round of its event loop ago
/// (`Clock::recent`), or the OS's clock outside a runtime.
pub(crate) fn clock_recent() -> Instant {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    match unsafe { core.as_ref() } {
        Some(core) => core.clock.recent(),
        None => Instant::now(),
    }
}

/// Holds the current core's paused clock until the guard drops (a blocking
/// job started here); `None` outside a runtime.
pub(crate) fn hold_clock() -> Option<ClockHold> {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    let core = unsafe { core.as_ref() }?;
    core.shared.holds.acquire();
    Some(ClockHold(core.shared.clone()))
}

/// See [`hold_clock`]; `Send`, dropped on whatever thread ran the job.
pub(crate) struct ClockHold(Arc<Shared>);

impl Drop for ClockHold {
    fn drop(&mut self) {
        self.0.holds.release();
    }
}

pub(crate) fn has_core() -> bool {
    CORE.try_with(|core| !core.get().is_null()).unwrap_or(false)
}

/// Runs `f` with this thread's core.
///
/// # Panics
///
/// Outside a percore runtime.
#[track_caller]
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> R {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: a non-null `CORE` points at the `Core` whose `run` is on this
    // thread's stack right now (the `Enter` guard clears it before `run` returns).
    match unsafe { core.as_ref() } {
        Some(core) => f(core),
        None => panic!("this must be called from inside a percore runtime (percore::run, Runtime)"),
    }
}

pub(crate) fn with_driver<R>(f: impl FnOnce(&mut Io) -> R) -> R {
    with_core(|core| f(&mut core.driver.borrow_mut()))
}

/// [`with_driver`], or `None` if this thread runs no core or its driver is in
/// use: for lookups with a fallback, and `Drop` impls that must not panic.
pub(crate) fn try_with_driver<R>(f: impl FnOnce(&mut Io) -> R) -> Option<R> {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    let core = unsafe { core.as_ref() }?;
    let mut driver = core.driver.try_borrow_mut().ok()?;
    Some(f(&mut driver))
}

/// Runs `f` with this core's registrar and its registered buffer and file
/// tables.
///
/// # Panics
///
/// Outside a percore runtime, or inside a driver call.
pub(crate) fn with_tables<R>(f: impl FnOnce(&mut Registrar<'_>, &mut Tables) -> R) -> R {
    with_core(|core| {
        let mut driver = core.driver.borrow_mut();
        f(&mut driver.registrar(), &mut core.tables.borrow_mut())
    })
}

/// [`with_tables`], or `None` if this thread runs no core or the driver or
/// the tables are in use (for `Drop` impls that must not panic).
pub(crate) fn try_with_tables<R>(
    f: impl FnOnce(&mut Registrar<'_>, &mut Tables) -> R,
) -> Option<R> {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    let core = unsafe { core.as_ref() }?;
    let mut driver = core.driver.try_borrow_mut().ok()?;
    let mut tables = core.tables.try_borrow_mut().ok()?;
    Some(f(&mut driver.registrar(), &mut tables))
}

/// The tables alone, for lookups (no driver borrow); `None` outside a core.
pub(crate) fn try_read_tables<R>(f: impl FnOnce(&Tables) -> R) -> Option<R> {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    let core = unsafe { core.as_ref() }?;
    let tables = core.tables.try_borrow().ok()?;
    Some(f(&tables))
}

/// Wakes the parked core of `target`: with a `MSG_RING` on this core's ring if
/// this thread runs a core of the same runtime (no syscall of its own: it goes
/// with this core's next enter), else with a write to its eventfd.
pub(crate) fn ring(target: &Shared) {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    if let Some(core) = unsafe { core.as_ref() } {
        // Only a peer is sure to outlive this core's next enter, which sends the
        // message: `peers` keeps its `Shared`, and so its ring fd, open.
        let is_peer = core
            .peers
            .get()
            .and_then(|peers| peers.get(target.id))
            .is_some_and(|peer| ptr::eq(&**peer, target));
        if let (true, Some(fd)) = (is_peer, target.ring_fd()) {
            // Busy only if a wake runs inside a driver call; then the eventfd.
            if let Ok(mut driver) = core.driver.try_borrow_mut() {
                if driver.msg_ring(fd, target.id) {
                    return;
                }
            }
        }
    }
    target.notify();
}

/// The uid of the core running on this thread, if any.
pub(crate) fn core_uid() -> Option<u64> {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    unsafe { core.as_ref() }.map(|core| core.uid)
}

/// Whether this thread runs the core that `shared` belongs to.
pub(crate) fn is_owner(shared: &Shared) -> bool {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    unsafe { core.as_ref() }.is_some_and(|core| ptr::eq(&*core.shared, shared))
}

/// Frees a task cell of `shared`'s core.
///
/// # Safety
///
/// `cell` is unused; it came from that core's arena if `from_arena`, else from
/// the global allocator with `layout`.
pub(crate) unsafe fn free_task(
    shared: &Shared,
    cell: NonNull<u8>,
    layout: Layout,
    from_arena: bool,
) {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    let home = unsafe { core.as_ref() }.filter(|core| ptr::eq(&*core.shared, shared));
    match (home, from_arena) {
        (Some(core), true) => {
            core.live_tasks.set(core.live_tasks.get() - 1);
            // SAFETY: the caller's guarantee: it came from this arena.
            unsafe { core.arena.free(cell, layout) };
        }
        (Some(core), false) => {
            core.live_tasks.set(core.live_tasks.get() - 1);
            // SAFETY: the caller's guarantee: it came from the global allocator.
            unsafe { std::alloc::dealloc(cell.as_ptr(), layout) };
        }
        // Its core is gone; that core leaked its arena because this task was alive.
        (None, true) => {}
        // SAFETY: as above.
        (None, false) => unsafe { std::alloc::dealloc(cell.as_ptr(), layout) },
    }
}

/// Schedules the task of `waker` (the current task, yielding) to run again
/// after every task ready now: at the back of the queue, or on a seeded core,
/// after the draw has taken every task queued before it.
#[inline]
pub(crate) fn yield_task(waker: &Waker) {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    match unsafe { core.as_ref() } {
        Some(core) if core.config.seed.is_some() => defer_yield(core, waker),
        _ => waker.wake_by_ref(),
    }
}

#[cold]
fn defer_yield(core: &Core, waker: &Waker) {
    core.yielded.borrow_mut().push(waker.clone());
}

/// The core running on this thread, for the cooperative budget of the task
/// it polls now; null outside a runtime. Valid for as long as that poll.
#[inline]
pub(crate) fn this_core() -> *const Core {
    CORE.try_with(Cell::get).unwrap_or(ptr::null())
}

/// A task whose cooperative budget is spent yields: see
/// [`Core::coop_defer`]; if the driver is in use (a wake from inside a
/// driver call), to the back of the run queue instead.
#[cold]
#[inline(never)]
pub(crate) fn coop_yield(core: &Core, waker: &Waker) {
    match core.driver.try_borrow_mut() {
        Ok(mut driver) => core.coop_defer(&mut driver.ops.woken, waker),
        Err(_) => {
            stats::add(&core.counters.coop_yields, 1);
            yield_task(waker);
        }
    }
}

/// Queues a task on this thread's core; only called when `is_owner` held.
pub(crate) fn push_local(runnable: Runnable) {
    with_core(|core| core.run_queue.borrow_mut().push_back(runnable));
}

/// Registers a task that is about to wait, so shutdown can wake and drop it.
pub(crate) fn register(waker: &Waker) -> u32 {
    with_core(|core| {
        let key = core.registry.borrow_mut().insert(waker.clone());
        // More than 4 billion waiting tasks would exhaust memory long before.
        u32::try_from(key).unwrap_or(raw::UNREGISTERED)
    })
}

/// The current core's policy for panics nobody observes.
pub(crate) fn unhandled_panic_policy() -> UnhandledPanic {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    unsafe { core.as_ref() }.map_or(UnhandledPanic::Report, |core| core.config.unhandled_panic)
}

/// Removes a finished task from its core's registry.
pub(crate) fn deregister(key: usize) {
    let core = CORE.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_core`.
    if let Some(core) = unsafe { core.as_ref() } {
        if !core.shutting_down.get() {
            let waker = core.registry.borrow_mut().try_remove(key);
            drop(waker); // after the borrow: it drops a task reference
        }
    }
}

/// The index of the core this code runs on.
///
/// # Panics
///
/// Outside a percore runtime.
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     assert_eq!(percore_runtime::current_core(), 0);
/// })
/// .unwrap();
/// ```
#[track_caller]
pub fn current_core() -> usize {
    with_core(|core| core.shared.id)
}

/// This core's counters.
///
/// # Panics
///
/// Outside a percore runtime.
#[track_caller]
pub fn stats() -> Stats {
    with_core(Core::stats)
}
