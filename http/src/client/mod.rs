//! The HTTP client: a per-core connection pool.
