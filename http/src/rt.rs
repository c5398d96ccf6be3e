//! hyper's runtime hooks on percore: an executor that spawns on the calling
//! core and a timer on the core's clock.
//!
//! hyper asks for an [`Executor`](hyper::rt::Executor) to run HTTP/2's
//! background work and a [`Timer`](hyper::rt::Timer) for its timeouts. percore's
//! tasks stay on the core that spawns them, so the futures need not be `Send`.

use std::future::Future;

/// percore's timers as hyper's [`Timer`](hyper::rt::Timer): sleeps on the core
/// that polls them, on that core's clock (so paused time in tests applies).
pub use percore_net::compat::HyperTimer as Timer;

/// hyper's [`Executor`](hyper::rt::Executor) on percore: each future becomes a
/// task on the calling core, detached (it runs to its end on its own).
///
/// # Examples
///
/// ```
/// use hyper::rt::Executor as _;
/// use percore_http::rt::Executor;
///
/// percore::run(async {
///     Executor.execute(async { /* an HTTP/2 stream's work */ });
/// })?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        drop(percore_runtime::spawn(future));
    }
}
