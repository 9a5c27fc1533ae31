#!/usr/bin/env bash
# Side by side with the load generators memcached users run: rustcached vs Debian's memcached
# 1.6.18, same flags (-t 2 -m 1024 -c 4096), server pinned to core 0 and the generator to core 1,
# A/B paired runs (the order alternates run to run). Generators: mc-crusher (memcached's own
# "damaging" hammer), memtier_benchmark, and our rcbench as a cross-check. Neither third-party
# tool is kept here (see README, Performance, for where to get them and the commits we used).
#
#   MEMTIER=/path/to/memtier_benchmark MC_CRUSHER=/path/to/mc-crusher bash benches/users.sh
#   MEMTIER_SRC=/path/to/memtier_benchmark-tree MC_CRUSHER_SRC=/path/to/mc-crusher-tree ...
#       (a source tree the tool was already built in, by its own instructions)
#   RUNS=5 DUR=10 (defaults; RUNS=1 DUR=2 for a smoke run)   KEYS=1000000 (prefilled keys)
#   TLS=1        both servers with -Z and a certificate made here; memtier --tls and rcbench --tls-ca
#   ONLY=REGEX   only the rows whose id (generator/workload/dDEPTH/cCONNS) matches, e.g.
#                ONLY=memtier/get90 or ONLY=/d16/
#   GENS="mc-crusher memtier rcbench"   which generators to run (memtier also prefills the
#                keys mc-crusher reads, so mc-crusher needs it)
#   OUT=benches/results/users.tsv       rows of the same generator, transport, workload, depth
#                and conns are replaced, the others kept (so TLS=1 and ONLY= runs add to it)
#   PORT=23401   memcached listens there, rustcached on PORT+1
#
# What each generator measures:
#   memtier: its own ops/s and latency percentiles (every request timed, HdrHistogram);
#   rcbench: the same, from our generator;
#   mc-crusher: nothing itself (it writes without waiting for replies, "blind_read"), so
#     throughput is the server's cmd_get counter over the window (keys/s: memcached counts each
#     key of a multi-get) and there is no latency (NA).
# On every row: server CPU seconds per million ops and its share of a core, and the generator's
# share of its core and CPU seconds per million ops (a share near 1.00 means the generator, not
# the server, set the pace; 1e6 / its CPU per M ops is what it could drive with a whole core,
# printed with each workload's ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DUR=${DUR:-10}
KEYS=${KEYS:-1000000}
TLS=${TLS:-0}
ONLY=${ONLY:-}
GENS=${GENS:-mc-crusher memtier rcbench}
OUT=${OUT:-benches/results/users.tsv}
PORT=${PORT:-23401}
HZ=$(getconf CLK_TCK)

uses() { [[ " $GENS " == *" $1 "* ]]; }
die() { echo "users.sh: $*" >&2; exit 1; }

# A third-party generator: NAME=binary, else NAME_SRC=a tree it was built in, else on PATH.
tool() { # VAR BINARY_NAME URL COMMIT
  local var=$1 bin=$2 url=$3 commit=$4 src
  local path=${!var:-}
  src="${var}_SRC"; src=${!src:-}
  if [ -z "$path" ] && [ -n "$src" ]; then
    [ -x "$src/$bin" ] ||
      die "$src/$bin is not built: build it in that tree as its own README says, then run again (or set $var=/path/to/$bin)"
    path=$src/$bin
  fi
  [ -z "$path" ] && path=$(command -v "$bin" || true)
  [ -n "$path" ] || die "$bin not found. Set $var=/path/to/$bin, or ${var}_SRC=/path/to/its source tree (built).
Get it from $url (our figures: commit $commit) and build it as its README says; it is not kept in this repository."
  [ -x "$path" ] || die "$var=$path is not an executable"
  echo "$path"
}
if uses memtier || uses mc-crusher; then
  MEMTIER=$(tool MEMTIER memtier_benchmark https://github.com/RedisLabs/memtier_benchmark 2f74d61)
fi
if uses mc-crusher && [ "$TLS" = 0 ]; then
  MC_CRUSHER=$(tool MC_CRUSHER mc-crusher https://github.com/memcached/mc-crusher 7ca3f14)
fi
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
# The `perf` profile: the release build plus line tables for perf (see Cargo.toml).
cargo build --profile perf --quiet --bin rustcached --example rcbench
T=${CARGO_TARGET_DIR:-target}/perf
RCBENCH=$T/examples/rcbench

TMP=$(mktemp -d)
MC='' RC=''
cleanup() {
  for p in $MC $RC; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

U=(); [ "$(id -u)" = 0 ] && U=(-u root)
FLAGS=(-t 2 -m 1024 -c 4096 -U 0 -l 127.0.0.1 "${U[@]}")
MT_TLS=() RB_TLS=() TRANSPORT=plain
if [ "$TLS" != 0 ]; then
  TRANSPORT=tls
  memcached -h | grep -- --enable-ssl >/dev/null || die "this memcached is built without TLS"
  (
    cd "$TMP"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
    openssl x509 -req -days 2 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile server.ext -out server.crt 2>/dev/null
  )
  FLAGS+=(-Z -o "ssl_chain_cert=$TMP/server.crt,ssl_key=$TMP/server.key")
  MT_TLS=(--tls --cacert "$TMP/ca.crt" --sni localhost)
  RB_TLS=(--tls-ca "$TMP/ca.crt")
fi

PMC=$PORT PRC=$((PORT + 1))
taskset -c 0 memcached -p "$PMC" "${FLAGS[@]}" & MC=$!
taskset -c 0 "$T/rustcached" -p "$PRC" "${FLAGS[@]}" & RC=$!
# Wait until both listen (read from /proc: a probe connection would make memcached -Z log an
# accept error).
for p in $PMC $PRC; do
  for _ in $(seq 50); do grep -q ":$(printf %04X "$p") 00000000:0000 0A" /proc/net/tcp && break; sleep 0.1; done
done
if ! kill -0 "$MC" 2>/dev/null || ! kill -0 "$RC" 2>/dev/null; then die "a server did not start (port $PMC or $PRC in use? set PORT=)"; fi

# shellcheck disable=SC2086
cpu_ticks() { local s; s=$(cat "/proc/$1/stat") || return 1; s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }
# Server counters (plain transport only: mc-crusher never runs over TLS).
stats() {
  local l
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'stats\r\n' >&3
  while IFS= read -r -t 5 l <&3; do
    l=${l%$'\r'}
    [ "$l" = END ] && break
    echo "$l"
  done
  exec 3>&-
}
stat_of() { awk -v k="$2" '$2 == k { print $3 }' <<<"$1"; }
# Run "$@" on core 1 and leave its CPU seconds (user + system, children included) in $TMP/gencpu.
pinned_gen() {
  # shellcheck disable=SC2016
  taskset -c 1 bash -c '"$@"; rc=$?; s=$(cat /proc/$$/stat); s=${s##*) }; set -- $s; echo $((${14} + ${15})) >"'"$TMP"'/gencpu"; exit $rc' _ "$@"
}

if uses memtier || uses mc-crusher; then
  for p in $PMC $PRC; do
    taskset -c 1 "$MEMTIER" -s 127.0.0.1 -p "$p" -P memcache_text "${MT_TLS[@]}" -t 1 -c 8 --pipeline 64 \
      --ratio 1:0 --key-pattern P:P --key-minimum 1 --key-maximum "$KEYS" --requests allkeys \
      --data-size-range 32-100 --hide-histogram >"$TMP/fill.out" 2>&1 || { cat "$TMP/fill.out" >&2; die "memtier prefill of port $p failed"; }
  done
fi
if uses rcbench; then
  for p in $PMC $PRC; do taskset -c 1 "$RCBENCH" --server "127.0.0.1:$p" "${RB_TLS[@]}" --fill "$KEYS" --depth 64 --conns 8 >/dev/null; done
fi

# One measured run; sets R_TPUT R_P50 R_P99 R_OPS R_MISS (NA where unknown), and R_DUR (the
# generator's own load time), or for mc-crusher R_SCPU R_WALL R_GCPU over its window.
run_memtier() { # port depth conns args...
  local port=$1 depth=$2 conns=$3; shift 3
  rm -f "$TMP/mt.json"
  pinned_gen "$MEMTIER" -s 127.0.0.1 -p "$port" -P memcache_text "${MT_TLS[@]}" -t 1 -c "$conns" \
    --pipeline "$depth" --test-time "$DUR" --key-minimum 1 --key-maximum "$KEYS" --distinct-client-seed \
    --hide-histogram --json-out-file "$TMP/mt.json" "$@" >"$TMP/gen.out" 2>&1 || true
  if [ ! -s "$TMP/mt.json" ]; then tail -3 "$TMP/gen.out" >&2; R_TPUT=0; return; fi
  read -r R_TPUT R_P50 R_P99 R_OPS R_MISS R_DUR < <(python3 - "$TMP/mt.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["ALL STATS"]
t, g = a["Totals"], a["Gets"]
p = t.get("Percentile Latencies", {})
us = lambda k: "%.1f" % (p[k] * 1000) if k in p else "NA"
looked = g["Hits/sec"] + g["Misses/sec"]
miss = "%.3f" % (100 * g["Misses/sec"] / looked) if looked else "NA"
secs = a["Runtime"]["Total duration"] / 1000  # the load phase only: memtier idles ~1 s around it
print("%.0f" % t["Ops/sec"], us("p50.00"), us("p99.00"), t["Count"], miss, "%.3f" % secs)
EOF
  )
}
run_rcbench() { # port pid depth conns args...
  local port=$1 pid=$2 depth=$3 conns=$4 line; shift 4
  line=$(pinned_gen "$RCBENCH" --server 127.0.0.1:"$port" "${RB_TLS[@]}" --keys "$KEYS" --duration "$DUR" \
    --server-pid "$pid" --depth "$depth" --conns "$conns" "$@" 2>&1 || echo "ops_per_sec=0 failed")
  v() { tr ' ' '\n' <<<"$line" | sed -n "s/^$1=//p"; }
  R_TPUT=$(v ops_per_sec) R_P50=$(v p50_us) R_P99=$(v p99_us) R_OPS=$(v ops) R_MISS=NA R_DUR=$(v secs)
}
run_crusher() { # port pid depth conns args...
  local port=$1 pid=$2 depth=$3 conns=$4 args=$5 g s0 s1 c0 c1 g0 g1 t0 t1 keys
  printf 'send=%s,recv=blind_read,conns=%s,pipelines=%s,key_prefix=memtier-,key_count=%s,live_rand=1\n' \
    "$args" "$conns" "$depth" "$KEYS" >"$TMP/crusher.conf"
  taskset -c 1 "$MC_CRUSHER" --conf "$TMP/crusher.conf" --ip 127.0.0.1 --port "$port" --timeout $((${DUR%.*} + 5)) \
    >"$TMP/gen.out" 2>&1 &
  g=$!
  sleep 1 # connections made, load running
  s0=$(stats "$port") c0=$(cpu_ticks "$pid") g0=$(cpu_ticks $g) t0=$(now)
  sleep "$DUR"
  s1=$(stats "$port") c1=$(cpu_ticks "$pid") g1=$(cpu_ticks $g || echo "$g0") t1=$(now)
  if kill $g 2>/dev/null; then wait $g 2>/dev/null || true; else R_TPUT=0; tail -3 "$TMP/gen.out" >&2; fi
  sleep 1 # let the server drain what the blind writer left queued before the next run
  keys=$(($(stat_of "$s1" cmd_get) - $(stat_of "$s0" cmd_get)))
  R_OPS=$keys R_P50=NA R_P99=NA
  R_TPUT=${R_TPUT:-$(calc %.0f "$keys / ($t1 - $t0)")}
  R_MISS=$(calc %.3f "$keys ? 100 * ($(stat_of "$s1" get_misses) - $(stat_of "$s0" get_misses)) / $keys : 0")
  R_SCPU=$(calc %.3f "($c1 - $c0) / $HZ") R_WALL=$(calc %.3f "$t1 - $t0") R_GCPU=$(calc %.3f "($g1 - $g0) / $HZ")
}

# generator|workload|depth|conns|unit|arguments. Sets last: 1 KB values over the key space
# evict the prefilled items the get workloads read.
WORKLOADS=()
if [ "$TLS" = 0 ]; then
  WORKLOADS+=(
    "mc-crusher|gets|16|50|ops/s|ascii_get"
    "mc-crusher|multiget100|1|10|keys/s|ascii_mget,mget_count=100"
  )
  for d in 1 4 16 64; do WORKLOADS+=("memtier|get90|$d|50|ops/s|--ratio 1:9 --data-size-range 32-100"); done
  for c in 10 200 1000; do WORKLOADS+=("memtier|get90|1|$c|ops/s|--ratio 1:9 --data-size-range 32-100"); done
  WORKLOADS+=(
    "rcbench|get90|1|50|ops/s|"
    "rcbench|get90|16|50|ops/s|"
    "memtier|set_1k|1|50|ops/s|--ratio 1:0 --data-size 1024"
  )
else
  WORKLOADS+=(
    "memtier|get90|1|50|ops/s|--ratio 1:9 --data-size-range 32-100"
    "memtier|get90|16|50|ops/s|--ratio 1:9 --data-size-range 32-100"
    "rcbench|get90|1|50|ops/s|"
    "rcbench|get90|16|50|ops/s|"
    "rcbench|binary_get90|16|50|ops/s|--protocol binary"
    "rcbench|set_1k|1|50|ops/s|--get-ratio 0 --value-min 1024 --value-max 1024"
    "rcbench|set_16k|4|10|ops/s|--get-ratio 0 --value-min 16384 --value-max 16384"
  )
fi

COMMIT=$(git describe --always --dirty 2>/dev/null || echo unknown)
DATE=$(date -u +%Y-%m-%d)
COLS='generator	transport	workload	depth	conns	server	run	unit	throughput	p50_us	p99_us	server_cpu_s_per_mop	server_cpu_util	gen_cpu_util	gen_cpu_s_per_mop	get_miss_pct	date	commit'
: >"$TMP/rows.tsv"
fmt='%-10s %-12s %5s %5s %-10s %3s %12s %9s %9s %9s %7s %7s %9s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" generator workload depth conns server run throughput p50_us p99_us cpu_s/Mop srv_cpu gen_cpu gen_s/Mop miss%
for wl in "${WORKLOADS[@]}"; do
  IFS='|' read -r gen name depth conns unit args <<<"$wl"
  id="$gen/$name/d$depth/c$conns"
  uses "$gen" || continue
  [ -n "$ONLY" ] && ! [[ $id =~ $ONLY ]] && continue
  ratios=() p99s=() gmax=0 ceil=0
  declare -A tput=() p99=()
  for r in $(seq "$RUNS"); do
    order="memcached rustcached"; [ $((r % 2)) = 0 ] && order="rustcached memcached"
    for srv in $order; do
      if [ "$srv" = memcached ]; then port=$PMC pid=$MC; else port=$PRC pid=$RC; fi
      R_TPUT='' R_P50=NA R_P99=NA R_OPS=0 R_MISS=NA R_SCPU='' R_WALL='' R_GCPU='' R_DUR=''
      if [ "$gen" = mc-crusher ]; then
        run_crusher "$port" "$pid" "$depth" "$conns" "$args"
      else
        c0=$(cpu_ticks $pid) t0=$(now)
        # shellcheck disable=SC2086
        if [ "$gen" = memtier ]; then run_memtier $port "$depth" "$conns" $args; else run_rcbench $port $pid "$depth" "$conns" $args; fi
        c1=$(cpu_ticks $pid) t1=$(now)
        # utilisation over the generator's load phase (the server idles outside it)
        R_SCPU=$(calc %.3f "($c1 - $c0) / $HZ") R_WALL=${R_DUR:-$(calc %.3f "$t1 - $t0")}
        R_GCPU=$(calc %.3f "$(cat "$TMP/gencpu" 2>/dev/null || echo 0) / $HZ")
      fi
      per_mop=$(calc %.3f "${R_OPS:-0} > 0 ? $R_SCPU / (${R_OPS:-0} / 1e6) : 0")
      sutil=$(calc %.2f "$R_SCPU / $R_WALL") gutil=$(calc %.2f "$R_GCPU / $R_WALL")
      gper=$(calc %.3f "${R_OPS:-0} > 0 ? $R_GCPU / (${R_OPS:-0} / 1e6) : 0")
      # shellcheck disable=SC2059
      printf "$fmt" "$gen" "$name" "$depth" "$conns" "$srv" "$r" "$R_TPUT" "$R_P50" "$R_P99" "$per_mop" "$sutil" "$gutil" "$gper" "$R_MISS"
      printf '%s\n' "$gen" "$TRANSPORT" "$name" "$depth" "$conns" "$srv" "$r" "$unit" "$R_TPUT" "$R_P50" "$R_P99" \
        "$per_mop" "$sutil" "$gutil" "$gper" "$R_MISS" "$DATE" "$COMMIT" | paste -sd '\t' >>"$TMP/rows.tsv"
      tput[$srv]=$R_TPUT p99[$srv]=$R_P99
      gmax=$(calc %.2f "$gutil > $gmax ? $gutil : $gmax")
      # what the generator could drive with its whole core, at the CPU per op it just used
      [ "$srv" = rustcached ] && ceil=$(calc %.0f "$gper > 0 ? 1e6 / $gper : 0")
    done
    ratios+=("$(calc %.2f "${tput[memcached]} > 0 ? ${tput[rustcached]} / ${tput[memcached]} : 0")")
    p99s+=("${p99[memcached]}/${p99[rustcached]}")
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2 }')
  note=''
  [ "$(calc %d "$gmax >= 0.9")" = 1 ] && note=" (generator used up to $gmax of its core: it may have set the pace)"
  echo "== $TRANSPORT $id: rustcached/memcached $unit per run: ${ratios[*]} (median $med); p99 us mc/rc: ${p99s[*]}; generator alone on its core: ~$ceil $unit$note"
done

# Merge into OUT: rows of the same generator, transport, workload, depth and conns are replaced.
[ -s "$TMP/rows.tsv" ] || die "no workload matched (GENS=$GENS ONLY=$ONLY TLS=$TLS): $OUT left as it was"
mkdir -p "$(dirname "$OUT")"
touch "$OUT"
echo "$COLS" >"$TMP/merged.tsv"
awk -F'\t' 'NR == FNR { new[$1 FS $2 FS $3 FS $4 FS $5] = 1; next }
  FNR > 1 && !(($1 FS $2 FS $3 FS $4 FS $5) in new)' "$TMP/rows.tsv" "$OUT" >>"$TMP/merged.tsv"
cat "$TMP/rows.tsv" >>"$TMP/merged.tsv"
cp "$TMP/merged.tsv" "$OUT"
echo "rows written to $OUT"
