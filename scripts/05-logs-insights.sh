#!/usr/bin/env bash
# Activity 5 - Understand orchestration: the workshop's Logs Insights queries over the last
# hour, plus the cold starts and the memory used per function. The query text is the same
# file Terraform saves as a query definition (terraform/queries/).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"
SINCE="${SINCE:-1h}"

for query in recent-lines step-fields duration-by-step cold-starts memory-used; do
  make --no-print-directory insights TARGET="$TARGET" QUERY="$query" SINCE="$SINCE"
  echo
done
echo "All queries: .venv/bin/sof insights --list"
