"""An administrator's rollout in headless Chromium: start a canary from a promoted change,
advance it, watch the runtime matrix change, finish it, roll it back.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/`` (used by docs/rollouts.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Tenant, User
from registry import selectors as registry_selectors
from registry import services as registry
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import RolloutState
from rollouts.models import Rollout
from tests.factories import PINS, promoted_change
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def promote(version: Any, title: str) -> ChangeRequest:
    """Open, evidence, check, approve and promote, as acme's people do (seed_demo's users)."""
    people = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
    return promoted_change(
        people,
        version,
        tenant=Tenant.objects.get(slug="acme"),
        title=title,
        rollback_plan="Roll the rollout back from its page.",
        test_run_ids=["ci-7"],
        author="acme-author",
        approvers=("acme-reviewer", "acme-admin"),
        promoter="acme-admin",
    )


def matrix_cell(page: Any, tenant: str, slot: str) -> str:
    page.goto("/rollouts/runtime/")
    return str(page.locator(f'td[data-tenant="{tenant}"][data-slot="{slot}"]').inner_text())


def confirm(page: Any, action: str, reason: str, password: str | None = None) -> str:
    """Open an action, read what it will change, give the reason (and password), confirm."""
    box = page.locator(f"#action-{action}")
    box.locator("summary").click()
    summary = str(box.locator(".confirm-summary").inner_text())
    box.get_by_label("Why").fill(reason)
    if password is not None:
        box.get_by_label("Your password").fill(password)
    box.get_by_role("button", name=f"Confirm: {action.replace('rollback', 'roll back')}").click()
    return summary


def test_admin_starts_a_canary_advances_sees_the_matrix_and_rolls_back(
    page: Any, tmp_path: Path
) -> None:
    acme = Tenant.objects.get(slug="acme")
    admin = User.objects.get(username="acme-admin")
    author = User.objects.get(username="acme-author")
    prompt = registry.artifact_create(
        artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
        tenant=acme,
        slug="greet-visitor",
        title="Greet a visitor",
        owner=author,
        actor=None,
    )
    v1, _ = registry.version_publish(
        artifact=prompt,
        content=registry.Content(text="Hello {{ name }}."),
        impact="major",
        reason="First greeting",
        version="1.0.0",
        metadata=PINS,
        actor=None,
    )
    promote(v1, "First greeting")
    app = services.application_create(
        tenant=acme, slug="web-concierge", name="Web concierge", actor=admin
    )
    services.slot_create(
        application=app, name="greet", artifact=prompt, description="Greets.", actor=admin
    )
    v2, _ = registry.version_publish(
        artifact=prompt,
        content=registry.Content(text="Hello {{ name }}, welcome back."),
        impact="minor",
        reason="Warmer greeting",
        version="1.1.0",
        metadata=PINS,
        actor=None,
    )
    change = promote(v2, "Warmer greeting")
    prompt.refresh_from_db()
    assert prompt.active_version == v1  # bound to a slot: the rollout moves it, not promotion

    log_in(page, "acme-admin", "acme-admin-demo")
    assert matrix_cell(page, "acme", "web-concierge.greet").startswith("1.0.0")

    # From the promoted change to a draft canary, then started with the password.
    page.goto(change.get_absolute_url())
    page.get_by_role("link", name="Start a rollout").click()
    assert page.get_by_label("Strategy").input_value() == "canary"
    assert page.get_by_label("Steps").input_value() == "1, 5, 25, 50, 100"
    page.get_by_label("Why").fill("Try the warmer greeting on a few visitors.")
    page.get_by_role("button", name="Create the rollout").click()
    assert "as a draft" in page.get_by_role("status").inner_text()
    reference = page.locator("h1 .muted").inner_text()
    rollout = Rollout.objects.get(number=int(reference.removeprefix("RO-")))
    assert "Draft" in page.locator("#rollout-status").inner_text()
    summary = confirm(page, "start", "Canary at 1%.", password="acme-admin-demo")
    assert "serve 1.1.0 on web-concierge.greet to 1% of subjects" in summary
    assert (
        f"Started {reference}: progressing at step 1 (1%)."
        in page.get_by_role("status").inner_text()
    )
    assert "Progressing" in page.locator("#rollout-status").inner_text()
    assert page.locator("#current-weight").inner_text() == "1% of subjects"
    shot(page, tmp_path, "rollouts-rollout")

    # Advance: the page says what will change; no password again for a few minutes.
    summary = confirm(page, "advance", "No errors at 1%.")
    assert summary.endswith("Raise the canary for web-concierge.greet from 1% to 5%.")
    assert page.locator("#current-weight").inner_text() == "5% of subjects"
    assert "5%" in page.locator("#moves").inner_text()
    assert "(current)" in page.locator(".step-current").inner_text()
    cell = matrix_cell(page, "acme", "web-concierge.greet")
    assert cell.startswith("1.0.0")
    assert "canary 5% → 1.1.0" in cell
    assert reference in page.locator("#in-progress").inner_text()
    shot(page, tmp_path, "rollouts-matrix", "#matrix")

    # Through 25, 50 and 100% to the end: the default moves, the matrix shows 1.1.0.
    page.goto(rollout.get_absolute_url())
    for _ in range(3):
        confirm(page, "advance", "Still healthy.")
    summary = confirm(page, "advance", "Everyone has it.")
    assert "Finish" in summary
    assert "make 1.1.0 the default of web-concierge.greet" in summary
    assert "Succeeded" in page.locator("#rollout-status").inner_text()
    assert "1.1.0 is the default of web-concierge.greet" in page.get_by_role("status").inner_text()
    cell = matrix_cell(page, "acme", "web-concierge.greet")
    assert cell.startswith("1.1.0")
    assert "default" in cell
    assert "canary" not in cell

    # Roll back: the exact previous pointers, the matrix back at 1.0.0.
    page.goto(rollout.get_absolute_url())
    summary = confirm(page, "rollback", "Visitors dislike it.")
    assert "restore the exact previous pointers of web-concierge.greet" in summary
    assert "Rolled back" in page.locator("#rollout-status").inner_text()
    assert "Visitors dislike it." in page.locator("#rollout-finished").inner_text()
    cell = matrix_cell(page, "acme", "web-concierge.greet")
    assert cell.startswith("1.0.0")
    assert "default" in cell
    rollout.refresh_from_db()
    prompt.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert prompt.active_version == v1
    assert page.errors == []
