"""Template helpers for review pages: comment bodies written in Markdown."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from governance.kernel.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """``{{ comment.body|markdown }}``: Markdown rendered and sanitised (see the kernel module)."""
    return render_markdown(text)
