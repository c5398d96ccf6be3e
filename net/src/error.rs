//! Context for errors of cold paths (bind, connect, listen): the operation and
//! address, with the OS error kept as `source()` and its kind kept.

use std::error::Error;
use std::fmt;
use std::io;

/// Wraps `err` in an error that says what was being done; the kind stays.
pub(crate) fn context(err: io::Error, what: impl Into<String>) -> io::Error {
    io::Error::new(
        err.kind(),
        Context {
            what: what.into(),
            source: err,
        },
    )
}

#[derive(Debug)]
struct Context {
    what: String,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}
