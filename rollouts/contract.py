"""The rollout phase manifest's contract (rollout-phase-manifest.md), defined once.

The phase order, the SLO gates each phase declares, the schema and SLO contract versions.
The manifest service (``rollouts.manifest``) and the controller both read these; nothing
else spells a phase or gate name.
"""

from __future__ import annotations

SCHEMA_VERSION = "governance.rollout.phase-manifest.v1"
SLO_CONTRACT_VERSION = "governance-slo-v1"

#: The seven phases, in the fixed order every manifest lists them.
AUTONOMY_PHASE_ORDER: tuple[str, ...] = (
    "gate-evaluation",
    "promotion-prerequisites",
    "rollback-readiness",
    "drift-gate",
    "paper-canary",
    "runtime-governance",
    "rollback-proof",
)

#: The SLO gates each phase declares in its ``slo_gates``.
AUTONOMY_PHASE_SLO_GATES: dict[str, tuple[str, ...]] = {
    "gate-evaluation": ("slo_signal_count_minimum", "slo_decision_count_minimum"),
    "promotion-prerequisites": ("slo_required_artifacts_present",),
    "rollback-readiness": ("slo_required_rollback_checks_present",),
    "drift-gate": ("slo_drift_gate_allowed",),
    "paper-canary": ("slo_paper_canary_patch_present",),
    "runtime-governance": ("slo_runtime_rollback_not_triggered",),
    "rollback-proof": ("slo_rollback_evidence_required_when_triggered",),
}

#: The eight named SLO gates, in phase order (gate-evaluation also reports the change's own
#: gate checks as observations).
SLO_GATES: tuple[str, ...] = tuple(
    gate for phase in AUTONOMY_PHASE_ORDER for gate in AUTONOMY_PHASE_SLO_GATES[phase]
)

PHASE_STATUSES = ("pass", "fail", "skip", "skipped")
PASSING = frozenset({"pass", "skip", "skipped"})

#: A canary step may start only when these phases pass.
CANARY_PREREQUISITES = AUTONOMY_PHASE_ORDER[:4]

#: Outcomes of one controller cycle (per-iteration notes).
NOTE_OUTCOMES = ("lane_completed", "lane_execution_failed", "blocked_no_signal")
