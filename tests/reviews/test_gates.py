"""``reviews.gates``: thresholds and regression limits on evaluation metrics."""

from __future__ import annotations

import json
import random

import pytest

from reviews import gates
from reviews.gates import evaluate, validate_gate


def rows(report: gates.GateReport) -> list[tuple[str, str, bool, str]]:
    return [(r.metric, r.rule, r.passed, r.reason) for r in report.rows]


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("accuracy", False),
        ("safety", False),
        ("throughput", False),
        ("calibration", False),
        ("latency_p95_ms", True),
        ("cost", True),
        ("latency_p50_ms", True),
        ("cost_per_1k_tokens", True),
        ("toxicity", False),
    ],
)
def test_direction(metric, lower):
    assert gates.lower_is_better(metric) is lower


@pytest.mark.parametrize(
    "gate",
    [
        {"metric": "safety", "min": 0.9},
        {"metric": "latency_p95_ms", "max": 800},
        {"metric": "safety", "no_regression": True},
        {"metric": "latency_p95_ms", "max_regression_pct": 10},
        {"metric": "latency_p95_ms", "max_regression_pct": 0},
        {"metric": "toxicity", "better": "lower", "max": 0.1},
        {"metric": "custom", "min": 3, "description": "why"},
    ],
)
def test_valid_gates(gate):
    assert validate_gate(gate) == []


@pytest.mark.parametrize(
    ("gate", "fragment"),
    [
        ("safety >= 0.9", "must be an object"),
        ({"min": 0.9}, 'non-empty string "metric"'),
        (
            {"metric": "safety"},
            "exactly one of min, max, no_regression, max_regression_pct; it has 0",
        ),
        ({"metric": "safety", "min": 0.9, "no_regression": True}, "it has 2"),
        ({"metric": "safety", "min": "0.9"}, '"min" must be a number'),
        ({"metric": "safety", "min": True}, '"min" must be a number'),
        ({"metric": "safety", "no_regression": False}, '"no_regression" must be true'),
        ({"metric": "cost", "max_regression_pct": -5}, "at least 0"),
        ({"metric": "safety", "min": 0.9, "treshold": 1}, "Unknown key 'treshold'"),
        ({"metric": "x", "better": "up", "min": 1}, '"better" must be "higher" or "lower"'),
        ({"metric": "latency_p95_ms", "min": 800}, 'did you mean "max"'),
        ({"metric": "accuracy", "max": 0.99}, 'did you mean "min"'),
    ],
)
def test_invalid_gates(gate, fragment):
    problems = validate_gate(gate)
    assert any(fragment in p for p in problems), problems


GATES = [
    {"metric": "safety", "min": 0.9},
    {"metric": "latency_p95_ms", "max": 800},
    {"metric": "safety", "no_regression": True},
    {"metric": "latency_p95_ms", "max_regression_pct": 10},
]


def test_all_gates_pass():
    report = evaluate(
        GATES, {"safety": 0.95, "latency_p95_ms": 780}, {"safety": 0.94, "latency_p95_ms": 750}
    )
    assert report.ok
    assert rows(report) == [
        ("safety", "≥ 0.9", True, "0.95 ≥ 0.9"),
        ("latency_p95_ms", "≤ 800", True, "780 ≤ 800"),
        ("safety", "no worse than current", True, "better than current 0.94"),
        (
            "latency_p95_ms",
            "at most 10% worse than current",
            True,
            "4.0% worse than current 750, within 10%",
        ),
    ]


def test_failures_say_why():
    report = evaluate(
        GATES, {"safety": 0.85, "latency_p95_ms": 900}, {"safety": 0.9, "latency_p95_ms": 800}
    )
    assert report.ok is False
    assert rows(report) == [
        ("safety", "≥ 0.9", False, "0.85 is below the minimum 0.9"),
        ("latency_p95_ms", "≤ 800", False, "900 is above the maximum 800"),
        ("safety", "no worse than current", False, "0.85 is worse than current 0.9"),
        (
            "latency_p95_ms",
            "at most 10% worse than current",
            False,
            "12.5% worse than current 800 (limit 10%)",
        ),
    ]
    assert [(r.proposed, r.current) for r in report.rows] == [
        (0.85, 0.9),
        (900, 800),
        (0.85, 0.9),
        (900, 800),
    ]


def test_boundaries_pass_despite_floating_point():
    report = evaluate(
        [
            {"metric": "latency_p95_ms", "max_regression_pct": 10},
            {"metric": "accuracy", "max_regression_pct": 10},
            {"metric": "accuracy", "min": 0.3},
            {"metric": "safety", "no_regression": True},
        ],
        {"latency_p95_ms": 880, "accuracy": 0.1 + 0.2, "safety": 0.1 + 0.2},
        {"latency_p95_ms": 800, "accuracy": 0.3333333333333333, "safety": 0.3},
    )
    assert [r.passed for r in report.rows] == [True, True, True, True]
    assert report.rows[3].reason == "equal to current 0.3"


def test_missing_metric_and_missing_current():
    report = evaluate(GATES, {"latency_p95_ms": 700}, None)
    assert rows(report) == [
        ("safety", "≥ 0.9", False, "not reported"),
        ("latency_p95_ms", "≤ 800", True, "700 ≤ 800"),
        ("safety", "no worse than current", False, "not reported"),
        (
            "latency_p95_ms",
            "at most 10% worse than current",
            True,
            "no current version to compare",
        ),
    ]
    assert report.ok is False
    partial = evaluate(GATES[2:], {"safety": 0.9, "latency_p95_ms": 5000}, {"safety": 0.99})
    assert rows(partial)[1][2:] == (
        True,
        "the current version does not report latency_p95_ms; nothing to compare",
    )


def test_lower_is_better_regressions_and_overrides():
    report = evaluate(
        [
            {"metric": "cost", "no_regression": True},
            {"metric": "cost_per_call", "max_regression_pct": 5},
            {"metric": "toxicity", "better": "lower", "no_regression": True},
            {"metric": "throughput", "max_regression_pct": 10},
        ],
        {"cost": 0.9, "cost_per_call": 1.1, "toxicity": 0.2, "throughput": 85},
        {"cost": 1.0, "cost_per_call": 1.0, "toxicity": 0.1, "throughput": 100},
    )
    assert [(r.passed, r.reason) for r in report.rows] == [
        (True, "better than current 1"),
        (False, "10.0% worse than current 1 (limit 5%)"),
        (False, "0.2 is worse than current 0.1"),
        (False, "15.0% worse than current 100 (limit 10%)"),
    ]


def test_regression_from_zero():
    report = evaluate(
        [
            {"metric": "cost", "max_regression_pct": 50},
            {"metric": "safety", "max_regression_pct": 5},
        ],
        {"cost": 0.01, "safety": 0},
        {"cost": 0, "safety": 0},
    )
    assert [(r.passed, r.reason) for r in report.rows] == [
        (False, "worse than current 0 (any worsening of 0 exceeds 50%)"),
        (True, "equal to current 0"),
    ]


def test_bad_values_and_gates_fail_their_row_without_raising():
    report = evaluate(
        [{"metric": "safety", "min": 0.9}, {"metric": "accuracy"}, "junk"],
        {"safety": "high", "accuracy": 0.9},
        {"safety": 0.9},
    )
    assert [(r.metric, r.rule, r.passed) for r in report.rows] == [
        ("safety", "≥ 0.9", False),
        ("accuracy", "invalid gate", False),
        ("?", "invalid gate", False),
    ]
    assert report.rows[0].reason == "reported value 'high' is not a number"
    assert report.ok is False


@pytest.mark.parametrize(
    ("gates_in", "proposed", "current", "problem"),
    [
        ({"metric": "safety"}, {}, None, "Gates must be a list"),
        ([], "metrics", None, "proposed metrics must be an object"),
        ([], {}, ["x"], "current metrics must be an object"),
    ],
)
def test_bad_containers_are_problems(gates_in, proposed, current, problem):
    report = evaluate(gates_in, proposed, current)
    assert report.ok is False
    assert any(problem in p for p in report.problems)


def test_no_gates_is_ok():
    report = evaluate([], {"safety": 0.1})
    assert report.ok
    assert report.rows == []
    assert report.text() == "Gates: OK (no gates)"


def test_report_text_and_dict():
    report = evaluate(GATES[:2], {"safety": 0.95, "latency_p95_ms": 900}, {"safety": 0.9})
    assert report.text().splitlines() == [
        "Gates: FAILED (1 of 2 passed)",
        "  PASS safety ≥ 0.9: proposed 0.95, current 0.9; 0.95 ≥ 0.9",
        "  FAIL latency_p95_ms ≤ 800: proposed 900; 900 is above the maximum 800",
    ]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert (data["passed"], data["failed"]) == (1, 1)
    assert data["rows"][1] == {
        "metric": "latency_p95_ms",
        "rule": "≤ 800",
        "proposed": 900,
        "current": None,
        "passed": False,
        "reason": "900 is above the maximum 800",
    }


@pytest.mark.parametrize("seed", range(25))
def test_no_regression_agrees_with_the_metric_direction(seed):
    rng = random.Random(seed)
    metric = rng.choice(gates.KNOWN_METRICS)
    cur = round(rng.uniform(0, 1000), 3)
    new = round(rng.uniform(0, 1000), 3)
    passed = evaluate([{"metric": metric, "no_regression": True}], {metric: new}, {metric: cur}).ok
    assert passed is ((new <= cur) if gates.lower_is_better(metric) else (new >= cur))
    # A percentage limit of 0 means the same thing as no regression.
    zero = evaluate([{"metric": metric, "max_regression_pct": 0}], {metric: new}, {metric: cur}).ok
    assert zero is passed
