#!/usr/bin/env bash
# Why net_compare's percore/tokio server CPU per request (percore's own client)
# differs from what an outside client measures: runs `percore-bench net
# --compare --servers percore,tokio` under several variants, one round each,
# the variants interleaved (their order rotating each repetition) so load from
# elsewhere on the machine falls on all of them alike. Every invocation starts
# fresh pinned servers (percore on CPU 0, then tokio, or the other way round)
# and gives one per-round ratio.
#
#   benches/scripts/outside_gap.sh echo|http [SIZE] [REPS] [SECONDS] [VARIANTS...]
#
# Defaults: size 128, 5 repetitions of 2 s. Variants (default: all that apply):
#   percore           percore-bench's client (what net_compare used to report)
#   unbatched         the same, each request's write submitted on its own
#   tokio             the closed-loop tokio client
#   wrk               wrk (HTTP only; skipped without wrk)
#   warm              percore's client, the server first loaded 2 s unmeasured
#   unpinned          percore's client, nothing pinned
#   c16, c256         percore's client with 16 or 256 connections
#   tokio-c16, tokio-c256, tokio-warm, tokio-unpinned  the same with the tokio client
#
# Prints per variant the per-round ratios percore/tokio of server CPU per
# request (schedstat of the server's threads; in brackets the same from
# /proc/<pid>/stat), their median, and medians of percore's and tokio's req/s,
# percore's io_uring_enter calls per request, both servers' sleeps per request
# and the client's CPU per request.
set -euo pipefail
cd "$(dirname "$0")/../.."

proto=${1:-echo}
size=${2:-128}
reps=${3:-5}
seconds=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
    variants=(percore unbatched tokio warm unpinned c16 c256)
    [ "$proto" = http ] && command -v wrk >/dev/null && variants+=(wrk)
fi
command -v jq >/dev/null || { echo "outside_gap: needs jq" >&2; exit 2; }
cargo build --release -q -p percore-bench --bin percore-bench --example peer_server
bench=${CARGO_TARGET_DIR:-target}/release/percore-bench

flags() {
    case $1 in
        percore) echo "--client percore" ;;
        unbatched) echo "--client percore-unbatched" ;;
        tokio) echo "--client tokio" ;;
        wrk) echo "--client wrk" ;;
        warm) echo "--client percore --warmup 2" ;;
        unpinned) echo "--client percore --no-pin" ;;
        c16) echo "--client percore --connections 16" ;;
        c256) echo "--client percore --connections 256" ;;
        tokio-warm) echo "--client tokio --warmup 2" ;;
        tokio-unpinned) echo "--client tokio --no-pin" ;;
        tokio-c16) echo "--client tokio --connections 16" ;;
        tokio-c256) echo "--client tokio --connections 256" ;;
        *) echo "outside_gap: unknown variant $1" >&2; exit 2 ;;
    esac
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=${#variants[@]}
for rep in $(seq 0 $((reps - 1))); do
    for i in $(seq 0 $((n - 1))); do
        v=${variants[$(( (rep + i) % n ))]}
        # shellcheck disable=SC2046
        "$bench" net "$proto" --size "$size" --compare --servers percore,tokio --rounds 1 \
            --duration "$seconds" --json $(flags "$v") >>"$out/$v.json"
    done
done

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
of() { jq -r "$1" "$out/$2.json"; }
echo "== $proto$([ "$proto" = echo ] && echo " $size B"), $reps interleaved rounds of $seconds s, servers pinned to CPU 0 and clients to CPU 1 unless unpinned"
printf '%-15s %-44s %-8s %-9s %-9s %-9s %-9s %-22s %s\n' variant "CPU/req percore/tokio per round" median "[stat]" "percore" "tokio" "enters" "sleeps percore, tokio" "client µs/req"
for v in "${variants[@]}"; do
    rounds=$(of '.ratios[] | select(.numerator == "percore" and .denominator == "tokio") | .server_cpu_per_request' "$v" | xargs printf '%.3f ')
    ratio=$(of '.ratios[] | select(.numerator == "percore" and .denominator == "tokio") | .server_cpu_per_request' "$v" | median)
    stat=$(paste <(of '.summary[] | select(.server == "percore") | .server_cpu_stat_us_per_request' "$v") \
                 <(of '.summary[] | select(.server == "tokio") | .server_cpu_stat_us_per_request' "$v") |
           awk '$1 != "null" && $2 != "null" && $2 > 0 {print $1 / $2}' | median)
    rate_p=$(of '.summary[] | select(.server == "percore") | .req_per_s' "$v" | median)
    rate_t=$(of '.summary[] | select(.server == "tokio") | .req_per_s' "$v" | median)
    enters=$(of '.summary[] | select(.server == "percore") | .server_enters_per_request' "$v" | median)
    sleeps_p=$(of '.summary[] | select(.server == "percore") | .server_sleeps_per_request' "$v" | median)
    sleeps_t=$(of '.summary[] | select(.server == "tokio") | .server_sleeps_per_request' "$v" | median)
    client=$(of '.summary[] | .client_cpu_us_per_request' "$v" | median)
    printf '%-15s %-44s %-8.3f [%.3f]  %6.1fk   %6.1fk   %.3f     %.3f, %.3f           %.2f\n' "$v" "$rounds" "$ratio" "$stat" \
        "$(awk -v r="$rate_p" 'BEGIN {print r / 1e3}')" "$(awk -v r="$rate_t" 'BEGIN {print r / 1e3}')" \
        "$enters" "$sleeps_p" "$sleeps_t" "$client"
done
