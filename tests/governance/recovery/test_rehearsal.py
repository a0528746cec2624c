"""Rollback rehearsals: the moves in the scratch copy, the refusals, and (with a backup) the
whole rehearsal recorded as a signed version while the real pointers stay where they were."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import Tenant
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.recovery import rehearsals
from governance.recovery.models import RecoveryRun
from governance.recovery.scratch import SCRATCH_ENV
from registry.models import Artifact
from registry.services import version_deprecate
from reviews.models import Activation
from reviews.services import rollback
from rollouts import hooks as rollouts_hooks
from rollouts.models import PointerMove
from tests.cli import refused
from tests.governance.recovery.drill_world import people, platform, rehearsal_world

__all__ = ["people", "platform"]


@pytest.fixture
def as_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test database plays the scratch copy (what the subprocess's environment says)."""
    monkeypatch.setenv(SCRATCH_ENV, str(settings.DATABASES["default"]["NAME"]))


def test_scratch_rehearse_reverts_then_rolls_forward_and_resolves_each_time(
    platform: Tenant, people: dict[str, Any], as_scratch: None
) -> None:
    slot, v1, v2 = rehearsal_world(platform, people)
    answer = rehearsals.scratch_rehearse(slot_label="sales-agent.qualifyLead")
    assert answer["problems"] == []
    assert answer["needs_override_reason"] is False
    assert (answer["from"], answer["to"]) == (v2.path, v1.path)
    assert answer["resolved_after_revert"]["sha256"] == v1.manifest_sha256
    assert answer["resolved_after_forward"]["sha256"] == v2.manifest_sha256
    assert answer["revert_seconds"] > 0
    assert answer["forward_seconds"] > 0
    slot.artifact.refresh_from_db()
    assert slot.artifact.active_version == v2
    # Both moves went through the registry's rollback: two activations, two slot pointer moves.
    kinds = list(
        Activation.objects.filter(artifact=slot.artifact)
        .order_by("created_at")
        .values_list("kind", "version")
    )
    assert kinds[-2:] == [("rollback", v1.pk), ("rollback", v2.pk)]
    moves = PointerMove.objects.filter(artifact=slot.artifact).order_by("id")
    assert [(m.from_version_id, m.to_version_id) for m in moves][-2:] == [
        (v2.pk, v1.pk),
        (v1.pk, v2.pk),
    ]


def test_rolling_back_to_a_deprecated_version_is_rehearsed_with_the_override_it_needs(
    platform: Tenant, people: dict[str, Any], as_scratch: None
) -> None:
    slot, v1, v2 = rehearsal_world(platform, people)
    version_deprecate(
        version=v1, replacement=v2, reason="v2 is politer", remove_after_days=30, actor=None
    )
    answer = rehearsals.scratch_rehearse(slot_label="sales-agent.qualifyLead")
    assert answer["problems"] == []
    assert answer["needs_override_reason"] is True
    assert answer["resolved_after_revert"]["sha256"] == v1.manifest_sha256
    back = Activation.objects.filter(artifact=slot.artifact, version=v1, kind="rollback").get()
    assert back.override_reason == rehearsals.OVERRIDE_REASON
    forward = Activation.objects.filter(artifact=slot.artifact, version=v2, kind="rollback").get()
    assert forward.override_reason == ""


def test_scratch_rehearse_refuses_a_database_that_is_not_the_scratch_copy(
    platform: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    slot, _, v2 = rehearsal_world(platform, people)
    monkeypatch.delenv(SCRATCH_ENV, raising=False)
    with pytest.raises(Forbidden, match="only in a scratch copy"):
        rehearsals.scratch_rehearse(slot_label="sales-agent.qualifyLead")
    line = refused("drill", "scratch-rehearse", "sales-agent.qualifyLead", "--json")
    assert "scratch copy" in line
    assert Artifact.objects.get(pk=slot.artifact_id).active_version == v2
    assert not Activation.objects.filter(kind="rollback").exists()


def test_a_slot_with_nothing_to_roll_back_to_is_refused(
    platform: Tenant, people: dict[str, Any]
) -> None:
    slot, _, _ = rehearsal_world(platform, people)
    # Back to v1, whose promotion replaced nothing: from there there is nowhere to go back to.

    rollback(artifact=slot.artifact, actor=None, reason="back to the first")
    with pytest.raises(Conflict, match="no earlier promoted version"):
        rehearsals.rehearsal_run(slot_label="sales-agent.qualifyLead")
    line = refused("rollouts", "rehearse", "sales-agent.qualifyLead")
    assert line == (
        "slot: sales-agent.qualifyLead: prompt/platform/qualify-lead has no earlier promoted "
        "version to roll back to."
    )
    assert not RecoveryRun.objects.exists()


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("qualifyLead", "'qualifyLead' is not a slot: use APPLICATION.SLOT."),
        ("sales-agent.nope", "No slot 'nope' in application 'sales-agent'."),
    ],
)
def test_an_unknown_slot_is_refused_naming_the_field(
    platform: Tenant, people: dict[str, Any], label: str, message: str
) -> None:
    rehearsal_world(platform, people)
    assert refused("drill", "rehearse", label) == f"slot: {message}"
    with pytest.raises(DomainError):
        rehearsals.rehearsal_run(slot_label=label)


def test_rollouts_rehearse_goes_through_the_hook_and_refuses_without_a_runner(
    platform: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rehearsal_world(platform, people)
    monkeypatch.setattr(rollouts_hooks, "_rehearsal_runners", [])
    assert refused("rollouts", "rehearse", "sales-agent.qualifyLead") == (
        "slot: No rollback rehearsal runner is installed."
    )
    calls: list[tuple[str, Any]] = []

    def runner(label: str, *, backup: Any = None) -> tuple[bool, str]:
        calls.append((label, backup))
        return False, "rollback rehearsal of x failed: because"

    rollouts_hooks.register_rehearsal_runner(runner)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("rollouts", "rehearse", "a.b", stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 1
    assert err.getvalue().strip() == "rollback rehearsal of x failed: because"
    assert calls == [("a.b", None)]
