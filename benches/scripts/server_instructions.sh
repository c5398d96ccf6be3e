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
#     SERVER: percore-epoll (default), percore (io_uring), tokio, and for
#             CASE http also percore-http, percore-http-epoll, hyper-tokio-ct
#             (the hello-world services of the http_compare bench)
#     CASE:   128 (echo 128 B, default), 4096 (or any echo size), http
#
# The client (percore-bench on io_uring, 64 connections) is not counted.
# On io_uring (percore, percore-http) the server can hang under valgrind
# before it serves: seen from /proc, the core waits in io_uring_enter
# (io_cqring_wait) while the main thread, which starts the server, waits
# for valgrind's one-thread-at-a-time lock (a pipe read), as if valgrind
# kept that lock across io_uring_enter; glommio #582 (valgrind bug 463859)
# and liburing #657 report hangs of the same shape. It then prints
# "0 requests": use the epoll rows, or count an io_uring server on one
# thread with benches/examples/server_one_thread.rs (its header says how;
# benches/scripts/kernel_features_callgrind.sh drives it).
# CALLGRIND_OUT=FILE keeps the profile, for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/../.."

server=${1:-percore-epoll}
case=${2:-128}
seconds=${3:-10}
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
dir=${CARGO_TARGET_DIR:-target}/release
http_compare() {
    cargo bench -q -p percore-bench --bench http_compare --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*http_compare[^"]*"' | tail -1 | cut -d'"' -f4
}
bench=$dir/percore-bench
port=$(( 20000 + RANDOM % 20000 ))
proto=$([ "$case" = http ] && echo http || echo echo)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

case $server in
    percore-epoll) cmd=("$bench" serve "$proto"); driver=epoll ;;
    percore) cmd=("$bench" serve "$proto"); driver=io_uring ;;
    tokio) cmd=("$dir/examples/peer_server" tokio "$proto"); driver= ;;
    percore-http) cmd=("$(http_compare)" serve percore-http); driver=io_uring ;;
    percore-http-epoll) cmd=("$(http_compare)" serve percore-http); driver=epoll ;;
    hyper-tokio-ct) cmd=("$(http_compare)" serve hyper-tokio-ct); driver= ;;
    *) echo "server: percore-epoll, percore, tokio, percore-http, percore-http-epoll or hyper-tokio-ct, not $server" >&2; exit 2 ;;
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
# The counts are dumped while the server runs: under valgrind a SIGTERM can
# stay undelivered while every thread of the server waits in io_uring_enter
# (valgrind holds asynchronous signals until a thread returns to it), so the
# server may have to be killed, and then writes no summary of its own.
callgrind_control -d "$vg" >/dev/null 2>&1
kill -TERM "$vg"
for _ in $(seq 100); do kill -0 "$vg" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$vg" 2>/dev/null || true
wait "$vg" 2>/dev/null || true
dump=$(ls "$out"/callgrind.out.* 2>/dev/null | head -1)
if [ -z "$dump" ]; then
    echo "server_instructions: callgrind wrote no dump (see $out/server.log)" >&2
    cat "$out/server.log" >&2
    exit 1
fi
if [ -n "${CALLGRIND_OUT:-}" ]; then cp "$dump" "$CALLGRIND_OUT"; fi
instructions=$(awk '/^totals:/ {print $2; exit}' "$dump")
awk -v s="$server" -v c="$case" -v i="$instructions" -v r="$requests" 'BEGIN {
    printf "%s %s: %d instructions over %d requests: %.0f per request\n", s, c, i, r, i / r }'
