//! The one way this crate runs blocking calls (what io_uring has no op for).

use std::io;

/// Runs `f` on the runtime's blocking pool; a panic in `f` or a pool that could
/// not start a thread becomes an `io::Error`.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match percore_runtime::spawn_blocking(f).await {
        Ok(res) => res,
        Err(err) => Err(io::Error::other(format!("blocking pool: {err}"))),
    }
}
