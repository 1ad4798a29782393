#!/usr/bin/env bash
# Activity 4 - Scale up & compare: the same burst at 5 and 10, side by side with the wall
# of Activity 3 (the latest run labelled burst-c2). Where do returns diminish? Compare
# speed-up against efficiency. N defaults to the wall's ticket count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
TARGET="${TARGET:-local}"

require_run burst-c2 "Activity 3's wall: run scripts/03-burst.sh"
wall_tickets="$(run_field tickets burst-c2)"
N="${N:-$wall_tickets}"
if [ "$N" != "$wall_tickets" ]; then
  echo "note: the wall (burst-c2) had $wall_tickets tickets and these bursts $N: the speed-ups compare unequal batches" >&2
fi

for c in 5 10; do
  make burst TARGET="$TARGET" N="$N" MAX_CONCURRENCY="$c" LABEL="burst-c$c"
done
make report RUNS="burst-c2 burst-c5 burst-c10"
