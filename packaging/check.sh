#!/usr/bin/env bash
# Packaging checks (.ci/run calls this): the man pages match the clap definitions; `cargo deb`
# builds a package with exactly the expected files, conffile and maintainer scripts that
# neither enable nor start a unit on install; lintian finds no error or warning; the packaged
# binaries run and the packaged man page renders; the container image builds with podman and
# the binary taken out of it serves as the image's user (11211). Installs what it needs and
# fails, never skips, when something is missing.
#   bash packaging/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in lintian podman man-db groff-base dpkg-dev binutils python3 util-linux musl-tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

fail() { echo "packaging/check.sh: $*" >&2; exit 1; }
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Start "$@" -p PORT -l 127.0.0.1, ask `version` over TCP, expect $expect, stop it with SIGTERM
# and expect exit code 0.
serve_check() {
  local expect=$1
  shift
  local port reply=
  port=$(free_port)
  "$@" -p "$port" -l 127.0.0.1 -U 0 &
  server=$!
  for _ in $(seq 100); do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      printf 'version\r\n' >&3
      IFS= read -r -t 5 reply <&3 || true
      exec 3<&-
      break
    fi
    sleep 0.05
  done
  [ "${reply%$'\r'}" = "$expect" ] || fail "$*: version answered '${reply}', expected '$expect'"
  kill -TERM "$server"
  local rc=0
  wait "$server" || rc=$?
  server=
  [ $rc = 0 ] || fail "$*: exit code $rc after SIGTERM"
}

version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "rustcached"))')
expect_version="VERSION 1.6.18"

echo "== man pages are current (cargo xtask man --check)"
cargo xtask man --check

echo "== cargo deb"
deb=$(cargo deb --locked --quiet --output "$work/rustcached.deb")
[ -f "$deb" ] || fail "cargo deb wrote no package"

echo "== package contents"
dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort >"$work/files"
cat >"$work/expected" <<'EOF'
/etc/default/rustcached
/usr/bin/rustcached
/usr/bin/rustcached-ring
/usr/lib/systemd/system/rustcached.service
/usr/lib/systemd/system/rustcached.socket
/usr/lib/systemd/system/rustcached@.service
/usr/share/doc/rustcached/README.md
/usr/share/doc/rustcached/changelog.Debian.gz
/usr/share/doc/rustcached/copyright
/usr/share/man/man1/rustcached-ring.1.gz
/usr/share/man/man1/rustcached.1.gz
EOF
sort -o "$work/expected" "$work/expected"
diff -u "$work/expected" "$work/files" || fail "unexpected package contents (- expected, + packaged)"
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" ./conffiles ./postinst ./prerm ./postrm
[ "$(cat "$work/conffiles")" = /etc/default/rustcached ] || fail "conffiles: $(cat "$work/conffiles")"
dpkg-deb --field "$deb" Depends | grep -q 'libc6' || fail "Depends lacks libc6"
apt-get install --simulate "$deb" >"$work/apt-sim" 2>&1 || { cat "$work/apt-sim"; fail "apt cannot install the package"; }

echo "== a fresh install neither enables nor starts a unit"
# Run postinst as dpkg does on a first install, with the systemd helpers replaced by loggers
# that answer as deb-systemd-helper does then (never installed before; was-enabled defaults to
# true, which is what makes an enabling postinst enable).
mkdir "$work/fakebin"
for tool in deb-systemd-helper deb-systemd-invoke systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n[ "$1" != debian-installed ]\n' \
    "$tool" "$work" >"$work/fakebin/$tool"
  chmod +x "$work/fakebin/$tool"
done
: >"$work/calls"
PATH="$work/fakebin:$PATH" sh -e "$work/postinst" configure
if grep -Ev '^deb-systemd-helper (debian-installed|update-state|unmask) |^systemctl --system daemon-reload' "$work/calls"; then
  fail "postinst on a fresh install did more than record the units (above)"
fi
# Starting happens only where /run/systemd/system exists, so also look at the script itself:
# an upgrade may try-restart a running unit, nothing may start one.
sed 's/try-restart//g' "$work/postinst" | grep -Ewn 'start|restart' && fail "postinst starts a unit"
grep -q 'deb-systemd-invoke stop rustcached.service rustcached.socket' "$work/prerm" || fail "prerm does not stop the units"

echo "== lintian"
# initial-upload-closes-no-bugs is about uploads to the Debian archive, which this is not.
rc=0
lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$deb" >"$work/lintian" 2>&1 || rc=$?
grep -v '^running with root privileges' "$work/lintian" || true
[ $rc = 0 ] || fail "lintian reports errors or warnings (exit code $rc)"

echo "== the packaged binaries run"
mkdir "$work/root"
dpkg-deb --extract "$deb" "$work/root"
[ "$("$work/root/usr/bin/rustcached" -V)" = "rustcached $version (memcached 1.6.18)" ] || fail "rustcached -V"
"$work/root/usr/bin/rustcached-ring" --servers a:11211,b:11211 user:42 | grep -Eq '^user:42	[ab]:11211$' ||
  fail "rustcached-ring does not place a key"
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
serve_check "$expect_version" "$work/root/usr/bin/rustcached" "${user[@]}"

echo "== the packaged man page renders"
page="$work/root/usr/share/man/man1/rustcached.1.gz"
MANWIDTH=100 LC_ALL=C.UTF-8 man --warnings -l "$page" >"$work/man.txt" 2>"$work/man.err" || fail "man -l failed"
[ ! -s "$work/man.err" ] || { cat "$work/man.err"; fail "groff warnings in rustcached.1"; }
for section in SYNOPSIS OPTIONS 'EXTENDED OPTIONS' 'CONFIGURATION FILE' FILES 'DIFFERENCES FROM MEMCACHED'; do
  grep -q "^$section\$" "$work/man.txt" || fail "rustcached(1) has no $section section"
done
grep -q -- '--conf-file' "$work/man.txt" || fail "rustcached(1) does not describe --conf-file"
MANWIDTH=100 man -l "$work/root/usr/share/man/man1/rustcached-ring.1.gz" | grep -q -- '--servers' ||
  fail "rustcached-ring(1) does not render"

echo "== container image (podman, from scratch)"
image=localhost/rustcached:check
bash packaging/container/build.sh "$image" >/dev/null
inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = 11211:11211 ] || fail "image user: $(inspect '{{.Config.User}}')"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/rustcached"]' ] || fail "image entrypoint"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"11211/tcp"' || fail "image does not expose 11211"
# Containers cannot run here: create one (with arguments, which must land after the entrypoint)
# and copy the binary and passwd file out of it.
cid=$(podman create "$image" -m 256)
[ "$(podman inspect --format '{{json .Config.Cmd}}' "$cid")" = '["-m","256"]' ] || fail "arguments do not pass through"
podman cp "$cid:/usr/local/bin/rustcached" "$work/image-rustcached"
podman cp "$cid:/etc/passwd" "$work/image-passwd"
podman cp "$cid:/usr/share/doc/rustcached/LICENSE" "$work/image-LICENSE"
podman rm "$cid" >/dev/null
grep -qx 'memcache:x:11211:11211:memcache:/nonexistent:/sbin/nologin' "$work/image-passwd" || fail "image /etc/passwd"
readelf --program-headers "$work/image-rustcached" | grep -q 'program interpreter' && fail "image binary is not static"
[ "$("$work/image-rustcached" -V)" = "rustcached $version (memcached 1.6.18)" ] || fail "image rustcached -V"
cmp -s LICENSE "$work/image-LICENSE" || fail "the image does not carry LICENSE"
"$work/image-rustcached" -i | cmp -s LICENSE - || fail "rustcached -i does not print LICENSE"
# As the image runs it: uid/gid 11211 (which must be able to reach the binary), no -u.
chmod 0755 "$work" "$work/image-rustcached"
serve_check "$expect_version" setpriv --reuid 11211 --regid 11211 --clear-groups "$work/image-rustcached" -m 256

echo "== packaging checks passed"
