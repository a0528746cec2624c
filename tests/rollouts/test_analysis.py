"""The canary analysis' pure functions: the mixture test, its false alarms and power, the policy."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from rollouts import analysis
from rollouts.analysis import Observation, Policy, StepCounts, binomial, decide, log_e_value
from rollouts.telemetry import COUNT_METRICS, LATENCY_BOUNDS_MS, Totals

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
#: Guardrail rates of a healthy service (A/A: both arms alike).
RATES = {"errors": 0.02, "refusals": 0.01, "policy_violations": 0.005, "latency_slo_breaches": 0.05}


def run(
    rng: random.Random,
    *,
    canary_rates: dict[str, float],
    stable_rates: dict[str, float],
    rho: float,
    canary_requests: int,
    batch: int,
    alpha: float = 0.05,
) -> int | None:
    """Feed batches of ``batch`` requests (``rho`` of them canary, in expectation) and test after
    each; the canary requests seen when a metric fails, None when none does."""
    canary, stable = Totals(), Totals()
    while canary.requests < canary_requests:
        c = binomial(rng, batch, rho) if rho < 0.5 else batch - binomial(rng, batch, 1 - rho)
        canary.requests += c
        stable.requests += batch - c
        for metric in COUNT_METRICS:
            setattr(
                canary, metric, getattr(canary, metric) + binomial(rng, c, canary_rates[metric])
            )
            setattr(stable, metric,
                    getattr(stable, metric) + binomial(rng, batch - c, stable_rates[metric]))  # fmt: skip
        if any(t.failed for t in analysis.count_tests([StepCounts(rho, canary, stable)], alpha)):
            return canary.requests
    return None


def test_log_e_value_is_the_product_of_sequential_predictive_ratios() -> None:
    """The closed form equals the Polya-urn (Beta-binomial) predictive, one event at a time."""
    rho, k = 0.1, analysis.PRIOR_CONCENTRATION
    arms = [1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1]
    log_e, x, y = 0.0, 0, 0
    for is_canary in arms:
        predictive = (x + k * rho) / (x + y + k) if is_canary else (y + k * (1 - rho)) / (x + y + k)
        log_e += math.log(predictive / (rho if is_canary else 1 - rho))
        x, y = x + is_canary, y + (1 - is_canary)
    assert log_e_value(x, y, rho) == pytest.approx(log_e, rel=1e-12)
    assert log_e_value(0, 0, rho) == 0.0
    with pytest.raises(ValueError, match="rho must be strictly between 0 and 1"):
        log_e_value(1, 1, 0.0)


def test_one_sided_a_canary_with_fewer_errors_never_fails() -> None:
    steps = [
        StepCounts(0.5, Totals(requests=10_000, errors=0), Totals(requests=10_000, errors=500))
    ]
    result = analysis.sequential_test("errors", steps, 0.05)
    assert result.log_e > math.log(20)
    assert not result.failed
    srm = analysis.srm_test(steps, 0.05)
    assert not srm.failed  # an even split at 50% is no mismatch


def test_steps_multiply_each_with_its_own_share() -> None:
    one = StepCounts(0.05, Totals(requests=500, errors=30), Totals(requests=9500, errors=190))
    two = StepCounts(0.25, Totals(requests=2500, errors=100), Totals(requests=7500, errors=150))
    both = analysis.sequential_test("errors", [one, two], 0.05)
    assert both.log_e == pytest.approx(log_e_value(30, 190, 0.05) + log_e_value(100, 150, 0.25))
    assert (both.canary, both.stable) == (130, 340)
    assert both.expected_canary == pytest.approx(0.05 * 220 + 0.25 * 250)


def test_a_five_fold_error_regression_at_ten_percent_fails_within_400_canary_requests() -> None:
    canary_rates = {**RATES, "errors": 0.10}
    caught = [
        run(
            random.Random(seed),
            canary_rates=canary_rates,
            stable_rates=RATES,
            rho=0.1,
            canary_requests=400,
            batch=100,
        )
        for seed in range(50)
    ]
    assert all(n is not None and n <= 400 for n in caught), caught


def test_a_a_false_alarms_stay_below_alpha_over_200_runs_of_20000_canary_requests() -> None:
    """200 healthy rollouts, checked after every 1,000 requests (200 looks each)."""
    alarms = [
        run(
            random.Random(1000 + seed),
            canary_rates=RATES,
            stable_rates=RATES,
            rho=0.1,
            canary_requests=20_000,
            batch=1000,
        )
        for seed in range(200)
    ]
    rolled_back = sum(1 for n in alarms if n is not None)
    assert rolled_back <= 10  # 5% of 200
    assert alarms[0] is None  # the CI seed rolls back none


# --- the decision ----------------------------------------------------------------------------


def observe(
    *, canary: Totals, stable: Totals, rho: float = 0.1, minutes: float = 20,
    progressing: bool = True, **kw: object,
) -> Observation:  # fmt: skip
    return Observation(
        now=NOW,
        progressing=progressing,
        steps=[StepCounts(rho, canary, stable)],
        step_number=1,
        step_started_at=NOW - timedelta(minutes=minutes),
        current_canary=canary,
        current_stable=stable,
        **kw,  # type: ignore[arg-type]
    )


def healthy(requests: int, rho: float = 0.1) -> tuple[Totals, Totals]:
    c = round(requests * rho)
    return (
        Totals(requests=c, errors=round(c * 0.02)),
        Totals(requests=requests - c, errors=round((requests - c) * 0.02)),
    )


def test_no_traffic_pauses_for_insufficient_data_after_the_deadline_never_rolls_back() -> None:
    policy = Policy(data_deadline_seconds=1800)
    early = decide(observe(canary=Totals(), stable=Totals(), minutes=10), policy)
    assert early.decision == analysis.HOLD
    assert early.outcome == "blocked_no_signal"
    late = decide(observe(canary=Totals(), stable=Totals(), minutes=31), policy)
    assert late.decision == analysis.PAUSE
    assert late.healthy is None
    assert late.reason.startswith("insufficient data: 0 canary requests in step 1")
    assert late.evidence["decision"] == "pause"


def test_stopped_telemetry_pauses() -> None:
    canary, stable = healthy(1000)
    verdict = decide(
        observe(canary=canary, stable=stable, last_received_at=NOW - timedelta(minutes=6)),
        Policy(stale_seconds=300),
    )
    assert verdict.decision == analysis.PAUSE
    assert verdict.reason.startswith("telemetry stopped: nothing received for 360 s")


def test_sample_ratio_mismatch_pauses() -> None:
    # 10% configured, 20% observed
    canary, stable = Totals(requests=2000, errors=40), Totals(requests=8000, errors=160)
    verdict = decide(observe(canary=canary, stable=stable), Policy())
    assert verdict.decision == analysis.PAUSE
    assert verdict.reason.startswith("sample ratio mismatch")
    assert verdict.evidence["srm"]["failed"] is True


def test_a_healthy_one_percent_step_is_not_paused_by_a_few_requests() -> None:
    """50 requests at 1%, 8 of them on the canary (one sticky subject's burst): the statistic
    is over the threshold, but the step is below ROLLOUT_SRM_MIN_REQUESTS, so no pause."""
    canary, stable = Totals(requests=8), Totals(requests=42)
    assert analysis.srm_test([StepCounts(0.01, canary, stable)], 0.001).failed
    verdict = decide(observe(canary=canary, stable=stable, rho=0.01, minutes=2), Policy())
    assert verdict.decision == analysis.HOLD
    assert verdict.reason.startswith("collecting: 8/200 canary requests")
    srm = verdict.evidence["srm"]
    assert (srm["failed"], srm["applied"], srm["step_requests"], srm["min_requests"]) == (
        True, False, 50, 1000,
    )  # fmt: skip


def test_a_real_mismatch_with_enough_traffic_still_pauses() -> None:
    # 1% configured, 3% observed over 2,000 requests in the step
    canary, stable = Totals(requests=60, errors=1), Totals(requests=1940, errors=39)
    verdict = decide(observe(canary=canary, stable=stable, rho=0.01), Policy())
    assert verdict.decision == analysis.PAUSE
    assert verdict.reason.startswith("sample ratio mismatch")
    assert verdict.evidence["srm"]["applied"] is True
    # the same split just under the minimum is not paused
    lower = Policy(srm_min_requests=2001)
    assert decide(observe(canary=canary, stable=stable, rho=0.01), lower).decision == "hold"


def test_a_doubtful_split_below_the_srm_minimum_does_not_advance() -> None:
    # 50% configured; 300 vs 100 requests (400 < 1,000): not paused, not advanced either
    canary, stable = Totals(requests=300, errors=6), Totals(requests=100, errors=2)
    verdict = decide(observe(canary=canary, stable=stable, rho=0.5), Policy())
    assert verdict.decision == analysis.HOLD
    assert verdict.healthy is None
    assert "the traffic split looks off (300 canary of 400 requests, expected 200)" in (
        verdict.reason
    )
    assert decide(observe(canary=canary, stable=stable, rho=0.5),
                  Policy(srm_min_requests=400)).decision == analysis.PAUSE  # fmt: skip


def test_clients_on_an_old_snapshot_pause() -> None:
    canary, stable = healthy(3000)
    verdict = decide(
        observe(canary=canary, stable=stable, expected_sequence=90, reported_sequence=80),
        Policy(),
    )
    assert verdict.decision == analysis.PAUSE
    assert "runtime snapshot 80" in verdict.reason


def test_a_step_advances_only_after_its_minimum_time_and_requests() -> None:
    policy = Policy(step_min_seconds=600, step_min_requests=200)
    few = healthy(1500)  # 150 canary requests
    assert decide(observe(canary=few[0], stable=few[1], minutes=20), policy).decision == "hold"
    enough = healthy(3000)
    young = decide(observe(canary=enough[0], stable=enough[1], minutes=5), policy)
    assert young.decision == "hold"
    assert young.healthy is True
    ready = decide(observe(canary=enough[0], stable=enough[1], minutes=11), policy)
    assert ready.decision == analysis.ADVANCE
    assert ready.outcome == "lane_completed"
    manual = decide(observe(canary=enough[0], stable=enough[1], minutes=11),
                    Policy(auto_advance=False))  # fmt: skip
    assert manual.decision == "hold"
    assert "auto-advance is off" in manual.reason
    paused = decide(observe(canary=enough[0], stable=enough[1], minutes=11, progressing=False),
                    policy)  # fmt: skip
    assert paused.decision == "hold"
    assert paused.reason.startswith("paused; would advance")


def latency(totals: Totals, slow_share: float) -> Totals:
    slow = round(totals.requests * slow_share)
    totals.histogram = [0] * len(LATENCY_BOUNDS_MS)
    totals.histogram[1] = totals.requests - slow  # <= 100 ms
    totals.histogram[5] = slow  # <= 2500 ms
    return totals


def test_continuous_gates_at_the_end_of_a_step() -> None:
    canary, stable = healthy(3000)
    gates = [{"metric": "latency_p95_ms", "max": 800}, {"metric": "safety", "min": 0.9}]
    ok = decide(observe(canary=latency(canary, 0.01), stable=latency(stable, 0.01), gates=gates),
                Policy())  # fmt: skip
    assert ok.decision == analysis.ADVANCE
    assert [(g["metric"], g["passed"]) for g in ok.evidence["gates"]] == [("latency_p95_ms", True)]
    slow = decide(observe(canary=latency(canary, 0.2), stable=latency(stable, 0.01), gates=gates),
                  Policy())  # fmt: skip
    assert slow.decision == analysis.ROLLBACK
    assert slow.healthy is False
    assert "change gates fail at the end of step 1: latency_p95_ms" in slow.reason


def test_a_failing_count_test_rolls_back_and_names_metric_statistic_and_alpha() -> None:
    canary = Totals(requests=300, errors=30)
    stable = Totals(requests=2700, errors=54)
    verdict = decide(observe(canary=canary, stable=stable, minutes=2), Policy())
    assert verdict.decision == analysis.ROLLBACK
    assert verdict.reason.startswith("errors: canary 30 vs stable 54")
    assert "(alpha 0.05 over 4 metrics)" in verdict.reason
    assert ">= 80" in verdict.reason
    (errors,) = [t for t in verdict.evidence["tests"] if t["metric"] == "errors"]
    assert errors["failed"]
    assert errors["threshold"] == 80
    assert errors["e_value"] >= 80
    assert verdict.evidence["arms"]["canary"]["errors"] == 30


def test_steps_are_consecutive_windows() -> None:
    # guard the helper above: a healthy split has no SRM at any size
    for a, b in pairwise([1000, 10_000, 100_000]):
        assert not analysis.srm_test([StepCounts(0.1, *healthy(a))], 0.001).failed
        assert not analysis.srm_test([StepCounts(0.1, *healthy(b))], 0.001).failed
