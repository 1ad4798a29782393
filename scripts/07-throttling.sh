#!/usr/bin/env bash
# Activity 7 - Throttling, twice. Each wall is classified with the RCA tree and the fishbone
# (an incident report: evidence apart from hypothesis), fixed, and the fix verified side by side.
#
# 1. The orchestration cap: the low-concurrency burst again (incident-c2). The RCA files it under
#    THROTTLED, and it is not Lambda refusing anything - 0 throttles, no 429: the Map's
#    max_concurrency lets 2 tickets run at once and the rest wait in its queue. Fix: 2 -> 10.
# 2. The 429 wall: the throttled scenario runs the Map at 20 under an account limit of 10
#    Lambdas. Lambda refuses the excess with 429 TooManyRequestsException: without a retry the
#    execution fails (throttled-c20), with one it goes on, slower (throttled-retry-c20).
#    Fix: the knob matched to the limit, so that the Map queues instead (throttled-fix-c10).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
N="${N:-500}"

echo "== 1. The orchestration cap: queueing at the Map"
make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=2 LABEL=incident-c2
make rca RUN=incident-c2
make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY=10 LABEL=verify-c10
make compare RUNS="incident-c2 verify-c10"

echo
echo "== 2. The 429 wall: Lambda's concurrency limit"
make scenario TARGET="$TARGET" SCENARIO=throttled
make rca RUN=throttled-c20
make compare RUNS="throttled-fix-c10 throttled-c20 throttled-retry-c20"
