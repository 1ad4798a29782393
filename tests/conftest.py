from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

# compat: the client-compatibility table of docs/emulator.md; scheduling: how `make test` spreads the suite over workers
pytest_plugins = ["compat", "scheduling"]
