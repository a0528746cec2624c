"""A reviewer's notification in headless Chromium: phrased as the action, opened with the
keyboard (marked read, lands on the change), resolved once the slot is filled."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant, User
from reviews import services
from tests.factories import run_pending_checks
from tests.integration.browser_changes import evidence_arrives, publish_support_reply
from tests.integration.test_browser import browser, log_in, page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def unread(page: Any) -> int:
    """The header's count of unread open notifications (no badge: none)."""
    badge = page.locator("#unread-count")
    return int(badge.inner_text()) if badge.count() else 0


def test_a_reviewer_opens_the_request_signs_off_and_finds_it_resolved(page: Any) -> None:
    publish_support_reply(
        "Answer {{ customer }} about {{ topic }}; thank them.", "Thank the customer."
    )
    author = User.objects.get(username="acme-author")
    change = services.change_create(
        tenant=Tenant.objects.get(slug="acme"),
        actor=author,
        title="Thank the customer in support replies",
        rollback_plan="Roll back to the previous version.",
        proposed=["support-reply@1.2.0"],
    )
    evidence_arrives(change, "ci-1")
    services.change_submit(change=change, actor=author)
    run_pending_checks(change)

    log_in(page, "acme-reviewer", "acme-reviewer-demo")
    before = unread(page)
    page.goto("/reviews/notifications/")
    title = f"Review {change.reference} as reviewer: Thank the customer in support replies"
    link = page.get_by_role("link", name=title)
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{change.get_absolute_url()}")
    assert unread(page) == before - 1  # opened: read

    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill("Reads well.")
    form.get_by_label("Your password").fill("acme-reviewer-demo")
    form.get_by_role("button", name="Approve").click()
    assert "acme-reviewer" in page.locator("tr.slot[data-requirement=reviewer]").inner_text()

    page.goto("/reviews/notifications/")
    item = page.locator("li.card", has=page.get_by_role("link", name=title))
    assert "resolved" in item.locator(".badge").inner_text()
    assert "Filled: Reviewer by acme-reviewer." in item.inner_text()
    assert page.errors == []
