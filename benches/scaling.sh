#!/usr/bin/env bash
# Worker scaling and lock contention: rustcached (and memcached, same flags) with -t 1, 2 and 4,
# 16-deep pipelined 90:10 get:set from rcbench, on a wide key space (1M keys) and on a hot one
# (100 keys: every worker hits the same lock stripes and, for the sets, the same slab class).
# Prints ops/s and server CPU seconds per million operations; with `perf` available it also
# samples rustcached and prints the share of its CPU time spent in lock slow paths (parking_lot
# lock_slow, futex, spinning), which is what a lock hot spot would show up as.
#   DUR=5 bash benches/scaling.sh
# Nothing is pinned: server threads and the load generator share every core, as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-5}
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
# The `perf` profile: the release build plus line tables for perf (see Cargo.toml).
cargo build --profile perf --quiet --bin rustcached --example rcbench
T=${CARGO_TARGET_DIR:-target}/perf
B=$T/examples/rcbench
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
PERF=$(command -v perf || true)
echo "cores: $(nproc)"
printf '%-11s %3s %6s %12s %12s %10s\n' server t keys ops/s cpu_s/Mop lock_share
for keys in 1000000 100; do
  for t in 1 2 4; do
    for srv in memcached rustcached; do
      bin=memcached; [ $srv = rustcached ] && bin=$T/rustcached
      $bin -p 23301 -t $t -m 1024 -c 4096 -U 0 -l 127.0.0.1 "${U[@]}" & pid=$!
      sleep 0.5
      $B --server 127.0.0.1:23301 --fill "$keys" --depth 64 --conns 8 >/dev/null
      share=-
      if [ -n "$PERF" ] && [ $srv = rustcached ]; then
        perf record -q -e cpu-clock -F 1000 -p $pid -o /tmp/rc-scaling.perf -- sleep "$DUR" 2>/dev/null &
        perfpid=$!
      fi
      line=$($B --server 127.0.0.1:23301 --keys "$keys" --duration "$DUR" --conns 50 --depth 16 --server-pid $pid)
      if [ -n "${perfpid:-}" ]; then
        wait $perfpid || true
        unset perfpid
        share=$(perf report -q -i /tmp/rc-scaling.perf --no-children --sort symbol 2>/dev/null |
          awk '/lock_slow|futex|park|spin_loop|RawMutex|RawRwLock/ { s += $1 } END { printf "%.2f%%", s }')
      fi
      v() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      printf '%-11s %3s %6s %12s %12s %10s\n' $srv $t "$keys" "$(v ops_per_sec)" "$(v server_cpu_s_per_mop)" "$share"
      kill $pid; wait $pid 2>/dev/null || true
    done
  done
done
rm -f /tmp/rc-scaling.perf
