#!/usr/bin/env bash
# Before/after figures for the io_uring features percore probes (issue 17,
# item 3): percore's echo or HTTP server (one core, a fresh process pinned to
# the first CPU per run) under percore-bench's closed-loop client (64
# connections, pinned to the second CPU), one run per variant per round, the
# order rotating. A variant is the server's environment, e.g.
# `off=PERCORE_URING_FEATURES=none` or `on=` (everything the kernel has);
# `BIN=PATH` in it runs another build's server (e.g. a copy of the old code's).
#
#   benches/scripts/kernel_features.sh echo SIZE|http SECONDS ROUNDS VARIANT...
#   benches/scripts/kernel_features.sh echo 4096 3 5 off=PERCORE_URING_FEATURES=-bundle on=
#
# Per request, from `perf stat -p SERVER`: CQEs posted (io_uring:io_uring_complete),
# SQEs (io_uring:io_uring_submit_req), io_uring_enter calls, server CPU µs
# (task-clock); and the client's req/s. Prints every run, then the medians.
# SERVER=one_thread runs examples/server_one_thread.rs instead of `serve`
# (the same server on the main thread; it takes RING=COUNT/BYTES and
# GATHER=1), and takes the counts from the server's own counters instead of
# perf (whose syscall tracepoint slows every syscall of the server, enough to
# change how 64 KiB messages are cut); its CPU time then covers its whole
# life (start-up and a 2 s idle tail included).
# FLUSH_TCP_METRICS=1 forgets the kernel's cached TCP metrics of 127.0.0.1
# before each run (`ip tcp_metrics delete`, root): the cached congestion
# state of earlier runs decides whether a 64 KiB send goes out whole or in
# pieces, which moves the figures of large messages between two regimes.
# RATE=R in the environment makes the client open-loop at R requests/s (a
# server that is not saturated, where waits matter). perf's tracepoints need
# root or kernel.perf_event_paranoid <= -1.
set -euo pipefail
cd "$(dirname "$0")/../.."

proto=$1
if [ "$proto" = echo ]; then
    size=$2
    shift 2
else
    size=1
    shift 1
fi
seconds=$1
rounds=$2
shift 2
variants=("$@")
[ ${#variants[@]} -gt 0 ] || { echo "kernel_features: name at least one variant (label=ENV)" >&2; exit 2; }

command -v perf >/dev/null || { echo "kernel_features: perf not found" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p percore-bench --bin percore-bench --example server_one_thread
target=${CARGO_TARGET_DIR:-target}
bench=$target/release/percore-bench
events='task-clock,io_uring:io_uring_complete,io_uring:io_uring_submit_req,syscalls:sys_enter_io_uring_enter'
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# run LABEL ENV: one fresh server with ENV, loaded for SECONDS; appends
# "label req/s cqes sqes enters cpu_us" (per request) to $results.
run() {
    local label=$1 env=$2 server=$bench
    [ -z "${FLUSH_TCP_METRICS:-}" ] || ip tcp_metrics delete 127.0.0.1 2>/dev/null || true
    sleep "${PAUSE:-0}"
    # BIN=PATH in a variant's environment names another server binary (a build of the old code).
    if [[ $env =~ (^| )BIN=([^ ]*) ]]; then
        server=${BASH_REMATCH[2]}
        env=${env/BIN=$server/}
    fi
    if [ "${SERVER:-}" = one_thread ]; then
        [ "$server" = "$bench" ] && server=$target/release/examples/server_one_thread
        coproc SRV { exec env $env PERCORE_DRIVER=io_uring taskset -c 0 "$server" "$proto" "127.0.0.1:$((20000 + RANDOM % 20000))" "$((seconds + 2))"; }
    else
        coproc SRV { exec env $env PERCORE_DRIVER=io_uring taskset -c 0 "$server" serve "$proto" --addr 127.0.0.1:0 --control; }
    fi
    local pid=$SRV_PID line addr stat json
    read -r line <&"${SRV[0]}"
    addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' <<<"$line")
    [ -n "$addr" ] || { echo "kernel_features: $label did not start: $line" >&2; exit 1; }
    stat=$(mktemp)
    local perf=
    if [ "${SERVER:-}" != one_thread ]; then
        perf stat -x, -e "$events" -p "$pid" -o "$stat" &
        perf=$!
    fi
    sleep 0.2
    json=$(PERCORE_DRIVER=io_uring taskset -c 1 "$bench" net "$proto" --size "$size" --target "$addr" -c 64 -d "$seconds" ${RATE:+--rate "$RATE"} --json)
    if [ -n "$perf" ]; then
        kill -INT "$perf"
        wait "$perf" 2>/dev/null || true
    else
        # The server's last line: its own counters and CPU time.
        local last
        read -r last <&"${SRV[0]}" || true
        awk '{ printf "%s,,task-clock\n%s,,io_uring:io_uring_complete\n%s,,io_uring:io_uring_submit_req\n%s,,syscalls:sys_enter_io_uring_enter\n", $10 / 1e3, $8, $6, $4 }' <<<"$last" >"$stat"
    fi
    # Closing its stdin ends `serve --control` (a one-thread server has ended).
    [ -z "${SRV[1]:-}" ] || eval "exec ${SRV[1]}>&-"
    wait "$pid" 2>/dev/null || true
    local n rps
    n=$(jq '.runs[0].requests' <<<"$json")
    rps=$(jq '.runs[0].req_per_s' <<<"$json")
    local p99
    p99=$(jq '.runs[0].latency_us.p99' <<<"$json")
    awk -F, -v l="$label" -v n="$n" -v r="$rps" -v p99="$p99" '
        $3 == "task-clock" { t = $1 }
        $3 == "io_uring:io_uring_complete" { c = $1 }
        $3 == "io_uring:io_uring_submit_req" { s = $1 }
        $3 == "syscalls:sys_enter_io_uring_enter" { e = $1 }
        END { printf "%s %.0f %.4f %.4f %.4f %.3f %.1f\n", l, r, c / n, s / n, e / n, t * 1e3 / n, p99 }' "$stat" >>"$results"
    rm -f "$stat"
    tail -1 "$results"
}

name=$([ "$proto" = http ] && echo "HTTP" || echo "echo $size B")
echo "== $name, 64 connections${RATE:+, open loop at $RATE req/s}, $rounds rounds of $seconds s; per request (label req/s CQEs SQEs enters CPU-µs p99-µs)"
for round in $(seq "$rounds"); do
    count=${#variants[@]}
    for i in $(seq 0 $((count - 1))); do
        v=${variants[$(((i + round) % count))]}
        run "${v%%=*}" "${v#*=}"
    done
done
echo "== medians: label req/s CQEs/req SQEs/req enters/req CPU-µs/req p99-µs"
for v in "${variants[@]}"; do
    label=${v%%=*}
    awk -v l="$label" '$1 == l' "$results" | python3 -c '
import statistics, sys
rows = [line.split() for line in sys.stdin]
cols = list(zip(*rows))
med = [statistics.median(map(float, c)) for c in cols[1:]]
print("%-12s %8.0f %8.4f %8.4f %8.4f %8.3f %8.1f" % (rows[0][0], *med))'
done
