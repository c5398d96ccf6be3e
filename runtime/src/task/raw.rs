//! The task cell: one allocation holding a header, and the future or its output.
//!
//! Why not `async-task`: its state is one atomic word that every step of a task's
//! life (schedule, run, complete, join, detach) updates with a compare-and-swap.
//! A thread-per-core task is scheduled, run and joined on one thread, so here the
//! state is a plain `Cell` touched only by the owning core, and the only atomic is
//! the reference count — what `Waker: Send + Sync` really needs.
//!
//! # References
//!
//! Two counts keep a task alive. `local` (a `Cell`, owning core only) counts the
//! `Runnable` in the run queue, the `JoinHandle`, and one reference held for all
//! wakers together (the *group* reference). `wakers` (atomic) counts `Waker`s,
//! which may live on any thread, plus a `GONE` bit. The group reference is held
//! while the future is alive, and after that until the last waker is dropped:
//! whoever takes `wakers` to `GONE | 0` — the owning core when the future goes
//! away with no waker left, or the thread dropping the last waker — releases it
//! (another thread asks the owning core to, with `Remote::Release`). The task is
//! freed when `local` reaches zero, which only happens on the owning core.
//!
//! So spawning, running, completing and joining a task that never hands out a
//! waker costs no atomic read-modify-write at all, and a task is always freed on
//! its core.
//!
//! # Invariants
//!
//! - `state`, `local`, `key`, `join_waker` and the stage are touched only on the
//!   owning core (the thread whose `Core` owns `header.shared`).
//! - `SCHEDULED` ⇔ exactly one `Runnable` for the task sits in its core's queue.
//! - The stage holds the future until `FUTURE_GONE`, then the output while
//!   `OUTPUT`, then nothing. The output is stored only while a `JoinHandle`
//!   exists (`HANDLE`), and a handle dropped with it stored drops it. So when
//!   `local` reaches zero the stage is empty and only memory is freed.
//! - The `Shared` behind `header.shared` outlives every task that points to it:
//!   the core leaks it (one small struct) if tasks are still alive when it stops.

use std::alloc::{self, Layout};
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::arena::Arena;
use super::Panicked;
use crate::executor::{self, Remote, Shared};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};

/// In the run queue (a `Runnable` exists).
const SCHEDULED: u8 = 1 << 0;
/// Being polled right now.
const RUNNING: u8 = 1 << 1;
/// The future returned `Ready` (or panicked).
const COMPLETE: u8 = 1 << 2;
/// Cancelled: the future is (or will be) dropped without finishing.
const CLOSED: u8 = 1 << 3;
/// A `JoinHandle` exists.
const HANDLE: u8 = 1 << 4;
/// The future has been dropped.
const FUTURE_GONE: u8 = 1 << 5;
/// The output is stored in the stage.
const OUTPUT: u8 = 1 << 6;
/// The cell came from the core's arena (else from the global allocator).
const ARENA: u8 = 1 << 7;

/// Registry key of a task that is not registered.
pub(crate) const UNREGISTERED: u32 = u32::MAX;

/// What a finished task produced: its value, or the panic that ended it.
pub(crate) type Output<T> = Result<T, Box<Panicked>>;

/// Set in `Header::wakers` once the future is gone (see "References").
const GONE: usize = 1 << (usize::BITS - 1);

/// The atomic count of a task's `Waker`s, plus `GONE`: the protocol that
/// decides who releases the wakers' group reference (see "References").
///
/// Exactly one caller is told to release it, and only once the future is gone
/// and every waker is dropped; a caller told not to must not touch the task
/// again. Under `--cfg loom` the atomic is loom's, and `loom_task` below
/// checks this over every interleaving.
struct WakerCount(AtomicUsize);

impl WakerCount {
    fn new() -> WakerCount {
        WakerCount(AtomicUsize::new(0))
    }

    /// Counts one more waker, made from a waker that keeps the task alive (or
    /// from the borrowed one during a poll); returns how many there were.
    #[inline]
    fn add(&self) -> usize {
        // Relaxed, as for `Arc::clone`: made from a waker that keeps the task
        // alive.
        self.0.fetch_add(1, Ordering::Relaxed) & !GONE
    }

    /// Drops one waker, from any thread. `true`: it was the last one after the
    /// future went, so the caller releases the group reference.
    #[inline]
    fn drop_one(&self) -> bool {
        // AcqRel: our uses of the task happen before the release, whoever
        // makes it, and the release happens after everyone else's.
        self.0.fetch_sub(1, Ordering::AcqRel) == GONE | 1
    }

    /// The future is gone; owning core only, outside any poll. `true`: no
    /// waker is left, so the caller releases the group reference now; else the
    /// last waker's drop will.
    #[inline]
    fn set_gone(&self) -> bool {
        // No poll is running, so no borrowed waker exists to clone from: zero
        // wakers now means zero forever, and no atomic read-modify-write is
        // needed (the Acquire load pairs with the last drop's release).
        self.0.load(Ordering::Acquire) == 0 || self.0.fetch_or(GONE, Ordering::AcqRel) == 0
    }
}

pub(crate) struct Header {
    /// Live `Waker`s, plus `GONE`.
    wakers: WakerCount,
    /// Runnable + handle + the wakers' group reference.
    local: Cell<u32>,
    /// The task's key in its core's registry of waiting tasks.
    pub(crate) key: Cell<u32>,
    state: Cell<u8>,
    vtable: &'static Vtable,
    /// The core's remote side; valid for the task's whole life (see invariants).
    shared: NonNull<Shared>,
    pub(crate) location: &'static Location<'static>,
    /// Whoever awaits the `JoinHandle`.
    join_waker: UnsafeCell<Option<Waker>>,
}

struct Vtable {
    /// Polls the future; on `Ready` drops it and stores the output.
    poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    drop_future: unsafe fn(NonNull<Header>),
    drop_output: unsafe fn(NonNull<Header>),
    /// Moves the output into `*dst` (a `MaybeUninit<Output<T>>`).
    read_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Layout of the whole cell.
    layout: Layout,
}

#[repr(C)]
struct Cell_<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// The future, then its output; which one is live is in `Header::state`.
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<Output<F::Output>>,
}

impl<F: Future> Cell_<F> {
    const VTABLE: Vtable = Vtable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        drop_output: Self::drop_output,
        read_output: Self::read_output,
        layout: Layout::new::<Cell_<F>>(),
    };

    /// # Safety
    ///
    /// `ptr` is a live `Cell_<F>`, on its core, with the future in the stage.
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
        let cell = ptr.cast::<Cell_<F>>().as_ptr();
        // SAFETY: the caller guarantees the future is live; it stays pinned in the
        // heap cell until `drop_future`.
        let future = unsafe { Pin::new_unchecked(&mut *(*(*cell).stage.get()).future) };
        let output = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            // SAFETY: `ptr` is live (caller's obligation).
            Err(payload) => Err(Box::new(Panicked::new(payload, unsafe { ptr.as_ref() }))),
        };
        // SAFETY: the future is live and is dropped exactly once, here.
        unsafe { Self::drop_future(ptr) };
        // SAFETY: the stage is empty now; writing the output variant is sound.
        unsafe { (*(*cell).stage.get()).output = ManuallyDrop::new(output) };
        Poll::Ready(())
    }

    /// # Safety
    ///
    /// The future is live, on its core; it is dead afterwards.
    unsafe fn drop_future(ptr: NonNull<Header>) {
        let cell = ptr.cast::<Cell_<F>>().as_ptr();
        // SAFETY: the caller guarantees the future is live and not used again.
        unsafe { ManuallyDrop::drop(&mut (*(*cell).stage.get()).future) };
    }

    /// # Safety
    ///
    /// The output is live, on its core; it is dead afterwards.
    unsafe fn drop_output(ptr: NonNull<Header>) {
        let cell = ptr.cast::<Cell_<F>>().as_ptr();
        // SAFETY: the caller guarantees the output is live and not used again.
        unsafe { ManuallyDrop::drop(&mut (*(*cell).stage.get()).output) };
    }

    /// # Safety
    ///
    /// The output is live; `dst` is valid for a write of `Output<F::Output>`.
    unsafe fn read_output(ptr: NonNull<Header>, dst: *mut ()) {
        let cell = ptr.cast::<Cell_<F>>().as_ptr();
        // SAFETY: the caller guarantees the output is live and is not read again.
        unsafe {
            let output = ManuallyDrop::take(&mut (*(*cell).stage.get()).output);
            dst.cast::<Output<F::Output>>().write(output);
        }
    }
}

/// Allocates a task. Returns its first `Runnable` and its `JoinHandle` pointer.
///
/// # Safety
///
/// - If `F` is not `'static`, what it borrows must outlive the future (the caller
///   completes or drops it first).
/// - `shared` must outlive the task (the core leaks it if tasks outlive the core).
pub(crate) unsafe fn allocate<F: Future>(
    future: F,
    shared: &Shared,
    arena: &Arena,
    location: &'static Location<'static>,
) -> (Runnable, NonNull<Header>) {
    let layout = Layout::new::<Cell_<F>>();
    let (memory, from) = match arena.alloc(layout) {
        Some(memory) => (memory, ARENA),
        None => {
            // SAFETY: the layout has a non-zero size (the header alone is).
            let memory = unsafe { alloc::alloc(layout) };
            match NonNull::new(memory) {
                Some(memory) => (memory, 0),
                None => alloc::handle_alloc_error(layout),
            }
        }
    };
    let cell = Cell_ {
        header: Header {
            wakers: WakerCount::new(),
            // The runnable, the handle, and the wakers' group reference.
            local: Cell::new(3),
            key: Cell::new(UNREGISTERED),
            state: Cell::new(SCHEDULED | HANDLE | from),
            vtable: &Cell_::<F>::VTABLE,
            shared: NonNull::from(shared),
            location,
            join_waker: UnsafeCell::new(None),
        },
        stage: UnsafeCell::new(Stage {
            future: ManuallyDrop::new(future),
        }),
    };
    let ptr = memory.cast::<Cell_<F>>();
    // SAFETY: `memory` is fresh, writable and laid out for a `Cell_<F>`.
    unsafe { ptr.as_ptr().write(cell) };
    (Runnable(ptr.cast()), ptr.cast())
}

fn header<'a>(ptr: NonNull<Header>) -> &'a Header {
    // SAFETY: every caller holds a reference to the task, so it is live.
    unsafe { ptr.as_ref() }
}

fn shared<'a>(h: &Header) -> &'a Shared {
    // SAFETY: the `Shared` outlives the task (module invariants).
    unsafe { h.shared.as_ref() }
}

/// Adds a local reference. Owning core only.
fn local_ref(h: &Header) {
    h.local.set(h.local.get() + 1);
}

/// Drops a local reference; the last one frees the task. Owning core only.
fn local_unref(ptr: NonNull<Header>) {
    let h = header(ptr);
    let left = h.local.get() - 1;
    h.local.set(left);
    if left == 0 {
        let layout = h.vtable.layout;
        let from_arena = h.state.get() & ARENA != 0;
        let shared = shared(h);
        // SAFETY: no reference is left, and the stage is empty (module
        // invariants): only the header has drop glue (its join waker slot).
        unsafe { ptr::drop_in_place(ptr.as_ptr()) };
        // SAFETY: the cell is unused; it came from the arena of `shared`'s core if
        // `from_arena`, else from the global allocator with `layout`.
        unsafe { executor::free_task(shared, ptr.cast(), layout, from_arena) };
    }
}

/// Drops one waker reference, from any thread; the last one after the future is
/// gone releases the group reference.
fn waker_unref(ptr: NonNull<Header>) {
    let h = header(ptr);
    if h.wakers.drop_one() {
        release_group(ptr);
    }
}

/// Releases the wakers' group reference, from any thread.
fn release_group(ptr: NonNull<Header>) {
    let h = header(ptr);
    if executor::is_owner(shared(h)) {
        return local_unref(ptr);
    }
    // If the core is gone, the push fails and the task is leaked (a `TaskRef`
    // frees nothing when dropped): the only sound choice.
    let _ = shared(h).push(Remote::Release(TaskRef(ptr)));
}

/// The future is gone: no new waker can appear, so the group reference goes
/// now, or with the last waker. Owning core only, outside any poll.
fn future_gone(ptr: NonNull<Header>) {
    let h = header(ptr);
    if h.wakers.set_gone() {
        local_unref(ptr);
    }
}

/// A request, from another thread, to drop a task's group reference on its core.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a `TaskRef` only travels to the task's own core, which alone uses it.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// Drops the group reference; runs on the task's core.
    pub(crate) fn release(self) {
        local_unref(self.0);
    }
}

/// A task to be scheduled, from a wake on another thread; holds one waker reference.
pub(crate) struct Notified(NonNull<Header>);

// SAFETY: a `Notified` only carries a waker reference (atomic count) to the task's
// own core, which alone looks at the state.
unsafe impl Send for Notified {}

impl Notified {
    /// Schedules the task on its (the current) core.
    pub(crate) fn schedule(self) {
        let ptr = ManuallyDrop::new(self).0;
        schedule_local(ptr);
        waker_unref(ptr);
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        waker_unref(self.0);
    }
}

/// A scheduled task in a run queue; holds one local reference.
pub(crate) struct Runnable(NonNull<Header>);

impl Runnable {
    pub(crate) fn location(&self) -> &'static Location<'static> {
        header(self.0).location
    }

    /// Polls the task once.
    pub(crate) fn run(self) {
        let ptr = ManuallyDrop::new(self).0;
        let h = header(ptr);
        let state = h.state.get() & !SCHEDULED;
        if state & (CLOSED | COMPLETE | FUTURE_GONE) != 0 {
            h.state.set(state);
            drop_future(ptr);
            return local_unref(ptr);
        }
        h.state.set(state | RUNNING);
        let waker = ManuallyDrop::new(borrowed_waker(ptr));
        let mut cx = Context::from_waker(&waker);
        // SAFETY: we are on the task's core, and the future is live (not
        // COMPLETE, not CLOSED, so not FUTURE_GONE).
        let poll = unsafe { (h.vtable.poll)(ptr, &mut cx) };
        let state = h.state.get() & !RUNNING;
        h.state.set(state);
        match poll {
            Poll::Ready(()) => complete(ptr),
            // Aborted during its own poll.
            Poll::Pending if state & CLOSED != 0 => drop_future(ptr),
            Poll::Pending => {
                if h.key.get() == UNREGISTERED {
                    // The first time it waits, the task becomes findable by shutdown.
                    h.key.set(executor::register(&waker));
                }
            }
        }
        local_unref(ptr);
    }

    /// Cancels the task without polling it (shutdown).
    pub(crate) fn cancel(self) {
        drop(self);
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        let ptr = self.0;
        let h = header(ptr);
        h.state.set((h.state.get() & !SCHEDULED) | CLOSED);
        drop_future(ptr);
        local_unref(ptr);
    }
}

/// The future finished (its output is in the stage): keep the output for the
/// handle or drop it, and wake the joiner.
fn complete(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get() | COMPLETE | FUTURE_GONE;
    if state & HANDLE != 0 {
        h.state.set(state | OUTPUT);
    } else {
        h.state.set(state);
        // SAFETY: the output was just stored and nobody can take it: drop it (a
        // panic nobody observes is reported by `Panicked`'s drop).
        unsafe { (h.vtable.drop_output)(ptr) };
    }
    deregister(h);
    wake_joiner(h);
    future_gone(ptr);
}

/// Drops the future if it is still there (cancellation), and wakes the joiner.
/// The caller holds a local reference.
fn drop_future(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get();
    if state & FUTURE_GONE != 0 {
        return;
    }
    h.state.set(state | FUTURE_GONE);
    // SAFETY: on the task's core (run queues and handles are core-local); the
    // future is live, not being polled, and never touched again.
    unsafe { (h.vtable.drop_future)(ptr) };
    deregister(h);
    wake_joiner(h);
    future_gone(ptr);
}

fn deregister(h: &Header) {
    let key = h.key.replace(UNREGISTERED);
    if key != UNREGISTERED {
        executor::deregister(key as usize);
    }
}

fn wake_joiner(h: &Header) {
    // SAFETY: the join waker is only touched on the task's core, never while
    // borrowed elsewhere.
    if let Some(waker) = unsafe { (*h.join_waker.get()).take() } {
        waker.wake();
    }
}

/// Queues the task on its core if it can run; takes its own local reference.
/// Owning core only.
fn schedule_local(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get();
    if state & (SCHEDULED | COMPLETE | FUTURE_GONE) != 0 {
        return; // already queued, or nothing left to run
    }
    h.state.set(state | SCHEDULED);
    local_ref(h);
    executor::push_local(Runnable(ptr));
}

/// Wakes the task from any thread, consuming one waker reference.
fn wake(ptr: NonNull<Header>) {
    let h = header(ptr);
    if executor::is_owner(shared(h)) {
        schedule_local(ptr);
        return waker_unref(ptr);
    }
    if let Err(Remote::Task(notified)) = shared(h).push(Remote::Task(Notified(ptr))) {
        // The core is gone; the task was cancelled with it.
        drop(notified);
    }
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// A waker for the task without a reference of its own; must not be dropped.
fn borrowed_waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold the `RawWaker` contract for a pointer
    // to a live task header, and are sound on any thread (see "References").
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE)) }
}

fn waker_ptr(data: *const ()) -> NonNull<Header> {
    // SAFETY: wakers are only made from task header pointers, never null.
    unsafe { NonNull::new_unchecked(data as *mut Header) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    if header(waker_ptr(data)).wakers.add() > usize::MAX / 4 {
        std::process::abort();
    }
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    wake(waker_ptr(data));
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    let ptr = waker_ptr(data);
    let h = header(ptr);
    if executor::is_owner(shared(h)) {
        return schedule_local(ptr);
    }
    h.wakers.add();
    wake(ptr);
}

unsafe fn waker_drop(data: *const ()) {
    waker_unref(waker_ptr(data));
}

/// A waker for an op of this core to keep: if `waker` is one of this core's
/// tasks, a *core-local* waker holding a local reference (no atomic on clone,
/// wake or drop); else a plain clone.
///
/// A core-local waker must never leave its core's thread: the driver keeps it
/// in the op table and wakes or drops it on the core.
pub(crate) fn op_waker(waker: &Waker) -> Waker {
    if ptr::eq(waker.vtable(), &WAKER_VTABLE) || ptr::eq(waker.vtable(), &LOCAL_VTABLE) {
        let ptr = waker_ptr(waker.data());
        if executor::is_owner(shared(header(ptr))) {
            local_ref(header(ptr));
            // SAFETY: LOCAL_VTABLE's functions uphold the `RawWaker` contract for
            // a live task header on its own core, which is the only place this
            // waker is used (see above); it holds the local reference just taken.
            return unsafe {
                Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &LOCAL_VTABLE))
            };
        }
    }
    waker.clone()
}

/// Whether `stored` (from `op_waker`) wakes the same task as `waker`.
pub(crate) fn same_task(stored: &Waker, waker: &Waker) -> bool {
    stored.will_wake(waker)
        || (ptr::eq(stored.vtable(), &LOCAL_VTABLE)
            && ptr::eq(waker.vtable(), &WAKER_VTABLE)
            && stored.data() == waker.data())
}

static LOCAL_VTABLE: RawWakerVTable =
    RawWakerVTable::new(local_clone, local_wake, local_wake_by_ref, local_drop);

unsafe fn local_clone(data: *const ()) -> RawWaker {
    local_ref(header(waker_ptr(data)));
    RawWaker::new(data, &LOCAL_VTABLE)
}

unsafe fn local_wake(data: *const ()) {
    let ptr = waker_ptr(data);
    schedule_local(ptr);
    local_unref(ptr);
}

unsafe fn local_wake_by_ref(data: *const ()) {
    schedule_local(waker_ptr(data));
}

unsafe fn local_drop(data: *const ()) {
    local_unref(waker_ptr(data));
}

/// The join side, owned by a `JoinHandle` on the task's core; a local reference.
pub(crate) struct Join(NonNull<Header>);

impl Join {
    pub(crate) fn new(ptr: NonNull<Header>) -> Join {
        Join(ptr)
    }

    pub(crate) fn is_finished(&self) -> bool {
        header(self.0).state.get() & (COMPLETE | FUTURE_GONE) != 0
    }

    /// Polls for the output: `Some(Ok)`/`Some(Err(panic))`, `None` if cancelled.
    pub(crate) fn poll<T>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output<T>>> {
        let h = header(self.0);
        let state = h.state.get();
        if state & OUTPUT != 0 {
            h.state.set(state & !OUTPUT);
            let mut output = std::mem::MaybeUninit::<Output<T>>::uninit();
            // SAFETY: the output is live and of type `Output<T>` (the handle was
            // made with the task's output type); it is moved out exactly once.
            unsafe { (h.vtable.read_output)(self.0, output.as_mut_ptr().cast()) };
            // SAFETY: `read_output` initialised it.
            return Poll::Ready(Some(unsafe { output.assume_init() }));
        }
        if state & FUTURE_GONE != 0 {
            return Poll::Ready(None);
        }
        // SAFETY: the join waker is touched only on this core, by this handle and
        // by `wake_joiner`, never at the same time.
        let slot = unsafe { &mut *h.join_waker.get() };
        match slot {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Cancels the task; an idle task's future is dropped right away.
    pub(crate) fn abort(&self) {
        let h = header(self.0);
        let state = h.state.get();
        if state & (COMPLETE | CLOSED | FUTURE_GONE) != 0 {
            return;
        }
        h.state.set(state | CLOSED);
        if state & (SCHEDULED | RUNNING) == 0 {
            // Idle: nothing will run it again, so drop it here (our handle's
            // reference keeps the cell alive meanwhile).
            drop_future(self.0);
        }
        // Scheduled: its runnable sees CLOSED. Running (aborting itself): `run`
        // sees CLOSED after the poll.
    }
}

impl Drop for Join {
    fn drop(&mut self) {
        let h = header(self.0);
        let state = h.state.get();
        h.state.set(state & !(HANDLE | OUTPUT));
        if state & OUTPUT != 0 {
            // SAFETY: the output is live and nobody else can take it now.
            unsafe { (h.vtable.drop_output)(self.0) };
        }
        // SAFETY: as in `Join::poll`.
        drop(unsafe { (*h.join_waker.get()).take() });
        local_unref(self.0);
    }
}

/// The panic payload holder needs the task's spawn site and core.
impl Panicked {
    fn new(payload: Box<dyn Any + Send>, h: &Header) -> Panicked {
        Panicked {
            payload: Some(payload),
            location: h.location,
            core: shared(h).id,
            policy: executor::unhandled_panic_policy(),
        }
    }
}

/// Loom models of [`WakerCount`]: who releases the wakers' group reference
/// when wakers on other threads race with the owning core dropping the
/// future. The task's memory is a loom `UnsafeCell` that every holder of a
/// reference reads and the release overwrites (as `local_unref` frees it), so
/// loom reports a use that is not ordered before the release; the release
/// itself must happen exactly once.
///
/// Run with `RUSTFLAGS="--cfg loom" cargo test -p percore-runtime --release --lib loom_task`.
#[cfg(all(test, loom))]
mod loom_task {
    use super::WakerCount;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    const LIVE: u32 = 1;
    const FREED: u32 = 2;

    /// The parts of a task cell the protocol is about.
    struct Task {
        wakers: WakerCount,
        /// The cell's memory, freed by the release of the group reference.
        memory: UnsafeCell<u32>,
        /// Group-reference releases so far.
        releases: AtomicUsize,
    }

    impl Task {
        fn new() -> Arc<Task> {
            Arc::new(Task {
                wakers: WakerCount::new(),
                memory: UnsafeCell::new(LIVE),
                releases: AtomicUsize::new(0),
            })
        }

        /// A use of the task by a holder of a reference (reading its header).
        fn touch(&self) {
            // SAFETY: a shared read; loom reports it if it races with the
            // release's write.
            let memory = self.memory.with(|memory| unsafe { *memory });
            assert_eq!(memory, LIVE, "task used after its release");
        }

        /// Releases the group reference: here it frees the task.
        fn release(&self) {
            self.releases.fetch_add(1, Relaxed);
            // SAFETY: an exclusive write; loom reports it if it races with
            // any use.
            self.memory.with_mut(|memory| unsafe {
                assert_eq!(*memory, LIVE, "group reference released twice");
                *memory = FREED;
            });
        }

        /// A new waker from one that keeps the task alive (`waker_clone`).
        fn clone_waker(&self) -> Waker<'_> {
            self.touch();
            self.wakers.add();
            Waker(self)
        }

        /// The owning core drops the future (`future_gone`).
        fn future_gone(&self) {
            self.touch();
            if self.wakers.set_gone() {
                self.release();
            }
        }

        /// Checked once every thread is done.
        fn released_once(&self) {
            assert_eq!(self.releases.load(Relaxed), 1, "released exactly once");
        }
    }

    /// One waker reference (a `Waker`, or a `Notified` carrying one).
    struct Waker<'a>(&'a Task);

    impl Drop for Waker<'_> {
        /// `waker_unref`: the last one after the future went releases.
        fn drop(&mut self) {
            self.0.touch();
            if self.0.wakers.drop_one() {
                self.0.release();
            }
        }
    }

    /// A waker reference that can cross to another loom thread.
    struct SentWaker(Arc<Task>);

    impl SentWaker {
        /// A waker made on the owning core during a poll (from the borrowed
        /// waker), to be moved to another thread.
        fn new(task: &Arc<Task>) -> SentWaker {
            std::mem::forget(task.clone_waker());
            SentWaker(task.clone())
        }

        fn clone_waker(&self) -> SentWaker {
            std::mem::forget(self.0.clone_waker());
            SentWaker(self.0.clone())
        }
    }

    impl Drop for SentWaker {
        fn drop(&mut self) {
            drop(Waker(&self.0));
        }
    }

    /// Runs `f` under loom over every interleaving: with no preemption bound
    /// (unless `LOOM_MAX_PREEMPTIONS` sets one) these take about a second.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        loom::model::Builder::new().check(f);
    }

    #[test]
    fn loom_last_waker_dropped_elsewhere_races_the_future_going() {
        model(|| {
            let task = Task::new();
            let waker = SentWaker::new(&task);
            let elsewhere = thread::spawn(move || drop(waker));
            task.future_gone();
            elsewhere.join().unwrap();
            task.released_once();
        });
    }

    #[test]
    fn loom_wakers_cloned_and_dropped_on_two_threads() {
        // One thread clones its waker and drops both; another drops its own;
        // the owner drops the future meanwhile.
        model(|| {
            let task = Task::new();
            let first = SentWaker::new(&task);
            let second = SentWaker::new(&task);
            let cloner = thread::spawn(move || {
                let clone = first.clone_waker();
                drop(first);
                drop(clone);
            });
            let dropper = thread::spawn(move || drop(second));
            task.future_gone();
            cloner.join().unwrap();
            dropper.join().unwrap();
            task.released_once();
        });
    }

    #[test]
    fn loom_a_remote_wake_hands_its_reference_to_the_owner() {
        // `wake_by_ref` from another thread: a new reference travels to the
        // owning core in a `Notified` (here a mutex-guarded inbox), which
        // drops it there, before or after the future goes.
        model(|| {
            let task = Task::new();
            let inbox = Arc::new(Mutex::new(Vec::new()));
            let waker = SentWaker::new(&task);
            let waking = {
                let inbox = inbox.clone();
                thread::spawn(move || {
                    let notified = waker.clone_waker();
                    inbox.lock().unwrap().push(notified);
                    drop(waker);
                })
            };
            let early: Vec<SentWaker> = std::mem::take(&mut *inbox.lock().unwrap());
            drop(early);
            task.future_gone();
            waking.join().unwrap();
            let late: Vec<SentWaker> = std::mem::take(&mut *inbox.lock().unwrap());
            drop(late);
            task.released_once();
        });
    }
}
