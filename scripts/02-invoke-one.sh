#!/usr/bin/env bash
# Activity 2 - Happy path: one small batch (the run labelled happy-path); read its status, each step's
# time against its function's own (the gap is orchestration; cold starts on their own rows), the output.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make invoke-one TARGET="$TARGET"
