#!/usr/bin/env bash
# Runs the kernel-light integration tests under valgrind, with the task arena off
# (`--cfg percore_no_arena`) so every task allocation is visible to it.
# Skipped: tests that block a thread in io_uring_enter while another thread wakes
# it (valgrind serialises threads and cannot follow that), tests too big to run
# under it in reasonable time, and the op tests (valgrind cannot see the kernel
# writing buffers through io_uring and reports those bytes as uninitialised).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "valgrind not installed: skipped"
    exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/valgrind"
export RUSTFLAGS="--cfg percore_no_arena"
for test in task_spawn sync_local time_sleep; do
    bin=$(cargo test -p percore-runtime --test "$test" --no-run --message-format=json 2>/dev/null \
        | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1)
    echo "== valgrind $test"
    valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q \
        "$bin" --test-threads=1 --skip hundred_thousand --skip million --skip waker --skip wakes
done
