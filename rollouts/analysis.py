"""Canary analysis: an anytime-valid sequential test on count metrics, and the step policy.

Pure functions (no database); ``rollouts.canary`` feeds them the rollout's counters and acts
on the decision through the rollout services.

The method (count metrics)
--------------------------
For each guardrail count metric (errors, refusals, policy violations, latency-SLO breaches)
the controller looks only at the *events*: each error (say) came either from the canary or
from the stable arm. A request is routed to the canary with probability ``rho`` = the
configured canary weight (``weight / 100,000``: the assignment probability, as in the
paper). If the canary is no worse, a request errs with the same probability in both arms,
so, given that an error happened, it came from the canary with probability ``rho``: the arm
of the k-th error is a Bernoulli(``rho``) draw, independent of the others (H0).

The test statistic is the mixture likelihood ratio of Lindon, Ham, Tingley and Bojinov
(2022, "Anytime-valid inference for multinomial count data", arXiv 2205.14762) for two
categories: under the alternative the canary's share ``p`` of events has a
Beta(``k rho``, ``k (1 - rho)``) prior centred on ``rho`` (``k`` = ``PRIOR_CONCENTRATION``),
and after ``x`` canary and ``y`` stable events::

    E = B(x + k rho, y + k (1 - rho)) / B(k rho, k (1 - rho)) / (rho^x (1 - rho)^y)

(``B`` the Beta function, computed with ``math.lgamma``). Under H0 ``E`` is a nonnegative
martingale with expectation 1 (an e-process), so by Ville's inequality
``P(E ever reaches 1/a) <= a`` however often it is looked at: checking every 30 seconds
does not inflate false alarms. A rollout's steps have different weights, so each step
contributes its own factor (its own ``rho``, counters of that step only) and the
rollout's statistic is their product: still a test martingale, since each factor starts
at 1 given the past. A counter bucket that straddles a step change is left out (dropping
data chosen by time, not by outcome, keeps the guarantee).

A metric fails when its ``E >= m / alpha`` (``alpha`` = ``ROLLOUT_ANALYSIS_ALPHA``, 0.05 by
default, split evenly over the ``m`` = 4 metrics: Bonferroni) *and* the canary holds more of
the events than ``rho`` predicts (one-sided: a canary with fewer errors never fails).
Guarantee: if the canary is no worse on every metric, the chance that the rollout is ever
rolled back by these tests, over its whole life and however often it is checked, is at
most ``alpha``. Against a real regression ``E`` grows exponentially in the number of
events, so a 5x error rate (2% -> 10%) at a 10% canary share is caught within a few hundred
canary requests.

The same test on *request* counts (a request is a canary request with probability ``rho``)
detects a sample ratio mismatch (SRM; two-sided, ``ROLLOUT_SRM_ALPHA``): traffic that does
not split as configured breaks the premise of the other tests (a canary given twice its
share would be blamed for twice the errors), so the SRM check comes first and pauses the
rollout for a person: the analysis never rolls back on a test whose premise failed.

The SRM check acts only once the current step holds ``ROLLOUT_SRM_MIN_REQUESTS`` requests
(both arms; 1,000 by default). At a 1% step a few dozen requests from one sticky subject
can all land on the canary, and pausing a healthy first step on them helps nobody. The
guarantee is kept: the rule "pause when ``E >= 1/a`` *and* the step has at least ``n``
requests" raises an alarm only on paths where ``E`` reached ``1/a``, so by Ville's
inequality (which bounds the chance that ``E`` *ever* reaches ``1/a``) its false-alarm
probability is still at most ``a``: it is the same e-process, acted on from a later start.
Below the minimum the count tests still run (a rollback is the safe direction), but a
step whose split already looks off does not advance: it holds until the minimum is met.

Assumptions: requests are independent given their arm. Canary assignment is sticky per
subject, so a few very heavy subjects make events cluster; the SRM check catches the
grossest cases. A rollout retried after a rollback is a new rollout with fresh counters.

Continuous metrics and the step policy
--------------------------------------
At the end of a step (at least ``ROLLOUT_STEP_MIN_SECONDS`` and
``ROLLOUT_STEP_MIN_REQUESTS`` canary requests in it) the canary's p95 latency (from the
histogram, read as its bucket's upper bound), cost per request and mean quality over the
step are compared with the change gates of the artifact's class (``reviews.gates``:
``latency_p95_ms``, ``cost`` / ``cost_per_request``, ``quality``), the stable arm standing
for the current version; a failing gate rolls back, a passing step advances (when
``ROLLOUT_AUTO_ADVANCE``). Too little canary traffic within ``ROLLOUT_DATA_DEADLINE_SECONDS``
pauses with "insufficient data" (never a rollback); telemetry that stopped for
``ROLLOUT_TELEMETRY_STALE_SECONDS`` pauses; clients still serving an older runtime snapshot
``ROLLOUT_SNAPSHOT_LAG_SECONDS`` after the step began pause (drift).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollouts.contract import NOTE_OUTCOMES
from rollouts.telemetry import COUNT_METRICS, Totals

#: ``k`` of the Beta(k rho, k (1 - rho)) mixing prior. Small = diffuse: quick to catch a
#: large regression, slower on a small one.
PRIOR_CONCENTRATION = 5.0

#: Gate metric names the telemetry can measure, and how (canary and stable arm alike).
MEASURED_GATE_METRICS = ("latency_p95_ms", "cost", "cost_per_request", "quality")

#: A p95 in the histogram's open last bucket is reported as this (milliseconds).
P95_OVERFLOW_MS = 1e9

# Decisions
HOLD = "hold"
ADVANCE = "advance"
PAUSE = "pause"
ROLLBACK = "rollback"
#: The iteration note's outcome of a verdict.
COMPLETED, FAILED_NOTE, NO_SIGNAL = NOTE_OUTCOMES


def binomial(rng: Any, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw by geometric skips, O(n p): for simulations and tests
    (``rng`` a ``random.Random``)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    log_q = math.log1p(-p)
    count, position = 0, 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_e_value(canary: int, stable: int, rho: float, k: float = PRIOR_CONCENTRATION) -> float:
    """log of the Beta-binomial mixture likelihood ratio for ``canary``/``stable`` events.

    0 with no events; ``rho`` strictly between 0 and 1.
    """
    if not 0.0 < rho < 1.0:
        raise ValueError("rho must be strictly between 0 and 1")
    if canary < 0 or stable < 0:
        raise ValueError("counts must be non-negative")
    a, b = k * rho, k * (1.0 - rho)
    return (
        log_beta(canary + a, stable + b)
        - log_beta(a, b)
        - canary * math.log(rho)
        - stable * math.log(1.0 - rho)
    )


@dataclass(frozen=True)
class StepCounts:
    """One step's counters: the configured canary share and the totals of each arm."""

    rho: float
    canary: Totals
    stable: Totals


@dataclass(frozen=True)
class TestResult:
    """A sequential test's state over a rollout's steps."""

    metric: str
    canary: int
    stable: int
    expected_canary: float
    log_e: float
    threshold: float
    failed: bool

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e, 700.0))

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "canary": self.canary,
            "stable": self.stable,
            "expected_canary": round(self.expected_canary, 3),
            "e_value": _round(self.e_value),
            "log_e": round(self.log_e, 4),
            "threshold": _round(self.threshold),
            "failed": self.failed,
        }


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def sequential_test(
    metric: str,
    steps: Sequence[StepCounts],
    alpha: float,
    *,
    one_sided: bool = True,
    k: float = PRIOR_CONCENTRATION,
) -> TestResult:
    """The product over steps of each step's mixture likelihood ratio, against ``1/alpha``.

    ``metric`` names a count attribute of ``Totals`` ("errors", ..., or "requests" for SRM).
    One-sided: fails only when the canary holds more events than its shares predict.
    """
    log_e, x, y, expected = 0.0, 0, 0, 0.0
    for step in steps:
        if not 0.0 < step.rho < 1.0:
            continue  # a step at 0% or 100% holds no comparison
        c, s = int(getattr(step.canary, metric)), int(getattr(step.stable, metric))
        log_e += log_e_value(c, s, step.rho, k)
        x, y, expected = x + c, y + s, expected + step.rho * (c + s)
    threshold = 1.0 / alpha
    failed = log_e >= math.log(threshold) and (not one_sided or x > expected)
    return TestResult(metric, x, y, expected, log_e, threshold, failed)


def count_tests(
    steps: Sequence[StepCounts], alpha: float, *, k: float = PRIOR_CONCENTRATION
) -> list[TestResult]:
    """Every guardrail count metric, ``alpha`` split evenly over them (Bonferroni)."""
    share = alpha / len(COUNT_METRICS)
    return [sequential_test(m, steps, share, k=k) for m in COUNT_METRICS]


def srm_test(steps: Sequence[StepCounts], alpha: float) -> TestResult:
    """Sample ratio mismatch: requests split otherwise than the configured weight (two-sided)."""
    return sequential_test("requests", steps, alpha, one_sided=False)


# --- continuous metrics against the change gates ---------------------------------------------


def measured(totals: Totals) -> dict[str, float]:
    """The gate metrics an arm's totals measure (absent when there is nothing to measure)."""
    values: dict[str, float] = {}
    p95 = totals.p95_ms
    if p95 is not None:
        values["latency_p95_ms"] = p95 if math.isfinite(p95) else P95_OVERFLOW_MS
    cost = totals.cost_per_request
    if cost is not None:
        values["cost"] = values["cost_per_request"] = cost
    quality = totals.quality_mean
    if quality is not None:
        values["quality"] = quality
    return values


def gate_check(gates: Any, canary: Totals, stable: Totals) -> list[dict[str, Any]]:
    """The change gates on metrics telemetry measures, canary against stable (as current).

    Gates on other metrics (offline evaluation scores) are left to the change's review.
    """
    from reviews import gates as change_gates

    if not isinstance(gates, list):
        return []
    mine = [g for g in gates if isinstance(g, dict) and g.get("metric") in MEASURED_GATE_METRICS]
    proposed, current = measured(canary), measured(stable)
    mine = [g for g in mine if g["metric"] in proposed]
    if not mine:
        return []
    report = change_gates.evaluate(mine, proposed, current or None)
    return [row.to_dict() for row in report.rows]


# --- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The settings the decision reads (``rollouts.canary.policy()`` builds it from settings)."""

    alpha: float = 0.05
    srm_alpha: float = 0.001
    srm_min_requests: int = 1000
    step_min_seconds: float = 600
    step_min_requests: int = 200
    data_deadline_seconds: float = 1800
    stale_seconds: float = 300
    snapshot_lag_seconds: float = 300
    auto_advance: bool = True


@dataclass(frozen=True)
class Observation:
    """What the controller knows about one progressing (or paused) canary rollout now."""

    now: datetime
    progressing: bool
    steps: Sequence[StepCounts]  # every step so far, the current one last
    step_number: int
    step_started_at: datetime
    current_canary: Totals
    current_stable: Totals
    last_received_at: datetime | None = None
    #: The runtime snapshot sequence clients must report in this step (0 = not checked).
    expected_sequence: int = 0
    #: The lowest sequence clients reported in this step after the lag allowance (0 = none).
    reported_sequence: int = 0
    gates: Any = None


@dataclass
class Verdict:
    decision: str
    reason: str
    #: ``True`` healthy, ``False`` failing (a rollback), ``None`` nothing to judge yet.
    healthy: bool | None
    outcome: str  # the iteration note's outcome
    evidence: dict[str, Any] = field(default_factory=dict)
    #: The rollout's revision when it was evaluated (the transition's compare-and-swap).
    revision: int | None = None


def _arm_json(t: Totals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        **{m: getattr(t, m) for m in COUNT_METRICS},
        "p95_ms": measured(t).get("latency_p95_ms"),
        "cost_per_request": t.cost_per_request,
        "quality_mean": t.quality_mean,
        "snapshot_sequence": t.snapshot_sequence,
    }


def _sum(steps: Sequence[StepCounts], arm: str) -> Totals:
    total = Totals()
    for step in steps:
        total.add(getattr(step, arm))
    return total


def decide(obs: Observation, policy: Policy) -> Verdict:
    """The controller's decision for one rollout: roll back, pause, advance or hold.

    Order: a sample ratio mismatch pauses first, once the step holds
    ``policy.srm_min_requests`` requests (the count tests assume the configured split, so on
    a broken split they would blame the canary for its extra traffic); then a
    failing count test rolls back; stopped telemetry and lagging clients pause; then the step's data: too little by the deadline pauses, a step
    that met its minimums is judged on the change gates (fail: roll back; pass: advance).
    A paused rollout is evaluated and reported, never moved.
    """
    tests = count_tests(obs.steps, policy.alpha)
    srm = srm_test(obs.steps, policy.srm_alpha)
    elapsed = (obs.now - obs.step_started_at).total_seconds()
    canary_requests = obs.current_canary.requests
    step_requests = canary_requests + obs.current_stable.requests
    srm_applies = step_requests >= policy.srm_min_requests
    evidence: dict[str, Any] = {
        "method": "mixture likelihood ratio, Beta-binomial (Lindon et al. 2022)",
        "alpha": policy.alpha,
        "alpha_per_metric": policy.alpha / len(COUNT_METRICS),
        "prior_concentration": PRIOR_CONCENTRATION,
        "arms": {
            "canary": _arm_json(_sum(obs.steps, "canary")),
            "stable": _arm_json(_sum(obs.steps, "stable")),
        },
        "tests": [t.as_json() for t in tests],
        "srm": {
            **srm.as_json(),
            "alpha": policy.srm_alpha,
            "min_requests": policy.srm_min_requests,
            "step_requests": step_requests,
            "applied": srm_applies,
        },
        "step": {
            "number": obs.step_number,
            "started_at": obs.step_started_at.isoformat(),
            "elapsed_seconds": round(elapsed, 1),
            "canary_requests": canary_requests,
            "min_seconds": policy.step_min_seconds,
            "min_requests": policy.step_min_requests,
            "rho": obs.steps[-1].rho if obs.steps else None,
        },
        "snapshot": {"expected": obs.expected_sequence, "reported": obs.reported_sequence},
    }

    def verdict(decision: str, reason: str, healthy: bool | None, outcome: str) -> Verdict:
        evidence["decision"] = decision
        evidence["reason"] = reason
        act = decision if obs.progressing else HOLD
        if not obs.progressing and decision != HOLD:
            reason = f"paused; would {decision}: {reason}"
        return Verdict(act, reason, healthy, outcome, evidence)

    call = _alarm(obs, policy, tests, srm, srm_applies) or _collecting(obs, policy, elapsed)
    if call is None:
        gates = gate_check(obs.gates, obs.current_canary, obs.current_stable)
        evidence["gates"] = gates
        call = _judged(obs, policy, gates, srm, elapsed)
    return verdict(*call)


#: A decision before it becomes a ``Verdict``: (decision, reason, healthy, outcome).
_Call = tuple[str, str, bool | None, str]


def _alarm(
    obs: Observation,
    policy: Policy,
    tests: Sequence[TestResult],
    srm: TestResult,
    srm_applies: bool,
) -> _Call | None:
    """What stops the step whatever its data: a broken split, a failing count test, stopped
    telemetry, lagging clients."""
    if srm.failed and srm_applies:
        return (
            PAUSE,
            f"sample ratio mismatch: {srm.canary} canary vs {srm.stable} stable requests, "
            f"expected {srm.expected_canary:.0f} on the canary; e-value {srm.e_value:.4g} >= "
            f"{srm.threshold:g}",
            None,
            FAILED_NOTE,
        )
    failing = [t for t in tests if t.failed]
    if failing:
        worst = max(failing, key=lambda t: t.log_e)
        return (
            ROLLBACK,
            f"{worst.metric}: canary {worst.canary} vs stable {worst.stable} "
            f"(expected {worst.expected_canary:.1f} on the canary), e-value "
            f"{worst.e_value:.4g} >= {worst.threshold:g} (alpha {policy.alpha:g} over "
            f"{len(COUNT_METRICS)} metrics)",
            False,
            FAILED_NOTE,
        )
    if obs.last_received_at is not None:
        quiet = (obs.now - obs.last_received_at).total_seconds()
        if quiet >= policy.stale_seconds:
            return (
                PAUSE,
                f"telemetry stopped: nothing received for {quiet:.0f} s "
                f"(limit {policy.stale_seconds:g} s)",
                None,
                NO_SIGNAL,
            )
    if (
        obs.expected_sequence
        and obs.reported_sequence
        and obs.reported_sequence < obs.expected_sequence
    ):
        return (
            PAUSE,
            f"clients lag: they report runtime snapshot {obs.reported_sequence}, the step "
            f"needs {obs.expected_sequence} (over {policy.snapshot_lag_seconds:g} s after it "
            "began)",
            None,
            FAILED_NOTE,
        )
    return None


def _collecting(obs: Observation, policy: Policy, elapsed: float) -> _Call | None:
    """A step short of its minimum requests (pause past the deadline) or time: hold."""
    canary_requests = obs.current_canary.requests
    if canary_requests < policy.step_min_requests:
        if elapsed >= policy.data_deadline_seconds:
            return (
                PAUSE,
                f"insufficient data: {canary_requests} canary requests in step "
                f"{obs.step_number} after {elapsed:.0f} s (needs {policy.step_min_requests} "
                f"within {policy.data_deadline_seconds:g} s)",
                None,
                NO_SIGNAL,
            )
        return (
            HOLD,
            f"collecting: {canary_requests}/{policy.step_min_requests} canary requests in step "
            f"{obs.step_number}",
            True if canary_requests else None,
            COMPLETED if canary_requests else NO_SIGNAL,
        )
    if elapsed < policy.step_min_seconds:
        return (
            HOLD,
            f"step {obs.step_number} healthy; {elapsed:.0f}/{policy.step_min_seconds:g} s",
            True,
            COMPLETED,
        )
    return None


def _judged(
    obs: Observation, policy: Policy, gates: list[dict[str, Any]], srm: TestResult, elapsed: float
) -> _Call:
    """A step that met its minimums: the change gates, then a doubtful split holds, else it
    advances (or is ready to, with auto-advance off)."""
    broken = [g for g in gates if not g.get("passed")]
    if broken:
        what = "; ".join(f"{g['metric']} {g.get('reason') or g.get('rule')}" for g in broken)
        return (ROLLBACK, f"change gates fail at the end of step {obs.step_number}: {what}",
                False, FAILED_NOTE)  # fmt: skip
    canary_requests = obs.current_canary.requests
    passed = f"step {obs.step_number} passed ({canary_requests} canary requests, {elapsed:.0f} s"
    passed += f", {len(gates)} gates)" if gates else ")"
    if srm.failed:  # below the SRM minimum: not paused, but not advanced on a doubtful split
        return (
            HOLD,
            f"{passed}; the traffic split looks off ({srm.canary} canary of "
            f"{srm.canary + srm.stable} requests, expected {srm.expected_canary:.0f}): holding "
            f"until the step has {policy.srm_min_requests} requests for the mismatch check",
            None,
            NO_SIGNAL,
        )
    if not policy.auto_advance:
        return (HOLD, f"{passed}; ready to advance (auto-advance is off)", True, COMPLETED)
    return (ADVANCE, passed, True, COMPLETED)


# --- an active version in production: the watch (docs/rollouts.md "Active means watched") ----


@dataclass(frozen=True)
class WatchPolicy:
    """What the watch of an active version reads (``rollouts.watch.policy()`` builds it)."""

    alpha: float = 0.05
    min_requests: int = 200
    window_seconds: float = 3600


@dataclass
class WatchVerdict:
    """The watch's judgement of an active version over its window.

    ``breached``: True (a threshold broken: downgrade), False (within every threshold),
    None (fewer than ``min_requests`` requests: nothing judged).
    """

    breached: bool | None
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def judge_active(
    observed: Totals, baseline: Totals, gates: Any, policy: WatchPolicy
) -> WatchVerdict:
    """The canary analysis' tests and gates, applied to an active version in production.

    ``observed``: the active version's totals over the window; ``baseline``: the previous
    good version's (the stable arm of the rollout that made it active, or its own traffic
    before the activation). No new statistics: the count tests are ``count_tests`` with one
    step whose share ``rho`` is the active version's share of the two arms' requests (under
    "no worse", an event came from the active arm with that probability), and the continuous
    metrics are the same change gates (``gate_check``; absolute bounds hold without a
    baseline, relative ones need it). Below ``policy.min_requests`` nothing is judged.
    """
    evidence: dict[str, Any] = {
        "method": "canary analysis count tests and change gates over the window",
        "window_seconds": policy.window_seconds,
        "min_requests": policy.min_requests,
        "sample_size": observed.requests,
        "alpha": policy.alpha,
        "arms": {"active": _arm_json(observed), "baseline": _arm_json(baseline)},
        "tests": [],
        "gates": [],
        "breaches": [],
    }
    window = f"{policy.window_seconds / 60:g} min"
    if observed.requests < policy.min_requests:
        reason = (
            f"collecting: {observed.requests}/{policy.min_requests} requests in the last {window}"
        )
        evidence["reason"] = reason
        return WatchVerdict(None, reason, evidence)
    breaches: list[dict[str, Any]] = []
    if baseline.requests:
        rho = observed.requests / (observed.requests + baseline.requests)
        tests = count_tests([StepCounts(rho, observed, baseline)], policy.alpha)
        evidence["rho"] = round(rho, 6)
        evidence["tests"] = [t.as_json() for t in tests]
        for t in tests:
            if t.failed:
                breaches.append({
                    "threshold": f"{t.metric}: e-value >= {t.threshold:g} "
                                 f"(alpha {policy.alpha:g} over {len(COUNT_METRICS)} metrics)",
                    "metric": t.metric,
                    "observed": observed.rate(t.metric),
                    "baseline": baseline.rate(t.metric),
                    "e_value": _round(t.e_value),
                })  # fmt: skip
    gates_rows = gate_check(gates, observed, baseline)
    evidence["gates"] = gates_rows
    for g in gates_rows:
        if not g.get("passed"):
            breaches.append({
                "threshold": f"{g['metric']} {g.get('rule')}",
                "metric": g["metric"],
                "observed": g.get("proposed"),
                "baseline": g.get("current"),
                "gate_reason": g.get("reason"),
            })  # fmt: skip
    evidence["breaches"] = breaches
    if breaches:
        what = "; ".join(
            f"{b['threshold']}: observed {_show(b['observed'])}"
            + (f", baseline {_show(b['baseline'])}" if b.get("baseline") is not None else "")
            for b in breaches
        )
        reason = f"{what} ({observed.requests} requests in the last {window})"
        evidence["reason"] = reason
        return WatchVerdict(True, reason, evidence)
    reason = f"within thresholds ({observed.requests} requests in the last {window})"
    evidence["reason"] = reason
    return WatchVerdict(False, reason, evidence)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
