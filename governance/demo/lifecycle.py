"""A version at every stage of the lifecycle, with its evidence (learning-artifact-lifecycle.md).

acme's ``refund-approver`` model is action-eligible (its score pays small refunds without an
agent), so it has a deputy owner and a safety switch, and acme's approval policy asks a
reviewer, its owner and its deputy to sign off its changes. It is trained on the ``refund-requests``
dataset, whose versions its own name as dependencies (dataset lineage, pinned by hash):

- 1.0.0 **active**: every criterion met, promoted;
- 1.1.0 **approved**: retrained on the newer dataset, approved, waiting for an administrator
  to promote it;
- 1.2.0 **evaluated**: its evaluation is complete and reproduced, its review is open;
- 1.3.0 **draft**: published without an evaluation plan or a risk note, with one incomplete
  evaluation report, so its checklist lists what to add.

Each step goes through the services and checks for itself whether it is done (idempotent).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import Tenant, User
from governance.demo.common import (
    days_ago,
    demo_artifact,
    deployment_ready,
    evidence,
    metrics,
    pull_request,
    run_checks,
    submitted,
)
from registry import services as registry
from registry.choices import ArtifactClass, Determinism
from registry.models import Artifact, Version
from reviews import services as reviews
from reviews.choices import Requirement
from reviews.models import ChangeRequest
from reviews.policy import DEFAULT_RULES
from reviews.selectors import effective_policy

MODEL = "refund-approver"
DATASET = "refund-requests"
#: The demo versions at each stage, as (stage, version number): what seed_demo prints.
STAGE_VERSIONS = (
    ("active", "1.0.0"),
    ("approved", "1.1.0"),
    ("evaluated", "1.2.0"),
    ("draft", "1.3.0"),
)
#: An active version with telemetry (the sales agent's canary, governance/demo/rollouts.py).
WATCHED_ARTIFACT, WATCHED_VERSION = "lead-qualification", "1.0.0"
#: The active version's launch, this many days ago.
LAUNCH_DAYS_AGO = 6

MODEL_PLAN = (
    "Offline evaluation on the held-out quarter of refund-requests (accuracy, safety, "
    "calibration, stability, latency, cost, throughput), run twice with seed 7 and numpy "
    "PCG64; bias as the approval-rate gap across customer regions."
)
IO_SCHEMA = {
    "input": {
        "type": "object",
        "properties": {
            "amount_eur": {"type": "number"},
            "reason": {"type": "string"},
            "customer_tenure_days": {"type": "integer"},
        },
        "required": ["amount_eur", "reason"],
    },
    "output": {
        "type": "object",
        "properties": {"approve": {"type": "boolean"}, "score": {"type": "number"}},
        "required": ["approve", "score"],
    },
}
#: (version, impact, reason, the dataset version it is trained on)
MODEL_VERSIONS = (
    ("1.0.0", "major", "First model: trained on the second quarter's refund requests.", "1.0.0"),
    ("1.1.0", "minor", "Retrained with the third quarter's refund requests.", "1.1.0"),
    ("1.2.0", "minor", "Calibrated scores (isotonic) on the same data.", "1.1.0"),
    ("1.3.0", "minor", "Adds the customer's tenure as a feature.", "1.1.0"),
)
DATASET_VERSIONS = (
    ("1.0.0", "major", "2026-q2", 48_210, "Refund requests of the second quarter, labelled."),
    ("1.1.0", "minor", "2026-q3", 51_904, "Adds the third quarter's refund requests."),
)


def seed_lifecycle(tenants: dict[str, Tenant]) -> None:
    """The refund approver's versions at every stage, and its dataset."""
    story = RefundApprover.build(tenants["acme"])
    (n1, i1, r1, d1), (n2, i2, r2, d2), (n3, i3, r3, d3), (n4, i4, r4, d4) = MODEL_VERSIONS

    # 1.0.0 active: every criterion met, promoted.
    with days_ago(LAUNCH_DAYS_AGO):
        risk = "High: it pays refunds; capped at 20 EUR, the rest go to an agent."
        first = story.publish(n1, i1, r1, d1, **story.evidence(n1, risk))
        if story.change_for(first) is None:
            change = story.opened(first, "Launch the refund approver")
            story.evaluated(change, first, 0.93)
            deployment_ready(change, story.author)
            submitted(change, story.author)
            story.approve(change)
            reviews.change_promote(change=change, actor=story.admin)

    # 1.1.0 approved: waiting for an administrator to promote it.
    risk = "Medium: new data; the 20 EUR cap still holds."
    second = story.publish(n2, i2, r2, d2, **story.evidence(n2, risk))
    if story.change_for(second) is None:
        change = story.opened(second, "Retrain the refund approver on the third quarter")
        story.evaluated(change, second, 0.94)
        deployment_ready(change, story.author)
        submitted(change, story.author)
        story.approve(change)

    # 1.2.0 evaluated: its evidence is complete, its review waits on the approvers.
    risk = "Low: scores move, decisions barely do."
    third = story.publish(n3, i3, r3, d3, **story.evidence(n3, risk))
    if story.change_for(third) is None:
        change = story.opened(third, "Calibrate the refund approver's scores")
        story.evaluated(change, third, 0.94)
        submitted(change, story.author)

    # 1.3.0 draft: no evaluation plan, no risk note, one incomplete report.
    pr = pull_request(f"{story.model.path}@{n4}")
    fourth = story.publish(
        n4,
        i4,
        r4,
        d4,
        determinism=Determinism.DETERMINISTIC,
        pr_url=f"https://git.example.com/acme/assistants/pull/{pr}",
    )
    if story.change_for(fourth) is None:
        change = story.opened(fourth, "Score refunds with the customer's tenure")
        reviews.evidence_attach(
            change=change,
            actor=None,
            version=fourth,
            metrics={"accuracy": 0.95, "safety": 0.99, "latency_p95_ms": 41},
            bias={"approval_rate_gap_by_region": 0.03},
            seed="7",
            rng="numpy PCG64",
            test_run_ids=["ci-refund-approver-1.3.0-run1"],
        )
        run_checks(change)


@dataclass(frozen=True)
class RefundApprover:
    """The model, its datasets and the people who take its versions through review."""

    acme: Tenant
    model: Artifact
    datasets: dict[str, Version]
    author: User
    reviewer: User
    admin: User

    @classmethod
    def build(cls, acme: Tenant) -> RefundApprover:
        """The model (created once, action-eligible, with a deputy) and its datasets."""
        users = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
        admin = users["acme-admin"]
        owner_and_deputy_sign_off(acme, admin)
        datasets = seed_dataset(acme, admin)
        model = demo_artifact(
            ArtifactClass.MODEL,
            acme,
            admin,  # the accountable owner: their approval authorises a promotion
            MODEL,
            (
                "Refund approver",
                "Scores a refund request; under 20 EUR with a high score the refund is paid "
                "without an agent.",
            ),
        )
        if not model.action_eligible:
            model = registry.artifact_action_eligible_set(
                artifact=model,
                value=True,
                reason="Its score pays refunds without an agent looking.",
                actor=admin,
            )
        if model.deputy_id is None:
            model = registry.artifact_deputy_set(
                artifact=model, deputy=users["acme-security"], actor=admin
            )
        return cls(acme, model, datasets, users["acme-author"], users["acme-reviewer"], admin)

    def publish(self, number: str, impact: str, reason: str, dataset: str, **meta: Any) -> Version:
        """The model's version ``number``, trained on ``dataset`` (published once)."""
        found = Version.objects.filter(artifact=self.model, version=number).first()
        if found is not None:
            return found
        published, _ = registry.version_publish(
            artifact=self.model,
            content=registry.Content(
                file_bytes=f"refund-approver weights {number} (demo)".encode(),
                file_name="model.onnx",
            ),
            impact=impact,
            reason=reason,
            version=number,
            metadata={"io_schema": IO_SCHEMA, **meta},
            dependencies=[self.datasets[dataset].pinned],
            actor=None,
        )
        return published

    def evidence(self, number: str, risk: str) -> dict[str, Any]:
        """The Draft stage's evidence of a model version (its datasets are dependencies)."""
        return evidence(
            risk,
            pull_request(f"{self.model.path}@{number}"),
            plan=MODEL_PLAN,
            determinism=Determinism.DETERMINISTIC,
            no_datasets=None,
        )

    def change_for(self, version: Version) -> ChangeRequest | None:
        return ChangeRequest.objects.filter(items__proposed=version).first()

    def opened(self, version: Version, title: str) -> ChangeRequest:
        return reviews.change_create(
            tenant=self.acme,
            actor=self.author,
            title=title,
            description=version.change_reason,
            rollback_plan="Promote the previous version again; engage the safety switch "
            "meanwhile if refunds look wrong.",
            proposed=[version],
        )

    def evaluated(self, change: ChangeRequest, version: Version, accuracy: float) -> None:
        """Two complete runs with the same seed and RNG that agree: reproducibility."""
        for run in (1, 2):
            reviews.evidence_attach(
                change=change,
                actor=None,
                version=version,
                metrics={
                    **metrics(round(accuracy + 0.001 * run, 3), 0.99),
                    "latency_p95_ms": 38,
                    "cost": 0.0001,
                    "throughput_rps": 400,
                },
                bias={"approval_rate_gap_by_region": 0.015},
                seed="7",
                rng="numpy PCG64",
                test_run_ids=[f"ci-refund-approver-{version.version}-run{run}"],
            )

    def approve(self, change: ChangeRequest) -> None:
        """A reviewer's sign-off (action-eligible), the owner's and the deputy's."""
        reviews.approval_decide(
            change=change,
            actor=self.reviewer,
            decision="approve",
            comment="Accuracy and the region gap hold; reproduced twice.",
        )
        reviews.approval_decide(
            change=change,
            actor=self.admin,
            decision="approve",
            requirement=Requirement.OWNER,
            comment="As owner: go.",
        )
        assert self.model.deputy is not None
        reviews.approval_decide(
            change=change,
            actor=self.model.deputy,
            decision="approve",
            requirement=Requirement.DEPUTY,
            comment="As deputy: the safety switch is tested.",
        )


#: acme's approval policy adds this rule to the default ones (after the emergency rule, which
#: stays first): the seed's "owner + deputy" sign-off for action-eligible artifacts.
ACTION_ELIGIBLE_RULE = {
    "name": "Action-eligible artifact: reviewer, owner and deputy",
    "when": {"action_eligible": True},
    "require": [Requirement.REVIEWER.value, Requirement.OWNER.value, Requirement.DEPUTY.value],
    "final": True,
}


def owner_and_deputy_sign_off(acme: Tenant, admin: User) -> None:
    """acme's approval policy: the default rules, with the owner and the deputy signing off
    every change of an action-eligible artifact (beside a reviewer)."""
    _, current = effective_policy(acme)
    if any(rule["name"] == ACTION_ELIGIBLE_RULE["name"] for rule in current["rules"]):
        return
    rules = list(DEFAULT_RULES["rules"])
    reviews.approval_policy_update(
        tenant=acme,
        rules={**DEFAULT_RULES, "rules": [rules[0], ACTION_ELIGIBLE_RULE, *rules[1:]]},
        reason="Changes of action-eligible artifacts need their owner's and deputy's sign-off.",
        actor=admin,
    )


def seed_dataset(acme: Tenant, owner: User) -> dict[str, Version]:
    """The refund requests the model is trained on, one version per quarter (pinned by hash)."""
    dataset = demo_artifact(
        ArtifactClass.DATASET,
        acme,
        owner,
        DATASET,
        ("Refund requests", "Labelled refund requests (paid or refused by an agent)."),
    )
    out: dict[str, Version] = {}
    for number, impact, quarter, rows, description in DATASET_VERSIONS:
        found = Version.objects.filter(artifact=dataset, version=number).first()
        if found is None:
            found, _ = registry.version_publish(
                artifact=dataset,
                content=registry.Content(
                    data={
                        "uri": f"s3://acme-datasets/refund-requests/{quarter}.parquet",
                        "sha256": _fake_sha256(f"refund-requests/{quarter}"),
                        "rows": rows,
                        "description": description,
                    }
                ),
                impact=impact,
                reason=description,
                version=number,
                actor=None,
            )
        out[number] = found
    return out


def _fake_sha256(text: str) -> str:
    """A stand-in for the parquet file's digest (the demo has no file)."""
    return hashlib.sha256(text.encode()).hexdigest()


def stage_versions() -> list[tuple[str, Version]]:
    """The demo's version at each stage, for the summary seed_demo prints; last, an active
    version whose watched criteria are met too (the shared lead qualification's 1.0.0 serves
    the canary's stable arm: its telemetry arrives and is within thresholds)."""
    model = Artifact.objects.filter(tenant__slug="acme", slug=MODEL).first()
    found = {v.version: v for v in Version.objects.filter(artifact=model)} if model else {}
    shown = [(stage, found[number]) for stage, number in STAGE_VERSIONS if number in found]
    watched = Version.objects.filter(
        artifact__tenant__slug=settings.PLATFORM_TENANT_SLUG,
        artifact__slug=WATCHED_ARTIFACT,
        version=WATCHED_VERSION,
    ).first()
    if watched is not None:
        shown.append(("watched", watched))
    return shown
