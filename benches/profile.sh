#!/usr/bin/env bash
# Where the server's CPU goes under the mc-crusher workloads of benches/users.sh: rustcached
# (`perf` build) with -t 2 -m 1024 pinned to core 0, 1M keys prefilled by memtier, mc-crusher
# on core 1; `perf record -e cpu-clock` samples the server (kernel included) for DUR seconds
# and the top symbols are printed, with server CPU per request over the same window.
#   MC_CRUSHER=/path/to/mc-crusher MEMTIER=/path/to/memtier_benchmark bash benches/profile.sh
#   ONLY=gets|mget  DUR=5  TOP=30  BIN=/path/to/rustcached (another build)  MISSES=1 (no prefill)
set -euo pipefail
cd "$(dirname "$0")/.."
MC_CRUSHER=${MC_CRUSHER:-$(command -v mc-crusher || echo /work/tools/mc-crusher/mc-crusher)}
MEMTIER=${MEMTIER:-$(command -v memtier_benchmark || echo /work/tools/memtier_benchmark/memtier_benchmark)}
DUR=${DUR:-5}
TOP=${TOP:-30}
KEYS=${KEYS:-1000000}
ONLY=${ONLY:-}
PORT=${PORT:-24411}
if [ -z "${BIN:-}" ]; then
  cargo build --profile perf --quiet --bin rustcached
  BIN=${CARGO_TARGET_DIR:-target}/perf/rustcached
fi
TMP=$(mktemp -d)
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
taskset -c 0 "$BIN" -p "$PORT" -t 2 -m 1024 -c 4096 -U 0 -l 127.0.0.1 "${U[@]}" & SRV=$!
trap 'kill $SRV $GEN 2>/dev/null || true; rm -rf "$TMP"' EXIT
GEN=''
for _ in $(seq 50); do grep -q ":$(printf %04X "$PORT") 00000000:0000 0A" /proc/net/tcp && break; sleep 0.1; done
# MISSES=1: no prefill, every get misses: the floor of parsing, counting and answering
# (`END`) with the same system calls, what a server doing no storage work would cost.
if [ -z "${MISSES:-}" ]; then
  taskset -c 1 "$MEMTIER" -s 127.0.0.1 -p "$PORT" -P memcache_text -t 1 -c 8 --pipeline 64 --ratio 1:0 \
    --key-pattern P:P --key-minimum 1 --key-maximum "$KEYS" --requests allkeys --data-size-range 32-100 \
    --hide-histogram >"$TMP/fill.out" 2>&1
fi
HZ=$(getconf CLK_TCK)
# The server's system calls per key, counted over the same window.
SYSCALLS=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_sched_yield
# shellcheck disable=SC2086
cpu_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
cmd_get() { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf 'stats\r\nquit\r\n' >&3; awk '$2 == "cmd_get" { print $3 + 0 }' <&3; exec 3>&-; }
for wl in "gets|ascii_get|16|50" "mget|ascii_mget,mget_count=100|1|10"; do
  IFS='|' read -r name send depth conns <<<"$wl"
  [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
  printf 'send=%s,recv=blind_read,conns=%s,pipelines=%s,key_prefix=memtier-,key_count=%s,live_rand=1\n' \
    "$send" "$conns" "$depth" "$KEYS" >"$TMP/crusher.conf"
  taskset -c 1 "$MC_CRUSHER" --conf "$TMP/crusher.conf" --ip 127.0.0.1 --port "$PORT" --timeout $((DUR + 4)) \
    >"$TMP/gen.out" 2>&1 & GEN=$!
  sleep 1
  g0=$(cmd_get) c0=$(cpu_ticks $SRV)
  perf stat -x, -e "$SYSCALLS" -p $SRV -o "$TMP/stat.csv" -- sleep "$DUR" 2>/dev/null &
  perf record -q -e cpu-clock -F 2000 -g -p $SRV -o "$TMP/perf.data" -- sleep "$DUR" 2>/dev/null
  wait $!
  g1=$(cmd_get) c1=$(cpu_ticks $SRV)
  kill $GEN 2>/dev/null || true; wait $GEN 2>/dev/null || true
  sleep 1
  echo "== $name: $(( (g1 - g0) / DUR )) keys/s, server CPU $(awk "BEGIN { printf \"%.3f\", ($c1 - $c0) / $HZ / ($g1 - $g0) * 1e6 }") us per key"
  awk -F, -v keys=$((g1 - g0)) '$3 ~ /sys_enter_/ { sub(/.*sys_enter_/, "", $3); printf "%s%s %.3f", sep, $3, $1 / keys; sep = ", " }
    END { print " per key" }' "$TMP/stat.csv"
  perf report -i "$TMP/perf.data" --no-children --sort symbol --percent-limit 0.5 --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -"$TOP" || true # (head closing the pipe is no failure)
done
