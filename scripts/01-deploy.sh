#!/usr/bin/env bash
# Activity 1 - Setup & orientation: deploy the pipeline and look at what was created.
#   TARGET=local (default): the embedded emulator, started if needed (PORT=4566 by default). No AWS account.
#   TARGET=aws: your AWS account, with Terraform (see the cost note in README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${TARGET:-local}"

make deploy TARGET="$TARGET"

echo
make --no-print-directory outputs TARGET="$TARGET"
