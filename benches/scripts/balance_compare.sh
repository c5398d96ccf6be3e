#!/usr/bin/env bash
# Two server threads sharing both CPUs with the client (issue 17, item 4):
# percore (2 cores; as it comes, with `--balance`, with `--rehome`, pinned or
# not) against
# tokio's multi-thread runtime (2 workers), outside clients (the tokio echo
# client, wrk for HTTP), 64 connections, a fresh server per measurement,
# the order of servers rotating per round. For echo 128 B, echo 4 KiB and
# HTTP it prints per server the median req/s, p50, p99 and server CPU per
# request, and per server against tokio-mt the per-round req/s ratios with
# their median.
#
#   benches/scripts/balance_compare.sh [ROUNDS] [SECONDS] [pin|no-pin] [SERVERS] [CASES]
#   (default 5 4 pin percore,percore-balance,percore-rehome,percore-unpinned,percore-rehome-unpinned,tokio-mt
#    "echo128 echo4096 http")
#
# `pin`: server core i on CPU i, the client on CPU 0 (tokio-mt's process on
# CPUs 0-1, its workers free to move); `no-pin`: nothing pinned. Needs wrk
# and python3; builds what it runs in release mode. JSON of every run is
# kept in $OUT (default a temporary directory, printed).
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-5}
seconds=${2:-4}
pin=${3:-pin}
servers=${4:-percore,percore-balance,percore-rehome,percore-unpinned,percore-rehome-unpinned,tokio-mt}
cases=${5:-echo128 echo4096 http}
out=${OUT:-$(mktemp -d)}

command -v wrk >/dev/null || { echo "balance_compare: wrk not found: apt-get install -y wrk" >&2; exit 2; }
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
bin=${CARGO_TARGET_DIR:-target}/release/percore-bench
pin_flag=()
[ "$pin" = no-pin ] && pin_flag=(--no-pin)

echo "balance_compare: $rounds rounds of ${seconds}s, $pin, servers $servers; JSON in $out"
for case in $cases; do
    case $case in
        echo128) args=(echo --size 128 --client tokio) ;;
        echo4096) args=(echo --size 4096 --client tokio) ;;
        http) args=(http --client wrk) ;;
        *) echo "balance_compare: unknown case $case" >&2; exit 2 ;;
    esac
    "$bin" net "${args[@]}" --compare --servers "$servers" --server-cores 2 \
        --rounds "$rounds" --duration "$seconds" "${pin_flag[@]}" --json >"$out/$case.json"
    python3 - "$case" "$out/$case.json" <<'EOF'
import json, statistics, sys
case, path = sys.argv[1], sys.argv[2]
runs = json.load(open(path))["runs"]
servers = list(dict.fromkeys(r["server"] for r in runs))
def med(server, f):
    values = [f(r) for r in runs if r["server"] == server and f(r) is not None]
    return statistics.median(values) if values else float("nan")
print(f"{case}:")
for s in servers:
    print(f"  {s:26} {med(s, lambda r: r['req_per_s'])/1e3:7.1f} k req/s"
          f"  p50 {med(s, lambda r: r['latency_us']['p50'])/1e3:6.2f} ms"
          f"  p99 {med(s, lambda r: r['latency_us']['p99'])/1e3:6.2f} ms"
          f"  CPU/req {med(s, lambda r: r['server_cpu_us_per_request']):5.2f} µs")
peer = "tokio-mt"
if peer in servers:
    for s in servers:
        if s == peer:
            continue
        ratios = []
        for rnd in sorted({r["round"] for r in runs}):
            a = [r["req_per_s"] for r in runs if r["server"] == s and r["round"] == rnd]
            b = [r["req_per_s"] for r in runs if r["server"] == peer and r["round"] == rnd]
            if a and b:
                ratios.append(a[0] / b[0])
        p99 = med(s, lambda r: r['latency_us']['p99']) / med(peer, lambda r: r['latency_us']['p99'])
        print(f"  {s}/{peer}: req/s per round " + " ".join(f"{x:.2f}" for x in ratios)
              + f": median {statistics.median(ratios):.2f}x; p99 {p99:.2f}x")
EOF
done
