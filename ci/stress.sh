#!/usr/bin/env bash
# Runs the workspace tests N times in a row (default 5) with every CPU kept
# busy by a `yes > /dev/null` of its own, as on a CI machine shared with other
# work, then ci/valgrind.sh and ci/loom.sh once under the same load: a test
# whose verdict depends on how busy the machine is fails here first. Then,
# under the same load:
# - the workspace tests once more on each backend with PERCORE_FAULTS=light
#   (short reads and writes, EINTR, held completions: see Builder::faults);
# - the op-sequence fuzzer (runtime/tests/fuzz_ops.rs) for
#   PERCORE_FUZZ_SECONDS (default 600), release build, both backends (each
#   script picks one);
# - the failure classes at scale, the `#[ignore]`d scale_cancel tests of
#   percore-net and percore-fs, on each backend (their figures are printed);
# - a soak of echo and file reads on two cores for PERCORE_SOAK_SECONDS
#   (default 600; tests/soak.rs): RSS and fd count stay flat.
# Usage: ci/stress.sh [N]   (from any directory)
# The build comes first, without the load. Each run exports a fresh random
# PERCORE_SEED (the runtime's task-order shuffle reads it). Stops at the first
# failure and prints the run, the failing tests and the command that reruns
# them with the same seed; full logs are kept in target/stress/.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: ci/stress.sh [N]   (N >= 1 runs of the workspace tests; default 5)" >&2
    exit 2
fi
loads=$(nproc 2>/dev/null || echo 2)
((loads < 2)) && loads=2
logs="${CARGO_TARGET_DIR:-target}/stress"
mkdir -p "$logs"
started=$SECONDS

echo "== ci/stress.sh: cargo test --workspace --all-features $runs time(s) in a row, each with a"
echo "   fresh random PERCORE_SEED, then ci/valgrind.sh and ci/loom.sh once, all with $loads"
echo "   busy-looping processes (yes > /dev/null) keeping every CPU busy; logs in $logs/"

echo "== build (no load yet)"
cargo test --workspace --all-features --no-run

load_pids=()
stop_load() {
    for pid in "${load_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    load_pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM
for ((i = 0; i < loads; i++)); do
    yes >/dev/null &
    load_pids+=("$!")
done
echo "== load: ${#load_pids[@]} x yes > /dev/null (pids ${load_pids[*]})"

new_seed() {
    od -An -N8 -tu8 /dev/urandom | tr -d ' \n'
}

# Prints what failed in the cargo test output in $1: per test binary, the
# failing tests and the command that reruns them with seed $2.
report() {
    local log="$1" seed="$2"
    awk -v seed="$seed" '
        function add(b) { if (!(b in seen)) { seen[b] = 1; order[++n] = b } }
        function failed(name) {
            if (binary == "") binary = "(test binary)"
            add(binary)
            if (!((binary, name) in have)) {
                have[binary, name] = 1
                names[binary] = names[binary] "\034" name
            }
        }
        # A test binary starts: "Running tests/x.rs (target/...)", "Doc-tests
        # crate", or in ci/valgrind.sh "== valgrind x".
        /^ *(Running|Doc-tests) |^== valgrind / { binary = $0; sub(/^ +/, "", binary); next }
        /^---- .* stdout ----$/ {
            name = $0; sub(/^---- /, "", name); sub(/ stdout ----$/, "", name)
            failed(name); next
        }
        /^test .* \.\.\. FAILED$/ {
            name = $0; sub(/^test /, "", name); sub(/ \.\.\. FAILED$/, "", name)
            failed(name); next
        }
        # cargo, after each binary that failed: "to rerun pass `-p x --test y`".
        /to rerun pass `[^`]*`/ {
            match($0, /`[^`]*`/)
            add(binary); target[binary] = substr($0, RSTART + 1, RLENGTH - 2)
        }
        /process didn.t exit successfully/ { add(binary); crash[binary] = $0 }
        /PERCORE_SEED=[0-9]+/ {
            match($0, /PERCORE_SEED=[0-9]+/); printed[substr($0, RSTART, RLENGTH)] = 1
        }
        END {
            for (i = 1; i <= n; i++) {
                b = order[i]
                print "   failed in " b ":"
                k = split(substr(names[b], 2), list, "\034")
                args = ""
                for (j = 1; j <= k; j++) {
                    print "      " list[j]
                    args = args " '\''" list[j] "'\''"
                }
                if (k == 0) print "      (no test reported failing: the binary crashed, aborted or hung?)"
                if (b in crash) { line = crash[b]; sub(/^ +/, "", line); print "      " line }
                if (b in target)
                    print "      rerun: PERCORE_SEED=" seed " cargo test --all-features " target[b] \
                        (k ? " --" args " --exact" : "")
            }
            for (s in printed) if (s != "PERCORE_SEED=" seed) print "   a test printed " s
            if (n == 0) { print "   no failing test named in the output; its last lines:"; exit 1 }
        }
    ' "$log" || { [ -s "$log" ] && tail -n 30 "$log" | sed 's/^/   | /' || echo "   (the log is empty)"; }
}

for ((run = 1; run <= runs; run++)); do
    seed=$(new_seed)
    export PERCORE_SEED="$seed"
    log="$logs/run-$run.log"
    echo "== run $run/$runs: PERCORE_SEED=$seed cargo test --workspace --all-features"
    t0=$SECONDS
    if ! cargo test --workspace --all-features --no-fail-fast >"$log" 2>&1; then
        echo "!! run $run/$runs FAILED after $((SECONDS - t0)) s (PERCORE_SEED=$seed), log: $log"
        report "$log" "$seed"
        echo "== ci/stress.sh: failed in run $run/$runs after $((SECONDS - started)) s"
        exit 1
    fi
    echo "   ok in $((SECONDS - t0)) s: $(grep -c '^test result: ok' "$log") test binaries passed"
done

# step <name> <command...>: runs one more stage under the load, logged.
step() {
    local name=$1
    shift
    seed=$(new_seed)
    export PERCORE_SEED="$seed"
    log="$logs/$name.log"
    echo "== $name (PERCORE_SEED=$seed): $*"
    t0=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        echo "!! $name FAILED after $((SECONDS - t0)) s (PERCORE_SEED=$seed), log: $log"
        report "$log" "$seed"
        echo "== ci/stress.sh: failed in $name after $((SECONDS - started)) s"
        exit 1
    fi
    echo "   ok in $((SECONDS - t0)) s"
    grep -v ', ignored' "$log" | grep -oE '(fuzz|scale): .*' | sed 's/^/   /' || true
}

for driver in io_uring epoll; do
    PERCORE_DRIVER=$driver PERCORE_FAULTS=light \
        step "faults-light-$driver" cargo test --workspace --all-features --no-fail-fast
done
PERCORE_FUZZ_SECONDS="${PERCORE_FUZZ_SECONDS:-600}" \
    step fuzz cargo test --release -p percore-runtime --test fuzz_ops -- --nocapture
for driver in io_uring epoll; do
    PERCORE_DRIVER=$driver step "scale-net-$driver" \
        cargo test --release -p percore-net --test scale_cancel -- --ignored --nocapture --test-threads 1
    PERCORE_DRIVER=$driver step "scale-fs-$driver" \
        cargo test --release -p percore-fs --test scale_cancel -- --ignored --nocapture --test-threads 1
done
PERCORE_SOAK_SECONDS="${PERCORE_SOAK_SECONDS:-600}" \
    step soak cargo test --release --test soak -- --ignored --nocapture

for script in valgrind loom; do
    seed=$(new_seed)
    export PERCORE_SEED="$seed"
    log="$logs/$script.log"
    echo "== ci/$script.sh (PERCORE_SEED=$seed)"
    t0=$SECONDS
    if ! "ci/$script.sh" >"$log" 2>&1; then
        echo "!! ci/$script.sh FAILED after $((SECONDS - t0)) s (PERCORE_SEED=$seed), log: $log"
        report "$log" "$seed"
        echo "   rerun: PERCORE_SEED=$seed ci/$script.sh"
        echo "== ci/stress.sh: failed in ci/$script.sh after $((SECONDS - started)) s"
        exit 1
    fi
    echo "   ok in $((SECONDS - t0)) s"
done

echo "== ci/stress.sh: $runs run(s), the fault, fuzz and scale stages, valgrind and loom passed under load in $((SECONDS - started)) s"
