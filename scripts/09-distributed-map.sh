#!/usr/bin/env bash
# Going further (2) - past the inline wall: the Distributed Map. The same N tickets (500) at
# max_concurrency 10, 20, 40 with the inline Map (one execution history, at most 40 at once),
# then at 10, 20, 40, 100, 200 with the Distributed Map (each ticket a child execution with
# its own history, the batch read from S3): the sweep deploys each mode for its runs, then
# the variables deployed before, and writes one report with both curves. Then the batch the
# inline Map cannot run in one execution - 5,000 tickets, whose inline history would pass
# 25,000 events - as one execution of examples/distributed.tfvars (batches of 10 per child),
# at max_concurrency 100, compared and diagnosed. Afterwards the module's defaults (the
# inline Map) are deployed again. docs/distributed-map.md says what to look for.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
N="${N:-500}"

make sweep TARGET="$TARGET" N="$N" MAP_MODE=both
make deploy TARGET="$TARGET" VAR_FILE=examples/distributed.tfvars
make burst TARGET="$TARGET" N=5000 MAX_CONCURRENCY=100 LABEL=dist-5000
make compare RUNS="sweep-c40 sweep-dist-c100 dist-5000"
make rca RUN=dist-5000
make deploy TARGET="$TARGET"
