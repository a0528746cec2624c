"""The seven phases of a manifest, each evaluated from the gathered facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from governance.kernel.events.kinds import EventKind
from registry.models import Version
from registry.verification import verify_versions
from reviews.choices import CheckKind
from reviews.models import EvaluationReport
from rollouts.choices import PointerKind, PromotionTarget, RolloutState, RolloutStrategy
from rollouts.manifest.facts import Facts, event_path, iso_time, last_event_seq, version_label
from rollouts.models import Override, PointerMove
from rollouts.selectors import servable_refusal  # the one servability predicate


@dataclass
class Phase:
    status: str
    slo_gates: dict[str, dict[str, Any]]
    observations: dict[str, Any]
    artifact_refs: list[str]


def slo_gate(required: Any, observed: Any, passed: bool) -> dict[str, Any]:
    return {"required": required, "observed": observed, "passed": bool(passed)}


def _pass(ok: bool) -> str:
    return "pass" if ok else "fail"


def _version_ref(version: Version | None) -> str | None:
    return version.pinned if version is not None else None


def _gate_evaluation(facts: Facts) -> Phase:
    change = facts.change
    verdicts = facts.verdicts
    ran = [v for v in verdicts if v.run is not None]
    gates = {
        "slo_signal_count_minimum": slo_gate(
            max(1, len(verdicts)), len(ran), len(ran) >= max(1, len(verdicts))
        ),
        "slo_decision_count_minimum": slo_gate(
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
    seq = last_event_seq(EventKind.CHANGE_REQUEST_PROMOTED, change.pk)
    return Phase(
        _pass(ok),
        gates,
        {
            "change": change.reference,
            "promoted_at": iso_time(change.promoted_at),
            "checks": checks,
            "approvals_filled": facts.approvals_filled,
        },
        [f"change:{change.reference}"] + ([event_path(seq)] if seq else []),
    )


def _promotion_prerequisites(facts: Facts) -> Phase:
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
    seq = last_event_seq(EventKind.CHANGE_REQUEST_PROMOTED, change.pk)
    present = {
        "approvals": set(requirements) <= set(facts.approvals_filled),
        "promotion_event": seq is not None,
        "pack_verification": failure is None,
        **{f"evidence:{path}": bool(shas) for path, shas in evidence.items()},
    }
    observed = sum(present.values())
    gates = {
        "slo_required_artifacts_present": slo_gate(len(present), observed, observed == len(present))
    }
    refs = [f"version:{v.pinned}" for v in proposed]
    refs += [f"evaluation:{sha}" for shas in evidence.values() for sha in shas]
    if seq is not None:
        refs.append(event_path(seq))
    return Phase(
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


def _rollback_readiness(facts: Facts) -> Phase:
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
        "slo_required_rollback_checks_present": slo_gate(required, observed, observed >= required)
    }
    refs = [f"version:{c['baseline']}" for c in checks if c["baseline"]]
    return Phase(
        _pass(observed >= required),
        gates,
        {"baselines": checks, "rollback_plan": plan},
        refs,
    )


def _drift_gate(facts: Facts) -> Phase:
    ok = not facts.drifted
    return Phase(
        _pass(ok),
        {"slo_drift_gate_allowed": slo_gate(True, ok, ok)},
        {"drifted": facts.drifted, "pointers_checked": len(facts.items) + len(facts.targets)},
        [f"version:{i.current.pinned}" for i in facts.items if i.current is not None],
    )


def _paper_canary(facts: Facts) -> Phase:
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
    return Phase(
        status,
        {
            "slo_paper_canary_patch_present": slo_gate(
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


def _runtime_governance(facts: Facts) -> Phase:
    rollout = facts.rollout
    unhealthy = bool(facts.drifted) or facts.signal.healthy is False
    ok = not facts.triggered and not unhealthy
    status = "skip" if rollout.state == RolloutState.DRAFT else _pass(ok)
    return Phase(
        status,
        {
            "slo_runtime_rollback_not_triggered": slo_gate(
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


def _restored(facts: Facts) -> list[str]:
    """Pointers a rollback should have put back and did not (empty = restored)."""
    wrong = []
    for target in facts.targets:
        artifact = target.slot.artifact
        if artifact.active_version_id != target.baseline_id:
            wrong.append(f"{artifact.path}: default {version_label(artifact.active_version)}")
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


def _rollback_proof(facts: Facts) -> Phase:
    if not facts.triggered:
        return Phase(
            "pass",
            {"slo_rollback_evidence_required_when_triggered": slo_gate(False, False, True)},
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
    return Phase(
        _pass(evidence_ok),
        {"slo_rollback_evidence_required_when_triggered": slo_gate(True, evidence_ok, evidence_ok)},
        observations,
        refs,
    )


#: phase name -> how it is evaluated. A phase with no evaluator is filled with ``skip``.
PHASE_EVALUATORS: dict[str, Callable[[Facts], Phase]] = {
    "gate-evaluation": _gate_evaluation,
    "promotion-prerequisites": _promotion_prerequisites,
    "rollback-readiness": _rollback_readiness,
    "drift-gate": _drift_gate,
    "paper-canary": _paper_canary,
    "runtime-governance": _runtime_governance,
    "rollback-proof": _rollback_proof,
}
