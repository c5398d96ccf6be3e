#!/usr/bin/env bash
# User-space instructions per request of percore's echo or HTTP server, under
# `valgrind --tool=callgrind` (which counts the same however busy the machine
# is): the one-thread server (examples/server_one_thread.rs) pinned to the
# first CPU, loaded for SECONDS by percore-bench's closed-loop client (64
# connections) on the second; ROUNDS runs per variant, interleaved, then the
# medians (the count per request moves a little with how requests batch). A
# variant is the server's environment, as in kernel_features.sh; `BIN=PATH`
# in it runs another build of server_one_thread.
#
#   benches/scripts/kernel_features_callgrind.sh echo SIZE|http|percore-http SECONDS ROUNDS VARIANT...
#   benches/scripts/kernel_features_callgrind.sh echo 65536 6 3 off=PERCORE_URING_FEATURES=none on=
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
# percore-http: percore-http's hello world, loaded as `http` is.
client=$proto
[ "$proto" = percore-http ] && client=http
seconds=$1
rounds=$2
shift 2
command -v valgrind >/dev/null || { echo "kernel_features_callgrind: valgrind not found" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p percore-bench --bin percore-bench --example server_one_thread
target=${CARGO_TARGET_DIR:-target}
bench=$target/release/percore-bench
server=$target/release/examples/server_one_thread
port=$((20000 + RANDOM % 20000))

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "== $proto ${size} B, 64 connections, $seconds s under callgrind: label requests Ir Ir/request"
for round in $(seq "$rounds"); do
for v in "$@"; do
    label=${v%%=*}
    env=${v#*=}
    bin=$server
    if [[ $env =~ (^| )BIN=([^ ]*) ]]; then
        bin=${BASH_REMATCH[2]}
        env=${env/BIN=$bin/}
    fi
    out=$(mktemp -d)
    # shellcheck disable=SC2086
    env $env PERCORE_DRIVER=io_uring taskset -c 0 valgrind --tool=callgrind \
        --callgrind-out-file="$out/cg.out" "$bin" "$proto" "127.0.0.1:$port" "$seconds" \
        >"$out/server.out" 2>"$out/valgrind.err" &
    pid=$!
    for _ in $(seq 300); do
        grep -q 'listening on' "$out/server.out" 2>/dev/null && break
        sleep 0.1
    done
    json=$(PERCORE_DRIVER=io_uring taskset -c 1 "$bench" net "$client" --size "$size" \
        --target "127.0.0.1:$port" -c 64 -d "$((seconds - 1))" --json)
    wait "$pid"
    n=$(jq '.runs[0].requests' <<<"$json")
    ir=$(grep -o 'Collected : [0-9]*' "$out/valgrind.err" | awk '{print $3}')
    awk -v l="$label" -v n="$n" -v ir="$ir" 'BEGIN { printf "%-12s %9d %14d %10.0f\n", l, n, ir, ir / n }' | tee -a "$results"
    rm -rf "$out"
    port=$((port + 1))
done
done
echo "== medians: label Ir/request"
for v in "$@"; do
    label=${v%%=*}
    awk -v l="$label" '$1 == l { print $4 }' "$results" | sort -n | awk -v l="$label" '{ a[NR] = $1 } END { printf "%-12s %10.0f\n", l, a[int((NR + 1) / 2)] }'
done
