"""Markdown to HTML for the popup. A model's reply is untrusted input: raw HTML
is escaped (markdown-it's html=False), links other than http(s)/mailto are
dropped, and images become links, so the page never loads anything either."""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_SAFE_LINK = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes it as plain code
    return highlight(code, lexer, _FORMATTER)


def _validate_link(url: str) -> bool:
    return bool(_SAFE_LINK.match(url.strip()))


def _build() -> MarkdownIt:
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


_MD = _build()


def render_markdown(text: str) -> str:
    return _MD.render(text)


def highlight_css() -> str:
    """Styles for highlighted code, light and dark."""
    light = HtmlFormatter(style="default").get_style_defs("pre code")
    dark = HtmlFormatter(style="monokai").get_style_defs("pre code")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
