#!/usr/bin/env bash
# User-space instructions per request of one server, counted by callgrind
# over the load window only: the server starts under
# `valgrind --tool=callgrind --instr-atstart=no`, instrumentation is switched
# on when the client starts and off when it ends, and the instructions
# collected are divided by the requests the client got answered. Unlike CPU
# time, the count does not move with the machine's load, so it shows a
# hot-path change that timing noise hides. The server runs some 50 times
# slower under callgrind, so it sees larger batches per epoll_wait than it
# would otherwise: compare servers and commits within this harness only.
#
#   benches/scripts/server_instructions.sh [SERVER] [CASE] [SECONDS]
#     SERVER: percore-epoll (default), percore (io_uring), tokio
#     CASE:   128 (echo 128 B, default), 4096 (or any echo size), http
#
# The client (percore-bench on io_uring, 64 connections) is not counted.
set -euo pipefail
cd "$(dirname "$0")/../.."

server=${1:-percore-epoll}
case=${2:-128}
seconds=${3:-10}
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
dir=${CARGO_TARGET_DIR:-target}/release
bench=$dir/percore-bench
port=$(( 20000 + RANDOM % 20000 ))
proto=$([ "$case" = http ] && echo http || echo echo)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

case $server in
    percore-epoll) cmd=("$bench" serve "$proto"); driver=epoll ;;
    percore) cmd=("$bench" serve "$proto"); driver=io_uring ;;
    tokio) cmd=("$dir/examples/peer_server" tokio "$proto"); driver= ;;
    *) echo "server: percore-epoll, percore or tokio, not $server" >&2; exit 2 ;;
esac
PERCORE_DRIVER=$driver valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$out/callgrind.out" \
    "${cmd[@]}" --addr "127.0.0.1:$port" --cores 1 >"$out/server.log" 2>&1 &
vg=$!
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
done
callgrind_control -i on "$vg" >/dev/null 2>&1
if [ "$case" = http ]; then
    load=(net http)
else
    load=(net echo --size "$case")
fi
requests=$(PERCORE_DRIVER=io_uring "$bench" "${load[@]}" --target "127.0.0.1:$port" \
    --connections 64 --duration "$seconds" --json |
    grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)
callgrind_control -i off "$vg" >/dev/null 2>&1
kill -TERM "$vg"
wait "$vg" || true
instructions=$(grep 'Collected' "$out/server.log" | awk '{gsub(",", "", $NF); print $NF}')
awk -v s="$server" -v c="$case" -v i="$instructions" -v r="$requests" 'BEGIN {
    printf "%s %s: %d instructions over %d requests: %.0f per request\n", s, c, i, r, i / r }'
