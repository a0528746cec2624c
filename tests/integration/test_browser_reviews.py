"""The reviewer's day in headless Chromium: open, sign off, promote, roll back.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/`` (used by docs/reviews.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser_changes import (
    author_opens_and_submits,
    checks_pass,
    publish_support_reply,
    sign_off,
)
from tests.integration.test_browser import browser, log_in, page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def shot(page: Any, tmp_path: Path, name: str, section: str | None = None) -> None:
    """A screenshot of the page (or of one section of it, by CSS selector)."""
    folder = DOCS_IMG if os.environ.get("DOCS_SCREENSHOTS") else tmp_path
    folder.mkdir(exist_ok=True)
    target = page.locator(section).first if section else page
    target.screenshot(path=str(folder / f"{name}.png"))


def log_out(page: Any) -> None:
    page.context.clear_cookies()


def test_author_opens_reviewers_sign_off_admin_promotes_and_rolls_back(
    page: Any, tmp_path: Path
) -> None:
    reply = publish_support_reply(
        "Answer the ticket from {{ customer }} about {{ topic }}. Be brief, thank them, "
        "and link the help centre.",
        "Point customers to the help centre.",
    )

    # The author opens the change in the browser and submits it.
    reference = author_opens_and_submits(page, "Link the help centre in support replies")
    assert (
        "In review" in page.locator("h1 + *").first.inner_text()
        or page.get_by_text("In review").count()
    )
    # CI attaches its evaluation report through the API; the worker runs the checks.
    checks_pass(reference, "ci-4711")
    page.reload()
    assert page.locator("#decide-form").count() == 0  # the author cannot sign off
    assert page.locator("tr.slot[data-requirement=reviewer]").inner_text().count("missing") == 1
    shot(page, tmp_path, "reviews-change", "#items")
    shot(page, tmp_path, "reviews-checks", "#checks")
    log_out(page)

    # The reviewer finds it under My reviews and approves it, confirming the password.
    log_in(page, "acme-reviewer", "acme-reviewer-demo")
    page.goto("/reviews/")
    shot(page, tmp_path, "reviews-mine")
    page.get_by_role("link", name="Link the help centre in support replies").first.click()
    sign_off(page, "acme-reviewer", "Reads well; the link is right.")
    assert "acme-reviewer" in page.locator("tr.slot[data-requirement=reviewer]").inner_text()
    shot(page, tmp_path, "reviews-approve", "#approvals")
    log_out(page)

    # The administrator signs off, promotes, then rolls back from the artifact page.
    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto(f"/reviews/changes/{reference}/")
    sign_off(page, "acme-admin", "Ship it.")
    page.locator("#blockers-none").wait_for()
    # Promotion is deliberate: the form says what it will change, and asks for the password
    # (not again right after the sign-off that confirmed it).
    promote = page.locator("#promote-form")
    assert (
        f"{reference} approves prompt/acme/support-reply 1.2.0 for production"
        in promote.locator("#promotion-summary").inner_text()
    )
    if promote.get_by_label("Your password").count():
        promote.get_by_label("Your password").fill("acme-admin-demo")
    promote.get_by_role("button", name="Promote").click()
    assert "promoted" in page.get_by_role("status").inner_text().lower()
    # support-reply serves acme's support-bot.reply slot: promotion approves 1.2.0 for
    # production, and a rollout moves the pointer (here the global one: a minor version).
    reply.refresh_from_db()
    assert reply.active_version is not None
    assert reply.active_version.version == "1.1.0"
    page.get_by_role("link", name="Start a rollout").click()
    page.get_by_label("Strategy").select_option("global")
    page.get_by_label("Why").fill("A one-sentence change: everyone at once.")
    page.get_by_role("button", name="Create the rollout").click()
    start = page.locator("#action-start")
    start.locator("summary").click()
    start.get_by_label("Why").fill("Ship it to every tenant.")
    if start.get_by_label("Your password").count():
        start.get_by_label("Your password").fill("acme-admin-demo")
    start.get_by_role("button", name="Confirm: start").click()
    assert "Succeeded" in page.locator("#rollout-status").inner_text()
    reply.refresh_from_db()
    assert reply.active_version is not None
    assert reply.active_version.version == "1.2.0"

    page.goto(reply.get_absolute_url())
    page.locator("#rollback summary").click()
    page.get_by_label("Why roll back").fill("Customers report a broken help-centre link.")
    assert "in place of 1.2.0" in page.locator("#rollback-summary").inner_text()
    page.locator("#rollback").get_by_label("Your password").fill("acme-admin-demo")
    shot(page, tmp_path, "reviews-rollback", "#rollback")
    page.locator("#rollback").get_by_role("button", name="Roll back").click()
    assert "1.1.0" in page.get_by_role("status").inner_text()
    reply.refresh_from_db()
    assert reply.active_version is not None
    assert reply.active_version.version == "1.1.0"
    # The change says it was rolled back, by whom, with the rollback in its timeline.
    page.goto(f"/reviews/changes/{reference}/")
    assert "Rolled back" in page.locator("#change-status").inner_text()
    assert "acme-admin" in page.locator("#rolled-back").inner_text()
    assert "Rollout rolled back" in page.locator("#timeline").inner_text()
    assert page.errors == []
