"""Sign-off keeps its place (issue 15), in headless Chromium.

A wrong password answers with the change page itself (post/redirect/get), scrolled to the
sign-off form, its error summary at the top of the form in view and focused; reloading shows
the page (no 405, no resubmission); the right password then approves.
"""

from __future__ import annotations

from typing import Any

import pytest

from reviews import selectors
from reviews.models import Approval
from tests.integration.browser_changes import (
    author_opens_and_submits,
    checks_pass,
    publish_support_reply,
)
from tests.integration.test_browser import browser, log_in, page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def _change_in_review(page: Any) -> str:
    """The author opens and submits a change in the browser; its checks pass."""
    publish_support_reply(
        "Answer the ticket from {{ customer }} about {{ topic }}. Be brief and thank them.",
        "Thank the customer.",
    )
    reference = author_opens_and_submits(page, "Thank the customer in support replies")
    checks_pass(reference, "ci-4712")
    page.context.clear_cookies()
    return reference


def test_a_wrong_password_keeps_the_place_and_the_url(page: Any) -> None:
    reference = _change_in_review(page)
    change = selectors.change_by_reference_unscoped(reference)
    change_url = f"/reviews/changes/{reference}/"
    log_in(page, "acme-reviewer", "acme-reviewer-demo")
    page.goto(change_url)
    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill("Reads well.")
    form.get_by_label("Your password").fill("not-my-password")
    form.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()

    # The URL is the change's, at the form; the error is at the top of the form, in view,
    # focused (so a screen reader reads it), and the field says it is wrong.
    assert page.url.endswith(f"{change_url}#decide-form")
    summary = page.locator("#decide-form [data-error-summary]")
    assert "That is not your password" in summary.inner_text()
    assert page.evaluate(
        "document.activeElement && document.activeElement.closest('[data-error-summary]') !== null"
    )
    top, bottom = page.evaluate(
        "(() => { const r = document.querySelector('#decide-form [data-error-summary]')"
        ".getBoundingClientRect(); return [r.top, r.bottom]; })()"
    )
    assert 0 <= top < bottom <= page.viewport_size["height"]
    password = page.locator("#decide-form").get_by_label("Your password")
    assert password.get_attribute("aria-invalid") == "true"
    assert password.input_value() == ""  # never sent back
    assert page.locator("#decide-form").get_by_label("Comment").input_value() == "Reads well."
    assert not Approval.objects.filter(change=change).exists()

    # A reload shows the page, not a 405, and does not post again; the error was said once.
    response = page.reload()
    assert response is not None
    assert response.status == 200
    assert page.locator("#decide-form [data-error-summary]").count() == 0
    # The action's address itself, opened directly, leads back to the change.
    page.goto(f"{change_url}approve/")
    assert page.url.endswith(change_url)

    form = page.locator("#decide-form")
    form.get_by_label("Your password").fill("acme-reviewer-demo")
    form.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert "Approved" in page.get_by_role("status").inner_text()
    assert "acme-reviewer" in page.locator("tr.slot[data-requirement=reviewer]").inner_text()
    assert Approval.objects.filter(change=change).count() == 1
    assert not page.errors
