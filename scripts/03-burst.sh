#!/usr/bin/env bash
# Activity 3 - Hit the wall: 500 tickets in one execution at max_concurrency 2.
# Watch the queue: at most 2 tickets are in flight, the rest wait for a free Map slot.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make burst TARGET="$TARGET" N="${N:-500}" MAX_CONCURRENCY=2 LABEL=wall-c2
make compare RUNS="$(ls -td runs/*-wall-c2-* | head -1)"
