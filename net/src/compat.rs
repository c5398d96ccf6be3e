//! Adapters to the poll-based I/O traits (todo)
