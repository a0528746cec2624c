"""The rollout phase manifest: the seed's contract, derived from the database, hashed into the log."""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise
from typing import Any

import pytest
from django.db import transaction
from jsonschema import Draft202012Validator

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical
from registry.models import Artifact
from rollouts import contract, manifest
from rollouts.choices import RolloutState
from rollouts.manifest import (
    Signal,
    canary_blockers,
    manifest_append,
    manifest_build,
    phase_transitions,
    phases_complete,
)
from rollouts.models import ManifestVersion
from tests.rollouts.manifest_setup import World, roll_back, rollout_of, submitted, world

SCHEMA = json.loads(manifest.SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA)

TOP_LEVEL = [
    "schema_version",
    "run_id",
    "candidate_id",
    "execution_context",
    "requested_promotion_target",
    "status",
    "phase_count",
    "phase_transitions",
    "phases",
    "runtime_governance",
    "rollback_proof",
    "artifact_refs",
    "slo_contract_version",
    "observation_summary",
]


@pytest.fixture
def w(make_user: Any, acme: Any) -> World:
    return world(make_user, acme)


def valid(body: dict[str, Any]) -> dict[str, Any]:
    errors = list(VALIDATOR.iter_errors(body))
    assert not errors, [e.message for e in errors]
    return body


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["status"] for p in body["phases"]}


def test_schema_file_is_the_contract() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["required"] == TOP_LEVEL
    phases = SCHEMA["properties"]["phases"]["prefixItems"]
    assert [p["allOf"][1]["properties"]["name"]["const"] for p in phases] == list(
        contract.AUTONOMY_PHASE_ORDER
    )
    for p in phases:
        props = p["allOf"][1]["properties"]
        assert (
            tuple(props["slo_gates"]["required"])
            == contract.AUTONOMY_PHASE_SLO_GATES[props["name"]["const"]]
        )
    assert len(contract.SLO_GATES) == 8
    assert SCHEMA["properties"]["slo_contract_version"]["const"] == "governance-slo-v1"


def test_a_healthy_canary_manifest_has_every_field_seven_phases_in_order_and_passes(
    w: World,
) -> None:
    rollout = rollout_of(w)
    body = valid(manifest_build(rollout))
    assert list(body) == TOP_LEVEL
    assert body["schema_version"] == contract.SCHEMA_VERSION
    assert body["slo_contract_version"] == "governance-slo-v1"
    assert body["run_id"] == rollout.reference
    assert body["candidate_id"] == w.change.binding_sha256
    assert body["execution_context"] == {
        "repository": "registry:acme",
        "base": w.v1.pinned,
        "head": w.v2.pinned,
        "artifactPath": f"rollouts/{rollout.reference}",
        "priorityId": w.change.reference,
    }
    assert body["requested_promotion_target"] == "live"
    assert body["phase_count"] == 7
    assert [p["name"] for p in body["phases"]] == list(contract.AUTONOMY_PHASE_ORDER)
    for phase in body["phases"]:
        assert list(phase) == [
            "name",
            "status",
            "timestamp",
            "slo_gates",
            "observations",
            "artifact_refs",
        ]
        assert tuple(phase["slo_gates"]) == contract.AUTONOMY_PHASE_SLO_GATES[phase["name"]]
    assert statuses(body) == {
        "gate-evaluation": "pass",
        "promotion-prerequisites": "pass",
        "rollback-readiness": "pass",
        "drift-gate": "pass",
        "paper-canary": "pass",
        "runtime-governance": "skip",  # a draft does not run yet
        "rollback-proof": "pass",
    }
    assert body["status"] == "pass"
    gates = body["phases"][0]["slo_gates"]
    # checks run = required checks; decisions = the two approval slots filled at promotion
    assert gates["slo_decision_count_minimum"] == {"required": 2, "observed": 2, "passed": True}
    assert (
        gates["slo_signal_count_minimum"]["observed"]
        == gates["slo_signal_count_minimum"]["required"]
        >= 3
    )
    checks = body["phases"][0]["observations"]["checks"]
    assert {c["check"] for c in checks} >= {"offline_evaluation", "pack_verification"}
    assert all(c["passed"] and c["status"] == "passed" for c in checks)
    prereq = body["phases"][1]["observations"]
    assert prereq["missing"] == []
    assert prereq["pack_verification"]["ok"]
    assert f"evidence:{w.v2.path}" in prereq["required"]
    assert body["phases"][2]["observations"]["baselines"] == [
        {"slot": str(w.slot), "baseline": w.v1.pinned, "ok": True, "problem": ""}
    ]
    assert f"version:{w.v2.pinned}" in body["artifact_refs"]
    assert f"change:{w.change.reference}" in body["artifact_refs"]
    assert body["rollback_proof"]["rollback_triggered"] is False


def test_transitions_are_derived_from_adjacent_phases_carrying_the_destination_status(
    w: World,
) -> None:
    body = valid(manifest_build(rollout_of(w, target="paper")))
    names = list(contract.AUTONOMY_PHASE_ORDER)
    assert body["phase_transitions"] == [
        {"from": a["name"], "to": b["name"], "status": b["status"]}
        for a, b in pairwise(body["phases"])
    ]
    assert [(t["from"], t["to"]) for t in body["phase_transitions"]] == list(pairwise(names))
    assert body["phase_transitions"][3] == {
        "from": "drift-gate",
        "to": "paper-canary",
        "status": "fail",
    }
    assert body["phase_transitions"] == phase_transitions(body["phases"])


def test_paper_target_without_a_cohort_fails_the_manifest_live_without_a_canary_skips(
    w: World,
) -> None:
    paper = valid(manifest_build(rollout_of(w, target="paper")))
    assert statuses(paper)["paper-canary"] == "fail"
    assert paper["status"] == "fail"
    assert paper["observation_summary"]["phases_failed"] == ["paper-canary"]
    gate = paper["phases"][4]["slo_gates"]["slo_paper_canary_patch_present"]
    assert gate == {"required": True, "observed": False, "passed": False}

    cohort = valid(manifest_build(rollout_of(w, target="paper", cohort=["u1", "u2"])))
    assert statuses(cohort)["paper-canary"] == "pass"
    assert cohort["status"] == "pass"
    assert cohort["phases"][4]["observations"]["cohort_size"] == 2

    tenant_wave = valid(manifest_build(rollout_of(w, strategy="tenant")))
    assert statuses(tenant_wave)["paper-canary"] == "skip"
    assert tenant_wave["status"] == "pass"  # skip passes


def test_failure_policy_any_phase_not_pass_or_skip_fails_the_manifest() -> None:
    stamp = "2026-01-01T00:00:00.000000Z"
    phases = phases_complete([], stamp)
    assert [p["status"] for p in phases] == ["skip"] * 7
    assert manifest.manifest_status(phases) == "pass"
    phases[2]["status"] = "skipped"
    assert manifest.manifest_status(phases) == "pass"
    phases[5]["status"] = "fail"
    assert manifest.manifest_status(phases) == "fail"
    assert phase_transitions(phases)[4] == {
        "from": "paper-canary",
        "to": "runtime-governance",
        "status": "fail",
    }


def test_a_phase_without_an_evaluator_is_filled_with_skip(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluators = dict(manifest.PHASE_EVALUATORS)
    del evaluators["drift-gate"]
    monkeypatch.setattr(manifest, "PHASE_EVALUATORS", evaluators)
    body = valid(manifest_build(rollout_of(w)))
    assert [p["name"] for p in body["phases"]] == list(contract.AUTONOMY_PHASE_ORDER)
    drift = body["phases"][3]
    assert drift["status"] == "skip"
    assert list(drift["slo_gates"]) == ["slo_drift_gate_allowed"]


def test_drift_of_the_default_fails_the_drift_gate_and_blocks_the_canary(w: World) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    assert canary_blockers(rollout) == []
    live = w.prompt.active_version
    other = w.v2 if live == w.v1 else w.v1
    Artifact.objects.filter(pk=w.prompt.pk).update(active_version=other)  # behind its back
    body = valid(manifest_build(rollout))
    assert statuses(body)["drift-gate"] == "fail"
    assert statuses(body)["runtime-governance"] == "fail"
    assert body["runtime_governance"]["drift_status"] == "unhealthy"
    assert body["status"] == "fail"
    (drifted,) = body["phases"][3]["observations"]["drifted"]
    assert f"the default is {other.path}, expected {live.path}" in drifted
    blockers = canary_blockers(rollout)
    assert len(blockers) == 1
    assert blockers[0].startswith("drift-gate fail: ")
    assert w.prompt.path in blockers[0]
    Artifact.objects.filter(pk=w.prompt.pk).update(active_version=live)
    assert canary_blockers(rollout) == []


def test_canary_blocked_until_the_first_four_phases_pass(w: World) -> None:
    # a change approved but never promoted: no gate evaluation, no promotion record
    v3 = manifest_setup_publish(w)
    approved = submitted(w.tenant, w.people, v3)
    rollout = rollout_of(w, change=approved, baseline=None)
    body = valid(manifest_build(rollout))
    assert statuses(body)["gate-evaluation"] == "fail"
    assert statuses(body)["promotion-prerequisites"] == "fail"
    assert statuses(body)["rollback-readiness"] == "fail"
    blockers = canary_blockers(rollout)
    assert [b.split(" ")[0] for b in blockers] == [
        "gate-evaluation",
        "promotion-prerequisites",
        "rollback-readiness",
        "drift-gate",
    ]
    assert "missing promotion_event" in blockers[1]
    assert f"slot {w.slot} has no previous version to restore" in blockers[2]


def manifest_setup_publish(w: World) -> Any:
    from tests.rollouts.manifest_setup import publish

    return publish(w.prompt, "Qualify {{ customer }} briefly.")


def test_rollback_triggered_fails_runtime_governance_and_needs_evidence_for_the_proof(
    w: World,
) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    no_evidence = roll_back(w, rollout, restore=False, event=False)
    body = valid(manifest_build(no_evidence))
    assert statuses(body)["runtime-governance"] == "fail"
    assert statuses(body)["rollback-proof"] == "fail"
    assert body["rollback_proof"]["evidence_present"] is False

    other = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    proved = roll_back(w, other)
    body = valid(manifest_build(proved))
    assert statuses(body)["runtime-governance"] == "fail"  # rolled back: the seed's rule
    assert statuses(body)["rollback-proof"] == "pass"
    assert body["status"] == "fail"
    seq = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK, subject_id=str(proved.pk)).seq
    proof = body["rollback_proof"]
    assert proof["evidence_present"] is True
    assert proof["rollback_incident_evidence_path"] == f"/governance/events/{seq}/"
    assert proof["pointer_moves"] == list(proved.moves.order_by("id").values_list("id", flat=True))
    assert f"pointer-move:{proof['pointer_moves'][0]}" in body["phases"][6]["artifact_refs"]


def test_an_unhealthy_signal_fails_runtime_governance(w: World) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=2)

    def bad(r: Any) -> Signal | None:
        return Signal(source="test", samples=500, healthy=False, detail="error rate 9%")

    manifest.signal_source_register(bad)
    try:
        body = valid(manifest_build(rollout))
    finally:
        manifest.signal_source_unregister(bad)
    assert statuses(body)["runtime-governance"] == "fail"
    assert body["runtime_governance"]["signal"]["detail"] == "error rate 9%"
    assert statuses(valid(manifest_build(rollout)))["runtime-governance"] == "pass"


def test_append_stores_a_version_only_when_the_body_changes_and_hashes_it_into_the_log(
    w: World,
) -> None:
    rollout = rollout_of(w)
    first = manifest_append(rollout=rollout, actor=w.people["admin"])
    assert first.number == 1
    assert first.status == "pass"
    assert first.sha256 == hashlib.sha256(canonical(first.body)).hexdigest()
    valid(first.body)
    again = manifest_append(rollout=rollout)
    assert again.pk == first.pk
    assert ManifestVersion.objects.filter(rollout=rollout).count() == 1
    events = Event.objects.filter(
        kind=EventKind.ROLLOUT_MANIFEST_APPENDED, subject_id=str(rollout.pk)
    )
    assert events.count() == 1
    event = events.get()
    assert event.payload["sha256"] == first.sha256
    assert event.payload["number"] == 1
    assert event.actor == w.people["admin"]

    type(rollout).objects.filter(pk=rollout.pk).update(
        state=RolloutState.PROGRESSING, step=1, revision=2
    )
    second = manifest_append(rollout=rollout)
    assert second.number == 2
    assert second.sha256 != first.sha256
    assert second.body["observation_summary"]["step"] == 1
    # unchanged phases keep the moment they reached their result; changed ones move on
    before = {p["name"]: p["timestamp"] for p in first.body["phases"]}
    after = {p["name"]: p["timestamp"] for p in second.body["phases"]}
    assert after["gate-evaluation"] == before["gate-evaluation"]
    assert after["runtime-governance"] >= before["runtime-governance"]
    assert second.body["phases"][5]["status"] == "pass"
    assert events.count() == 2


def test_a_rollback_appended_in_its_own_transaction_is_proved_then_named_after_commit(
    w: World, django_capture_on_commit_callbacks: Any
) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    # what the rollback service does: its event pending, then the append, in one transaction
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        roll_back(w, rollout)
        during = manifest_append(rollout=rollout)
        assert not Event.objects.filter(kind=EventKind.ROLLOUT_ROLLED_BACK).exists()
    assert during.body["rollback_proof"]["evidence_present"] is True
    assert during.body["rollback_proof"]["rollback_incident_evidence_path"] == ""
    assert statuses(during.body)["rollback-proof"] == "pass"
    after = ManifestVersion.objects.filter(rollout=rollout).order_by("-number").first()
    assert after is not None
    assert after.number == during.number + 1
    seq = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK).seq
    assert after.body["rollback_proof"]["rollback_incident_evidence_path"] == (
        f"/governance/events/{seq}/"
    )
    valid(after.body)


def test_a_baseline_that_may_no_longer_serve_fails_rollback_readiness(w: World) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from registry.models import Retirement

    rollout = rollout_of(w)
    Retirement.objects.create(
        version=w.v1, rationale="gone", retain_until=timezone.now() + timedelta(days=30)
    )
    body = valid(manifest_build(rollout))
    assert statuses(body)["rollback-readiness"] == "fail"
    (baseline,) = body["phases"][2]["observations"]["baselines"]
    assert baseline == {
        "slot": str(w.slot),
        "baseline": w.v1.pinned,
        "ok": False,
        "problem": f"{w.v1.path} is retired",
    }
    assert canary_blockers(rollout) == [f"rollback-readiness fail: {w.v1.path} is retired"]
