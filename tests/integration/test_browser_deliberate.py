"""Deliberate acts in headless Chromium: the administrator reads what promoting will change,
is refused without (then with a wrong) password, promotes with it, and rolls the change back
after reading what the rollback restores."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant, User
from registry.models import Artifact
from tests.factories import PINS, approved_change, make_artifact, publish
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_rollouts import promote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def test_admin_promotes_and_rolls_back_with_confirmation(page: Any) -> None:
    acme = Tenant.objects.get(slug="acme")
    people = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
    artifact = make_artifact(acme, slug="deliberate-greeting", owner=people["acme-admin"])
    v1 = publish(artifact, "Hello {{ customer }}.", impact="major", metadata=PINS)
    promote(v1, "First greeting")
    v2 = publish(artifact, "Hello {{ customer }}, welcome back.", metadata=PINS)
    change = approved_change(
        people,
        v2,
        tenant=acme,
        title="Warmer greeting",
        test_run_ids=["ci-8"],
        author="acme-author",
        approvers=("acme-reviewer", "acme-admin"),
    )

    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto(change.get_absolute_url())
    form = page.locator("#promote-form")
    assert (
        f"{change.reference} makes prompt/acme/deliberate-greeting {v2.version} active, "
        f"replacing {v1.version}." in form.locator("#promotion-summary").inner_text()
    )
    form.get_by_role("button", name="Promote").click()
    refusal = page.locator("#promotion").get_by_role("alert")  # in the section, after a redirect
    assert "Confirm your password" in refusal.inner_text()
    # Said once, atop the promote form itself (where the person pressed Promote).
    assert page.locator("#promote-form").get_by_role("alert").count() == 1
    assert page.url.endswith(f"{change.get_absolute_url()}#promotion")
    page.locator("#promote-form").get_by_label("Your password").fill("not-it")
    page.locator("#promote-form").get_by_role("button", name="Promote").click()
    assert "not your password" in refusal.inner_text()
    assert Artifact.objects.get(pk=artifact.pk).active_version == v1

    page.locator("#promote-form").get_by_label("Your password").fill("acme-admin-demo")
    page.locator("#promote-form").get_by_role("button", name="Promote").click()
    assert "its versions are now active" in page.get_by_role("status").inner_text()
    assert Artifact.objects.get(pk=artifact.pk).active_version == v2

    rollback = page.locator("form.rollback-form").first
    assert (
        f"Rollback restores prompt/acme/deliberate-greeting {v1.version} (replacing "
        f"{v2.version}); {change.reference} reads rolled back." in rollback.inner_text()
    )
    rollback.get_by_label("Why roll").fill("Customers prefer the short greeting.")
    rollback.get_by_role("button", name="Roll back").click()  # confirmed a moment ago
    assert v1.version in page.get_by_role("status").inner_text()
    assert Artifact.objects.get(pk=artifact.pk).active_version == v1
    # The two refusals redirected back to the change (no error status); nothing went wrong.
    assert page.errors == []
