"""Markdown to HTML for the popup. A model's reply is untrusted input: raw HTML
is escaped (markdown-it's html=False), links other than http(s)/mailto are
dropped, and images become links, so the page never loads anything either.

markdown-it and Pygments are imported on the first render: the core sits in the
tray most of the day, and ~2 MiB of modules it may not need until then is a
share of the app's memory at rest (bench/desktop.py)."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_SAFE_LINK = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)


@cache
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    from pygments import highlight
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes it as plain code
    return highlight(code, lexer, _formatter())


def _validate_link(url: str) -> bool:
    return bool(_SAFE_LINK.match(url.strip()))


@cache
def _md() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import escapeHtml

    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight, "breaks": True})
    md.enable(["table", "strikethrough"])
    md.validateLink = _validate_link

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        alt = escapeHtml(token.content or "image")
        src = str(token.attrGet("src") or "")
        if not _validate_link(src):
            return alt
        return f'<a href="{escapeHtml(src)}" rel="noopener noreferrer" target="_blank">{alt}</a>'

    md.add_render_rule("image", image)

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer")
        tokens[idx].attrSet("target", "_blank")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def render_markdown(text: str) -> str:
    return _md().render(text)


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


class StreamRenderer:
    """A streaming reply's Markdown, rendered a block at a time, so each batch
    costs what it adds and not the whole reply again.

    ``update(text)`` takes the reply so far (it only grows) and returns the HTML
    of the blocks completed since the last call, which never changes again, and
    the HTML of the unfinished tail, which replaces the previous tail. A block
    ends at a blank line outside a code fence that is followed by a line that
    starts at the margin (an indented one may continue a list item or an
    indented code block). The text is not copied: the renderer keeps offsets.
    Rendering is ``render_markdown``'s, so as safe; a block rendered alone can
    differ in details from the whole (a loose list, a reference link defined
    further down), which the final, whole rendering puts right.
    """

    def __init__(self) -> None:
        self._done = 0  # text[:_done] is rendered and sent
        self._scan = 0  # where the next line to look at starts
        self._fence: tuple[str, int] | None = None  # the open fence's char and length
        self._blank = False  # the last line looked at was blank (outside a fence)
        self._tail_html = ""

    def update(self, text: str) -> tuple[str, str]:
        blocks: list[str] = []
        while True:
            end = text.find("\n", self._scan)
            if end < 0:
                break
            line_start = self._scan
            if (self._blank and self._fence is None and line_start < end
                    and text[line_start] not in " \t"):
                blocks.append(render_markdown(text[self._done:line_start]))
                self._done = line_start
            self._look_at(text[line_start:end])
            self._scan = end + 1
        # An unfinished line that already starts at the margin ends the block before it.
        if (self._blank and self._fence is None and self._scan < len(text)
                and text[self._scan] not in " \t"):
            blocks.append(render_markdown(text[self._done:self._scan]))
            self._done = self._scan
            self._blank = False
        tail = text[self._done:]
        self._tail_html = render_markdown(tail) if tail.strip() else ""
        return "".join(blocks), self._tail_html

    def _look_at(self, line: str) -> None:
        match = _FENCE.match(line)
        if self._fence is None:
            if match and not (match.group(1)[0] == "`" and "`" in line[match.end():]):
                self._fence = (match.group(1)[0], len(match.group(1)))
                self._blank = False
            else:
                self._blank = not line.strip()
        elif (match and match.group(1)[0] == self._fence[0] and len(match.group(1)) >= self._fence[1]
              and not line[match.end():].strip()):
            self._fence = None
            self._blank = False


def highlight_css() -> str:
    """Styles for highlighted code, light and dark."""
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(style="default").get_style_defs("pre code")
    dark = HtmlFormatter(style="monokai").get_style_defs("pre code")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
