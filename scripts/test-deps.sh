#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine (root): memcached (the oracle of the
# differential tests), the client libraries and tools the tests drive. Idempotent; a test
# whose tool is missing fails instead of skipping, so this runs first (scripts/test.sh and
# .ci/run call it).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in memcached libmemcached-tools nutcracker netcat-openbsd systemd python3 python3-pylibmc libspymemcached-java default-jre-headless \
  python3-pymemcache python3-pip perl libio-socket-ssl-perl ruby ruby-dalli php-cli php-memcached sasl2-bin openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Node.js for memjs (tests/clients.rs): Debian's packages only when no node/npm is installed
# (a NodeSource nodejs ships its own npm and conflicts with Debian's).
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package may start a memcached on 11211; the tests use their own ephemeral ports.
# Client libraries outside Debian for tests/clients.rs: memjs from the lockfile, meta-memcache
# into the python3 on PATH.
npm ci --prefix tests/clients/node --no-audit --no-fund --silent
python3 -c 'import meta_memcache' 2>/dev/null ||
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check meta-memcache==4.3.0
# ElastiCache auto-discovery clients for tests/discovery.rs (pinned): npm from the lockfile,
# Python ones into the python3 on PATH.
npm ci --prefix tests/discovery/node --no-audit --no-fund --silent
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -r tests/discovery/requirements.txt
# tests/version.rs: Python's strict version parser (Perl's version.pm and Ruby's Gem come with
# perl and ruby)
python3 -c 'import packaging.version' 2>/dev/null ||
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check packaging
# memcached's own test files (t/*.t) from Debian's source package of the same memcached, for
# tests/memcached_suite.rs. They are memcached's code: fetched here with apt, never kept in
# this repository. The source entry is derived from the machine's own Debian entry.
MEMCACHED_T=${MEMCACHED_T:-/var/cache/rustcached-tests}
if [ ! -f "$MEMCACHED_T/memcached-1.6.18/t/lib/MemcachedTest.pm" ]; then
  mkdir -p "$MEMCACHED_T"
  src=/etc/apt/sources.list.d/rustcached-tests-src.sources
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src"
  else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"${src%.sources}.list"
  fi
  apt-get update -qq
  (cd "$MEMCACHED_T" && apt-get source --download-only -qq memcached=1.6.18-1 >/dev/null 2>&1 &&
    tar xf memcached_1.6.18.orig.tar.xz)
  rm -f "$src" "${src%.sources}.list"
  apt-get update -qq
fi
