#!/bin/sh
# Builds the hand-written C io_uring server (benches/c/uring_server.c), the
# `c-uring` peer of `percore-bench net --compare --servers ...,c-uring`, into
# ${CARGO_TARGET_DIR:-target}/release/c_uring_server, next to percore-bench
# (or into OUT_DIR, e.g. target/debug for the debug binary's tests).
#
#   benches/scripts/build_c_server.sh [OUT_DIR]
#
# Needs a C compiler and liburing's header (Debian: apt-get install -y liburing-dev).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${CARGO_TARGET_DIR:-$root/target}/release}
cc=${CC:-}
if [ -z "$cc" ]; then
    if command -v gcc >/dev/null 2>&1; then cc=gcc; else cc=cc; fi
fi
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "build_c_server.sh: no C compiler ($cc); install gcc" >&2
    exit 1
fi
if ! printf '#include <liburing.h>\n' | "$cc" -E -x c - >/dev/null 2>&1; then
    echo "build_c_server.sh: liburing.h is missing: apt-get install -y liburing-dev" >&2
    exit 1
fi
mkdir -p "$out"
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -pthread \
    -o "$out/c_uring_server" "$root/benches/c/uring_server.c" -luring
echo "built $out/c_uring_server"
