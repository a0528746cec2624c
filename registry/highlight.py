"""Syntax highlighting for version pages, rendered on the server with Pygments (no CDN, no script)."""

from __future__ import annotations

import json
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer, MarkdownLexer

_formatter = HtmlFormatter(cssclass="highlight", linenos=False)


def highlight_text(text: str) -> SafeString:
    # Pygments escapes the source; the result is safe to embed.
    return mark_safe(highlight(text, MarkdownLexer(), _formatter))  # noqa: S308


def highlight_json(value: Any) -> SafeString:
    return mark_safe(  # noqa: S308 - Pygments escapes the source
        highlight(json.dumps(value, indent=2, ensure_ascii=False), JsonLexer(), _formatter)
    )
