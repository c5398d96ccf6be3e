//! The HTTP server: HTTP/1.1 and HTTP/2 on every core.
