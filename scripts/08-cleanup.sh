#!/usr/bin/env bash
# Activity 8 - Clean up: remove everything the deploy created, and verify nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make destroy TARGET="$TARGET"
if [ "$TARGET" = "local" ]; then
  make local-down
fi
