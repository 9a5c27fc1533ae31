#!/usr/bin/env bash
# README's test command: install what the tests need (scripts/test-deps.sh), then run them.
#   bash scripts/test.sh [cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
cargo test "$@"
