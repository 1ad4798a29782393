"""Headless Chromium (Debian's chromium; .ci/run installs it) looking at the report and portfolio pages."""

from __future__ import annotations

import html
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from console_support import CHROMIUM, CHROMIUM_ARGS

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("SOF_REQUIRE_CHROMIUM"), reason="Debian's chromium is not installed"
)
CHROMIUM_FLAGS = ["--headless", *CHROMIUM_ARGS]
# Loaded in an iframe, the page reports what the browser made of it: table rows, decoded full-width
# images, raw Markdown table lines left in its text, and the timeline figure's caption.
PROBE = (
    "document.getElementById('f').onload = () => {"
    " const d = document.getElementById('f').contentDocument;"
    " const rows = d.querySelectorAll('table tr').length;"
    " const images = Array.from(d.images).filter(i => i.complete && i.naturalWidth > 500).length;"
    " const raw = d.body.innerText.split('\\n').filter(l => /^\\s*\\|.*\\|\\s*$/.test(l)).length;"
    " const caption = (d.querySelector('#timeline figcaption') || {}).textContent || '';"
    " document.body.setAttribute('data-rendered', rows + ',' + images + ',' + raw);"
    " document.body.setAttribute('data-caption', caption); };"
)


def rendered(page: Path, scratch: Path) -> tuple[list[int], str]:
    """(table rows, full-width images, raw Markdown table lines) and the timeline caption, as Chromium shows them."""
    assert CHROMIUM, "SOF_REQUIRE_CHROMIUM is set but chromium is missing (.ci/run installs it)"
    wrapper = scratch / f"check-{page.stem}.html"
    wrapper.write_text(f'<iframe id=f src="{page.as_uri()}" width=1400 height=900></iframe><script>{PROBE}</script>')
    dom = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={scratch / 'profile'}",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
            wrapper.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    counts = re.search(r'data-rendered="(\d+),(\d+),(\d+)"', dom)
    caption = re.search(r'data-caption="([^"]*)"', dom)
    assert counts, dom[-2000:]
    return [int(v) for v in counts.groups()], html.unescape(caption.group(1)) if caption else ""


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)
