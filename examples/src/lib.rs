//! Runnable programs built on percore: see the files beside this crate (`cargo run -p percore-examples --example hello`).
