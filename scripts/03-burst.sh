#!/usr/bin/env bash
# Activity 3 - Hit the wall: N tickets (default 500) in one execution at max_concurrency 2.
# Watch the progress lines: at most 2 tickets run, the rest wait for a free Map slot.
# The run is labelled burst-c2 (as `make burst N=500 MAX_CONCURRENCY=2` labels it):
# Activity 4 compares against it by that label.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make burst TARGET="$TARGET" N="${N:-500}" MAX_CONCURRENCY=2 LABEL=burst-c2
make compare RUNS=burst-c2
