#!/usr/bin/env bash
# Activity 2 - Happy path: one small batch; read its status, per-step durations and output.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make invoke-one TARGET="$TARGET"
