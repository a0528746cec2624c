"""What every part of the demo shares: the story's clock (days ago), and a change taken through review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import time_machine
from django.utils import timezone

from accounts.models import Tenant, User
from registry import selectors as registry_selectors
from registry import services as registry
from registry.choices import ArtifactClass
from registry.models import Artifact
from reviews import services as reviews
from reviews.choices import CheckStatus
from reviews.models import CheckRun

# The governance story needs a past: a waiver can only be granted for the future, and a
# post-mortem is only overdue days after its promotion. Those steps run with the clock
# moved back (time-machine), so each row's dates and its events' times agree.
#: The refund prompt's change failed its accuracy gate and was waived for REFUND_WAIVER_DAYS.
REFUND_LAUNCH_DAYS_AGO = 25
REFUND_WAIVER_DAYS = 14  # so it expired 11 days ago and blocks the change again
#: The emergency change was promoted this long ago; its post-mortem (policy: 5 days) is overdue.
OUTAGE_EMERGENCY_DAYS_AGO = 12
#: The waiver that lets the routing change proceed today is expiring soon.
EXPIRING_WAIVER_DAYS = 5
DEPRECATION_GRACE_DAYS = 30
PINS = {"pinned_models": ["gpt-4o-2024-08-06"]}
#: The rollouts' story: the ticket summary's 1.1.0 went out globally this long ago, its
#: 1.2.0 canary was rolled back ROLLED_BACK_DAYS_AGO, and the shared lead qualification's
#: canary started CANARY_STARTED_DAYS_AGO and is at 25% now.
COMPLETED_ROLLOUT_DAYS_AGO = 9
ROLLED_BACK_DAYS_AGO = 4
CANARY_STARTED_DAYS_AGO = 2
#: The lead qualification canary reached 25% this many minutes ago: its telemetry covers every
#: step, the current one with fewer canary requests than a step needs to advance.
CANARY_AT_25_MINUTES_AGO = 5
#: The ticket summary's 1.3.0 canary rolled itself back this long ago (its telemetry regressed).
AUTO_ROLLED_BACK_DAYS_AGO = 1


def days_ago(days: float) -> time_machine.travel:
    """Run the steps inside ``days`` ago, the clock ticking, as if they had happened then."""
    return time_machine.travel(timezone.now() - timedelta(days=days), tick=True)


def run_checks(change: Any) -> None:
    """Run a change's pending checks here and now (in the app, a worker does)."""

    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)


def evaluate(change: Any, version: Any, safety: float, accuracy: float) -> None:
    """Attach the evaluation report CI would send for ``version``."""

    reviews.evidence_attach(
        change=change,
        actor=None,
        version=version,
        metrics={"accuracy": accuracy, "safety": safety, "latency_p95_ms": 640, "cost": 0.002},
        bias={"demographic_parity_gap": 0.02},
        seed="1234",
        rng="numpy PCG64",
        test_run_ids=[f"ci-{version.version}"],
    )


def submitted(change: Any, by: Any) -> Any:
    reviews.change_submit(change=change, actor=by)
    run_checks(change)
    change.refresh_from_db()
    return change


class Crew(NamedTuple):
    """Who takes a change through review: its author, a reviewer and an administrator."""

    author: User
    reviewer: User
    admin: User


def promoted_change(tenant: Tenant, versions: list[Any], title: str, crew: Crew) -> Any:
    """A change through the whole review: evidence, checks, a reviewer's and an administrator's
    approval, promotion. (For an artifact bound to a slot, promotion approves its versions for
    production; a rollout then moves the pointers.)"""
    author, reviewer, admin = crew
    change = reviews.change_create(
        tenant=tenant,
        actor=author,
        title=title,
        rollback_plan="Roll the rollout back; the previous pointers serve again.",
        proposed=versions,
    )
    for version in versions:
        evaluate(change, version, safety=0.97, accuracy=0.92)
    submitted(change, author)
    reviews.approval_decide(
        change=change, actor=reviewer, decision="approve", comment="Reads well."
    )
    reviews.approval_decide(change=change, actor=admin, decision="approve", comment="Ship it.")
    return reviews.change_promote(change=change, actor=admin)


def publish_pinned(artifact: Any, number: str, impact: str, reason: str, text: str) -> Any:
    """Publish a text version whose metadata pins the model it was evaluated with."""
    published, _ = registry.version_publish(
        artifact=artifact,
        content=registry.Content(text=text),
        impact=impact,
        reason=reason,
        version=number,
        metadata=PINS,
        actor=None,
    )
    return published


def demo_artifact(
    cls: str, tenant: Tenant, owner: User | None, slug: str, about: tuple[str, str]
) -> Artifact:
    """The demo's artifact ``cls``/``tenant``/``slug``, created once (``about``: its title
    and summary)."""
    title, summary = about
    return Artifact.objects.filter(
        tenant=tenant, artifact_class__slug=cls, slug=slug
    ).first() or registry.artifact_create(
        artifact_class=registry_selectors.artifact_class_by_slug(cls),
        tenant=tenant,
        slug=slug,
        title=title,
        summary=summary,
        owner=owner,
        actor=None,
    )


def demo_prompt(tenant: Tenant, owner: User, slug: str, title: str, summary: str) -> Artifact:
    """The demo's prompt ``slug`` of ``tenant``, created once."""
    return demo_artifact(ArtifactClass.PROMPT, tenant, owner, slug, (title, summary))
