"""The compatibility table in docs/emulator.md is the one the compatibility tests declare."""

from __future__ import annotations

import sys
from pathlib import Path

import waiting
from compat import BEGIN, COMPAT_FILES, END, table_in

ROOT = Path(__file__).resolve().parent.parent


def declared_table() -> str:
    done = waiting.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--compat-table=-",
            *COMPAT_FILES,
        ],
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert BEGIN in done.stdout and END in done.stdout, done.stdout[-2000:]
    return table_in(done.stdout)


def test_the_docs_table_is_the_one_the_tests_declare() -> None:
    documented = table_in((ROOT / "docs" / "emulator.md").read_text())
    declared = declared_table()
    assert declared.count("\n") > 30  # every operation the tests drive, one row each
    assert documented == declared, "docs/emulator.md is out of date: run `make compat-table`"
