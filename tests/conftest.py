from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

pytest_plugins = ["compat"]  # the client-compatibility table of docs/emulator.md (tests/compat.py)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (/usr/bin/chromium), never a downloaded browser."""
    from console_support import launch_args

    return launch_args()
