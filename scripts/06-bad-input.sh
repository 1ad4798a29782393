#!/usr/bin/env bash
# Activity 6 - Bad input: one ticket of 5,100 characters. The execution FAILS in Preprocess
# with PayloadTooLarge. Classify it with the RCA tree: leaf 4, BAD INPUT (data).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make bad-input TARGET="$TARGET"
