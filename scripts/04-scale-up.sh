#!/usr/bin/env bash
# Activity 4 - Scale up & compare: the same burst at 5 and 10, side by side with the wall.
# Where do returns diminish? Compare speed-up against efficiency.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
N="${N:-500}"

for c in 5 10; do
  make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY="$c" LABEL="scale-c$c"
done
runs="$(ls -td runs/*-wall-c2-* | head -1) $(ls -td runs/*-scale-c5-* | head -1) $(ls -td runs/*-scale-c10-* | head -1)"
make report RUNS="$runs"
echo "Open runs/report/report.html for the plots."
