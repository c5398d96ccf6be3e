#!/usr/bin/env bash
# User-space instructions per request of the HTTP comparison's servers,
# under valgrind's callgrind, which counts the same on a busy machine as on
# an idle one: each server (the `http_compare` bench binary re-run as
# `serve NAME`) starts under callgrind pinned to the first CPU, takes a
# warm-up load, has its counters zeroed (`callgrind_control -z`), answers
# exactly N requests from h2load (`--h1` for HTTP/1.1; h2c with -m10), and
# is dumped. Prints per server the instructions per request and its top
# functions by self cost (file:function, % and instructions per request);
# the dumps stay in the output folder for callgrind_annotate (inclusive
# costs) or kcachegrind.
#
# Kernel time is not counted: a server that makes fewer syscalls per
# request (percore's one SQE) saves CPU this figure does not show.
#
#   benches/scripts/http_callgrind.sh [h1|h2c] [REQUESTS] [SERVERS] [OUT]
#   (default h1 20000 "percore-http hyper-tokio-ct hyper-tokio-ct-bare", a fresh temp folder)
#   needs: valgrind, h2load (apt-get install -y valgrind nghttp2-client)
set -euo pipefail
cd "$(dirname "$0")/../.."

case_name=${1:-h1}
requests=${2:-20000}
servers=${3:-"percore-http hyper-tokio-ct hyper-tokio-ct-bare"}
out=${4:-$(mktemp -d -t http-callgrind.XXXXXX)}
mkdir -p "$out"
for tool in valgrind callgrind_control h2load python3; do
    command -v "$tool" >/dev/null || { echo "http_callgrind: $tool is missing" >&2; exit 2; }
done
case $case_name in
    h1) h2load_flags=(--h1 -c64) ;;
    h2c) h2load_flags=(-c64 -m10) ;;
    *) echo "http_callgrind: the case is h1 or h2c, not $case_name" >&2; exit 2 ;;
esac

bin=$(cargo bench -q -p percore-bench --bench http_compare --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*http_compare[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "http_callgrind: no http_compare bench binary" >&2; exit 2; }
cpus=$(nproc)
client_cpu=$(( cpus > 1 ? 1 : 0 ))

for server in $servers; do
    name=$server
    driver=io_uring
    if [ "$server" = percore-http-epoll ]; then name=percore-http; driver=epoll; fi
    dump="$out/$server.callgrind"
    log="$out/$server.log"
    # The server exits when its stdin closes: a fifo this script holds open.
    # Under valgrind a percore server now and then never gets past its
    # start (its core thread waits in io_uring_enter, the main thread on
    # valgrind's lock): such a try is killed after 30 s and retried.
    fifo="$out/$server.stdin"
    addr=""
    for try in 1 2 3; do
        rm -f "$fifo" && mkfifo "$fifo"
        PERCORE_DRIVER=$driver taskset -c 0 valgrind --tool=callgrind \
            --callgrind-out-file="$dump" "$bin" serve "$name" --addr 127.0.0.1:0 --control \
            <"$fifo" >"$log" 2>"$out/$server.valgrind" &
        pid=$!
        exec 3>"$fifo"
        for _ in $(seq 300); do
            grep -q 'listening on' "$log" 2>/dev/null && break
            sleep 0.1
        done
        addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)
        [ -n "$addr" ] && break
        echo "http_callgrind: $server did not start within 30 s (try $try)" >&2
        exec 3>&-
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -n "$addr" ] || { cat "$out/$server.valgrind" >&2; exit 1; }
    # Warm-up: the first connections make the core's buffers, hyper's date cache…
    taskset -c "$client_cpu" h2load "${h2load_flags[@]}" -n 2000 "http://$addr/" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    report=$(taskset -c "$client_cpu" h2load "${h2load_flags[@]}" -n "$requests" "http://$addr/")
    callgrind_control -d "$pid" >/dev/null
    exec 3>&-
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$fifo"
    done_ok=$(echo "$report" | awk '/^requests:/ {print $8}')
    echo "== $server, $case_name: $done_ok of $requests requests succeeded"
    # The dump after zeroing is "$dump.1" (part 1).
    python3 - "$dump.1" "$requests" <<'EOF'
import collections, re, sys
names, cost, current, total, skip = {}, collections.Counter(), None, 0, False
def named(text):
    m = re.match(r'\((\d+)\)(?:\s+(.*))?', text)
    if not m:
        return text
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), text)
for line in open(sys.argv[1]):
    if line.startswith('fn='):
        current = named(line[3:].strip())
    elif line.startswith('cfn='):
        named(line[4:].strip())
    elif line.startswith('calls='):
        skip = True  # the next cost line is the call's inclusive cost
    elif line[:1].isdigit() or line[:1] in '+-*':
        parts = line.split()
        if skip:
            skip = False
        elif len(parts) >= 2 and current is not None:
            cost[current] += int(parts[1])
            total += int(parts[1])
n = int(sys.argv[2])
print(f"   {total / n:,.0f} instructions per request (user space)")
for fn, c in cost.most_common(25):
    print(f"   {c / total * 100:5.1f}%  {c / n:7.0f}/req  {fn[:140]}")
EOF
done
echo "dumps: $out"
