//! percore-bench: percore's load tools and demo, as a library so the
//! `percore-bench` binary, its tests and the side-by-side benches share them.
//!
//! - [`load`]: the load generator (echo and HTTP, closed or open loop, HDR latency);
//! - [`server`]: percore's echo and hello-world HTTP servers;
//! - [`net`]: `percore-bench net`, one server or percore against its peers;
//! - [`http_serve`]: the hello-world service on percore-http (`serve http
//!   --server percore-http`); [`http_compare`]: it against hyper on tokio,
//!   loaded by wrk and h2load (the `http_compare` bench);
//! - [`child`]: servers in child processes, their CPU time and counters;
//! - [`outside`]: clients that are not percore (wrk, a tokio client) as child processes;
//! - [`output`], [`plot`]: the table, `--json` and `--plot` of `net`;
//! - [`fs`], [`fs_job`], [`fs_layout`], [`fio`], [`fs_output`]: `percore-bench
//!   fs`, its percore job, its file, fio as its peer, its table and JSON;
//! - [`cli`], [`demo`], [`report`], [`progress`]: the command line, the demo,
//!   the plain table, the progress bar.
//!
//! The peers (tokio, monoio) are dev-dependencies: their servers live in the
//! `peer_server` example and the benches, never in this library.

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod child;
pub mod cli;
pub mod cpu;
pub mod demo;
pub mod fio;
pub mod fs;
pub mod fs_job;
pub mod fs_layout;
pub mod fs_output;
pub mod http;
pub mod http_compare;
pub mod http_serve;
pub mod load;
pub mod net;
pub mod output;
pub mod outside;
pub mod plot;
pub mod progress;
pub mod report;
pub mod server;
