from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The commands fit their output to $COLUMNS, and pytest-xdist's workers set it to 80: every test sees the width
# of a pipe (120) unless it chooses one (tests/test_learner_path.py reads the commands at 80 and at 120).
os.environ["COLUMNS"] = "120"
LAMBDA_SRC = ROOT / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

# compat: the client-compatibility table of docs/emulator.md; scheduling: how `make test` spreads the suite over workers
pytest_plugins = ["compat", "scheduling"]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (/usr/bin/chromium), never a downloaded browser.
    rebind.example resolves to loopback inside it: the DNS-rebinding attacker of tests/test_browser_door.py."""
    from console_support import CHROMIUM, launch_args

    if CHROMIUM is None and not os.environ.get("SOF_REQUIRE_CHROMIUM"):  # CI requires it: there, a missing one fails
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    args = launch_args()
    return {**args, "args": [*args["args"], "--host-resolver-rules=MAP rebind.example 127.0.0.1"]}
