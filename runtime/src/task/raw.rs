//! The task cell: one allocation holding a header, and the future or its output.
//!
//! Why not `async-task`: its state is one atomic word that every step of a task's
//! life (schedule, run, complete, join, detach) updates with a compare-and-swap.
//! A thread-per-core task is scheduled, run and joined on one thread, so here the
//! state is a plain `Cell` touched only by the owning core, and the only atomic is
//! the reference count — what `Waker: Send + Sync` really needs.
//!
//! # Invariants
//!
//! - `state` is read and written only on the owning core (the thread whose
//!   `Core` is `header.shared`), or by whoever drops the *last* reference (then
//!   nobody else can touch the task; the `Acquire` fence orders it after every
//!   earlier write).
//! - Each `Runnable`, `Notified`, `JoinHandle` and `Waker` holds one reference.
//! - `SCHEDULED` ⇔ exactly one `Runnable` for the task sits in its core's run queue.
//! - The stage holds the future until `FUTURE_GONE`, then the output while
//!   `OUTPUT`, then nothing. Only the owning core touches the stage, except the
//!   last reference holder when `FUTURE_GONE` and not `OUTPUT` (nothing to touch).
//! - The output is stored only while a `JoinHandle` exists (`HANDLE`); a handle
//!   dropped with the output stored drops it (on the owning core: the handle is
//!   `!Send`). So when the count reaches zero there is never an output left, and a
//!   future left is dropped on its core (`Remote::Destroy`) — `!Send` data never
//!   crosses threads.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{self, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::Panicked;
use crate::executor::{self, Remote, Shared};

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

/// Registry key of a task that is not registered.
pub(crate) const UNREGISTERED: u32 = u32::MAX;

/// What a finished task produced: its value, or the panic that ended it.
pub(crate) type Output<T> = Result<T, Box<Panicked>>;

pub(crate) struct Header {
    refs: AtomicUsize,
    state: Cell<u8>,
    /// The task's key in its core's registry of waiting tasks.
    pub(crate) key: Cell<u32>,
    vtable: &'static Vtable,
    pub(crate) shared: Arc<Shared>,
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
    dealloc: unsafe fn(NonNull<Header>),
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
        dealloc: Self::dealloc,
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

    /// # Safety
    ///
    /// No reference is left and the stage holds nothing live.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the cell was made by `Box::into_raw` in `allocate`; the union's
        // contents are `ManuallyDrop`, so only the header is dropped.
        drop(unsafe { Box::from_raw(ptr.cast::<Cell_<F>>().as_ptr()) });
    }
}

/// Allocates a task. Returns its first `Runnable` and its `JoinHandle` pointer.
///
/// # Safety
///
/// If `F` is not `'static`, what it borrows must outlive the future (the caller
/// completes or drops it first).
pub(crate) unsafe fn allocate<F: Future>(
    future: F,
    shared: Arc<Shared>,
    location: &'static Location<'static>,
) -> (Runnable, NonNull<Header>) {
    let cell = Box::new(Cell_ {
        header: Header {
            refs: AtomicUsize::new(2),
            state: Cell::new(SCHEDULED | HANDLE),
            key: Cell::new(UNREGISTERED),
            vtable: &Cell_::<F>::VTABLE,
            shared,
            location,
            join_waker: UnsafeCell::new(None),
        },
        stage: UnsafeCell::new(Stage {
            future: ManuallyDrop::new(future),
        }),
    });
    // SAFETY: `Box::into_raw` never returns null.
    let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(cell)) }.cast::<Header>();
    (Runnable(ptr), ptr)
}

fn header<'a>(ptr: NonNull<Header>) -> &'a Header {
    // SAFETY: every caller holds a reference to the task, so it is live.
    unsafe { ptr.as_ref() }
}

/// Adds a reference.
fn add_ref(ptr: NonNull<Header>) {
    // Relaxed, as for `Arc::clone`: the new reference is made from an existing one.
    let old = header(ptr).refs.fetch_add(1, Ordering::Relaxed);
    if old > usize::MAX / 2 {
        std::process::abort();
    }
}

/// Drops a reference; the last one frees the task (or sends it home to be freed).
///
/// # Safety
///
/// The caller owns one reference to the live task at `ptr`.
unsafe fn drop_ref(ptr: NonNull<Header>) {
    if header(ptr).refs.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    atomic::fence(Ordering::Acquire);
    let h = header(ptr);
    if h.state.get() & FUTURE_GONE == 0 && !executor::is_owner(&h.shared) {
        // The future may be `!Send`: it is dropped on its own core.
        let shared = h.shared.clone();
        // If its core is gone, the push fails and the task is leaked (a `TaskRef`
        // frees nothing when dropped): the only sound choice.
        let _ = shared.push(Remote::Destroy(TaskRef(ptr)));
        return;
    }
    // SAFETY: this was the last reference, and we are on the task's core or the
    // future is gone; no output is left (see the module invariants).
    unsafe { destroy(ptr) };
}

/// Drops what is left of the future, then frees the cell.
///
/// # Safety
///
/// No reference is left; on the task's core if the future is still live.
unsafe fn destroy(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get();
    if state & FUTURE_GONE == 0 {
        // SAFETY: the future is live and nothing else can reach it.
        unsafe { (h.vtable.drop_future)(ptr) };
    }
    if state & OUTPUT != 0 {
        // SAFETY: the output is live and nothing else can reach it.
        unsafe { (h.vtable.drop_output)(ptr) };
    }
    let dealloc = h.vtable.dealloc;
    // SAFETY: nothing is live in the stage any more.
    unsafe { dealloc(ptr) };
}

/// A task sent home to be destroyed (its last reference was dropped elsewhere).
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a `TaskRef` only travels to the task's own core, which destroys it.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// Frees the task; runs on its core.
    pub(crate) fn destroy(self) {
        // SAFETY: the sender dropped the last reference and we are on the core.
        unsafe { destroy(self.0) }
    }
}

/// A task to be scheduled, from a wake on another thread; holds one reference.
pub(crate) struct Notified(NonNull<Header>);

// SAFETY: a `Notified` only carries a reference (atomic count) to the task's own
// core, which alone looks at the state.
unsafe impl Send for Notified {}

impl Notified {
    /// Schedules the task on its (the current) core.
    pub(crate) fn schedule(self) {
        let ptr = ManuallyDrop::new(self).0;
        schedule_local(ptr);
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { drop_ref(self.0) }
    }
}

/// A scheduled task in a run queue; holds one reference.
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
        if state & (CLOSED | COMPLETE) != 0 {
            h.state.set(state);
            return finish_closed(ptr);
        }
        h.state.set(state | RUNNING);
        let waker = ManuallyDrop::new(borrowed_waker(ptr));
        let mut cx = Context::from_waker(&waker);
        // SAFETY: we are on the task's core, and the future is live (not
        // COMPLETE, not CLOSED, so not FUTURE_GONE).
        let poll = unsafe { (h.vtable.poll)(ptr, &mut cx) };
        let state = h.state.get() & !RUNNING;
        match poll {
            Poll::Ready(()) => complete(ptr, state),
            Poll::Pending if state & CLOSED != 0 => {
                h.state.set(state);
                finish_closed(ptr);
            }
            Poll::Pending => {
                h.state.set(state);
                if h.key.get() == UNREGISTERED {
                    // The first time it waits, the task becomes findable by shutdown.
                    h.key.set(executor::register(&waker));
                }
                // SAFETY: the runnable's reference.
                unsafe { drop_ref(ptr) };
            }
        }
    }

    /// Cancels the task without polling it (shutdown).
    pub(crate) fn cancel(self) {
        let ptr = ManuallyDrop::new(self).0;
        let h = header(ptr);
        h.state.set((h.state.get() & !SCHEDULED) | CLOSED);
        finish_closed(ptr);
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        let ptr = self.0;
        let h = header(ptr);
        h.state.set((h.state.get() & !SCHEDULED) | CLOSED);
        finish_closed(ptr);
    }
}

/// The future finished: store or drop the output, wake the joiner, drop the
/// runnable's reference.
fn complete(ptr: NonNull<Header>, state: u8) {
    let h = header(ptr);
    let mut state = state | COMPLETE | FUTURE_GONE;
    if state & HANDLE != 0 {
        state |= OUTPUT;
        h.state.set(state);
    } else {
        h.state.set(state);
        // SAFETY: the output was just stored, nobody can take it: drop it (a panic
        // nobody observes is reported by `Panicked`'s drop).
        unsafe { (h.vtable.drop_output)(ptr) };
    }
    deregister(h);
    wake_joiner(h);
    // SAFETY: the runnable's reference.
    unsafe { drop_ref(ptr) };
}

/// The task was cancelled: drop its future if still there, wake the joiner, drop
/// the caller's reference.
fn finish_closed(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get();
    if state & FUTURE_GONE == 0 {
        h.state.set(state | FUTURE_GONE);
        // SAFETY: on the task's core (run queues are core-local); the future is
        // live and is never touched again.
        unsafe { (h.vtable.drop_future)(ptr) };
    }
    deregister(h);
    wake_joiner(h);
    // SAFETY: the caller's reference.
    unsafe { drop_ref(ptr) };
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

/// Makes the task ready to run, consuming one reference. Must run on its core.
fn schedule_local(ptr: NonNull<Header>) {
    let h = header(ptr);
    let state = h.state.get();
    if state & (SCHEDULED | COMPLETE | FUTURE_GONE) != 0 {
        // Already queued, or nothing left to run.
        // SAFETY: the consumed reference.
        return unsafe { drop_ref(ptr) };
    }
    h.state.set(state | SCHEDULED);
    executor::push_local(Runnable(ptr));
}

/// Wakes the task from any thread, consuming one reference.
fn wake(ptr: NonNull<Header>) {
    let h = header(ptr);
    if executor::is_owner(&h.shared) {
        return schedule_local(ptr);
    }
    // Our own `Arc`: once pushed, the task may be freed by its core before `push`
    // returns, and with it the task's `Arc<Shared>`.
    let shared = h.shared.clone();
    if let Err(Remote::Task(notified)) = shared.push(Remote::Task(Notified(ptr))) {
        // The core is gone; the task was cancelled with it.
        drop(notified);
    }
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// A waker for the task without taking a reference; must not be dropped.
fn borrowed_waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold the `RawWaker` contract for a pointer
    // to a live task header, and are sound on any thread (see the invariants).
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE)) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live task header (a waker holds a reference).
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    add_ref(ptr);
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: as in `waker_clone`; the waker's reference is consumed.
    wake(unsafe { NonNull::new_unchecked(data as *mut Header) });
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: as in `waker_clone`.
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    add_ref(ptr);
    wake(ptr);
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: as in `waker_clone`; the waker's reference is dropped.
    unsafe { drop_ref(NonNull::new_unchecked(data as *mut Header)) };
}

/// The join side, owned by a `JoinHandle` on the task's core.
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
            // Idle: nothing will run it again, so finish it here.
            add_ref(self.0);
            finish_closed(self.0);
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
        // SAFETY: the handle's reference.
        unsafe { drop_ref(self.0) };
    }
}

/// The panic payload holder needs the task's spawn site and core.
impl Panicked {
    fn new(payload: Box<dyn Any + Send>, h: &Header) -> Panicked {
        Panicked {
            payload: Some(payload),
            location: h.location,
            core: h.shared.id,
            policy: executor::unhandled_panic_policy(),
        }
    }
}
