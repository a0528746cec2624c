"""Rollout fixtures other test modules reuse: the platform tenant, an application with a slot
bound to a platform prompt, promoted changes made through the real reviews services, and a
draft canary rollout.

    platform            the platform tenant (settings.PLATFORM_TENANT_SLUG)
    people              author, reviewer, admin (administrator of platform and acme), acme_admin,
                        outsider; roles in both acme and platform
    platform_prompt     prompt/platform/qualify-lead with v1 promoted (active) before any slot
    prompt_v1           that v1 (the slot's default)
    application         sales-agent, owned by the platform (shared with every tenant)
    slot                sales-agent.qualifyLead bound to platform_prompt
    promote             promote(*versions, tenant=platform, strategy=...) -> a PROMOTED change
    prompt_v2           a minor v2, published (not proposed)
    promoted_change     a promoted change proposing v2 (held for a rollout: the slot is bound)
    canary_rollout      a draft canary rollout of promoted_change, default steps
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from django.conf import settings

from accounts.models import Tenant
from registry import services as registry
from registry.models import Artifact, Version
from reviews.choices import RolloutStrategy
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.models import Application, Rollout, Slot
from tests import factories
from tests.factories import PINS, TenantFactory, make_artifact, publish


@pytest.fixture(autouse=True)
def _builtin_classes(db: None) -> None:
    registry.install_builtin_classes()


@pytest.fixture
def platform(db: None) -> Tenant:
    return cast(Tenant, TenantFactory(slug=settings.PLATFORM_TENANT_SLUG, name="Platform"))


@pytest.fixture
def people(make_user: Any, acme: Tenant, platform: Tenant) -> dict[str, Any]:
    """author, reviewer and admin hold their roles in acme and platform; acme_admin administers
    acme only; outsider is a member of acme."""
    both = {"acme": ["member"], "platform": ["member"]}
    return {
        "author": make_user("author", **both),
        "reviewer": make_user(
            "reviewer", acme=["member", "reviewer"], platform=["member", "reviewer"]
        ),
        "admin": make_user(
            "admin", acme=["member", "administrator"], platform=["member", "administrator"]
        ),
        "acme_admin": make_user("acme_admin", acme=["member", "administrator"]),
        "outsider": make_user("outsider", acme="member"),
    }


def promote_versions(
    people: dict[str, Any],
    *versions: Version,
    tenant: Tenant | None = None,
    strategy: str | None = None,
    title: str = "Tune the prompt",
) -> ChangeRequest:
    """Open, evidence, submit, check, approve (reviewer + admin) and promote a change."""
    return factories.promoted_change(
        people,
        *versions,
        tenant=tenant,
        title=title,
        rollout_strategy=strategy or RolloutStrategy.CANARY,
    )


@pytest.fixture
def promote(people: dict[str, Any]) -> Callable[..., ChangeRequest]:
    def make(*versions: Version, **kw: Any) -> ChangeRequest:
        return promote_versions(people, *versions, **kw)

    return make


@pytest.fixture
def platform_prompt(platform: Tenant, people: dict[str, Any]) -> Artifact:
    return make_artifact(platform, "prompt", "qualify-lead", owner=people["admin"])


@pytest.fixture
def prompt_v1(platform_prompt: Artifact, promote: Callable[..., ChangeRequest]) -> Version:
    version = publish(
        platform_prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS
    )
    promote(version, title="First prompt")
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == version
    return version


@pytest.fixture
def application(platform: Tenant, people: dict[str, Any]) -> Application:
    return services.application_create(
        tenant=platform, slug="sales-agent", name="Sales agent", actor=people["admin"]
    )


@pytest.fixture
def slot(
    application: Application, platform_prompt: Artifact, prompt_v1: Version, people: dict[str, Any]
) -> Slot:
    return services.slot_create(
        application=application,
        name="qualifyLead",
        artifact=platform_prompt,
        description="Qualifies inbound leads.",
        actor=people["admin"],
    )


@pytest.fixture
def prompt_v2(platform_prompt: Artifact, prompt_v1: Version) -> Version:
    return publish(platform_prompt, text="Qualify {{ customer }} politely.", metadata=PINS)


@pytest.fixture
def promoted_change(
    slot: Slot, prompt_v2: Version, promote: Callable[..., ChangeRequest]
) -> ChangeRequest:
    return promote(prompt_v2, title="Politer qualification")


@pytest.fixture
def canary_rollout(promoted_change: ChangeRequest, people: dict[str, Any]) -> Rollout:
    return services.rollout_create(
        change=promoted_change, actor=people["admin"], strategy="canary", reason="try it"
    )
