"""Markdown to HTML for the report and portfolio pages (markdown-it-py, CommonMark plus tables).

Raw HTML in the text is escaped, not passed through: the pages show what the runs produced
(error messages, log lines), never markup they happen to contain.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt


@cache
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def to_html(text: str) -> str:
    return str(_renderer().render(text))
