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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical, event_record, events_pending
from registry.models import Version
from registry.verification import verify_versions
from reviews.choices import ActivationKind, CheckKind, Decision
from reviews.models import Activation, Approval, ChangeItem, EvaluationReport
from reviews.selectors import check_verdicts, items_of
from rollouts import contract
from rollouts.choices import PointerKind, PromotionTarget, RolloutState, RolloutStrategy
from rollouts.models import ManifestVersion, Override, PointerMove, Rollout, RolloutTarget
from rollouts.selectors import servable_refusal  # the one servability predicate

#: The rollback-proof phase's one gate: its ``observed`` says whether the evidence exists.
_PROOF_GATE = contract.AUTONOMY_PHASE_SLO_GATES["rollback-proof"][0]

SCHEMA_PATH = Path(__file__).resolve().parent / "spec" / "phase-manifest.schema.json"

# --- the telemetry signal: what the next issue (analysis, automatic rollback) plugs in ------


@dataclass(frozen=True)
class Signal:
    """What runtime telemetry says about a rollout now.

    ``samples`` = observations since the rollout started; ``healthy`` None = nothing to
    judge yet (no telemetry), False = unhealthy (runtime-governance fails). A source sets
    ``detection`` (where its evidence is, e.g. an event page) and ``trace_ids``.
    """

    source: str = "none"
    samples: int = 0
    healthy: bool | None = None
    detail: str = ""
    detection: str = ""
    trace_ids: tuple[str, ...] = ()
    #: What the source measured (counts per arm, statistics, alpha, thresholds, timings).
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source": self.source,
            "samples": self.samples,
            "healthy": self.healthy,
            "detail": self.detail,
            "detection": self.detection,
            "trace_ids": list(self.trace_ids),
        }
        if self.evidence:
            body["evidence"] = self.evidence
        return body


SignalSource = Callable[[Rollout], Signal | None]
_signal_sources: list[SignalSource] = []


def signal_source_register(source: SignalSource) -> None:
    """Add a telemetry source (the first that answers for a rollout wins). Idempotent."""
    if source not in _signal_sources:
        _signal_sources.append(source)


def signal_source_unregister(source: SignalSource) -> None:
    if source in _signal_sources:
        _signal_sources.remove(source)


def signal_for(rollout: Rollout) -> Signal:
    """The rollout's telemetry signal, or "no signal" when no source answers."""
    for source in _signal_sources:
        signal = source(rollout)
        if signal is not None:
            return signal
    return Signal()


# --- facts every phase reads, gathered once per build ---------------------------------------


def event_path(seq: int | None) -> str:
    """Where an event's evidence is shown (its page), or '' when there is none."""
    if seq is None:
        return ""
    try:
        return reverse("event-detail", kwargs={"seq": seq})
    except NoReverseMatch:  # pragma: no cover - the project always routes it
        return f"event:{seq}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _last_event_seq(kind: str, subject_id: Any) -> int | None:
    return (
        Event.objects.filter(kind=kind, subject_id=str(subject_id))
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )


@dataclass
class _Facts:
    rollout: Rollout
    items: list[ChangeItem]
    targets: list[RolloutTarget]
    moves: list[PointerMove]
    signal: Signal
    approvals_filled: list[str] = field(default_factory=list)
    #: The change's required checks as they stood when it was promoted.
    verdicts: list[Any] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    rollback_seq: int | None = None
    #: The rollback's event is recorded in this transaction but not appended yet (no seq).
    rollback_pending: bool = False

    @property
    def change(self) -> Any:
        return self.rollout.change

    @property
    def triggered(self) -> bool:
        return self.rollout.state == RolloutState.ROLLED_BACK


@dataclass
class _Phase:
    status: str
    slo_gates: dict[str, dict[str, Any]]
    observations: dict[str, Any]
    artifact_refs: list[str]


def _gate(required: Any, observed: Any, passed: bool) -> dict[str, Any]:
    return {"required": required, "observed": observed, "passed": bool(passed)}


def _pass(ok: bool) -> str:
    return "pass" if ok else "fail"


def _version_ref(version: Version | None) -> str | None:
    return version.pinned if version is not None else None


def _approvals_at_promotion(change: Any) -> list[str]:
    """Required slots filled by an approval that counted when the change was promoted."""
    at = change.promoted_at
    if at is None:
        return []
    filled = (
        Approval.objects.filter(
            change=change,
            decision=Decision.APPROVE,
            revision=change.revision,
            binding_sha256=change.binding_sha256,
            created_at__lte=at,
            requirement__in=list(change.requirements),
        )
        .filter(Q(voided_at__isnull=True) | Q(voided_at__gt=at))
        .values_list("requirement", flat=True)
    )
    return sorted(set(filled))


def _expected_default(facts: _Facts, item: ChangeItem) -> Any:
    """The default the change and this rollout leave an artifact at.

    The last default move this rollout made; else the candidate when the artifact's latest
    activation is this change's promotion (an artifact bound to no slot is promoted
    directly); else the version the change was approved against.
    """
    moves = [
        m
        for m in facts.moves
        if m.kind == PointerKind.DEFAULT and m.artifact_id == item.artifact_id
    ]
    if moves:
        return max(moves, key=lambda m: m.pk).to_version_id
    latest = (
        Activation.objects.filter(artifact_id=item.artifact_id)
        .order_by("-created_at")
        .values_list("change_id", "kind", "version_id")
        .first()
    )
    if latest == (facts.change.pk, ActivationKind.PROMOTION, item.proposed_id):
        return item.proposed_id
    return item.current_id


def _drift(facts: _Facts) -> list[str]:
    """Every live pointer that no longer says what the change and this rollout left it at."""
    drifted = []
    items = {i.artifact_id: i for i in facts.items}
    for item in facts.items:
        expected = _expected_default(facts, item)
        if item.artifact.active_version_id != expected:
            drifted.append(
                f"{item.artifact.path}: the default is "
                f"{_label(item.artifact.active_version)}, expected {_label_id(expected)}"
            )
    for target in facts.targets:
        approved = items.get(target.slot.artifact_id)
        if approved is None:
            drifted.append(f"slot {target.slot}: its artifact is not in {facts.change.reference}")
        elif target.baseline_id != approved.current_id:
            drifted.append(
                f"slot {target.slot}: baseline {_label(target.baseline)} is not the version "
                f"{facts.change.reference} was approved against ({_label(approved.current)})"
            )
    last_override: dict[tuple[Any, Any], PointerMove] = {}
    for move in sorted(facts.moves, key=lambda m: m.pk):
        if move.kind == PointerKind.OVERRIDE and move.slot_id and move.tenant_id:
            last_override[(move.slot_id, move.tenant_id)] = move
    if last_override:
        live = {
            (o.slot_id, o.tenant_id): o.version_id
            for o in Override.objects.filter(slot_id__in={k[0] for k in last_override})
        }
        for (slot_id, tenant_id), move in last_override.items():
            if live.get((slot_id, tenant_id)) != move.to_version_id:
                drifted.append(
                    f"override of {move.slot} for {move.tenant}: now "
                    f"{_label_id(live.get((slot_id, tenant_id)))}, the rollout set "
                    f"{_label(move.to_version)}"
                )
    return drifted


def _snapshot_lag(signal: Signal) -> list[str]:
    """Clients still serving an older runtime snapshot than the step's (the canary analysis
    reports the lowest sequence they sent after ``ROLLOUT_SNAPSHOT_LAG_SECONDS``): drift."""
    snapshot = (signal.evidence or {}).get("snapshot") or {}
    expected, reported = snapshot.get("expected") or 0, snapshot.get("reported") or 0
    if expected and reported and reported < expected:
        return [f"clients report runtime snapshot {reported}; the current step needs {expected}"]
    return []


def _label(version: Version | None) -> str:
    return version.path if version is not None else "none"


def _label_id(version_id: Any) -> str:
    if version_id is None:
        return "none"
    version = (
        Version.objects.select_related("artifact__artifact_class", "artifact__tenant")
        .filter(pk=version_id)
        .first()
    )
    return _label(version)


# --- the seven phases -----------------------------------------------------------------------


def _gate_evaluation(facts: _Facts) -> _Phase:
    change = facts.change
    verdicts = facts.verdicts
    ran = [v for v in verdicts if v.run is not None]
    gates = {
        "slo_signal_count_minimum": _gate(
            max(1, len(verdicts)), len(ran), len(ran) >= max(1, len(verdicts))
        ),
        "slo_decision_count_minimum": _gate(
            max(1, len(change.requirements)),
            len(facts.approvals_filled),
            len(facts.approvals_filled) >= max(1, len(change.requirements)),
        ),
    }
    checks = [
        {
            "check": v.kind,
            "status": v.run.status if v.run is not None else "not run",
            "passed": v.passes,
            "waivers": [w.reference for w in v.waivers],
            "blocked_by": v.blocked_by or "",
        }
        for v in verdicts
    ]
    promoted = change.promoted_at is not None
    ok = promoted and all(g["passed"] for g in gates.values()) and all(v.passes for v in verdicts)
    seq = _last_event_seq(EventKind.CHANGE_REQUEST_PROMOTED, change.pk)
    return _Phase(
        _pass(ok),
        gates,
        {
            "change": change.reference,
            "promoted_at": _iso(change.promoted_at),
            "checks": checks,
            "approvals_filled": facts.approvals_filled,
        },
        [f"change:{change.reference}"] + ([event_path(seq)] if seq else []),
    )


def _promotion_prerequisites(facts: _Facts) -> _Phase:
    change = facts.change
    requirements = sorted(change.requirements)
    proposed = [i.proposed for i in facts.items]
    needs_evidence = any(v.kind == CheckKind.OFFLINE_EVALUATION for v in facts.verdicts)
    evidence: dict[str, list[str]] = {}
    if needs_evidence:
        for version in proposed:
            evidence[version.path] = sorted(
                EvaluationReport.objects.filter(version=version).values_list("sha256", flat=True)
            )
    checked, failure = verify_versions(proposed)
    seq = _last_event_seq(EventKind.CHANGE_REQUEST_PROMOTED, change.pk)
    present = {
        "approvals": set(requirements) <= set(facts.approvals_filled),
        "promotion_event": seq is not None,
        "pack_verification": failure is None,
        **{f"evidence:{path}": bool(shas) for path, shas in evidence.items()},
    }
    observed = sum(present.values())
    gates = {
        "slo_required_artifacts_present": _gate(len(present), observed, observed == len(present))
    }
    refs = [f"version:{v.pinned}" for v in proposed]
    refs += [f"evaluation:{sha}" for shas in evidence.values() for sha in shas]
    if seq is not None:
        refs.append(event_path(seq))
    return _Phase(
        _pass(observed == len(present)),
        gates,
        {
            "required": sorted(present),
            "missing": sorted(k for k, ok in present.items() if not ok),
            "approvals": {"required": requirements, "filled": facts.approvals_filled},
            "evidence": evidence,
            "pack_verification": {
                "checked": checked,
                "ok": failure is None,
                "reason": f"{failure.version.path}: {failure.reason}" if failure else "",
            },
        },
        refs,
    )


def _rollback_readiness(facts: _Facts) -> _Phase:
    checks: list[dict[str, Any]] = []
    for target in facts.targets:
        baseline = target.baseline
        problem = None
        if baseline is None:
            problem = f"slot {target.slot} has no previous version to restore"
        else:
            problem = servable_refusal(baseline)
            if problem is None:
                _, failure = verify_versions([baseline])
                if failure is not None:
                    problem = f"{failure.version.path}: {failure.reason}"
        checks.append(
            {
                "slot": str(target.slot),
                "baseline": _version_ref(baseline),
                "ok": problem is None,
                "problem": problem or "",
            }
        )
    plan = bool(facts.change.rollback_plan.strip())
    required = max(1, len(facts.targets)) + 1
    observed = sum(1 for c in checks if c["ok"]) + int(plan)
    gates = {
        "slo_required_rollback_checks_present": _gate(required, observed, observed >= required)
    }
    refs = [f"version:{c['baseline']}" for c in checks if c["baseline"]]
    return _Phase(
        _pass(observed >= required),
        gates,
        {"baselines": checks, "rollback_plan": plan},
        refs,
    )


def _drift_gate(facts: _Facts) -> _Phase:
    ok = not facts.drifted
    return _Phase(
        _pass(ok),
        {"slo_drift_gate_allowed": _gate(True, ok, ok)},
        {"drifted": facts.drifted, "pointers_checked": len(facts.items) + len(facts.targets)},
        [f"version:{i.current.pinned}" for i in facts.items if i.current is not None],
    )


def _paper_canary(facts: _Facts) -> _Phase:
    rollout = facts.rollout
    canary = rollout.strategy == RolloutStrategy.CANARY
    if rollout.target == PromotionTarget.PAPER:
        present = canary and bool(rollout.cohort)
        status = _pass(present)
    else:
        present = canary and bool(rollout.steps)
        status = "pass" if present else "skip"
    refs = [
        f"pointer-move:{m.pk}"
        for m in sorted(facts.moves, key=lambda m: m.pk)
        if m.kind in (PointerKind.CANARY, PointerKind.COHORT)
    ]
    return _Phase(
        status,
        {
            "slo_paper_canary_patch_present": _gate(
                rollout.target == PromotionTarget.PAPER, present, status != "fail"
            )
        },
        {
            "strategy": rollout.strategy,
            "target": rollout.target,
            "steps": list(rollout.steps) if canary else [],
            "cohort_size": len(rollout.cohort or []),
            "step": rollout.step,
            "weight": rollout.weight,
        },
        refs,
    )


def _runtime_governance(facts: _Facts) -> _Phase:
    rollout = facts.rollout
    unhealthy = bool(facts.drifted) or facts.signal.healthy is False
    ok = not facts.triggered and not unhealthy
    status = "skip" if rollout.state == RolloutState.DRAFT else _pass(ok)
    return _Phase(
        status,
        {
            "slo_runtime_rollback_not_triggered": _gate(
                True, not facts.triggered, not facts.triggered
            )
        },
        {
            "state": rollout.state,
            "rollback_triggered": facts.triggered,
            "drift_status": "unhealthy" if unhealthy else "healthy",
            "signal": facts.signal.as_json(),
        },
        [facts.signal.detection] if facts.signal.detection else [],
    )


def _restored(facts: _Facts) -> list[str]:
    """Pointers a rollback should have put back and did not (empty = restored)."""
    wrong = []
    for target in facts.targets:
        artifact = target.slot.artifact
        if artifact.active_version_id != target.baseline_id:
            wrong.append(f"{artifact.path}: default {_label(artifact.active_version)}")
    first_override: dict[tuple[Any, Any], PointerMove] = {}
    for move in sorted(facts.moves, key=lambda m: m.pk):
        if move.kind == PointerKind.OVERRIDE and move.slot_id and move.tenant_id:
            first_override.setdefault((move.slot_id, move.tenant_id), move)
    if first_override:
        live = {
            (o.slot_id, o.tenant_id): o.version_id
            for o in Override.objects.filter(slot_id__in={k[0] for k in first_override})
        }
        for key, move in first_override.items():
            if live.get(key) != move.from_version_id:
                wrong.append(f"override of {move.slot} for {move.tenant}")
    return wrong


def _rollback_proof(facts: _Facts) -> _Phase:
    if not facts.triggered:
        return _Phase(
            "pass",
            {"slo_rollback_evidence_required_when_triggered": _gate(False, False, True)},
            {"rollback_triggered": False, "evidence": [], "not_restored": []},
            [],
        )
    not_restored = _restored(facts)
    recorded = facts.rollback_seq is not None or facts.rollback_pending
    evidence_ok = recorded and not not_restored
    refs = [event_path(facts.rollback_seq)] if facts.rollback_seq else []
    refs += [f"pointer-move:{m.pk}" for m in sorted(facts.moves, key=lambda m: m.pk)]
    observations: dict[str, Any] = {
        "rollback_triggered": True,
        "evidence": refs,
        "not_restored": not_restored,
    }
    measured = facts.signal.evidence
    if measured:  # an automatic rollback: what the analysis saw, and how fast it acted
        observations["analysis"] = {
            key: measured[key]
            for key in ("decision", "reason", "alpha", "alpha_per_metric", "arms", "tests",
                        "gates", "detected_at", "detection_to_restored_ms")
            if key in measured
        }  # fmt: skip
    return _Phase(
        _pass(evidence_ok),
        {"slo_rollback_evidence_required_when_triggered": _gate(True, evidence_ok, evidence_ok)},
        observations,
        refs,
    )


#: phase name -> how it is evaluated. A phase with no evaluator is filled with ``skip``.
PHASE_EVALUATORS: dict[str, Callable[[_Facts], _Phase]] = {
    "gate-evaluation": _gate_evaluation,
    "promotion-prerequisites": _promotion_prerequisites,
    "rollback-readiness": _rollback_readiness,
    "drift-gate": _drift_gate,
    "paper-canary": _paper_canary,
    "runtime-governance": _runtime_governance,
    "rollback-proof": _rollback_proof,
}


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
                gate: _gate(None, None, True) for gate in contract.AUTONOMY_PHASE_SLO_GATES[name]
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


def _gather(rollout: Rollout) -> _Facts:
    rollout = (
        Rollout.objects.select_related("change", "tenant").filter(pk=rollout.pk).first() or rollout
    )
    targets = list(
        RolloutTarget.objects.filter(rollout=rollout).select_related(
            "slot__application",
            "slot__artifact__artifact_class",
            "slot__artifact__tenant",
            "slot__artifact__active_version__artifact__artifact_class",
            "slot__artifact__active_version__artifact__tenant",
            "baseline__artifact__artifact_class",
            "baseline__artifact__tenant",
            "candidate__artifact__artifact_class",
            "candidate__artifact__tenant",
        )
    )
    moves = list(
        PointerMove.objects.filter(rollout=rollout).select_related(
            "slot__application",
            "tenant",
            "to_version__artifact__artifact_class",
            "to_version__artifact__tenant",
        )
    )
    items = items_of(rollout.change)
    for item in items:  # the live default, fresh (items_of joins the artifact, not its pointer)
        item.artifact.refresh_from_db(fields=["active_version"])
    facts = _Facts(
        rollout=rollout, items=items, targets=targets, moves=moves, signal=signal_for(rollout)
    )
    facts.approvals_filled = _approvals_at_promotion(rollout.change)
    facts.verdicts = check_verdicts(rollout.change, rollout.change.promoted_at or timezone.now())
    facts.drifted = _drift(facts) + _snapshot_lag(facts.signal)
    if facts.triggered:
        facts.rollback_seq = _last_event_seq(EventKind.ROLLOUT_ROLLED_BACK, rollout.pk)
        facts.rollback_pending = facts.rollback_seq is None and any(
            e.kind == EventKind.ROLLOUT_ROLLED_BACK and e.subject_id == str(rollout.pk)
            for e in events_pending()
        )
    return facts


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
    stamp = _iso(now or timezone.now())
    assert stamp is not None
    if previous is None:
        latest = manifest_latest(rollout)
        previous = latest.body if latest is not None else {}
    before = {p.get("name"): p for p in previous.get("phases", []) if isinstance(p, dict)}
    facts = _gather(rollout)
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
