"""Markdown (dashboard text widgets, the RCA report) as a tree the browser builds with textContent.

markdown-it-py parses with raw HTML off; the tokens become nested ``[tag, attrs, children]``
lists of an allowed set of tags, text stays text. The page turns the tree into elements
one by one (createElement / textContent), so no string of the Markdown is ever parsed as
HTML. Links keep only http(s), mailto, relative and fragment targets.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from markdown_it import MarkdownIt

TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre", "a",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "hr", "br", "s",
}  # fmt: skip
SAFE_SCHEMES = ("http://", "https://", "mailto:", "/", "#", "./", "../")

Node = Any  # str | list (tag, attrs, children)


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def _safe_href(href: str) -> str | None:
    value = href.strip()
    return value if value.lower().startswith(SAFE_SCHEMES) else None


def _element(token: Any) -> list[Any] | None:
    tag = token.tag
    if tag not in TAGS:
        return None
    attrs: dict[str, str] = {}
    if tag == "a":
        href = _safe_href(str(token.attrGet("href") or ""))
        if href:
            attrs["href"] = href
    if tag in ("th", "td"):
        style = str(token.attrGet("style") or "")
        if "text-align:" in style:
            attrs["align"] = style.split("text-align:", 1)[1].strip(" ;")
    if tag == "ol" and token.attrGet("start"):
        attrs["start"] = str(token.attrGet("start"))
    return [tag, attrs, []]


def _fold(tokens: list[Any], root: list[Any]) -> None:
    stack = [root]
    for token in tokens:
        children = stack[-1][2]
        if token.type == "inline":
            _fold(token.children or [], stack[-1])
        elif token.type in ("text", "html_inline", "html_block"):
            if token.content:
                children.append(token.content)
        elif token.type in ("softbreak",):
            children.append("\n")
        elif token.type == "hardbreak":
            children.append(["br", {}, []])
        elif token.type in ("code_inline",):
            children.append(["code", {}, [token.content]])
        elif token.type in ("fence", "code_block"):
            children.append(["pre", {}, [["code", {}, [token.content]]]])
        elif token.type == "image":
            children.append(token.content or "")  # its alt text: no image is fetched
        elif token.type == "hr":
            children.append(["hr", {}, []])
        elif token.nesting == 1:
            element = _element(token) or ["span", {}, []]
            children.append(element)
            stack.append(element)
        elif token.nesting == -1 and len(stack) > 1:
            stack.pop()


def tree(text: str) -> list[Node]:
    """The Markdown's block elements as ``[tag, attrs, children]`` lists (text nodes as strings)."""
    root: list[Any] = ["div", {}, []]
    _fold(_parser().parse(text or ""), root)
    return list(root[2])
