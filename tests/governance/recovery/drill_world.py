"""A small registry for drills and rehearsals: a platform prompt promoted twice, bound to a slot.

``rehearsal_world(platform, people)`` -> (slot, v1, v2): ``sales-agent.qualifyLead`` serves v2, and a
rollback of it goes back to v1 (both promoted through the real reviews services before the
slot was declared, so each promotion moved the default).
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.conf import settings

from accounts.models import Tenant
from registry.models import Version
from rollouts import services
from rollouts.models import Slot
from tests import factories
from tests.factories import PINS, TenantFactory, make_artifact, publish


@pytest.fixture
def platform(db: None) -> Tenant:
    return cast(Tenant, TenantFactory(slug=settings.PLATFORM_TENANT_SLUG, name="Platform"))


@pytest.fixture
def people(make_user: Any, platform: Tenant) -> dict[str, Any]:
    """author, reviewer and admin of the platform tenant (enough to promote a change)."""
    return {
        "author": make_user("author", platform=["member"]),
        "reviewer": make_user("reviewer", platform=["member", "reviewer"]),
        "admin": make_user("admin", platform=["member", "administrator"]),
    }


def rehearsal_world(platform: Tenant, people: dict[str, Any]) -> tuple[Slot, Version, Version]:
    prompt = make_artifact(platform, "prompt", "qualify-lead", owner=people["admin"])
    v1 = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    factories.promoted_change(people, v1, title="First prompt")
    v2 = publish(prompt, text="Qualify {{ customer }} politely.", metadata=PINS)
    factories.promoted_change(people, v2, title="Politer prompt")
    application = services.application_create(
        tenant=platform, slug="sales-agent", name="Sales agent", actor=people["admin"]
    )
    slot = services.slot_create(
        application=application,
        name="qualifyLead",
        artifact=prompt,
        description="Qualifies inbound leads.",
        actor=people["admin"],
    )
    prompt.refresh_from_db()
    assert prompt.active_version == v2
    return slot, v1, v2
