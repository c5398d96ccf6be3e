#!/usr/bin/env bash
# Every check CI runs: formatting, lints, all tests (unit, integration, doc) on
# both driver backends (io_uring and epoll), docs, loom models, valgrind and
# AddressSanitizer.
# Runs the same on a laptop: `ci/test.sh` from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets --all-features -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== cargo test --workspace --all-features (io_uring)"
PERCORE_DRIVER=io_uring cargo test --workspace --all-features

# The same suite on the readiness backend, which runs where io_uring is blocked.
# Tests about io_uring itself (SQ/CQ sizes, MSG_RING, enter counts, registered
# memory) check those figures only on io_uring.
echo "== cargo test --workspace --all-features (epoll: PERCORE_DRIVER=epoll)"
PERCORE_DRIVER=epoll cargo test --workspace --all-features

# Once more with faults injected (short reads and writes, EINTR, held
# completions: Builder::faults); ci/stress.sh does it on both backends.
echo "== cargo test --workspace --all-features (io_uring, PERCORE_FAULTS=light)"
PERCORE_DRIVER=io_uring PERCORE_FAULTS=light cargo test --workspace --all-features

echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

echo "== loom models (channels)"
ci/loom.sh

echo "== valgrind (task cells, sync, timers)"
ci/valgrind.sh

echo "== AddressSanitizer + LeakSanitizer (ops, cancel, cross-core, net, fs)"
ci/asan.sh

echo "== ci/test.sh: all checks passed"
