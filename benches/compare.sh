#!/usr/bin/env bash
# Side-by-side throughput: rustcached vs Debian's memcached on this machine, same flags
# (-t 2 -m 1024 -c 4096), server pinned to core 0 and the load generator (rcbench) to core 1,
# alternating A B A B runs so drift hits both. Prints one line per run and the median ratio.
#   RUNS=5 DUR=10 bash benches/compare.sh        (defaults; RUNS=1 DUR=2 for a smoke run)
#   ONLY=meta_get90 bash benches/compare.sh      (one workload, by name)
#   BASE=/path/to/rustcached bash benches/compare.sh  (before/after: that binary takes
#                                                      memcached's place, same pinning)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DUR=${DUR:-10}
KEYS=${KEYS:-1000000}
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
# The `perf` profile: the release build plus line tables for perf (see Cargo.toml).
cargo build --profile perf --quiet --bin rustcached --example rcbench
T=${CARGO_TARGET_DIR:-target}/perf
B=$T/examples/rcbench
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
FLAGS=(-t 2 -m 1024 -c 4096 -U 0 -l 127.0.0.1 "${U[@]}")
BASE=${BASE:-memcached}
A=memcached; [ "$BASE" != memcached ] && A=base
taskset -c 0 "$BASE" -p 23101 "${FLAGS[@]}" & MC=$!
taskset -c 0 $T/rustcached -p 23102 "${FLAGS[@]}" & RC=$!
trap 'kill $MC $RC 2>/dev/null || true' EXIT
sleep 0.5
for p in 23101 23102; do taskset -c 1 $B --server 127.0.0.1:$p --fill "$KEYS" --depth 64 --conns 8 >/dev/null; done

WORKLOADS=(
  "get90_unpipelined|--conns 50 --depth 1"
  "get90_pipelined16|--conns 50 --depth 16"
  "gets_deep_pipeline|--conns 50 --depth 16 --get-ratio 1"
  "multiget100|--conns 10 --depth 1 --multiget 100 --get-ratio 1"
  "set_only_1k|--conns 50 --depth 1 --get-ratio 0 --value-min 1024 --value-max 1024"
  "binary_get90|--conns 50 --depth 16 --protocol binary"
  "meta_get90|--conns 50 --depth 16 --protocol meta"
  "idle1000_get90|--conns 50 --depth 1 --idle 1000"
)
printf '%-20s %-10s %12s %9s %9s %9s %12s\n' workload server ops/s p50_us p99_us p999_us cpu_s/Mop
for wl in "${WORKLOADS[@]}"; do
  name=${wl%%|*}; args=${wl#*|}
  [ -n "${ONLY:-}" ] && [ "$name" != "$ONLY" ] && continue
  ratios=()
  for r in $(seq "$RUNS"); do
    declare -A ops=()
    for srv in $A rustcached; do
      if [ $srv = $A ]; then port=23101 pid=$MC; else port=23102 pid=$RC; fi
      # shellcheck disable=SC2086
      line=$(taskset -c 1 $B --server 127.0.0.1:$port --keys "$KEYS" --duration "$DUR" --server-pid $pid $args 2>&1 || echo "ops_per_sec=0 failed")
      v() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      printf '%-20s %-10s %12s %9s %9s %9s %12s\n' "$name" $srv "$(v ops_per_sec)" "$(v p50_us)" "$(v p99_us)" "$(v p999_us)" "$(v server_cpu_s_per_mop)"
      ops[$srv]=$(v ops_per_sec)
    done
    ratios+=("$(awk -v a="${ops[rustcached]}" -v b="${ops[$A]}" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }')")
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "== $name: rustcached/$A throughput per run: ${ratios[*]} (median $med)"
done
