#!/usr/bin/env bash
# Where an HTTP server's CPU goes per request: user space or the kernel.
# Each server (the `http_compare` bench binary re-run as `serve NAME`, or
# `c-uring`, the C liburing server of benches/c/, when built) runs as a
# fresh process on the first CPU, one core, loaded by wrk (one thread, 64
# connections) on the second CPU: 1 s unmeasured, then SECONDS measured.
# Per request: the server's user and system CPU (utime and stime of
# /proc/<pid>/stat over the measured run) and req/s; the servers take turns
# in every round, and the medians over the rounds are printed with each
# server's ratio to the first one named.
#
# On loopback the kernel does the TCP work of both ends of every packet the
# server sends (its send runs the client socket's receive too), so most of a
# server's CPU is system time whatever the runtime; only the user share and
# the system calls around the TCP work differ from server to server. The
# `c-uring` server, whose user-space work is a few hundred instructions,
# shows how low an io_uring server's CPU per request can go on this machine.
#
#   benches/scripts/cpu_split.sh [ROUNDS] [SECONDS] [SERVERS...]
#   (default 5 rounds of 5 s; servers hyper-tokio-ct percore-http c-uring)
#   A server named LABEL=NAME@PATH runs NAME from another build's http_compare
#   binary (e.g. old=percore-http@/tmp/old-target/release/deps/http_compare-…),
#   so two builds of one server compare side by side.
#   needs: wrk (apt-get install -y wrk); c-uring: benches/scripts/build_c_server.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-5}
seconds=${2:-5}
shift $(( $# < 2 ? $# : 2 ))
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(hyper-tokio-ct percore-http c-uring)
command -v wrk >/dev/null || { echo "cpu_split: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }
bin=$(cargo bench -q -p percore-bench --bench http_compare --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*http_compare[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "cpu_split: no http_compare bench binary" >&2; exit 2; }
c_server=${CARGO_TARGET_DIR:-target}/release/c_uring_server
ticks=$(getconf CLK_TCK)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# utime and stime (fields 14 and 15) of a pid, in ticks, after the name.
times() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; }

# run SERVER ROUND: one fresh server, one measured wrk run; appends
# "req_per_s user_us sys_us" to $out/SERVER.
run() {
    local server=$1 fifo="$out/stdin" log="$out/log" pid addr
    rm -f "$fifo" && mkfifo "$fifo"
    if [ "$server" = c-uring ]; then
        [ -x "$c_server" ] || { echo "cpu_split: $c_server is not built (benches/scripts/build_c_server.sh)" >&2; exit 2; }
        taskset -c 0 "$c_server" http --addr 127.0.0.1:0 --cores 1 --control <"$fifo" >"$log" 2>&1 &
    else
        local name=${server#*=} driver=io_uring server_bin=$bin
        if [[ $name == *@* ]]; then server_bin=${name#*@}; name=${name%%@*}; fi
        if [ "$name" = percore-http-epoll ]; then name=percore-http; driver=epoll; fi
        PERCORE_DRIVER=$driver taskset -c 0 "$server_bin" serve "$name" --addr 127.0.0.1:0 --cores 1 \
            --control <"$fifo" >"$log" 2>&1 &
    fi
    pid=$!
    exec 3>"$fifo"
    for _ in $(seq 100); do
        grep -q 'listening on' "$log" 2>/dev/null && break
        sleep 0.1
    done
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)
    [ -n "$addr" ] || { echo "cpu_split: $server did not start" >&2; cat "$log" >&2; exit 1; }
    taskset -c 1 wrk -t1 -c64 -d1s "http://$addr/" >/dev/null
    read -r u0 s0 < <(times "$pid")
    local report
    report=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "http://$addr/")
    read -r u1 s1 < <(times "$pid")
    exec 3>&-
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local requests
    requests=$(awk '/requests in/ {print $1}' <<<"$report")
    awk -v n="$requests" -v s="$seconds" -v t="$ticks" -v u=$((u1 - u0)) -v k=$((s1 - s0)) \
        'BEGIN { printf "%.0f %.3f %.3f\n", n / s, u * 1e6 / t / n, k * 1e6 / t / n }' >>"$out/${server%%=*}"
}

for round in $(seq "$rounds"); do
    # Rotate the order each round, so machine load falls on all alike.
    n=${#servers[@]}
    for i in $(seq 0 $((n - 1))); do
        run "${servers[$(( (i + round) % n ))]}"
    done
    echo "round $round done" >&2
done

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '%-20s %10s %9s %9s %9s %7s %9s\n' server req/s user_us sys_us total_us sys% "cpu/${servers[0]}"
base=""
for server in "${servers[@]}"; do
    server=${server%%=*}
    rps=$(cut -d' ' -f1 "$out/$server" | median)
    user=$(cut -d' ' -f2 "$out/$server" | median)
    sys=$(cut -d' ' -f3 "$out/$server" | median)
    total=$(awk '{print $2 + $3}' "$out/$server" | median)
    [ -n "$base" ] || base=$total
    awk -v n="$server" -v r="$rps" -v u="$user" -v s="$sys" -v t="$total" -v b="$base" \
        'BEGIN { printf "%-20s %10.0f %9.3f %9.3f %9.3f %6.1f%% %9.3f\n", n, r, u, s, t, 100 * s / t, t / b }'
done
echo "(medians of $rounds rounds of ${seconds}s; CPU per request in µs; wrk -t1 -c64 on CPU 1, server on CPU 0)"
