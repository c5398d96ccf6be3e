#!/usr/bin/env bash
# What a server does per request under each client: for percore's and tokio's
# echo or HTTP server (one thread, a fresh process pinned to the first CPU per
# run) loaded by percore-bench's client, the tokio client and (HTTP) wrk, each
# pinned to the second CPU, `perf stat` on the server counts per request:
# CPU time (task-clock), system calls, sleeps (context switches) and the
# calls that wait (io_uring_enter for percore, epoll_wait for tokio).
#
#   benches/scripts/server_profile.sh [echo SIZE | http] [SECONDS] [ROUNDS]   (default: echo 128, 2 s, 3 rounds)
#
# Needs perf (and wrk for the wrk rows); builds what it runs in release mode.
# Tracing every system call costs the server time, more for the one that makes
# more calls (tokio): read the counts here, and CPU ratios from the harness
# (`percore-bench net --compare`, `outside_gap.sh`), not from this.
# perf's tracepoints need root or kernel.perf_event_paranoid <= -1.
set -euo pipefail
cd "$(dirname "$0")/../.."

proto=${1:-echo}
if [ "$proto" = echo ]; then
    size=${2:-128}
    shift 2 2>/dev/null || shift $#
else
    size=1
    shift 1 2>/dev/null || true
fi
seconds=${1:-2}
rounds=${2:-3}

command -v perf >/dev/null || { echo "server_profile: perf not found" >&2; exit 2; }
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
target=${CARGO_TARGET_DIR:-target}
bench=$target/release/percore-bench
peer=$target/release/examples/peer_server
clients="percore tokio"
[ "$proto" = http ] && command -v wrk >/dev/null && clients="$clients wrk"
events='task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait'

# run SERVER CLIENT: one fresh server on a port the kernel picks, one client
# run under perf stat; sets n (requests) and the server's t (task-clock ms),
# cs (context switches), sc (system calls), en and ew (io_uring_enter and
# epoll_wait calls).
run() {
    local server=$1 client=$2
    case $server in
        percore) coproc SERVER { PERCORE_DRIVER=io_uring exec taskset -c 0 "$bench" serve "$proto" --addr 127.0.0.1:0 --control; } ;;
        tokio) coproc SERVER { exec taskset -c 0 "$peer" tokio "$proto" --addr 127.0.0.1:0 --cores 1 --control; } ;;
    esac
    local pid=$SERVER_PID line addr
    read -r line <&"${SERVER[0]}"
    addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' <<<"$line")
    [ -n "$addr" ] || { echo "server_profile: $server did not start: $line" >&2; exit 1; }
    local stat
    stat=$(mktemp)
    perf stat -x, -e "$events" -p "$pid" -o "$stat" &
    local perf=$!
    sleep 0.2
    case $client in
        percore)
            n=$(taskset -c 1 "$bench" net "$proto" --size "$size" --target "$addr" -c 64 -d "$seconds" --json |
                grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2) ;;
        tokio)
            n=$(taskset -c 1 "$peer" client "$proto" --size "$size" --target "$addr" --connections 64 --duration "$seconds" |
                grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2) ;;
        wrk)
            n=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "http://$addr/" | awk '/requests in/ {print $1}') ;;
    esac
    kill -INT "$perf"
    wait "$perf" 2>/dev/null || true
    # Closing its stdin ends a server started with --control.
    eval "exec ${SERVER[1]}>&-"
    wait "$pid" 2>/dev/null || true
    read -r t cs sc en ew < <(awk -F, '
        $3 == "task-clock" { t = $1 }
        $3 == "context-switches" { cs = $1 }
        $3 == "raw_syscalls:sys_enter" { sc = $1 }
        $3 == "syscalls:sys_enter_io_uring_enter" { en = $1 }
        $3 == "syscalls:sys_enter_epoll_wait" { ew = $1 }
        END { printf "%s %s %s %s %s\n", t, cs, sc, en + 0, ew + 0 }' "$stat")
    rm -f "$stat"
}

name=$([ "$proto" = http ] && echo "HTTP" || echo "echo $size B")
echo "== $name, 64 connections, $rounds rounds of $seconds s; per request: server CPU µs, sleeps, syscalls, waits (io_uring_enter or epoll_wait)"
for client in $clients; do
    for round in $(seq "$rounds"); do
        line="  $client client, round $round:"
        for server in $( ((round % 2)) && echo "percore tokio" || echo "tokio percore"); do
            run "$server" "$client"
            line+=$(awk -v s="$server" -v n="$n" -v t="$t" -v cs="$cs" -v sc="$sc" -v en="$en" -v ew="$ew" 'BEGIN {
                printf "  %-7s %6.0fk req  %5.2f µs  %.3f sleeps  %.2f syscalls  %.3f waits", s, n / 1e3, t * 1e3 / n, cs / n, sc / n, (en + ew) / n }')
        done
        echo "$line"
    done
done
