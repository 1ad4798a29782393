"""What the learner's terminal holds: its width, text wrapped to it, and commands that run as printed.

Every command that prints for a person fits the terminal: `width()` is the terminal's
(``$COLUMNS`` when set, else the terminal's own size, else 120 when the output is not a
terminal), tables choose a narrow layout under ``NARROW_BELOW`` columns, and prose is
wrapped by `wrap` / `fill`. A hint names a command the learner can paste: `sof()` is
``sof`` only when the shell finds this very ``sof`` on its PATH (the virtualenv is
activated), else the path of the virtualenv's ``sof`` (``.venv/bin/sof`` from the
repository root). Part of the base: imports nothing of the package.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

FALLBACK_WIDTH = 120  # output to a file or a pipe: as wide as the README's tables
MIN_WIDTH = 40
NARROW_BELOW = 100  # under this many columns, tables take their narrow layout
KEEP = "\x00"  # a space that does not break a line (inside `backticks`)


def width() -> int:
    """Columns of the terminal the output goes to ($COLUMNS first, as shells and `make` pass it)."""
    columns = shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
    return max(MIN_WIDTH, columns or FALLBACK_WIDTH)


def narrow(columns: int | None = None) -> bool:
    return (columns or width()) < NARROW_BELOW


def wrap(text: str, columns: int | None = None, indent: str = "", subsequent: str | None = None) -> list[str]:
    """One paragraph as lines of at most `columns` characters (long words - paths, URLs - are not split,
    nor a `command in backticks`, so that it can be copied whole)."""
    limit = columns or width()
    text = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", KEEP), text)
    lines = textwrap.wrap(
        text,
        width=limit,
        initial_indent=indent,
        subsequent_indent=indent + "  " if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(KEEP, " ") for line in lines] or [indent.rstrip()]


def fill(text: str, columns: int | None = None, indent: str = "", subsequent: str | None = None) -> str:
    """Every line of `text` wrapped to the terminal, a bullet's continuation indented under its text."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        lead = line[: len(line) - len(stripped)]
        if not stripped:
            out.append("")
            continue
        bullet = next((b for b in ("- ", "* ") if stripped.startswith(b)), "")
        follow = subsequent if subsequent is not None else indent + lead + (" " * len(bullet) if bullet else "  ")
        out += wrap(stripped, columns, indent + lead, follow)
    return "\n".join(out)


@functools.cache
def sof() -> str:
    """How a printed hint names this command so that it runs as printed in the learner's shell."""
    mine = Path(sys.executable).parent / "sof"
    found = shutil.which("sof")
    if found and _same(Path(found), mine):
        return "sof"
    try:
        relative = mine.absolute().relative_to(Path.cwd().absolute())
    except ValueError:
        return str(mine.absolute())
    return str(relative) if relative.parts[0] != ".." else str(mine.absolute())


def _same(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def table(
    rows: list[list[str]],
    headers: list[str],
    columns: int | None = None,
    numparse: bool = True,
    align: list[str] | None = None,
) -> str:
    """A plain table (tabulate's "simple") no wider than `columns`: the widest column's cells are `cut`.

    Only columns wider than their header are cut, and never below 12 characters; a table that still
    does not fit is returned as narrow as that allows (the caller chooses fewer columns then).
    """
    import tabulate as tabulate_module

    def tabulate(cells: list[list[str]], **options: object) -> str:  # without tabulate's extra header padding
        padding, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0
        try:
            return str(tabulate_module.tabulate(cells, **options))  # type: ignore[arg-type]
        finally:
            tabulate_module.MIN_PADDING = padding

    limit = columns or width()
    cells = [[" ".join(str(c).split()) if "\n" in str(c) or "\t" in str(c) else str(c) for c in r] for r in rows]
    options: dict[str, object] = {"headers": headers, "tablefmt": "simple", "disable_numparse": not numparse}
    if align is not None:
        options["colalign"] = align
    text = str(tabulate(cells, **options))
    while _widest(text) > limit:
        sizes = [max([len(headers[i]), *(len(r[i]) for r in cells)]) for i in range(len(headers))]
        cuttable = [i for i, size in enumerate(sizes) if size > max(12, len(headers[i]))]
        if not cuttable:
            break
        column = max(cuttable, key=lambda i: sizes[i])
        room = max(12, len(headers[column]), sizes[column] - (_widest(text) - limit))
        for r in cells:
            r[column] = cut(r[column], room)
        text = str(tabulate(cells, **options))
    return text


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def cut(text: str, room: int) -> str:
    """Text in `room` characters: prose loses its end ("..."), a path its start, a name its middle."""
    if len(text) <= room:
        return text
    if " " in text:
        return text[: room - 3] + "..."
    if "/" in text:  # a path or a log group: its end names it
        return "..." + text[len(text) - (room - 3) :]
    head = (room - 3 + 1) // 2
    return text[:head] + "..." + text[len(text) - (room - 3 - head) :]


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 execution`, `2 executions`."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def hint(command: str) -> str:
    """A command to print for the learner, in backticks: every `sof` in it as the shell can run it (see `sof()`)."""
    return "`" + re.sub(r"(?<![\w./-])sof (?=[a-z])", sof().replace("\\", "\\\\") + " ", command) + "`"


def tighten(text: str) -> str:
    """A table in tabulate's "simple" format with one space between its columns instead of two."""
    lines = text.splitlines()
    rule = next((line for line in lines if line and set(line) <= {"-", " "}), None)
    if rule is None:
        return text
    gaps = [i for i in range(1, len(rule)) if rule[i] == " " and rule[i - 1] == "-"]
    out = []
    for line in lines:
        kept = line
        for gap in reversed(gaps):
            if len(kept) > gap and kept[gap] == " ":
                kept = kept[:gap] + kept[gap + 1 :]
        out.append(kept)
    return "\n".join(out)
