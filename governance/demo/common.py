"""What every part of the demo shares: the story's clock (days ago), and a change taken through review."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any, NamedTuple

import time_machine
from django.utils import timezone

from accounts.models import Tenant, User
from registry import selectors as registry_selectors
from registry import services as registry
from registry.choices import ArtifactClass, Determinism
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


#: How the demo's prompts are evaluated (their metadata's evaluation_plan).
PROMPT_EVALUATION_PLAN = (
    "Offline evaluation on the golden corpus (accuracy, safety, calibration, stability, "
    "latency, cost, throughput) run twice with seed 1234 and numpy PCG64; bias measured as "
    "the demographic parity gap across customer regions."
)
#: Why the demo's prompts name no dataset (their metadata's no_datasets).
PROMPT_NO_DATASETS = (
    "A prompt: nothing is trained on data; it is judged on the golden corpus its evaluation "
    "plan names."
)


def evidence(
    risk_note: str,
    pr: int,
    *,
    plan: str = PROMPT_EVALUATION_PLAN,
    determinism: str = Determinism.PROBABILISTIC,
    no_datasets: str | None = PROMPT_NO_DATASETS,
) -> dict[str, Any]:
    """The lifecycle evidence a version carries in its metadata (the Draft stage's criteria):
    its classification, evaluation plan, risk note, pull request and dataset lineage (a
    reason for none here; a version trained on data names its dataset versions as
    dependencies instead)."""
    meta: dict[str, Any] = {
        "determinism": str(determinism),
        "evaluation_plan": plan,
        "risk_note": risk_note,
        "pr_url": f"https://git.example.com/acme/assistants/pull/{pr}",
    }
    if no_datasets:
        meta["no_datasets"] = no_datasets
    return meta


def metrics(accuracy: float, safety: float) -> dict[str, float]:
    """A complete evaluation run's metrics (accuracy or utility, calibration, stability,
    latency, cost, throughput; the prompts' gates read safety too)."""
    return {
        "accuracy": accuracy,
        "safety": safety,
        "calibration_ece": 0.04,
        "stability": 0.97,
        "latency_p95_ms": 640,
        "cost": 0.002,
        "throughput_rps": 35,
    }


def evaluate(change: Any, version: Any, safety: float, accuracy: float, *, runs: int = 2) -> None:
    """Attach the evaluation reports CI would send for ``version``: by default two runs with the
    same seed and RNG that agree within the default tolerance (reproducibility confirmed)."""

    for run in range(runs):
        reviews.evidence_attach(
            change=change,
            actor=None,
            version=version,
            # The second run moves accuracy by 0.002: within the policy's 0.01.
            metrics=metrics(round(accuracy + 0.002 * run, 3), safety),
            bias={"demographic_parity_gap": 0.02},
            seed="1234",
            rng="numpy PCG64",
            test_run_ids=[f"ci-{version.version}-run{run + 1}"],
        )


def deployment_ready(change: Any, by: Any) -> None:
    """The Approved stage's deployment checklist for the change's current revision."""
    reviews.deployment_checklist_complete(
        change=change,
        resource_envelope="Shared inference pool: 2 vCPU and 4 GiB per replica, 3 replicas.",
        scaling_thresholds="Scale out above 70% CPU or p95 latency over 800 ms; at most 10.",
        logging_tracing="Every call traced with its version and manifest hash; errors alert.",
        kill_switch="Deactivate the version (or the rollout's rollback) restores the previous one.",
        actor=by,
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
    deployment_ready(change, author)
    submitted(change, author)
    reviews.approval_decide(
        change=change, actor=reviewer, decision="approve", comment="Reads well."
    )
    # The administrator owns the demo's promoted artifacts: this approval is the owner's too.
    reviews.approval_decide(change=change, actor=admin, decision="approve", comment="Ship it.")
    return reviews.change_promote(change=change, actor=admin)


#: The risk note of a demo prompt version unless it says otherwise.
PROMPT_RISK = "Low: the prompt's wording only; a rollback serves the previous version again."


def pull_request(path: str) -> int:
    """A stable, made-up pull request number for a demo version."""
    return 100 + zlib.crc32(path.encode()) % 900


def publish_pinned(artifact: Any, number: str, impact: str, reason: str, text: str) -> Any:
    """Publish a text version whose metadata pins the model it was evaluated with and carries
    its lifecycle evidence (with the usual prompt risk note)."""
    published, _ = registry.version_publish(
        artifact=artifact,
        content=registry.Content(text=text),
        impact=impact,
        reason=reason,
        version=number,
        metadata={**PINS, **evidence(PROMPT_RISK, pull_request(f"{artifact.path}@{number}"))},
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
