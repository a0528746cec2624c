"""A promoted change and a rollout of it, built for the manifest, controller and export tests.

Rows are made directly (the rollout services belong to another module and are tested
there); the change goes through the real reviews services, so its checks, approvals,
evidence and promotion event are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.models import Tenant
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from registry import services as registry
from registry.models import Artifact, ArtifactClass, Version
from reviews import services as reviews
from reviews.choices import CheckStatus
from reviews.models import CheckRun
from rollouts.choices import CANARY_DEFAULT_STEPS, PointerKind, RolloutState
from rollouts.models import Application, PointerMove, Rollout, RolloutTarget, Slot

PINS = {"pinned_models": ["gpt-4o-2024-08-06"]}


@dataclass
class World:
    tenant: Tenant
    people: dict[str, Any]
    prompt: Artifact
    v1: Version
    v2: Version
    change: Any
    slot: Slot


def publish(artifact: Artifact, text: str, impact: str = "minor") -> Version:
    version, _ = registry.version_publish(
        artifact=artifact,
        content=registry.Content(text=text),
        impact=impact,
        reason="test change",
        actor=None,
        metadata=PINS,
    )
    return version


def submitted(tenant: Tenant, people: dict[str, Any], version: Version) -> Any:
    change = reviews.change_create(
        tenant=tenant,
        actor=people["author"],
        proposed=[version],
        title="Tune the prompt",
        rollback_plan="Roll back to the previous version.",
    )
    reviews.evidence_attach(
        change=change,
        actor=None,
        version=version,
        metrics={"accuracy": 0.91, "safety": 0.97, "latency_p95_ms": 420},
        seed="42",
        test_run_ids=["ci-123"],
    )
    change = reviews.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)
    for who in ("reviewer", "admin"):
        reviews.approval_decide(change=change, actor=people[who], decision="approve")
    change.refresh_from_db()
    return change


def promoted(tenant: Tenant, people: dict[str, Any], version: Version) -> Any:
    return reviews.change_promote(change=submitted(tenant, people, version), actor=people["admin"])


def world(make_user: Any, tenant: Tenant) -> World:
    """v1 promoted and bound to the slot sales-agent.qualifyLead; v2 proposed by a promoted change."""
    registry.install_builtin_classes()
    slug = tenant.slug
    people = {
        "author": make_user(f"author-{slug}", **{slug: "member"}),
        "reviewer": make_user(f"reviewer-{slug}", **{slug: ["member", "reviewer"]}),
        "admin": make_user(f"admin-{slug}", **{slug: ["member", "administrator"]}),
    }
    prompt = registry.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="prompt"),
        tenant=tenant,
        slug="qualify-lead",
        title="Qualify lead",
        actor=None,
        owner=people["admin"],
    )
    v1 = publish(prompt, "Qualify {{ customer }}.", impact="major")
    promoted(tenant, people, v1)
    application = Application.objects.create(
        tenant=tenant, slug=f"sales-agent-{slug}", name="Sales agent"
    )
    slot = Slot.objects.create(application=application, name="qualifyLead", artifact=prompt)
    v2 = publish(prompt, "Qualify {{ customer }} politely.")
    change = promoted(tenant, people, v2)
    prompt.refresh_from_db()
    return World(tenant, people, prompt, v1, v2, change, slot)


def rollout_of(
    w: World,
    *,
    change: Any = None,
    strategy: str = "canary",
    target: str = "live",
    state: str = RolloutState.DRAFT,
    step: int = 0,
    cohort: list[str] | None = None,
    baseline: Version | str | None = "v1",
    **extra: Any,
) -> Rollout:
    number = (Rollout.objects.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    rollout = Rollout.objects.create(
        number=number,
        tenant=w.tenant,
        change=change or w.change,
        strategy=strategy,
        target=target,
        state=state,
        step=step,
        steps=list(CANARY_DEFAULT_STEPS) if strategy == "canary" else [],
        cohort=cohort or [],
        salt=f"salt-{number}",
        created_by=w.people["admin"],
        **extra,
    )
    RolloutTarget.objects.create(
        rollout=rollout,
        slot=w.slot,
        baseline=w.v1 if isinstance(baseline, str) else baseline,
        candidate=w.v2,
    )
    return rollout


def roll_back(w: World, rollout: Rollout, *, restore: bool = True, event: bool = True) -> Rollout:
    """What a rollback leaves behind: the state, the pointers back at the baseline, its event."""
    with transaction.atomic():
        Rollout.objects.filter(pk=rollout.pk).update(
            state=RolloutState.ROLLED_BACK, revision=rollout.revision + 1
        )
        if restore:
            w.prompt.refresh_from_db()
            PointerMove.objects.create(
                kind=PointerKind.DEFAULT,
                artifact=w.prompt,
                from_version=w.prompt.active_version,
                to_version=w.v1,
                rollout=rollout,
                reason="errors up",
            )
            Artifact.objects.filter(pk=w.prompt.pk).update(active_version=w.v1)
        if event:
            event_record(
                kind=EventKind.ROLLOUT_ROLLED_BACK,
                actor=None,
                tenant=w.tenant,
                subject=rollout,
                payload={"rollout": rollout.reference},
            )
    rollout.refresh_from_db()
    return rollout
