"""An administrator's day with waivers, in headless Chromium: a change blocked by an expired
waiver, renewing it, the change passing under the renewal, signing off, promoting; the
readiness dashboard and the waiver list.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/`` (used by docs/governance.md).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from reviews.choices import ChangeStatus
from reviews.models import ChangeRequest
from reviews.waivers.models import Waiver
from tests.integration.browser_changes import sign_off
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def test_admin_renews_an_expired_waiver_and_promotes_the_change_it_blocked(
    page: Any, tmp_path: Path
) -> None:
    change = ChangeRequest.objects.get(title="Launch the refund reply prompt")
    expired = Waiver.objects.get(change=change)
    log_in(page, "acme-admin", "acme-admin-demo")

    # The change page says the check fails and why the waiver no longer helps.
    page.goto(change.get_absolute_url())
    checks = page.locator("#checks")
    assert f"{expired.reference} expired on" in checks.inner_text()
    shot(page, tmp_path, "waiver-blocked-change", "#checks")

    # The dashboard lists it among the expired waivers and shows the lead-time chart.
    page.goto("/governance/readiness/")
    chart = page.locator("img#lead-chart")
    assert chart.count() == 1
    assert (chart.get_attribute("alt") or "").startswith("Time from")
    assert "Overdue post-mortems" in page.content()
    shot(page, tmp_path, "readiness-dashboard")

    # Renew it from its page: a new waiver, linked to the old one.
    page.goto(expired.get_absolute_url())
    page.locator("#renew").click()
    until = (timezone.localtime() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Expires at").fill(until)
    page.get_by_label("Your password").fill("acme-admin-demo")  # a deliberate act
    page.get_by_role("button", name="Renew").click()
    renewal = Waiver.objects.get(renews=expired)
    assert page.url.endswith(renewal.get_absolute_url())
    assert page.locator("#renewed-from").inner_text() == expired.reference
    shot(page, tmp_path, "waiver-page")

    # Back on the change: the gate now passes under the renewal; the admin signs off and promotes.
    page.goto(change.get_absolute_url())
    assert (
        f"waived by {renewal.reference}" in page.locator("#checks").inner_text().replace("\n", " ")
        or renewal.reference in page.locator("#checks").inner_text()
    )
    sign_off(page, "acme-admin", "Accuracy gate waived until the new eval set lands.")
    page.get_by_role("button", name="Promote").click()
    change.refresh_from_db()
    assert change.status == ChangeStatus.PROMOTED

    # The waiver list puts what needs attention first.
    page.goto("/governance/waivers/")
    text = page.locator("main").inner_text()
    assert text.index("Expiring soon") < text.index("Expired")
    shot(page, tmp_path, "waiver-list")
    assert page.errors == []  # no CSP violations or script errors
