"""The lab console under test: Debian's Chromium for Playwright, and a lab to look at."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("SOF_REQUIRE_CHROMIUM"))
# The flags the machine's notes give for headless Chromium here (no background traffic: the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def needs_browser() -> Any:
    """Skip without Chromium or the console's built assets - unless SOF_REQUIRE_CHROMIUM=1 (CI): then fail."""
    from scaleorfail.console.server import assets_missing

    missing = []
    if CHROMIUM is None:
        missing.append("Debian's chromium (.ci/run installs it)")
    if assets_missing():
        missing.append("the console's assets (make console-assets)")
    if missing and REQUIRED:
        pytest.fail(f"SOF_REQUIRE_CHROMIUM=1 but missing: {', '.join(missing)}")
    if missing:
        pytest.skip(f"missing: {', '.join(missing)}")


def launch_args() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}
