#!/usr/bin/env bash
# percore's echo and HTTP servers on the epoll backend beside tokio's
# current-thread servers (and percore on io_uring), each a fresh process
# pinned to the first CPU, alternating for a few long rounds; the client is
# pinned to the second CPU: percore-bench's closed-loop client (on io_uring)
# for echo, wrk for HTTP (percore-bench's client if wrk is missing). Prints
# the server's CPU time per request (user + system from /proc/<pid>/stat,
# over the whole run) per round, then medians and the ratios to tokio.
# Longer rounds than net_compare's 2 s, because the ratio between two
# epoll-based servers is a few percent and a 2 s round moves more than that.
#
#   benches/scripts/epoll_compare.sh [SECONDS] [ROUNDS]   (default 8 3)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-8}
rounds=${2:-3}
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
bench=target/release/percore-bench
peer=target/release/examples/peer_server
cpus=$(nproc)
client_cpu=$(( cpus > 1 ? 1 : 0 ))
port=$(( 20000 + RANDOM % 20000 ))

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run <driver-or-empty> <case> <server command...>: prints µs of server CPU per request.
run() {
    local driver=$1 case=$2
    shift 2
    port=$((port + 1))
    PERCORE_DRIVER=$driver taskset -c 0 "$@" --addr "127.0.0.1:$port" --cores 1 >/dev/null 2>&1 &
    local server=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    local before requests
    before=$(ticks "$server")
    case $case in
        http)
            if command -v wrk >/dev/null; then
                requests=$(taskset -c "$client_cpu" wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$port/" |
                    awk '/requests in/ {print $1}')
            else
                requests=$(PERCORE_DRIVER=io_uring taskset -c "$client_cpu" "$bench" net http \
                    --target "127.0.0.1:$port" -c 64 -d "$seconds" --json |
                    grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)
            fi
            ;;
        *)
            requests=$(PERCORE_DRIVER=io_uring taskset -c "$client_cpu" "$bench" net echo --size "$case" \
                --target "127.0.0.1:$port" -c 64 -d "$seconds" --json |
                grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)
            ;;
    esac
    local after
    after=$(ticks "$server")
    kill "$server"
    wait "$server" 2>/dev/null || true
    awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.3f", t * 1e6 / hz / n }'
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

for case in 128 4096 http; do
    name=$([ "$case" = http ] && echo "HTTP hello world" || echo "echo $case B")
    echo "== $name, 64 connections, $rounds rounds of ${seconds} s (server CPU µs per request)"
    : >/tmp/epoll_compare.$$.epoll
    : >/tmp/epoll_compare.$$.tokio
    : >/tmp/epoll_compare.$$.uring
    : >/tmp/epoll_compare.$$.paired
    proto=$([ "$case" = http ] && echo http || echo echo)
    for round in $(seq "$rounds"); do
        e=$(run epoll "$case" "$bench" serve "$proto")
        t=$(run "" "$case" "$peer" tokio "$proto" --first-cpu 0)
        u=$(run io_uring "$case" "$bench" serve "$proto")
        echo "  round $round  percore-epoll $e  tokio $t  percore $u"
        awk -v e="$e" -v t="$t" 'BEGIN { printf "%.4f\n", e / t }' >>/tmp/epoll_compare.$$.paired
        echo "$e" >>/tmp/epoll_compare.$$.epoll
        echo "$t" >>/tmp/epoll_compare.$$.tokio
        echo "$u" >>/tmp/epoll_compare.$$.uring
    done
    e=$(median </tmp/epoll_compare.$$.epoll)
    t=$(median </tmp/epoll_compare.$$.tokio)
    u=$(median </tmp/epoll_compare.$$.uring)
    p=$(median </tmp/epoll_compare.$$.paired)
    awk -v e="$e" -v t="$t" -v u="$u" -v p="$p" 'BEGIN {
        printf "  medians     percore-epoll %s  tokio %s  percore %s\n", e, t, u
        printf "  percore-epoll/tokio %.3f, paired by round %.3f  (target <= 1.05)   percore/tokio %.3f\n", e / t, p, u / t }'
done
rm -f /tmp/epoll_compare.$$.*
