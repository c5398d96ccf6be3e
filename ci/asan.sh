#!/usr/bin/env bash
# Runs the op, cancellation, cross-core, net and fs tests (and the runtime's unit
# tests) under AddressSanitizer, with the task arena off (`--cfg percore_no_arena`)
# so every task cell is a heap allocation of its own. A buffer freed while the
# kernel may still write it, or a task freed while a waker or another core still
# points at it, is reported as a use-after-free; LeakSanitizer (on: ASan's
# default on x86_64 Linux) reports what is never freed.
# ASan sees only instrumented user code, not the kernel's writes through
# io_uring: `--cfg percore_asan` makes the driver record where each op's kernel
# writes land (reads, receives, statx, accept) and, at its CQE, read back the
# first and last byte the kernel reports written (runtime/src/driver/asan.rs),
# so a buffer freed while its op is in flight is reported as a use-after-free.
# `-Zsanitizer` is unstable: RUSTC_BOOTSTRAP=1 lets the stable toolchain take it.
# The explicit --target keeps build scripts and proc macros uninstrumented.
# Skipped:
# - runtime_idle, time_sleep's 100,000-timer test, op_device's
#   park/poll counting tests and tcp_accept_emfile's parent test: they assert
#   CPU-time or wall-clock windows (op_device: a 50 us op against a 200 us poll
#   budget) that ASan's slowdown on a busy machine makes flaky. op_device's
#   dropped-op test runs, and so does tcp_accept_emfile's EMFILE child (fd limit
#   exhausted, then recovery), on its own.
# - loom_channel: its tests exist only under `--cfg loom` (ci/loom.sh).
# LeakSanitizer is off for one test: task_spawn's
# a_waker_that_outlives_its_runtime_is_harmless leaks its task on purpose (a
# task is freed only on its core, which is gone; see task/raw.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/asan"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address --cfg percore_no_arena --cfg percore_asan"
export ASAN_OPTIONS="detect_leaks=1"

# A toolchain without the sanitizer runtime (not x86_64 Linux, or a rustc that
# refuses -Zsanitizer) skips this step, as ci/valgrind.sh does without valgrind.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' > "$probe/probe.rs"
if ! rustc -Zsanitizer=address --target "$target" -o "$probe/probe" "$probe/probe.rs" 2>"$probe/err"; then
    echo "AddressSanitizer is not available on this toolchain: skipped"
    sed 's/^/    /' "$probe/err" | head -5
    exit 0
fi

# One build (so features unify once), then each binary from its crate's root,
# as `cargo test` runs it.
declare -A bins
while read -r src bin; do
    bins[${src#"$root"/}]=$bin
done < <(cargo test --target "$target" -p percore-runtime -p percore-net -p percore-fs \
    --all-features --lib --tests --no-run --message-format=json \
    | grep '"executable":"/' \
    | sed -E 's/.*"src_path":"([^"]*)".*"executable":"([^"]*)".*/\1 \2/')

run() { # run <src path> [test args...]
    local src=$1
    shift
    echo "== asan $src $*"
    (cd "${src%%/*}" && "${bins[$src]:?no test binary for $src}" -q "$@")
}

run runtime/src/lib.rs
run runtime/tests/op_device.rs --exact a_dropped_device_op_stops_the_polling
for test in op_cancel op_submit_now ring_pressure registered spawn_on \
    runtime_multi channel_spsc channel_mpsc channel_mesh wake_storm blocking_pool \
    sync_local task_panic_policy setup_seccomp time_paused task_seed stall_detector \
    fault_layer fuzz_ops op_deadline coop op_cancel_kept; do
    run "runtime/tests/$test.rs"
done
run runtime/tests/time_sleep.rs --skip hundred_thousand
run runtime/tests/task_spawn.rs --skip a_waker_that_outlives_its_runtime_is_harmless
ASAN_OPTIONS=detect_leaks=0 \
    run runtime/tests/task_spawn.rs --exact a_waker_that_outlives_its_runtime_is_harmless

run net/src/lib.rs
for test in buf_ring compat_hyper compat_io send_zc tcp_drop_buffers tcp_echo tcp_faults \
    tcp_fd_leak tcp_stream udp_roundtrip unix_roundtrip unix_fds peer_closes names cloexec \
    tcp_balance tcp_rehome recv_stop; do
    run "net/tests/$test.rs"
done
PERCORE_NET_EMFILE_CHILD=1 run net/tests/tcp_accept_emfile.rs --exact child

run fs/src/lib.rs
for test in dir_ops dma_file file_blocks file_cancel file_errors file_hot_path \
    file_metadata file_pressure file_rw fixed hot_files registered; do
    run "fs/tests/$test.rs"
done
# The drop, cancel and leak tests again on the epoll backend: there the runtime
# makes the reads and writes itself, through syscalls ASan intercepts.
export PERCORE_DRIVER=epoll
for test in op_cancel ring_pressure blocking_pool time_paused fault_layer op_cancel_kept; do
    run "runtime/tests/$test.rs"
done
for test in buf_ring send_zc tcp_drop_buffers tcp_echo tcp_faults tcp_fd_leak tcp_stream \
    udp_roundtrip unix_roundtrip unix_fds peer_closes tcp_rehome recv_stop; do
    run "net/tests/$test.rs"
done
for test in dma_file file_cancel file_errors file_pressure file_rw fixed; do
    run "fs/tests/$test.rs"
done
unset PERCORE_DRIVER
echo "== asan: all passed"
