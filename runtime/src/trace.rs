//! Events for the `tracing` feature: [`event!`](crate::__event) compiles to
//! `tracing::event!` with the feature and to nothing without it.
//!
//! Events mark what an operator wants to see once, not what happens per op or
//! per tick: ring setup and the backend chosen (and why `Auto` fell back),
//! cores starting and stopping, the steps of a shutdown, stalls, completion
//! queue overflow, and accept back-off (percore-net). The macro takes
//! `tracing::event!`'s field syntax (`name = value`, `name = %value`,
//! `name = ?value`, a bare `name`) and a message with format arguments; the
//! level is one of `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`.
//!
//! Without the feature the arguments sit in an `if false` block: they are
//! type-checked (so a variable used only in an event is not "unused") but never
//! evaluated, and the optimizer removes the block.

/// Emits a `tracing` event (feature `tracing`), or nothing: see the module
/// docs of `percore_runtime::trace`. Not a public API: percore's crates use it.
#[cfg(feature = "tracing")]
#[doc(hidden)]
#[macro_export]
macro_rules! __event {
    ($level:ident, $($rest:tt)+) => {
        $crate::__private::tracing::event!($crate::__private::tracing::Level::$level, $($rest)+)
    };
}

/// Emits a `tracing` event (feature `tracing`), or nothing: see the module
/// docs of `percore_runtime::trace`. Not a public API: percore's crates use it.
#[cfg(not(feature = "tracing"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __event {
    ($level:ident, $($rest:tt)+) => {
        if false {
            $crate::__event_args!($($rest)+);
        }
    };
}

/// Without the feature: refers to every value an event names, evaluating none
/// (the caller wraps it in `if false`).
#[cfg(not(feature = "tracing"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __event_args {
    () => {};
    ($message:literal $(, $arg:expr)* $(,)?) => {
        let _ = ::std::format_args!($message $(, $arg)*);
    };
    ($name:ident = % $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $($crate::__event_args!($($rest)*);)?
    };
    ($name:ident = ? $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $($crate::__event_args!($($rest)*);)?
    };
    ($name:ident = $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $($crate::__event_args!($($rest)*);)?
    };
    (% $name:ident $(, $($rest:tt)*)?) => {
        let _ = &$name;
        $($crate::__event_args!($($rest)*);)?
    };
    (? $name:ident $(, $($rest:tt)*)?) => {
        let _ = &$name;
        $($crate::__event_args!($($rest)*);)?
    };
    ($name:ident $(, $($rest:tt)*)?) => {
        let _ = &$name;
        $($crate::__event_args!($($rest)*);)?
    };
}

pub(crate) use crate::__event as event;

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    #[test]
    fn arguments_are_evaluated_only_with_the_feature() {
        let evaluated = Cell::new(0);
        let count = || {
            evaluated.set(evaluated.get() + 1);
            7
        };
        let only_here = 3;
        let err = std::io::Error::from_raw_os_error(libc::EMFILE);
        super::event!(
            INFO,
            first = count(),
            second = %err,
            third = ?only_here,
            only_here,
            "a message {} {}",
            count(),
            only_here
        );
        // With the feature, `tracing` evaluates them only for a subscriber
        // that wants the event (none here).
        assert_eq!(evaluated.get(), 0);
    }
}
