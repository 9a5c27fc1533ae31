#!/usr/bin/env bash
# Items held per -m: fill Debian's memcached and rustcached (same flags: -m 1024 -t 2) to
# eviction with 20-byte keys and values of VALUE_MIN..=VALUE_MAX bytes (rcbench --fill: value
# lengths cycle through the range, so it is uniform), then print items held, the ratio, bytes
# of process memory (RSS) per item, and where the -m bytes went, per item:
#   payload   key + value bytes
#   header    item header (rustcached 24, memcached 48 + 8 CAS + NUL + CRLF)
#   rounding  chunk size minus item size, over used chunks
#   free      chunks carved but holding no item
#   tail      the end of each 1 MB page too small for one more chunk
#   unpaged   -m not handed to any class (spare pages, never allocated)
#   index     the hash table (hash_bytes; outside -m for both)
# and append `server value_min value_max items bytes_per_item` to benches/results/memory.tsv
# (tab-separated; bytes_per_item = RSS / items).
#
#   VALUE_MIN=32 VALUE_MAX=1000 bash benches/memory.sh
#   for v in 50 200 500 1000 4000; do VALUE_MIN=$v VALUE_MAX=$v bash benches/memory.sh; done
#
# Other knobs: MEM (MB, default 1024), N (sets; default 1.5 x what -m could hold with no
# overhead at all, so every run reaches eviction), SERVERS (default "memcached rustcached"),
# RC_BIN (a rustcached binary to use instead of building one), TSV (output file, "" for none),
# TIMEOUT (seconds per fill, default 600).
set -euo pipefail
cd "$(dirname "$0")/.."
VMIN=${VALUE_MIN:-${VMIN:-100}}; VMAX=${VALUE_MAX:-${VMAX:-$VMIN}}
MEM=${MEM:-1024}
AVG=$(( (VMIN + VMAX) / 2 ))
N=${N:-$(( MEM * 1048576 / (44 + AVG) * 3 / 2 ))}
SERVERS=${SERVERS:-memcached rustcached}
TSV=${TSV-benches/results/memory.tsv}
TIMEOUT=${TIMEOUT:-600}
PORT=${PORT:-23201}
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
# The `perf` profile: the release build plus line tables for perf (see Cargo.toml).
T=${CARGO_TARGET_DIR:-target}/perf
cargo build --profile perf --quiet --example rcbench
RC_BIN=${RC_BIN:-}
if [ -z "$RC_BIN" ]; then
  cargo build --profile perf --quiet --bin rustcached
  RC_BIN=$T/rustcached
fi
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
if [ -n "$TSV" ] && [ ! -s "$TSV" ]; then
  mkdir -p "$(dirname "$TSV")"
  printf 'server\tvalue_min\tvalue_max\titems\tbytes_per_item\n' >"$TSV"
fi
echo "values $VMIN..=$VMAX bytes, 20-byte keys, -m $MEM, $N sets"
printf '%-11s %10s %7s %8s %9s | per item: %7s %6s %8s %6s %6s %7s %6s\n' \
  server items ratio rss_MiB B/item payload header rounding free tail unpaged index
mc_items=
for srv in $SERVERS; do
  bin=memcached; hdr=59; [ "$srv" = rustcached ] && { bin=$RC_BIN; hdr=24; }
  $bin -p "$PORT" -t 2 -m "$MEM" -U 0 -l 127.0.0.1 "${U[@]}" & pid=$!
  for _ in $(seq 50); do nc -z 127.0.0.1 "$PORT" 2>/dev/null && break; sleep 0.1; done
  timeout "$TIMEOUT" "$T/examples/rcbench" --server "127.0.0.1:$PORT" --fill "$N" --depth 64 --conns 8 \
    --threads 1 --value-min "$VMIN" --value-max "$VMAX" >/dev/null
  stats=$(printf 'stats\r\nstats slabs\r\nquit\r\n' | nc -q1 127.0.0.1 "$PORT" | tr -d '\r')
  rss=$(awk '/VmRSS/{print $2 * 1024}' "/proc/$pid/status")
  kill $pid; wait $pid 2>/dev/null || true
  line=$(echo "$stats" | awk -v rss="$rss" -v hdr="$hdr" -v lim=$((MEM * 1048576)) '
    $1 != "STAT" { next }
    $2 == "curr_items" { items = $3 } $2 == "bytes" { bytes = $3 } $2 == "hash_bytes" { hash = $3 }
    $2 == "total_malloced" { malloced = $3 }
    $2 ~ /^[0-9]+:/ { split($2, a, ":"); c = a[1]; v[c, a[2]] = $3; cls[c] = 1 }
    END {
      for (c in cls) {
        size = v[c, "chunk_size"]
        used += v[c, "used_chunks"] * size
        carved += v[c, "total_chunks"] * size
        paged += v[c, "total_pages"] * 1048576
      }
      # Classes of 1 MB chunks or more have pages of their own size: count those pages whole.
      if (paged < carved) paged = carved
      printf "%d %.0f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f", items, rss / 1048576, rss / items,
        (bytes - items * hdr) / items, hdr, (used - bytes) / items, (carved - used) / items,
        (paged - carved) / items, (lim - paged) / items, hash / items
    }')
  read -r items rss_mib bpi payload header rounding free tail unpaged index <<<"$line"
  ratio=1.00
  if [ "$srv" = memcached ]; then mc_items=$items
  elif [ -n "$mc_items" ]; then ratio=$(awk -v a="$items" -v b="$mc_items" 'BEGIN{printf "%.3f", a / b}'); fi
  printf '%-11s %10s %7s %8s %9s | %19s %6s %8s %6s %6s %7s %6s\n' "$srv" "$items" "$ratio" "$rss_mib" "$bpi" \
    "$payload" "$header" "$rounding" "$free" "$tail" "$unpaged" "$index"
  [ -n "$TSV" ] && printf '%s\t%s\t%s\t%s\t%s\n' "$srv" "$VMIN" "$VMAX" "$items" "$bpi" >>"$TSV"
done
