#!/usr/bin/env bash
# Run memcached's own Perl test files (t/*.t from a memcached source tree) against rustcached.
# They are memcached's code, so they are not kept here: point MEMCACHED_SRC at a checkout or
# an unpacked source package (`apt-get source memcached`, or git tag 1.6.18).
#
#   MEMCACHED_SRC=~/src/memcached bash tests/memcached_t/run.sh [test names...]
#
# The harness (t/lib/MemcachedTest.pm) starts `./memcached-debug` from its working directory
# through `./timedrun`; both are provided in a scratch directory. Default test list: the files
# this project passes (see README, "Tests").
set -euo pipefail
: "${MEMCACHED_SRC:?set MEMCACHED_SRC to a memcached source tree}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${RUSTCACHED_BIN:-$here/target/debug/rustcached}"
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-$here/target}/debug/rustcached"
[ -x "$bin" ] || { echo "build rustcached first (cargo build)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'pkill -f "$work/memcached-debug" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$MEMCACHED_SRC/t" "$work/t"
ln -s "$bin" "$work/memcached-debug"
ln -s "$bin" "$work/memcached"
# The server's output goes to a log, not to the test's stdout: a server left running (a test
# that signals `timedrun` too early) must not keep prove waiting for the end of that pipe.
printf '#!/bin/sh\nt=$1; shift; exec timeout "$t" "$@" >>%s/servers.log 2>&1\n' "$work" > "$work/timedrun"
chmod +x "$work/timedrun"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(stats-detail stats-conns issue_61 issue_67 stats watcher)
cd "$work"
prove $(printf 't/%s.t ' "${tests[@]}")
