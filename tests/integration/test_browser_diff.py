"""Reading a change on a phone: the diff is unified and wraps, and a line comment sits under
its line. With ``DOCS_SCREENSHOTS=1`` the screenshot lands in ``docs/img/`` (docs/reviews.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from registry import selectors as registry_selectors
from registry import services as registry
from reviews import services
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here

LONG_TOKEN = "https://help.example.com/" + "a-very-long-path-segment-" * 12


def test_phone_reads_a_unified_wrapped_diff_and_comments_on_a_line(
    page: Any, tmp_path: Path
) -> None:
    reply = registry_selectors.artifact_by_path_unscoped("prompt", "acme", "support-reply")
    active = reply.active_version
    assert active is not None
    text = active.content_text.rstrip("\n")
    version, _ = registry.version_publish(
        artifact=reply,
        content=registry.Content(
            text=f"{text}\nLink the help centre: {LONG_TOKEN}\nThank them by name.\n"
        ),
        impact="minor",
        reason="Point customers to the help centre.",
        metadata=active.metadata,
        actor=None,
    )
    change = services.change_create(
        tenant=reply.tenant,
        actor=User.objects.get(username="acme-author"),
        proposed=[version],
        title="Link the help centre",
        rollback_plan="Roll back to the active version.",
    )

    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "acme-reviewer", "acme-reviewer-demo")
    page.goto(change.get_absolute_url())
    unified = page.locator("table.diff-unified").first
    assert unified.is_visible()
    assert not page.locator("table.diff-split").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert LONG_TOKEN in unified.inner_text()

    # The number of the proposed version's line 2 links to the comment form, filled in.
    unified.get_by_role("link", name=f"Comment on line 2 of {version.version}").click()
    assert "line=2" in page.url
    form = page.locator("#comment-form")
    assert "Commenting on line 2 of prompt/acme/support-reply" in form.inner_text()
    form.get_by_label("Add a comment").fill("Is this the **right** page?")
    form.get_by_role("button", name="Comment").click()
    page.get_by_role("status").filter(has_text="Comment added.").wait_for()

    # The comment shows right under its line, Markdown rendered.
    row = unified.locator("tr", has_text="Link the help centre")
    notes = row.locator("xpath=following-sibling::tr[1]")
    assert "diff-notes" in (notes.get_attribute("class") or "")
    assert notes.locator("strong", has_text="right").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, tmp_path, "reviews-diff-phone", "table.diff-unified")

    # The registry's diff page uses the same tables: unified and unscrolled too.
    page.goto(f"{version.get_absolute_url()}diff/?against={active.version}")
    assert page.locator("table.diff-unified").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(change.get_absolute_url())

    # On a wide screen the same comment sits under the row side by side, and nothing scrolls.
    page.set_viewport_size({"width": 1280, "height": 900})
    split = page.locator("table.diff-split").first
    assert split.is_visible()
    assert not unified.is_visible()
    row = split.locator("tr", has_text="Link the help centre")
    assert "diff-notes" in (
        row.locator("xpath=following-sibling::tr[1]").get_attribute("class") or ""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, tmp_path, "reviews-diff-wide", "table.diff-split")
    assert page.errors == []
