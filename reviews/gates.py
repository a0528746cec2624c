"""Change gates: thresholds and regression limits on a proposed version's evaluation metrics.

Metrics are ``{name: number}``. A gate is one of::

    {"metric": "safety", "min": 0.9}                      # at least 0.9
    {"metric": "latency_p95_ms", "max": 800}              # at most 800
    {"metric": "safety", "no_regression": true}           # no worse than the current version
    {"metric": "latency_p95_ms", "max_regression_pct": 10}  # at most 10% worse than current

Higher is better, except for ``latency_p95_ms``, ``cost``, names ending in ``_ms`` and names
starting with ``cost``; a gate may say ``"better": "higher"`` or ``"lower"`` to override
that for a metric of its own. Nothing here raises for bad input and nothing touches the
database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

KNOWN_METRICS = (
    "accuracy",
    "utility",
    "calibration",
    "stability",
    "safety",
    "latency_p95_ms",
    "cost",
    "throughput",
)
LOWER_IS_BETTER = frozenset({"latency_p95_ms", "cost"})

#: The keys that say what a gate checks; a gate has exactly one.
GATE_KINDS = ("min", "max", "no_regression", "max_regression_pct")
_GATE_KEYS = {"metric", "better", "description", *GATE_KINDS}

NO_CURRENT = "no current version to compare"
NOT_REPORTED = "not reported"

# Floating-point slack, so that 800 * 1.1 passes a 10% limit at exactly 880.
_REL_TOL = 1e-9


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith("_ms") or metric.startswith("cost")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _lower_better(gate: dict[str, Any]) -> bool:
    better = gate.get("better")
    if better in ("higher", "lower"):
        return bool(better == "lower")
    return lower_is_better(str(gate.get("metric", "")))


def validate_gate(gate: Any) -> list[str]:
    """What is wrong with a gate; empty when it can be evaluated."""
    if not isinstance(gate, dict):
        return ['A gate must be an object like {"metric": "safety", "min": 0.9}.']
    problems = [f"Unknown key '{k}'." for k in sorted(set(gate) - _GATE_KEYS)]
    metric = gate.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        problems.append('A gate needs a non-empty string "metric".')
    if "better" in gate and gate["better"] not in ("higher", "lower"):
        problems.append('"better" must be "higher" or "lower".')
    kinds = [k for k in GATE_KINDS if k in gate]
    if len(kinds) != 1:
        listed = ", ".join(GATE_KINDS)
        problems.append(f"A gate needs exactly one of {listed}; it has {len(kinds)}.")
        return problems
    kind = kinds[0]
    value = gate[kind]
    if kind in ("min", "max") and not _is_number(value):
        problems.append(f'"{kind}" must be a number.')
    elif kind == "no_regression" and value is not True:
        problems.append('"no_regression" must be true.')
    elif kind == "max_regression_pct" and not (_is_number(value) and value >= 0):
        problems.append('"max_regression_pct" must be a number of at least 0.')
    if isinstance(metric, str) and metric in KNOWN_METRICS and "better" not in gate:
        # A bound on the wrong side of a known metric rejects improvements: almost surely a slip.
        if kind == "min" and lower_is_better(metric):
            problems.append(f'{metric} is better when lower; did you mean "max"?')
        if kind == "max" and not lower_is_better(metric):
            problems.append(f'{metric} is better when higher; did you mean "min"?')
    return problems


def _fmt(value: float) -> str:
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:.6g}"


def rule_text(gate: dict[str, Any]) -> str:
    """How a (valid) gate reads: "≥ 0.9", "≤ 800", "at most 10% worse than current"."""
    if "min" in gate:
        return f"≥ {_fmt(gate['min'])}"
    if "max" in gate:
        return f"≤ {_fmt(gate['max'])}"
    if "no_regression" in gate:
        return "no worse than current"
    return f"at most {_fmt(gate['max_regression_pct'])}% worse than current"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on the proposed metrics."""

    metric: str
    rule: str
    proposed: float | None
    current: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "rule": self.rule,
            "proposed": self.proposed,
            "current": self.current,
            "passed": self.passed,
            "reason": self.reason,
        }


@dataclass
class GateReport:
    """The outcome of :func:`evaluate`: ok when the input is well formed and every gate passes."""

    rows: list[GateResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.passed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": sum(r.passed for r in self.rows),
            "failed": sum(not r.passed for r in self.rows),
            "problems": list(self.problems),
            "rows": [r.to_dict() for r in self.rows],
        }

    def text(self) -> str:
        passed = sum(r.passed for r in self.rows)
        head = f"Gates: {'OK' if self.ok else 'FAILED'} ({passed} of {len(self.rows)} passed)"
        if not self.rows and not self.problems:
            head = "Gates: OK (no gates)"
        lines = [head, *(f"  {p}" for p in self.problems)]
        for r in self.rows:
            values = f"proposed {_show(r.proposed)}"
            if r.current is not None:
                values += f", current {_show(r.current)}"
            verdict = "PASS" if r.passed else "FAIL"
            lines.append(f"  {verdict} {r.metric} {r.rule}: {values}; {r.reason}")
        return "\n".join(lines)


def _show(value: float | None) -> str:
    return "-" if value is None else _fmt(value)


def _evaluate_one(
    gate: Any, proposed: dict[str, Any], current: dict[str, Any] | None
) -> GateResult:
    problems = validate_gate(gate)
    metric = gate.get("metric") if isinstance(gate, dict) else None
    metric = metric if isinstance(metric, str) and metric else "?"
    if problems:
        return GateResult(metric, "invalid gate", None, None, False, " ".join(problems))
    rule = rule_text(gate)
    raw_current = current.get(metric) if current is not None else None
    cur = raw_current if _is_number(raw_current) else None
    if metric not in proposed:
        return GateResult(metric, rule, None, cur, False, NOT_REPORTED)
    value = proposed[metric]
    if not _is_number(value):
        return GateResult(
            metric, rule, None, cur, False, f"reported value {value!r} is not a number"
        )
    passed, reason = _judge(gate, metric, float(value), cur, current is not None)
    return GateResult(metric, rule, value, cur, passed, reason)


def _judge(
    gate: dict[str, Any], metric: str, value: float, cur: float | None, has_current: bool
) -> tuple[bool, str]:
    if "min" in gate or "max" in gate:
        return _judge_bound(gate, value)
    if not has_current:
        return True, NO_CURRENT
    if cur is None:
        return True, f"the current version does not report {metric}; nothing to compare"
    return _judge_regression(gate, value, cur)


def _judge_bound(gate: dict[str, Any], value: float) -> tuple[bool, str]:
    """A fixed threshold: ``min`` (at least) or ``max`` (at most)."""
    if "min" in gate:
        bound = float(gate["min"])
        if value >= bound or math.isclose(value, bound, rel_tol=_REL_TOL):
            return True, f"{_fmt(value)} ≥ {_fmt(bound)}"
        return False, f"{_fmt(value)} is below the minimum {_fmt(bound)}"
    bound = float(gate["max"])
    if value <= bound or math.isclose(value, bound, rel_tol=_REL_TOL):
        return True, f"{_fmt(value)} ≤ {_fmt(bound)}"
    return False, f"{_fmt(value)} is above the maximum {_fmt(bound)}"


def _judge_regression(gate: dict[str, Any], value: float, cur: float) -> tuple[bool, str]:
    """Against the current version: ``no_regression``, or at most ``max_regression_pct`` worse."""
    lower = _lower_better(gate)
    # How much worse the proposed value is, in the metric's own units (negative: better).
    worse_by = value - cur if lower else cur - value
    if math.isclose(value, cur, rel_tol=_REL_TOL, abs_tol=1e-12):
        worse_by = 0.0
    if "no_regression" in gate:
        if worse_by <= 0:
            return True, _not_worse(worse_by, cur)
        return False, f"{_fmt(value)} is worse than current {_fmt(cur)}"
    return _within_limit(float(gate["max_regression_pct"]), cur, worse_by)


def _not_worse(worse_by: float, cur: float) -> str:
    how = "equal to" if worse_by == 0 else "better than"
    return f"{how} current {_fmt(cur)}"


def _within_limit(limit: float, cur: float, worse_by: float) -> tuple[bool, str]:
    if worse_by <= 0:
        return True, _not_worse(worse_by, cur)
    if cur == 0:
        return False, f"worse than current 0 (any worsening of 0 exceeds {_fmt(limit)}%)"
    pct = worse_by / abs(cur) * 100
    if pct <= limit or math.isclose(pct, limit, rel_tol=1e-6):
        return True, f"{pct:.1f}% worse than current {_fmt(cur)}, within {_fmt(limit)}%"
    return False, f"{pct:.1f}% worse than current {_fmt(cur)} (limit {_fmt(limit)}%)"


def evaluate(gates: Any, proposed: Any, current: Any = None) -> GateReport:
    """Evaluate every gate on the proposed metrics, comparing with ``current`` where a gate asks."""
    report = GateReport()
    if not isinstance(gates, list):
        report.problems.append("Gates must be a list of gate objects.")
        return report
    if not isinstance(proposed, dict):
        report.problems.append("The proposed metrics must be an object of name: number.")
        proposed = {}
    if current is not None and not isinstance(current, dict):
        report.problems.append("The current metrics must be an object of name: number.")
        current = None
    report.rows = [_evaluate_one(gate, proposed, current) for gate in gates]
    return report
