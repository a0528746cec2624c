"""The rollout phase manifest (rollout-phase-manifest.md): the one service that produces it.

``manifest_build`` derives the whole manifest from the database (the rollout, its change,
its targets, its pointer moves, the event log and the telemetry signal): every phase's
status, the transitions and the manifest-wide status are computed here, never stored by
hand. ``manifest_append`` stores a new ``ManifestVersion`` when the body changed and hashes
it into the event log; every rollout transition and every controller cycle calls it.

How the seed's phases map to this product (docs/rollouts.md explains it to people):

1. gate-evaluation: the change's required checks (and change gates) passed at promotion;
   signals = checks run, decisions = approval slots filled at promotion.
2. promotion-prerequisites: approvals complete, evaluation evidence present where the
   change needed it, pack verification of every candidate, the promotion in the log.
3. rollback-readiness: every target's baseline (the pointer a rollback restores) exists,
   may serve, and verifies; the change has a rollback plan.
4. drift-gate: live pointers still equal the baseline the change was approved against.
5. paper-canary: the canary rule is present (``paper`` = a designated cohort: missing
   fails; ``live`` = a share of all subjects: another strategy skips).
6. runtime-governance: fails when the rollout was rolled back or drift is unhealthy.
7. rollback-proof: passes when not rolled back, or when the rollback's evidence exists
   (its event and the pointers back where they were).

The package's modules: ``signal`` (the telemetry signal sources), ``facts`` (what the
phases read, gathered once), ``phases`` (the seven evaluators); here the build, the schema,
the canary gate and the stored versions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import canonical, event_record
from rollouts import contract
from rollouts.manifest.facts import Facts, event_path, gather_facts, iso_time
from rollouts.manifest.phases import PHASE_EVALUATORS, Phase, slo_gate
from rollouts.manifest.signal import (
    Signal,
    SignalSource,
    signal_for,
    signal_source_register,
    signal_source_unregister,
)
from rollouts.models import ManifestVersion, Rollout

#: The rollback-proof phase's one gate: its ``observed`` says whether the evidence exists.
_PROOF_GATE = contract.AUTONOMY_PHASE_SLO_GATES["rollback-proof"][0]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "spec" / "phase-manifest.schema.json"

# --- derived parts: phases completed, transitions, status ---------------------------------


def phases_complete(phases: list[dict[str, Any]], timestamp: str) -> list[dict[str, Any]]:
    """The contract's phases in order; a phase missing from ``phases`` is filled with ``skip``."""
    by_name = {p["name"]: p for p in phases}
    return [
        by_name.get(name)
        or {
            "name": name,
            "status": "skip",
            "timestamp": timestamp,
            "slo_gates": {
                gate: slo_gate(None, None, True) for gate in contract.AUTONOMY_PHASE_SLO_GATES[name]
            },
            "observations": {"skipped": "no evaluator for this phase"},
            "artifact_refs": [],
        }
        for name in contract.AUTONOMY_PHASE_ORDER
    ]


def phase_transitions(phases: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Between each adjacent pair of phases, carrying the destination's status."""
    return [
        {"from": before["name"], "to": after["name"], "status": after["status"]}
        for before, after in pairwise(phases)
    ]


def manifest_status(phases: list[dict[str, Any]]) -> str:
    """``fail`` when any phase is not pass/skip/skipped (the seed's failure policy)."""
    return "pass" if all(p["status"] in contract.PASSING for p in phases) else "fail"


def manifest_latest(rollout: Rollout) -> ManifestVersion | None:
    """The rollout's newest stored manifest version (what the log last hashed), if any."""
    return ManifestVersion.objects.filter(rollout=rollout).order_by("-number").first()


def manifest_build(
    rollout: Rollout, *, now: datetime | None = None, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The rollout's canonical phase manifest, derived from what is stored now.

    A phase's ``timestamp`` is when it reached its current result: carried over from the
    previous manifest version while its status, gates, observations and references are
    unchanged, else ``now``. So an unchanged rollout builds the same body twice.
    """
    stamp = iso_time(now or timezone.now())
    assert stamp is not None
    if previous is None:
        latest = manifest_latest(rollout)
        previous = latest.body if latest is not None else {}
    before = {p.get("name"): p for p in previous.get("phases", []) if isinstance(p, dict)}
    facts = gather_facts(rollout)
    rollout = facts.rollout
    phases = []
    for name in contract.AUTONOMY_PHASE_ORDER:
        evaluate = PHASE_EVALUATORS.get(name)
        if evaluate is None:
            continue
        result = evaluate(facts)
        phase: dict[str, Any] = {
            "name": name,
            "status": result.status,
            "timestamp": stamp,
            "slo_gates": result.slo_gates,
            "observations": result.observations,
            "artifact_refs": list(dict.fromkeys(result.artifact_refs)),
        }
        old = before.get(name)
        if old is not None and {k: v for k, v in old.items() if k != "timestamp"} == {
            k: v for k, v in phase.items() if k != "timestamp"
        }:
            phase["timestamp"] = old["timestamp"]
        phases.append(phase)
    phases = phases_complete(phases, stamp)
    status = manifest_status(phases)
    by_name = {p["name"]: p for p in phases}
    drift = by_name["runtime-governance"]["observations"].get("drift_status", "healthy")
    proof = by_name["rollback-proof"]
    action = event_path(facts.rollback_seq)
    candidates = [t.candidate for t in facts.targets] or [i.proposed for i in facts.items]
    baselines = [t.baseline for t in facts.targets if t.baseline is not None] or [
        i.current for i in facts.items if i.current is not None
    ]
    refs: list[str] = [f"change:{rollout.change.reference}"]
    for phase in phases:
        refs.extend(phase["artifact_refs"])
    body: dict[str, Any] = {
        "schema_version": contract.SCHEMA_VERSION,
        "run_id": rollout.reference,
        "candidate_id": rollout.change.binding_sha256 or rollout.change.reference,
        "execution_context": {
            "repository": f"registry:{rollout.tenant.slug}",
            "base": ",".join(sorted(v.pinned for v in baselines)),
            "head": ",".join(sorted(v.pinned for v in candidates)),
            "artifactPath": f"rollouts/{rollout.reference}",
            "priorityId": rollout.change.reference,
        },
        "requested_promotion_target": rollout.target,
        "status": status,
        "phase_count": len(phases),
        "phase_transitions": phase_transitions(phases),
        "phases": phases,
        "runtime_governance": {
            "state": rollout.state,
            "strategy": rollout.strategy,
            "step": rollout.step,
            "weight": rollout.weight,
            "drift_status": drift,
            "rollback_triggered": facts.triggered,
            "status": by_name["runtime-governance"]["status"],
            "signal": facts.signal.as_json(),
        },
        "rollback_proof": {
            "rollback_triggered": facts.triggered,
            "status": proof["status"],
            "evidence_present": bool(proof["slo_gates"][_PROOF_GATE]["observed"]),
            "drift_last_detection_path": facts.signal.detection,
            "drift_last_action_path": action,
            "drift_last_outcome_path": action and f"{action}#pointers-restored",
            "rollback_incident_evidence_path": action,
            "pointer_moves": [m.pk for m in sorted(facts.moves, key=lambda m: m.pk)],
        },
        "artifact_refs": list(dict.fromkeys(refs)),
        "slo_contract_version": contract.SLO_CONTRACT_VERSION,
        "observation_summary": {
            "state": rollout.state,
            "revision": rollout.revision,
            "step": rollout.step,
            "steps": len(rollout.steps or []),
            "weight": rollout.weight,
            "targets": len(facts.targets),
            "pointer_moves": len(facts.moves),
            "phases_passed": sum(1 for p in phases if p["status"] == "pass"),
            "phases_skipped": sum(1 for p in phases if p["status"] in ("skip", "skipped")),
            "phases_failed": [p["name"] for p in phases if p["status"] not in contract.PASSING],
            "signal_samples": facts.signal.samples,
        },
    }
    manifest_validate(body)
    return body


# --- schema -----------------------------------------------------------------------------------


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def manifest_validate(body: dict[str, Any]) -> None:
    """Refuse a manifest that does not match ``spec/phase-manifest.schema.json`` (a bug, not input)."""
    errors = sorted(_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise ValueError(f"phase manifest does not match its schema at {where}: {first.message}")


# --- canary gate and storing versions ---------------------------------------------------------


def canary_blockers(rollout: Rollout) -> list[str]:
    """Why a canary step may not start: each of the first four phases that does not pass."""
    body = manifest_build(rollout)
    blockers = []
    for phase in body["phases"]:
        if phase["name"] in contract.CANARY_PREREQUISITES and phase["status"] != "pass":
            blockers.append(f"{phase['name']} {phase['status']}: {_why(phase)}")
    return blockers


def _why(phase: dict[str, Any]) -> str:
    obs = phase["observations"]
    reasons: list[str] = []
    reasons += [c["blocked_by"] for c in obs.get("checks", []) if c.get("blocked_by")]
    reasons += [f"missing {m}" for m in obs.get("missing", [])]
    reasons += [b["problem"] for b in obs.get("baselines", []) if b.get("problem")]
    if obs.get("rollback_plan") is False:
        reasons.append("the change has no rollback plan")
    reasons += list(obs.get("drifted", []))
    failed = [name for name, g in phase["slo_gates"].items() if not g["passed"]]
    if not reasons and failed:
        reasons = [
            f"{name} (observed {phase['slo_gates'][name]['observed']}, "
            f"required {phase['slo_gates'][name]['required']})"
            for name in failed
        ]
    return "; ".join(reasons) or "not passed"


def manifest_sha256(body: dict[str, Any]) -> str:
    """SHA-256 of the manifest's RFC 8785 canonical bytes (what the event log records)."""
    return hashlib.sha256(canonical(body)).hexdigest()


@transaction.atomic
def manifest_append(*, rollout: Rollout, actor: Any = None) -> ManifestVersion:
    """Store the rollout's manifest as a new version when it changed, and hash it into the log.

    Locks the rollout row first (the lock order every rollout service keeps); an unchanged
    manifest returns the latest version and records nothing.
    """
    rollout = (
        Rollout.objects.select_for_update(of=("self",))
        .select_related("tenant", "change")
        .get(pk=rollout.pk)
    )
    latest = manifest_latest(rollout)
    body = manifest_build(rollout, previous=latest.body if latest is not None else {})
    sha = manifest_sha256(body)
    proof = body["rollback_proof"]
    if proof["evidence_present"] and not proof["rollback_incident_evidence_path"]:
        # The rollback's event gets its number when this transaction commits: append the
        # manifest again then, so the stored version names it.
        transaction.on_commit(lambda: manifest_append(rollout=rollout, actor=actor))
    if latest is not None and latest.sha256 == sha:
        return latest
    version = ManifestVersion.objects.create(
        rollout=rollout,
        number=(latest.number if latest is not None else 0) + 1,
        body=body,
        sha256=sha,
        status=body["status"],
    )
    event_record(
        kind=EventKind.ROLLOUT_MANIFEST_APPENDED,
        actor=actor,
        tenant=rollout.tenant,
        subject=rollout,
        payload={
            "rollout": rollout.reference,
            "number": version.number,
            "sha256": sha,
            "status": version.status,
            "failed_phases": body["observation_summary"]["phases_failed"],
            "state": rollout.state,
            "revision": rollout.revision,
        },
    )
    return version


__all__ = [
    "PHASE_EVALUATORS",
    "SCHEMA_PATH",
    "Facts",
    "Phase",
    "Signal",
    "SignalSource",
    "canary_blockers",
    "event_path",
    "manifest_append",
    "manifest_build",
    "manifest_latest",
    "manifest_sha256",
    "manifest_status",
    "manifest_validate",
    "phase_transitions",
    "phases_complete",
    "signal_for",
    "signal_source_register",
    "signal_source_unregister",
]
