#!/usr/bin/env bash
# Build the rustcached container image with podman, offline: a static (musl) release binary and
# a two-line /etc/passwd and /etc/group put FROM scratch, so no base image is pulled.
#   bash packaging/container/build.sh [IMAGE]      (default IMAGE: localhost/rustcached:latest)
#   podman run -d -p 11211:11211 localhost/rustcached -m 256
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${1:-localhost/rustcached:latest}
TRIPLE=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$TRIPLE" || rustup target add "$TRIPLE"
# ring (rustls' crypto) compiles C and assembly: with musl that needs Debian's musl-gcc.
command -v musl-gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends musl-tools >/dev/null; }
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --quiet --target "$TRIPLE" --bin rustcached
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp packaging/container/Containerfile packaging/container/passwd packaging/container/group LICENSE "$ctx/"
cp "$target/$TRIPLE/release/rustcached" "$ctx/"
podman build --quiet --tag "$IMAGE" --file "$ctx/Containerfile" "$ctx"
