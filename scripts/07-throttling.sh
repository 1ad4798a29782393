#!/usr/bin/env bash
# Activity 7 - Throttling: re-run the low-concurrency burst, classify it with the RCA tree and
# the fishbone (incident report: evidence vs hypothesis), apply the fix (2 -> 10) and show the
# before/after table. The hard-429 variant: SCENARIO=throttled (account concurrency 10).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
N="${N:-500}"

make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=2 LABEL=incident-c2
before="$(ls -td runs/*-incident-c2-* | head -1)"
make compare RUNS="$before" >/dev/null
make rca RUN="$before"
make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=10 LABEL=verify-c10
after="$(ls -td runs/*-verify-c10-* | head -1)"
make compare RUNS="$before $after"
echo "Incident report: $before/rca.md"
