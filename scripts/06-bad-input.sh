#!/usr/bin/env bash
# Activity 6 - Bad input: one ticket of 5,100 characters. The execution FAILS in Preprocess
# with PayloadTooLarge. It is recorded as the run labelled bad-input, which the RCA tree
# classifies: leaf 4, BAD INPUT (data) - the mini incident report.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make bad-input TARGET="$TARGET"
make rca RUN=bad-input
