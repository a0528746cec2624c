"""The author's day in headless Chromium: publish a prompt that pins its model, open and
submit a change, attach evidence from the change page, and see the checks pass.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.models import Version
from reviews import selectors
from reviews.choices import CheckKind, CheckStatus
from reviews.models import CheckRun, EvaluationReport
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here


def run_checks(reference: str) -> dict[str, str]:
    """What the check worker does: run the pending checks; return kind -> status."""
    from reviews import services

    change = selectors.change_by_reference_unscoped(reference)
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    return {
        k: (r.status if r else "missing") for k, r in selectors.check_summary(change).runs.items()
    }


def test_author_publishes_with_a_pinned_model_and_attaches_evidence(
    page: Any, tmp_path: Path
) -> None:
    log_in(page, "acme-author", "acme-author-demo")

    # A new prompt, published in the browser with its model pinned.
    page.goto("/registry/new/?class=prompt")
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Slug").fill("welcome-note")
    page.get_by_label("Title").fill("Welcome note")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Content").fill("Welcome {{ customer }} and thank them for joining.")
    page.get_by_label("Impact").select_option("major")
    page.get_by_label("Why this change").fill("A first welcome note.")
    page.get_by_label("Pinned models").fill("gpt-4o-2024-08-06")
    page.get_by_label("Labels").fill("group=onboarding")
    shot(page, tmp_path, "registry-publish", "form.publish-form")
    page.get_by_role("button", name="Publish").click()
    assert "Published prompt/acme/welcome-note/1.0.0" in page.get_by_role("status").inner_text()
    version = Version.objects.get(artifact__slug="welcome-note")
    assert version.metadata == {
        "pinned_models": ["gpt-4o-2024-08-06"],
        "labels": {"group": "onboarding"},
    }

    # A change proposing it, submitted: its model pins pass, evidence is missing.
    page.goto("/reviews/changes/new/?propose=welcome-note@1.0.0")
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Title").fill("Welcome new customers")
    page.get_by_label("Rollback plan").fill("Switch it off: nothing served it before.")
    page.get_by_role("button", name="Open as draft").click()
    page.get_by_role("button", name="Submit for review").click()
    reference = page.locator("h1 .muted").inner_text()
    first = run_checks(reference)
    assert first[CheckKind.MODEL_PINS] == CheckStatus.PASSED
    assert first[CheckKind.OFFLINE_EVALUATION] == CheckStatus.FAILED
    page.reload()
    fix = page.locator("#verdict-offline_evaluation .check-fix")
    assert "Attach an evaluation report" in fix.inner_text()

    # The failing check's link leads to the evidence form; a wrong metric first.
    fix.get_by_role("link").click()
    form = page.locator("#evidence-form")
    form.get_by_label("Metrics", exact=True).fill("accuracy=high")
    form.get_by_role("button", name="Attach the report").click()
    assert "'accuracy' must be a number" in page.locator("#evidence-form").inner_text()
    assert not EvaluationReport.objects.filter(version=version).exists()
    shot(page, tmp_path, "reviews-evidence", "#evidence")
    form = page.locator("#evidence-form")
    form.get_by_label("Metrics", exact=True).fill("accuracy=0.91\nsafety=0.98\nlatency_p95_ms=400")
    form.get_by_label("Test run ids").fill("ci-4712")
    form.get_by_role("button", name="Attach the report").click()
    assert "Attached an evaluation report" in page.get_by_role("status").inner_text()
    report = EvaluationReport.objects.get(version=version)
    assert report.metrics == {"accuracy": 0.91, "safety": 0.98, "latency_p95_ms": 400}

    # The checks that read evidence ran again, and now every check passes.
    assert set(run_checks(reference).values()) == {CheckStatus.PASSED}
    page.reload()
    checks = page.locator("#checks")
    assert checks.locator(".badge-bad").count() == 0
    assert "To pass:" not in checks.inner_text()
    shot(page, tmp_path, "reviews-checks-passed", "#checks")
    # At phone width the publish form and the evidence form fit without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 800})
    for path, part in [
        ("/registry/prompt/acme/welcome-note/publish/", "form.publish-form"),
        (f"/reviews/changes/{reference}/", "#evidence"),
    ]:
        page.goto(path)
        box = page.locator(part).bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 390, f"{part} on {path} is wider than the phone"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
    # Only the wrong metric's 400: no CSP violation or script error.
    assert [e for e in page.errors if "(Bad Request)" not in e] == []
