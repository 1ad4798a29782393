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
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's browser is Debian's chromium (.ci/run installs it), never a downloaded build.
    rebind.example resolves to loopback inside it: the DNS-rebinding test's attacker name."""
    from browser_support import CHROMIUM, CHROMIUM_FLAGS

    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [*flags, "--host-resolver-rules=MAP rebind.example 127.0.0.1"],
    }
