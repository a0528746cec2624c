"""A reviewer's notification in headless Chromium: phrased as the action, opened with the
keyboard (marked read, lands on the change), resolved once the slot is filled."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant, User
from registry import selectors as registry_selectors
from registry import services as registry
from reviews import services
from reviews.choices import CheckStatus
from reviews.models import CheckRun
from tests.integration.test_browser import browser, log_in, page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def unread(page: Any) -> int:
    """The header's count of unread open notifications (no badge: none)."""
    badge = page.locator("#unread-count")
    return int(badge.inner_text()) if badge.count() else 0


def test_a_reviewer_opens_the_request_signs_off_and_finds_it_resolved(page: Any) -> None:
    reply = registry_selectors.artifact_by_path_unscoped("prompt", "acme", "support-reply")
    registry.version_publish(
        artifact=reply,
        content=registry.Content(text="Answer {{ customer }} about {{ topic }}; thank them."),
        impact="minor",
        reason="Thank the customer.",
        metadata={"pinned_models": ["gpt-4o-2024-08-06"]},
        actor=None,
    )
    author = User.objects.get(username="acme-author")
    change = services.change_create(
        tenant=Tenant.objects.get(slug="acme"),
        actor=author,
        title="Thank the customer in support replies",
        rollback_plan="Roll back to the previous version.",
        proposed=["support-reply@1.2.0"],
    )
    services.evidence_attach(
        change=change,
        actor=None,
        version="support-reply@1.2.0",
        metrics={"accuracy": 0.91, "safety": 0.97, "latency_p95_ms": 640},
        test_run_ids=["ci-1"],
    )
    services.change_submit(change=change, actor=author)
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)

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
