"""A small world for runtime tests: a platform artifact with versions in every state, tenants, an application.

Rows for applications, slots, overrides and rollouts are written directly (the services are
tested on their own); the runtime generation is bumped after each write, as an event would.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import Tenant, User
from governance.kernel.events import generation
from registry import services as registry
from registry.models import (
    Artifact,
    Deprecation,
    Retirement,
    Version,
    VersionState,
)
from reviews.choices import ChangeStatus
from reviews.models import ChangeItem, ChangeRequest
from rollouts import runtime
from rollouts.choices import RolloutState, RolloutStrategy
from rollouts.models import Application, Override, Rollout, RolloutTarget, Slot
from tests.factories import TenantFactory, UserFactory, make_artifact, publish

__all__ = ["make_artifact", "publish"]  # test modules import them from here too

_numbers = itertools.count(1000)


@dataclass
class World:
    platform: Tenant
    acme: Tenant
    globex: Tenant
    author: User
    ann: User  # member of acme
    gus: User  # member of globex
    artifact: Artifact
    app: Application
    slot: Slot
    v: dict[str, Version] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def changed() -> None:
    """What an event append does for the runtime: a new generation."""
    generation.bump()


def set_stage(version: Version, stage: str) -> None:
    VersionState.objects.update_or_create(version=version, defaults={"stage": stage})


def promoted_change(
    version: Version, author: User, status: str = ChangeStatus.PROMOTED
) -> ChangeRequest:
    change = ChangeRequest.objects.create(
        year=2026,
        number=next(_numbers),
        tenant=version.artifact.tenant,
        change_type="prompt",
        title=f"Promote {version.version}",
        rollback_plan="Roll back.",
        author=author,
        status=status,
        promoted_at=timezone.now() if status == ChangeStatus.PROMOTED else None,
    )
    ChangeItem.objects.create(change=change, artifact=version.artifact, proposed=version)
    if status == ChangeStatus.PROMOTED:
        set_stage(version, "approved")
    return change


def make_active(version: Version) -> None:
    Artifact.objects.filter(pk=version.artifact_id).update(active_version=version)
    set_stage(version, "active")
    changed()


def build_world() -> World:
    registry.install_builtin_classes()
    platform = cast(Tenant, TenantFactory(slug=settings.PLATFORM_TENANT_SLUG, name="Platform"))
    acme = cast(Tenant, TenantFactory(slug="acme", name="Acme"))
    globex = cast(Tenant, TenantFactory(slug="globex", name="Globex"))
    author = cast(User, UserFactory(username="author"))
    ann = cast(User, UserFactory(username="ann"))
    gus = cast(User, UserFactory(username="gus"))
    accounts_services.membership_add(user=ann, tenant=acme, actor=None)
    accounts_services.membership_add(user=gus, tenant=globex, actor=None)
    artifact = make_artifact(platform, "prompt", "qualify-lead", title="qualify-lead")
    v: dict[str, Version] = {}
    for name, text in [
        ("v1", "Qualify {{ customer }}."),  # promoted, active: the default
        ("v2", "Qualify {{ customer }} politely."),  # promoted: the candidate
        ("draft", "Draft {{ customer }}."),
        ("rejected", "Rejected {{ customer }}."),
        ("retired", "Retired {{ customer }}."),
        ("removed", "Removed {{ customer }}."),
        ("deprecated", "Deprecated {{ customer }}."),
        ("v3", "Qualify {{ customer }} briefly."),  # promoted, for overrides and pins
    ]:
        v[name] = publish(artifact, text)
    for name in ("v1", "v2", "retired", "removed", "deprecated", "v3"):
        promoted_change(v[name], author)
    promoted_change(v["rejected"], author, status=ChangeStatus.REJECTED)
    set_stage(v["rejected"], "evaluated")
    now = timezone.now()
    Retirement.objects.create(
        version=v["retired"], rationale="bad", retain_until=now + timedelta(days=365)
    )
    set_stage(v["retired"], "simulation_only")
    for name, removed in (("removed", now), ("deprecated", None)):
        Deprecation.objects.create(
            version=v[name],
            replacement=v["v1"],
            reason="old",
            deprecated_at=now - timedelta(days=2),
            remove_after=now + timedelta(days=30) if removed is None else now - timedelta(days=1),
            removed_at=removed,
        )
        set_stage(v[name], "deprecated")
    make_active(v["v1"])
    app = Application.objects.create(tenant=platform, slug="sales-agent", name="Sales agent")
    slot = Slot.objects.create(application=app, name="qualifyLead", artifact=artifact)
    world = World(platform, acme, globex, author, ann, gus, artifact, app, slot, v)
    changed()
    runtime.cache_clear()
    return world


def canary(
    world: World,
    *,
    weight: int = 10_000,
    salt: str = "salt-1",
    target: str = "live",
    cohort: list[str] | None = None,
    tenant: Tenant | None = None,
    candidate: Version | None = None,
    strategy: str = RolloutStrategy.CANARY,
    **kw: Any,
) -> Rollout:
    candidate = candidate or world.v["v2"]
    item = ChangeItem.objects.filter(proposed=candidate).first()
    change = (
        item.change if item else ChangeItem.objects.filter(proposed=world.v["v2"]).first().change
    )
    rollout = Rollout.objects.create(
        number=next(_numbers),
        tenant=tenant or world.platform,
        change=change,
        strategy=strategy,
        target=target,
        state=RolloutState.PROGRESSING,
        step=1,
        steps=[weight],
        cohort=cohort or [],
        salt=salt,
        **kw,
    )
    RolloutTarget.objects.create(
        rollout=rollout, slot=world.slot, baseline=world.v["v1"], candidate=candidate
    )
    changed()
    return rollout


def set_weight(rollout: Rollout, weight: int, state: str = RolloutState.PROGRESSING) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(
        steps=[*rollout.steps, weight], step=len(rollout.steps) + 1, state=state
    )
    rollout.refresh_from_db()
    changed()


def override(
    world: World, tenant: Tenant, version: Version, rollout: Rollout | None = None
) -> Override:
    found = Override.objects.create(
        slot=world.slot, tenant=tenant, version=version, reason="tenant wants it", rollout=rollout
    )
    changed()
    return found
