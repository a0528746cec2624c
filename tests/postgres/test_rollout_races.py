"""Rollout transitions racing each other, in parallel processes against PostgreSQL.

20 "advance" calls naming the same revision make exactly one transition (the others a
409); a rollback racing an advance leaves every pointer exactly as it was before the
rollout, whichever wins; advances, overrides and promotions on the same artifact at once
never deadlock.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry.models import Artifact, Version
from reviews import services as reviews
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import PointerKind, RolloutState
from rollouts.models import Override, PointerMove, Rollout, Slot
from tests.postgres.test_reviews import in_processes
from tests.reviews.conftest import PINS, make_artifact, publish
from tests.rollouts.conftest import (
    _builtin_classes,
    application,
    canary_rollout,
    people,
    platform,
    platform_prompt,
    promote,
    promoted_change,
    prompt_v1,
    prompt_v2,
    slot,
)

__all__ = [  # fixtures, imported for use here
    "_builtin_classes",
    "application",
    "canary_rollout",
    "people",
    "platform",
    "platform_prompt",
    "promote",
    "promoted_change",
    "prompt_v1",
    "prompt_v2",
    "slot",
]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _pointers(slot: Slot) -> tuple[Any, dict[str, Any]]:
    """The slot's default and its overrides by tenant: what the runtime serves from."""
    artifact = Artifact.objects.get(pk=slot.artifact_id)
    overrides = {o.tenant.slug: o.version_id for o in Override.objects.filter(slot=slot)}
    return artifact.active_version_id, overrides


def test_twenty_advances_with_one_revision_make_one_transition(
    canary_rollout: Rollout, people: dict[str, Any]
) -> None:
    admin = people["admin"]
    started = services.rollout_start(rollout=canary_rollout, actor=admin)
    seen = started.revision

    results = in_processes(
        20, lambda: services.rollout_advance(rollout=started, actor=admin, revision=seen)
    )
    assert not [r for r in results if r.startswith("crash")], results
    assert len([r for r in results if r.startswith("ok:")]) == 1, results
    refused = [r for r in results if r.startswith("refused")]
    assert len(refused) == 19
    assert all(r.startswith("refused:Conflict") and "changed meanwhile" in r for r in refused)
    after = Rollout.objects.get(pk=started.pk)
    assert (after.step, after.revision, after.weight) == (2, seen + 1, 5_000)
    assert Event.objects.filter(kind=EventKind.ROLLOUT_ADVANCED).count() == 1
    weights = PointerMove.objects.filter(rollout=after, kind=PointerKind.CANARY).order_by("id")
    assert list(weights.values_list("weight", flat=True)) == [1_000, 5_000]
    assert verify_database().ok


@pytest.mark.parametrize("attempt", range(3))
def test_a_rollback_during_an_advance_leaves_the_pointers_exactly_as_before(
    promoted_change: ChangeRequest,
    people: dict[str, Any],
    slot: Slot,
    prompt_v1: Version,
    make_user: Any,
    globex: Any,
    acme: Any,
    attempt: int,
) -> None:
    admin = people["admin"]
    globex_admin = make_user("gadmin", globex=["member", "administrator"])
    services.override_set(
        slot=slot, tenant=globex, version=prompt_v1, reason="pinned", actor=globex_admin
    )
    before = _pointers(slot)
    rollout = services.rollout_create(
        change=promoted_change, actor=admin, strategy="tenant", steps=[["acme"], ["globex"]]
    )
    rollout = services.rollout_start(rollout=rollout, actor=admin)
    if attempt:  # at the last wave: the advance that wins moves the default and clears overrides
        rollout = services.rollout_advance(rollout=rollout, actor=admin)
    assert _pointers(slot) != before
    seen = rollout.revision

    turn = multiprocessing.get_context("fork").Value("i", 0)

    def race() -> Any:  # alternately an advance naming the revision seen, and a rollback
        with turn.get_lock():
            turn.value += 1
            mine = turn.value
        if mine % 2:
            return services.rollout_advance(rollout=rollout, actor=admin, revision=seen)
        return services.rollout_rollback(rollout=rollout, actor=admin, reason="errors up")

    results = in_processes(8, race)
    assert not [r for r in results if r.startswith("crash")], results
    assert all(r.startswith(("ok:", "refused:Conflict")) for r in results), results
    after = Rollout.objects.get(pk=rollout.pk)
    assert after.state == RolloutState.ROLLED_BACK
    assert Event.objects.filter(kind=EventKind.ROLLOUT_ROLLED_BACK).count() == 1
    assert _pointers(slot) == before
    assert Override.objects.get(slot=slot, tenant=globex).rollout is None
    assert verify_database().ok


def test_advances_overrides_and_promotions_on_one_artifact_at_once_never_deadlock(
    canary_rollout: Rollout,
    people: dict[str, Any],
    slot: Slot,
    platform_prompt: Artifact,
    prompt_v1: Version,
    prompt_v2: Version,
    acme: Any,
) -> None:
    admin = people["admin"]
    rollout = services.rollout_start(rollout=canary_rollout, actor=admin)
    v3 = publish(platform_prompt, text="Qualify {{ customer }} v3.", metadata=PINS)
    third = reviews.change_create(
        tenant=platform_prompt.tenant, actor=people["author"], title="v3", rollback_plan="back",
        proposed=[v3],
    )  # fmt: skip
    reviews.evidence_attach(change=third, actor=None, version=v3, metrics={"safety": 0.9})
    reviews.change_submit(change=third, actor=people["author"])

    turn = multiprocessing.get_context("fork").Value("i", 0)

    def work() -> Any:
        with turn.get_lock():
            turn.value += 1
            which = turn.value % 3
        if which == 0:
            return services.rollout_advance(rollout=rollout, actor=admin)
        if which == 1:
            return services.override_set(
                slot=slot, tenant=acme, version=prompt_v2, reason="early", actor=admin
            )
        return reviews.evidence_attach(
            change=third, actor=None, version=v3, metrics={"safety": 0.95}
        )

    results = in_processes(12, work)
    assert not [r for r in results if r.startswith("crash")], results
    after = Rollout.objects.get(pk=rollout.pk)
    advanced = len([r for r in results if r.startswith(f"ok:{rollout.pk}")])
    assert advanced == 4
    assert (after.step, after.revision) == (5, rollout.revision + 4)
    assert Override.objects.get(slot=slot, tenant=acme).version == prompt_v2
    assert verify_database().ok


def test_concurrent_creates_hand_out_distinct_numbers_and_one_rollout_per_slot(
    application: Any, platform: Any, people: dict[str, Any], promote: Any
) -> None:
    admin = people["admin"]
    changes = []
    for n in range(4):
        prompt = make_artifact(platform, "prompt", f"prompt-{n}")
        promote(publish(prompt, impact="major", text=f"P{n} {{{{ customer }}}}.", metadata=PINS))
        services.slot_create(application=application, name=f"slot{n}", artifact=prompt, actor=admin)
        changes.append(promote(publish(prompt, text=f"P{n} v2 {{{{ customer }}}}.", metadata=PINS)))
    turn = multiprocessing.get_context("fork").Value("i", 0)

    def create() -> Any:  # two processes per change
        with turn.get_lock():
            turn.value += 1
            mine = turn.value
        return services.rollout_create(change=changes[mine % 4], actor=admin)

    results = in_processes(8, create)
    assert not [r for r in results if r.startswith("crash")], results
    refused = [r for r in results if r.startswith("refused")]
    assert len(refused) == 4, results
    assert all("already moves these slots" in r for r in refused), results
    numbers = sorted(Rollout.objects.values_list("number", flat=True))
    assert numbers == [1, 2, 3, 4]
    assert sorted(Rollout.objects.values_list("change_id", flat=True)) == sorted(
        c.pk for c in changes
    )
    assert verify_database().ok
