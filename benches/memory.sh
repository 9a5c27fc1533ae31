#!/usr/bin/env bash
# Memory per item: fill -m 1024 with 20-byte keys and 100-byte values (12M sets, far past
# capacity) on rustcached and memcached; print items held, RSS and overhead per item
# ((RSS - items * 120 bytes of payload) / items).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-12000000}
VMIN=${VMIN:-100}; VMAX=${VMAX:-100}
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
# The `perf` profile: the release build plus line tables for perf (see Cargo.toml).
cargo build --profile perf --quiet --bin rustcached --example rcbench
T=${CARGO_TARGET_DIR:-target}/perf
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
printf '%-11s %12s %10s %10s %16s\n' server items rss_mib evictions overhead_B/item
for srv in memcached rustcached; do
  bin=memcached; [ $srv = rustcached ] && bin=$T/rustcached
  $bin -p 23201 -t 2 -m 1024 -U 0 -l 127.0.0.1 "${U[@]}" & pid=$!
  sleep 0.5
  $T/examples/rcbench --server 127.0.0.1:23201 --fill "$N" --depth 64 --conns 8 --threads 1 --value-min "$VMIN" --value-max "$VMAX" >/dev/null
  stats=$(printf 'stats\r\nquit\r\n' | nc -q1 127.0.0.1 23201 | tr -d '\r')
  items=$(echo "$stats" | awk '$2=="curr_items"{print $3}')
  ev=$(echo "$stats" | awk '$2=="evictions"{print $3}')
  rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  payload=$(( 20 + (VMIN + VMAX) / 2 ))
  over=$(awk -v r="$rss" -v i="$items" -v p="$payload" 'BEGIN{printf "%.1f", (r*1024 - i*p)/i}')
  printf '%-11s %12s %10s %10s %16s\n' $srv "$items" $((rss / 1024)) "$ev" "$over"
  kill $pid; wait $pid 2>/dev/null || true
done
