#!/usr/bin/env bash
# Instructions per request, counted by callgrind (repeatable on a loaded machine, unlike
# wall-clock runs): the server runs under valgrind, benches/instr.py prefills KEYS items and
# then sends a fixed request stream; callgrind's counters are zeroed before that stream and
# dumped after it, and only the worker threads are counted (the maintenance thread's crawl
# depends on wall time). Kernel work (syscalls, TCP) is not counted: this is the server's own
# user-space share.
#   bash benches/instr.sh                       both workloads, `perf` build of this tree
#   BIN=/path/to/rustcached bash benches/instr.sh        another build (before/after)
#   ONLY=gets KEYS=1000000 CACHE=1 bash benches/instr.sh  also simulate the caches (D1/LL
#                                                         misses per request; slower)
#   TOP=40 ...                                  functions listed per workload
# Workloads (as benches/users.sh's mc-crusher rows): `gets`: 50 connections, 16 `get k` per
# write; `mget`: 10 connections, one `get k1 .. k100` each at a time. All keys hit.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-100000}
ONLY=${ONLY:-}
TOP=${TOP:-25}
CACHE=${CACHE:-0}
if [ -z "${BIN:-}" ]; then
  cargo build --profile perf --quiet --bin rustcached
  BIN=${CARGO_TARGET_DIR:-target}/perf/rustcached
fi
TMP=$(mktemp -d)
PORT=${PORT:-24311}
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
SIM=(); [ "$CACHE" = 1 ] && SIM=(--cache-sim=yes)
valgrind --tool=callgrind "${SIM[@]}" --separate-threads=yes --callgrind-out-file="$TMP/cg.%p" \
  "$BIN" -p "$PORT" -t 1 -m 1024 -U 0 -l 127.0.0.1 "${U[@]}" >"$TMP/vg.log" 2>&1 &
VG=$!
trap 'kill $VG 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break
  sleep 0.2
done
python3 benches/instr.py "$PORT" fill "$KEYS"

# workload: name, instr.py arguments, requests (keys) served
WORKLOADS=(
  "gets|gets 40 50 16 $KEYS|32000"
  "mget|mget 40 10 100 $KEYS|40000"
)
for wl in "${WORKLOADS[@]}"; do
  IFS='|' read -r name args reqs <<<"$wl"
  [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
  # shellcheck disable=SC2086 # (the arguments are words)
  python3 benches/instr.py "$PORT" ${args/ 40 / 2 } # warm the connections' paths once
  rm -f "$TMP"/cg.$VG.*
  callgrind_control -z $VG >/dev/null
  # shellcheck disable=SC2086
  python3 benches/instr.py "$PORT" $args
  callgrind_control -d $VG >/dev/null
  # the worker's per-thread dump (the one that ran Worker::run)
  files=$(grep -l 'Worker::run' "$TMP"/cg.$VG.* 2>/dev/null || true)
  echo "== $name: $reqs requests (keys), KEYS=$KEYS, Ir per request"
  for f in $files; do python3 benches/cgself.py "$f" "$reqs" "$TOP"; [ -n "${KEEP:-}" ] && cp "$f" "$KEEP.$name"; done
done
