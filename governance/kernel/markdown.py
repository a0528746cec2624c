"""Markdown written by people (comments), rendered to HTML that is safe to put on a page.

markdown-it-py renders CommonMark with raw HTML turned off (so ``<script>`` shows as text), and
nh3 (the Rust ammonia sanitiser) then keeps only the tags and attributes below: two layers, so
a bug in one is not an XSS. Headings and images are not rendered: a comment must not break the
page's heading order or load pictures from elsewhere (the CSP would refuse them anyway).
"""

from __future__ import annotations

from functools import cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"


@cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.disable(["heading", "lheading", "image"])
    return parser


def render_markdown(text: str) -> SafeString:
    """The HTML of ``text`` as Markdown, sanitised; links get ``rel="nofollow noopener"``."""
    html = _parser().render(text or "")
    clean = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - nh3 kept only the tags and attributes above
