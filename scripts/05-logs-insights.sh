#!/usr/bin/env bash
# Activity 5 - Understand orchestration: the workshop's Logs Insights queries over the last
# hour, plus the cold starts and the memory used per function. Each query's text is printed
# before its rows: it is the file Terraform saves as a query definition (terraform/queries/).
# Then where a ticket's time goes, per step: the state's time in the execution history
# against the function's own time in its REPORT lines - the gap is orchestration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
TARGET="${TARGET:-local}"
SINCE="${SINCE:-1h}"

for query in recent-lines step-fields duration-by-step cold-starts memory-used; do
  make --no-print-directory insights TARGET="$TARGET" QUERY="$query" SINCE="$SINCE"
  echo
done
echo "All the queries: \`.venv/bin/sof insights --list\`"

walls=""
for label in burst-c2 burst-c10; do
  if [ -n "$(run_field path "$label")" ]; then walls="$walls $label"; fi
done
if [ -n "$walls" ]; then
  echo
  make --no-print-directory compare STEPS=1 RUNS="${walls# }"
fi
