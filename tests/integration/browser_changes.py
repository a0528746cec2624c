"""What the browser tests of a change share: the demo's support-reply prompt gets a new version,
the demo author opens and submits a change in the browser, CI's evidence arrives and the checks run."""

from __future__ import annotations

from typing import Any

from registry import selectors as registry_selectors
from registry import services as registry
from registry.models import Artifact
from reviews import selectors, services
from reviews.models import ChangeRequest
from tests.factories import PINS, run_pending_checks
from tests.integration.test_browser import log_in

#: Metrics that pass the demo tenant's gates.
PASSING_METRICS = {"accuracy": 0.91, "safety": 0.97, "latency_p95_ms": 640}


def publish_support_reply(text: str, reason: str) -> Artifact:
    """A new minor version (1.2.0 on the demo data) of acme's support-reply prompt, pinned;
    returns the prompt."""
    reply = registry_selectors.artifact_by_path_unscoped("prompt", "acme", "support-reply")
    registry.version_publish(
        artifact=reply,
        content=registry.Content(text=text),
        impact="minor",
        reason=reason,
        metadata=PINS,
        actor=None,
    )
    return reply


def author_opens_and_submits(page: Any, title: str) -> str:
    """The demo author opens a change proposing support-reply 1.2.0 in the browser and submits
    it; the page stays on the change. Returns its reference."""
    log_in(page, "acme-author", "acme-author-demo")
    page.goto("/reviews/changes/new/?propose=support-reply@1.2.0")
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Risk note").fill("Low: one sentence added.")
    page.get_by_label("Rollback plan").fill("Roll back to 1.1.0 from the artifact page.")
    page.get_by_role("button", name="Open as draft").click()
    page.get_by_role("button", name="Submit for review").click()
    return str(page.locator("h1 .muted").inner_text())


def evidence_arrives(change: ChangeRequest, test_run_id: str) -> None:
    """CI attaches its passing evaluation report of support-reply 1.2.0."""
    services.evidence_attach(
        change=change,
        actor=None,
        version="support-reply@1.2.0",
        metrics=PASSING_METRICS,
        test_run_ids=[test_run_id],
    )


def checks_pass(reference: str, test_run_id: str) -> ChangeRequest:
    """The submitted change's evidence arrives and the worker runs its checks."""
    change = selectors.change_by_reference_unscoped(reference)
    evidence_arrives(change, test_run_id)
    run_pending_checks(change)
    return change


def sign_off(page: Any, username: str, comment: str) -> None:
    """Approve from the change page's sign-off form with the demo password (asked unless the
    person confirmed it a moment ago)."""
    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill(comment)
    if form.get_by_label("Your password").count():
        form.get_by_label("Your password").fill(f"{username}-demo")
    form.get_by_role("button", name="Approve").click()
