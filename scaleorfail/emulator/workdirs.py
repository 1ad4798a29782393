"""The emulator's scratch folders: unpacked Lambda code and model bundles, under .sof/work/.

One folder per emulator instance, with an ``owner.json`` naming the process. An emulator
killed with SIGKILL cannot clean up after itself, so every start removes the folders
whose owner is no longer running (and nothing is left in /tmp).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from scaleorfail.emulator.identity import process_start, why_not_emulator

OWNER = "owner.json"
HALF_MADE_GRACE_S = 60.0  # a folder without owner.json younger than this may be starting up


def root(state_dir: Path) -> Path:
    return state_dir / "work"


def remove_stale(state_dir: Path) -> list[Path]:
    """Remove the scratch folders of emulators that are gone; returns them."""
    removed: list[Path] = []
    base = root(state_dir)
    if not base.is_dir():
        return removed
    for folder in base.iterdir():
        if not folder.is_dir():
            continue
        try:
            owner = json.loads((folder / OWNER).read_text())
            stale = why_not_emulator(int(owner["pid"]), owner.get("process_start")) is not None
        except (OSError, ValueError, KeyError, TypeError):
            try:
                stale = time.time() - folder.stat().st_mtime > HALF_MADE_GRACE_S
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def create(state_dir: Path, instance: str) -> Path:
    """This emulator's scratch folder (the stale ones of earlier emulators are removed first)."""
    remove_stale(state_dir)
    folder = root(state_dir) / instance
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / OWNER).write_text(json.dumps({"pid": os.getpid(), "process_start": process_start()}))
    return folder
