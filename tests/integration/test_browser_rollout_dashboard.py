"""The rollout dashboard in headless Chromium: a canary whose error rate regresses shows it
against stable, then the controller rolls it back on its own and the open page, refreshed
by htmx, says so; the fleet page shows it at a glance. Telemetry goes through the real
ingest (``telemetry_ingest`` and the ``simulate`` driver's API calls), the controller runs
in-process.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/`` (used by docs/rollouts.md).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Tenant, User
from registry import selectors as registry_selectors
from registry import services as registry
from rollouts import services
from rollouts.choices import RolloutState
from rollouts.management.simulate import simulate
from rollouts.telemetry_services import telemetry_ingest
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import shot
from tests.integration.test_browser_rollouts import PINS, promote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def test_the_dashboard_shows_a_regression_and_the_automatic_rollback(
    page: Any, tmp_path: Path, settings: Any
) -> None:
    settings.ROLLOUT_DASHBOARD_REFRESH_SECONDS = 1
    acme = Tenant.objects.get(slug="acme")
    admin = User.objects.get(username="acme-admin")
    prompt = registry.artifact_create(
        artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
        tenant=acme,
        slug="answer-faq",
        title="Answer a FAQ",
        owner=User.objects.get(username="acme-author"),
        actor=None,
    )
    versions = []
    for number, text, impact in (("1.0.0", "Answer {{ q }}.", "major"),
                                 ("1.1.0", "Answer {{ q }} briefly.", "minor")):  # fmt: skip
        version, _ = registry.version_publish(
            artifact=prompt,
            content=registry.Content(text=text),
            impact=impact,
            reason=f"FAQ {number}",
            version=number,
            metadata=PINS,
            actor=None,
        )
        versions.append(version)
        if number == "1.0.0":
            promote(version, "First FAQ answer")
            app = services.application_create(
                tenant=acme, slug="help-desk", name="Help desk", actor=admin
            )
            services.slot_create(application=app, name="faq", artifact=prompt, actor=admin)
    change = promote(versions[1], "Briefer FAQ answers")
    rollout = services.rollout_create(
        change=change,
        actor=admin,
        strategy="canary",
        steps=[10_000, 100_000],
        reason="Try briefer.",
    )
    rollout = services.rollout_start(rollout=rollout, actor=admin, reason="Canary at 10%.")

    # A first batch through the ingest service: the canary errs 10% of the time, stable 2%.
    # (the next minute's bucket: the analysis counts a step's telemetry from its start)
    bucket = (timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)).isoformat()
    base = {"application": "help-desk", "slot": "faq", "rollout": rollout.reference}
    telemetry_ingest(
        principal_or_tenant=acme,
        batch_id="browser-dashboard-1",
        rows=[
            {
                **base,
                "version": "1.1.0",
                "arm": "canary",
                "bucket_start": bucket,
                "requests": 50,
                "errors": 5,
                "latency_ms": [0, 40, 10, 0, 0, 0, 0, 0, 0],
            },
            {
                **base,
                "version": "1.0.0",
                "arm": "stable",
                "bucket_start": bucket,
                "requests": 450,
                "errors": 9,
                "latency_ms": [0, 400, 50, 0, 0, 0, 0, 0, 0],
            },
        ],
    )

    log_in(page, "acme-admin", "acme-admin-demo")
    page.goto(rollout.get_absolute_url())
    errors = page.locator('#arms tr[data-metric="errors"]')
    assert "worse" in (errors.get_attribute("class") or "")
    assert "10.00%" in errors.locator("td.canary").inner_text()
    assert "2.00%" in errors.locator("td.stable").inner_text()
    assert page.locator("#distribution-chart").is_visible()
    assert (page.locator("#chart-errors").get_attribute("alt") or "").startswith("Error rate")
    assert page.locator("#dashboard").get_attribute("hx-get")
    shot(page, tmp_path, "rollout-dashboard-regression", "#dashboard")

    # The simulation sends more of the same through the ingest API and runs the controller
    # after each batch: the sequential test crosses 1/alpha and the rollout rolls back.
    rolled = simulate(
        rollout,
        baseline_error_rate=0.02,
        canary_error_rate=0.10,
        requests=400,
        seed=7,
        say=lambda line: None,
    )
    assert rolled.state == RolloutState.ROLLED_BACK
    assert rolled.finished_by is None

    # The page still open refreshes its telemetry section on its own (htmx).
    page.wait_for_selector('#dashboard[data-state="rolled_back"]', timeout=15_000)
    timeline = page.locator("#step-timeline").inner_text()
    assert "Rollout rolled back" in timeline
    assert "by system" in timeline
    assert page.locator('#step-timeline li[data-kind="rollback"]').count() == 1
    assert page.locator("#dashboard").get_attribute("hx-get") is None  # polling stops
    assert re.search(r"e-value|rolled back", page.locator("#notes").inner_text())
    trend = page.locator("#statistic-chart").get_attribute("alt") or ""
    latest = re.search(r"Latest: errors ([0-9.e+]+)", trend)
    assert latest is not None
    assert float(latest.group(1)) >= 80  # crossed 1/alpha
    shot(page, tmp_path, "rollout-dashboard-rollback", "#dashboard")

    page.goto("/rollouts/fleet/")
    row = page.locator(f'#fleet tr[data-rollout="{rollout.reference}"]')
    assert row.get_attribute("data-health") == "bad"
    assert "Rolled back" in row.inner_text()
    shot(page, tmp_path, "rollouts-fleet", "#fleet")
    assert page.errors == []  # no CSP violation, no script error
