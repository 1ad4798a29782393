#!/usr/bin/env bash
# Activity 7 - Throttling: re-run the low-concurrency burst, classify it with the RCA tree and
# the fishbone (incident report: evidence vs hypothesis), apply the fix (2 -> 10) and show the
# before/after table. The runs are labelled incident-c2 and verify-c10.
# The hard-429 variant: make scenario SCENARIO=throttled (account concurrency 10).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
N="${N:-500}"

make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=2 LABEL=incident-c2
make rca RUN=incident-c2
make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=10 LABEL=verify-c10
make compare RUNS="incident-c2 verify-c10"
