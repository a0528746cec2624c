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
from registry.models import Artifact, Version
from rollouts.choices import CANARY_DEFAULT_STEPS, PointerKind, RolloutState
from rollouts.models import Application, PointerMove, Rollout, RolloutTarget, Slot
from tests import factories
from tests.factories import PINS


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
    return factories.publish(artifact, text, impact, metadata=PINS)


def submitted(tenant: Tenant, people: dict[str, Any], version: Version) -> Any:
    """A change proposing ``version``, with evidence, checks run and approved (not promoted)."""
    return factories.approved_change(people, version, tenant=tenant)


def promoted(tenant: Tenant, people: dict[str, Any], version: Version) -> Any:
    return factories.promoted_change(people, version, tenant=tenant)


def world(make_user: Any, tenant: Tenant) -> World:
    """v1 promoted and bound to the slot sales-agent.qualifyLead; v2 proposed by a promoted change."""
    registry.install_builtin_classes()
    slug = tenant.slug
    people = {
        "author": make_user(f"author-{slug}", **{slug: "member"}),
        "reviewer": make_user(f"reviewer-{slug}", **{slug: ["member", "reviewer"]}),
        "admin": make_user(f"admin-{slug}", **{slug: ["member", "administrator"]}),
    }
    prompt = factories.make_artifact(
        tenant, "prompt", "qualify-lead", owner=people["admin"], title="Qualify lead"
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
