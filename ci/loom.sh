#!/usr/bin/env bash
# Loom models, at the preemption bounds written in each model:
# - --lib loom_: the inbox park/notify protocol (no lost wakeup) and the
#   task's waker count (the group reference is released once, after every
#   use; runtime/src/task/raw.rs, unbounded);
# - loom_channel: the spsc channel (no lost wakeup, each value once, in order);
# - loom_mpsc: the mpsc channel (two senders on one slot: no lost wakeup,
#   order per sender, close/drop of the receiver fails waiting senders with
#   their value, a dropped send passes its wakeup on).
# About 2 minutes on 2 cores. Deeper: LOOM_MAX_PREEMPTIONS=5 ci/loom.sh
# (slower: minutes per model).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export RUSTFLAGS="--cfg loom"
cargo test -p percore-runtime --release --lib loom_
cargo test -p percore-runtime --release --test loom_channel --test loom_mpsc
