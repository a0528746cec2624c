"""The manifest through the rollout services: every transition appends it, canary steps wait
for phases 1-4, and a rollback's manifest proves the pointers came back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator

from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact, Retirement, Version
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import RolloutState
from rollouts.manifest import SCHEMA_PATH, manifest_sha256
from rollouts.models import ManifestVersion, Rollout

VALIDATOR = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def phases(version: ManifestVersion) -> dict[str, str]:
    return {p["name"]: p["status"] for p in version.body["phases"]}


def latest(rollout: Rollout) -> ManifestVersion:
    found = ManifestVersion.objects.filter(rollout=rollout).order_by("-number").first()
    assert found is not None
    return found


def test_every_transition_appends_a_schema_valid_manifest_hashed_into_the_log(
    canary_rollout: Rollout, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    admin = people["admin"]
    r = canary_rollout
    assert latest(r).number == 1
    assert phases(latest(r))["runtime-governance"] == "skip"
    r = services.rollout_start(rollout=r, actor=admin)
    r = services.rollout_advance(rollout=r, actor=admin)
    r = services.rollout_pause(rollout=r, actor=admin, reason="look at the numbers")
    r = services.rollout_resume(rollout=r, actor=admin, reason="fine")
    with django_capture_on_commit_callbacks(execute=True):
        r = services.rollout_rollback(rollout=r, actor=admin, reason="complaints")
    versions = list(ManifestVersion.objects.filter(rollout=r).order_by("number"))
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert len(versions) == 7  # create, start, advance, pause, resume, rollback + its event's seq
    states = [v.body["observation_summary"]["state"] for v in versions]
    assert (
        states
        == ["draft", "progressing", "progressing", "paused", "progressing"] + ["rolled_back"] * 2
    )
    for version in versions:
        assert not list(VALIDATOR.iter_errors(version.body))
        assert version.sha256 == manifest_sha256(version.body)
        event = Event.objects.get(
            kind=EventKind.ROLLOUT_MANIFEST_APPENDED, payload__number=version.number,
            subject_id=str(r.pk),
        )  # fmt: skip
        assert event.payload["sha256"] == version.sha256
    assert [v.status for v in versions[:5]] == ["pass"] * 5
    assert versions[2].body["observation_summary"]["weight"] == 5_000
    canary_refs = versions[2].body["phases"][4]["artifact_refs"]
    assert len(canary_refs) == 2
    assert all(ref.startswith("pointer-move:") for ref in canary_refs)
    # rolled back: runtime governance fails (the seed's rule); the proof passes and names the event
    final = versions[-1]
    assert phases(final)["runtime-governance"] == "fail"
    assert final.status == "fail"
    assert phases(final)["rollback-proof"] == "pass"
    assert phases(final)["drift-gate"] == "pass"
    seq = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK, subject_id=str(r.pk)).seq
    assert final.body["rollback_proof"]["rollback_incident_evidence_path"] == (
        f"/governance/events/{seq}/"
    )
    assert final.body["rollback_proof"]["pointer_moves"] == sorted(
        r.moves.values_list("id", flat=True)
    )


def test_a_canary_cannot_start_or_advance_until_phases_one_to_four_pass(
    canary_rollout: Rollout, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    # the default moved behind the change's back: the drift gate fails
    Artifact.objects.filter(pk=platform_prompt.pk).update(active_version=prompt_v2)
    with pytest.raises(Conflict) as exc:
        services.rollout_start(rollout=canary_rollout, actor=admin)
    assert "cannot start its canary: drift-gate fail" in exc.value.message
    assert platform_prompt.path in exc.value.message
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.DRAFT
    assert canary_rollout.step == 0
    Artifact.objects.filter(pk=platform_prompt.pk).update(active_version=prompt_v1)
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    assert r.step == 1

    # the baseline a rollback would restore may no longer serve: no further step
    Retirement.objects.create(
        version=prompt_v1, rationale="gone", retain_until=timezone.now() + timedelta(days=30)
    )
    with pytest.raises(Conflict) as exc:
        services.rollout_advance(rollout=r, actor=admin)
    assert "cannot take its next canary step: rollback-readiness fail" in exc.value.message
    assert f"{prompt_v1.path} is retired" in exc.value.message
    r.refresh_from_db()
    assert r.step == 1


@pytest.mark.parametrize("strategy", ["tenant", "global", "flag"])
def test_every_strategy_waits_for_phases_one_to_four_before_moving_a_pointer(
    promoted_change: ChangeRequest, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version, acme: Any, strategy: str,
) -> None:  # fmt: skip
    extra: dict[str, Any] = {"steps": [["acme"]]} if strategy == "tenant" else {}
    if strategy == "flag":
        extra = {"flag_key": "new-tone", "flag_expires_at": timezone.now() + timedelta(days=7)}
    r = services.rollout_create(
        change=promoted_change, actor=people["admin"], strategy=strategy, **extra
    )
    # the default moved behind the change's back: nothing may move until that is resolved
    Artifact.objects.filter(pk=platform_prompt.pk).update(active_version=prompt_v2)
    with pytest.raises(Conflict) as exc:
        services.rollout_start(rollout=r, actor=people["admin"])
    assert "cannot start moving pointers: drift-gate fail" in exc.value.message
    r.refresh_from_db()
    assert r.state == RolloutState.DRAFT
    assert r.step == 0
    assert not r.moves.exists()
    # back as approved: the same rollout starts, and its manifest passes the drift gate
    Artifact.objects.filter(pk=platform_prompt.pk).update(active_version=prompt_v1)
    r = services.rollout_start(rollout=r, actor=people["admin"])
    assert r.state in (RolloutState.PROGRESSING, RolloutState.SUCCEEDED)
    manifest = latest(r)
    assert phases(manifest)["drift-gate"] == "pass"
    assert phases(manifest)["paper-canary"] == "skip"
