#!/usr/bin/env bash
# TLS throughput side by side: rustcached -Z (rustls) vs Debian's memcached -Z (OpenSSL), same
# flags (-t 2 -m 1024 -c 4096), same certificate (RSA 2048, made here with openssl), server
# pinned to core 0 and rcbench (speaking TLS with rustls) to core 1, alternating runs as
# benches/compare.sh does. Prints one line per run and the median ratio per workload.
#   RUNS=5 DUR=10 bash benches/tls.sh        (defaults; RUNS=1 DUR=2 for a smoke run)
#   ONLY=set_only_16k bash benches/tls.sh    (one workload, by name)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DUR=${DUR:-10}
KEYS=${KEYS:-1000000}
command -v memcached >/dev/null || { apt-get update -qq && apt-get install -y -qq memcached >/dev/null; }
memcached -h | grep -- --enable-ssl >/dev/null || { echo "this memcached is built without TLS" >&2; exit 1; }
cargo build --release --quiet --bin rustcached --example rcbench
T=${CARGO_TARGET_DIR:-target}/release
B=$T/examples/rcbench
RC_BIN=$T/rustcached
PKI=$(mktemp -d)
trap 'rm -rf "$PKI"' EXIT
(
  cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
  openssl x509 -req -days 2 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile server.ext -out server.crt 2>/dev/null
)
U=(); [ "$(id -u)" = 0 ] && U=(-u root)
FLAGS=(-t 2 -m 1024 -c 4096 -U 0 -l 127.0.0.1 "${U[@]}" -Z -o "ssl_chain_cert=$PKI/server.crt,ssl_key=$PKI/server.key")
taskset -c 0 memcached -p 23111 "${FLAGS[@]}" & MC=$!
taskset -c 0 "$RC_BIN" -p 23112 "${FLAGS[@]}" & RC=$!
trap 'kill $MC $RC 2>/dev/null || true; rm -rf "$PKI"' EXIT
sleep 0.5
TLS=(--tls-ca "$PKI/ca.crt")
for p in 23111 23112; do taskset -c 1 $B --server 127.0.0.1:$p "${TLS[@]}" --fill "$KEYS" --depth 64 --conns 8 >/dev/null; done

WORKLOADS=(
  "get90_unpipelined|--conns 50 --depth 1"
  "get90_pipelined16|--conns 50 --depth 16"
  "binary_get90|--conns 50 --depth 16 --protocol binary"
  "set_only_1k|--conns 50 --depth 1 --get-ratio 0 --value-min 1024 --value-max 1024"
  "set_only_16k|--conns 10 --depth 4 --get-ratio 0 --value-min 16384 --value-max 16384"
)
printf '%-20s %-10s %12s %9s %9s %9s %12s\n' workload server ops/s p50_us p99_us p999_us cpu_s/Mop
for wl in "${WORKLOADS[@]}"; do
  name=${wl%%|*}; args=${wl#*|}
  [ -n "${ONLY:-}" ] && [ "$name" != "$ONLY" ] && continue
  ratios=()
  for r in $(seq "$RUNS"); do
    declare -A ops=()
    for srv in memcached rustcached; do
      if [ $srv = memcached ]; then port=23111 pid=$MC; else port=23112 pid=$RC; fi
      # shellcheck disable=SC2086
      line=$(taskset -c 1 $B --server 127.0.0.1:$port "${TLS[@]}" --keys "$KEYS" --duration "$DUR" --server-pid $pid $args 2>&1 || echo "ops_per_sec=0 failed")
      v() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      printf '%-20s %-10s %12s %9s %9s %9s %12s\n' "$name" $srv "$(v ops_per_sec)" "$(v p50_us)" "$(v p99_us)" "$(v p999_us)" "$(v server_cpu_s_per_mop)"
      ops[$srv]=$(v ops_per_sec)
    done
    ratios+=("$(awk -v a="${ops[rustcached]}" -v b="${ops[memcached]}" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }')")
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "== $name: rustcached/memcached throughput per run: ${ratios[*]} (median $med)"
done
