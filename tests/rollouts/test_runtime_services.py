"""The runtime follows the real services with no help: every pointer move and rollout
transition appends its event, which changes the generation, so the next answer sees it."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant
from registry.models import Version
from rollouts import runtime, services
from rollouts.models import Rollout, Slot

pytestmark = pytest.mark.django_db

SUBJECTS = [f"user-{i}" for i in range(2000)]


def canary_set(tenant: str = "acme") -> set[str]:
    snap = runtime.snapshot(tenant, "sales-agent")
    return {s for s in SUBJECTS if runtime.resolve(snap, "qualifyLead", s).arm == "canary"}


def test_a_canary_through_the_services(
    canary_rollout: Rollout, people: dict[str, Any], slot: Slot, acme: Tenant,
    prompt_v1: Version, prompt_v2: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    runtime.cache_clear()
    assert runtime.answer("acme", "sales-agent", "qualifyLead", "u").version == prompt_v1.version
    assert canary_set() == set()  # a draft rollout has no rule
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    at_1 = canary_set()
    r = services.rollout_advance(rollout=r, actor=admin)
    at_5 = canary_set()
    assert at_1 <= at_5
    assert len(at_5) > len(at_1)
    got = runtime.answer("acme", "sales-agent", "qualifyLead", sorted(at_5)[0])
    assert (got.reason, got.arm, got.version, got.rollout, got.step) == (
        "SPLIT", "canary", prompt_v2.version, r.reference, 2,
    )  # fmt: skip
    r = services.rollout_pause(rollout=r, actor=admin, reason="look at errors")
    assert canary_set() == at_5
    r = services.rollout_resume(rollout=r, actor=admin, reason="fine")
    assert canary_set() == at_5
    services.override_set(
        slot=slot, tenant=acme, version=prompt_v1, reason="acme stays", actor=admin
    )
    stable = runtime.answer("acme", "sales-agent", "qualifyLead", None)
    assert (stable.reason, stable.variant) == ("TARGETING_MATCH", "override")
    services.override_clear(slot=slot, tenant=acme, reason="follow the default", actor=admin)
    r = services.rollout_rollback(rollout=r, actor=admin, reason="errors up")
    assert canary_set() == set()
    back = runtime.answer("acme", "sales-agent", "qualifyLead", sorted(at_5)[0])
    assert (back.reason, back.version, back.rollout) == ("DEFAULT", prompt_v1.version, None)


def test_a_finished_canary_moves_the_default(
    canary_rollout: Rollout, people: dict[str, Any], slot: Slot, prompt_v2: Version
) -> None:
    admin = people["admin"]
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    before = runtime.snapshot("acme", "sales-agent").sequence
    while r.state == "progressing":
        r = services.rollout_advance(rollout=r, actor=admin)
    got = runtime.answer("acme", "sales-agent", "qualifyLead", "anyone")
    assert (got.reason, got.version, got.ref) == (
        "DEFAULT", prompt_v2.version, runtime.version_ref(prompt_v2),
    )  # fmt: skip
    assert got.sequence > before
