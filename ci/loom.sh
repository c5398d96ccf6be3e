#!/usr/bin/env bash
# Loom models: the inbox park/notify protocol (no lost wakeup) and the
# cross-core channels, at the preemption bounds written in each model.
# Deeper: LOOM_MAX_PREEMPTIONS=5 ci/loom.sh (slower: minutes per model).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export RUSTFLAGS="--cfg loom"
cargo test -p percore-runtime --release --lib loom_
cargo test -p percore-runtime --release --test loom_channel
