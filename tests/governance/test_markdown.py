"""Comments are Markdown rendered safely: what people write renders; nothing runs script."""

from __future__ import annotations

import re

import pytest

from governance.kernel.markdown import render_markdown


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="https://example.com" onclick="alert(1)">x</a>',
        "<iframe src=https://example.com></iframe>",
        "<style>body{display:none}</style>",
        "<div onmouseover=alert(1)>hover</div>",
    ],
)
def test_raw_html_is_shown_as_text_never_as_markup(payload: str) -> None:
    html = render_markdown(payload)
    assert "<script" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<style" not in html
    assert "<div" not in html
    assert not re.search(r"<[a-z][^>]*\son\w+=", html)  # no real tag carries a handler
    # The text stays readable: the author sees what they typed.
    assert "&lt;" in html


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
    ],
)
def test_script_links_do_not_become_links(link: str) -> None:
    html = render_markdown(link)
    assert "href" not in html
    assert "click" in html or "alert" in html


def test_links_get_nofollow_noopener() -> None:
    html = render_markdown("See [the runbook](https://example.com/runbook) and <https://e.org>.")
    assert '<a href="https://example.com/runbook" rel="nofollow noopener">the runbook</a>' in html
    assert '<a href="https://e.org" rel="nofollow noopener">https://e.org</a>' in html


def test_emphasis_code_blocks_lists_and_quotes_render() -> None:
    html = render_markdown(
        "**bold** _it_ `x < y`\n\n```\nif a < b:\n    pass\n```\n\n- one\n- two\n\n1. first\n\n> quoted"
    )
    assert "<strong>bold</strong>" in html
    assert "<em>it</em>" in html
    assert "<code>x &lt; y</code>" in html
    assert "<pre><code>if a &lt; b:\n    pass\n</code></pre>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n</ol>" in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html


def test_headings_and_images_are_not_rendered() -> None:
    html = render_markdown("# Title\n\n![x](https://example.com/x.png)")
    assert "<h1" not in html
    assert "<img" not in html


def test_empty_body_renders_nothing() -> None:
    assert render_markdown("") == ""
