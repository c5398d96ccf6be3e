#!/usr/bin/env bash
# percore-bench net http vs wrk against the same tokio HTTP server (one
# current-thread runtime, pinned to the first CPU), both clients with one
# thread and the same connections, pinned to the second CPU, alternating for
# a few rounds. Prints per round both req/s and each client's own CPU time per
# request (user + system, from bash's `time`), then the medians.
#
#   benches/scripts/wrk_compare.sh [CONNECTIONS] [SECONDS] [ROUNDS]   (default 64 5 3)
#
# Needs wrk (`apt-get install -y wrk`); builds what it runs in release mode.
set -euo pipefail
cd "$(dirname "$0")/../.."

connections=${1:-64}
seconds=${2:-5}
rounds=${3:-3}

command -v wrk >/dev/null || { echo "wrk_compare: wrk not found: apt-get install -y wrk" >&2; exit 2; }
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server

cpus=$(nproc)
server_cpu=0
client_cpu=$(( cpus > 1 ? 1 : 0 ))

# The server: its stdin is a pipe we hold, so it ends with this script.
coproc SERVER { exec target/release/examples/peer_server tokio http --addr 127.0.0.1:0 --cores 1 --first-cpu "$server_cpu" --control; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
read -r line <&"${SERVER[0]}"
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' <<<"$line")
[ -n "$addr" ] || { echo "wrk_compare: server did not start: $line" >&2; exit 1; }
echo "tokio HTTP server on $addr (CPU $server_cpu); clients: 1 thread, $connections connections, ${seconds}s, CPU $client_cpu"

out=$(mktemp)
cpu=$(mktemp)
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$out" "$cpu"' EXIT
TIMEFORMAT='%U %S'

# Each sets: rate (req/s), requests, cpu_us (client CPU µs per request).
run_wrk() {
    { time taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" "http://$addr/" >"$out"; } 2>"$cpu"
    rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
    requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out")
}
run_bench() {
    { time taskset -c "$client_cpu" target/release/percore-bench net http --target "$addr" \
        --connections "$connections" --cores 1 --duration "$seconds" --json >"$out"; } 2>"$cpu"
    rate=$(grep -o '"req_per_s":[0-9.e+]*' "$out" | head -1 | cut -d: -f2)
    requests=$(grep -o '"requests":[0-9]*' "$out" | head -1 | cut -d: -f2)
}
cpu_per_request() { awk -v r="$requests" '{ printf "%.2f", ($1 + $2) * 1e6 / (r > 0 ? r : 1) }' "$cpu"; }

wrk_rates=(); wrk_cpus=(); bench_rates=(); bench_cpus=()
for round in $(seq 1 "$rounds"); do
    # Who goes first alternates, so drift on a shared machine hits both alike.
    for who in $( (( round % 2 )) && echo "wrk bench" || echo "bench wrk"); do
        if [ "$who" = wrk ]; then
            run_wrk; wrk_rates+=("$rate"); wrk_cpus+=("$(cpu_per_request)")
        else
            run_bench; bench_rates+=("$rate"); bench_cpus+=("$(cpu_per_request)")
        fi
    done
    i=$((round - 1))
    printf 'round %d: wrk %.0f req/s (%s µs client CPU/req), percore-bench %.0f req/s (%s µs client CPU/req)\n' \
        "$round" "${wrk_rates[$i]}" "${wrk_cpus[$i]}" "${bench_rates[$i]}" "${bench_cpus[$i]}"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
w=$(median "${wrk_rates[@]}"); b=$(median "${bench_rates[@]}")
wc=$(median "${wrk_cpus[@]}"); bc=$(median "${bench_cpus[@]}")
printf 'median: wrk %.0f req/s, percore-bench %.0f req/s (percore-bench/wrk %.2fx); client CPU/req wrk %s µs, percore-bench %s µs\n' \
    "$w" "$b" "$(awk -v b="$b" -v w="$w" 'BEGIN {print b / w}')" "$wc" "$bc"
