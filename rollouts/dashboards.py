"""What the rollout dashboards show: a rollout's telemetry as charts and tables, the fleet at a glance.

Reads only (through ``rollouts.telemetry_selectors`` and ``rollouts.selectors``); every
function runs a fixed number of queries whatever the number of counter rows, versions or
the time range. Charts are pygal images (``governance.kernel.charts``); each comes with the
numbers behind it as a table in the template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from governance.kernel import charts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Version
from rollouts import canary as canary_analysis
from rollouts.analysis import StepCounts, sequential_test
from rollouts.choices import ACTIVE_STATES, BUCKETS, Arm, PointerKind, RolloutStrategy
from rollouts.forms import percent
from rollouts.models import IterationNote, PointerMove, Rollout
from rollouts.telemetry import COUNT_METRICS, Totals
from rollouts.telemetry_selectors import SeriesPoint, rollout_arm_totals, rollout_series

__all__ = [
    "METRICS",
    "FleetRow",
    "MetricView",
    "RolloutDashboard",
    "TimelineItem",
    "fleet_rows",
    "rollout_dashboard",
    "series_window",
]

#: About this many points on a rollout's time axis (the step widens with the range).
TARGET_POINTS = 60
#: The iteration notes the page lists (newest first).
NOTES_SHOWN = 20


@dataclass(frozen=True)
class Metric:
    """One metric compared between the arms: how to read it from totals and how to print it."""

    key: str
    label: str
    read: Callable[[Totals], float | None]
    unit: str  # "rate", "ms", "money", "score"
    counted: bool  # a count metric (the sequential test) or continuous (the step-end gates)


def _rate(name: str) -> Callable[[Totals], float | None]:
    return lambda t: t.rate(name)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


METRICS: tuple[Metric, ...] = (
    Metric("errors", "Error rate", _rate("errors"), "rate", True),
    Metric("refusals", "Refusal rate", _rate("refusals"), "rate", True),
    Metric("policy_violations", "Policy violations", _rate("policy_violations"), "rate", True),
    Metric("latency_p95_ms", "p95 latency", lambda t: t.p95_ms, "ms", False),
    Metric("cost", "Cost per request", lambda t: t.cost_per_request, "money", False),
    Metric("quality", "Quality (mean score)", lambda t: t.quality_mean, "score", False),
)


def metric_text(metric: Metric, value: float | None) -> str:
    if value is None:
        return "—"
    if metric.unit == "rate":
        return f"{value:.2%}"
    if metric.unit == "ms":
        return "> 10 s" if math.isinf(value) else f"≤ {value:g} ms"
    if metric.unit == "money":
        return f"{value:.5f}"
    return f"{value:.3f}"


@dataclass
class MetricView:
    key: str
    label: str
    canary: str
    stable: str
    canary_count: str
    stable_count: str
    threshold: str
    worse: bool
    chart: charts.ChartImage | None = None
    statistic: str = ""
    failed: bool = False


@dataclass
class TimelineItem:
    """One step of the rollout's story: started, advanced, paused, resumed, rolled back..."""

    time: datetime
    kind: str  # start, advance, pause, resume, succeed, abort, rollback, flag
    label: str
    actor: str
    reason: str
    seq: int
    url: str


@dataclass
class DistributionRow:
    start: datetime
    requests: list[int]

    @property
    def total(self) -> int:
        return sum(self.requests)


@dataclass
class RolloutDashboard:
    live: bool
    since: datetime | None
    until: datetime | None
    step: timedelta | None
    totals: dict[str, Totals]
    metrics: list[MetricView]
    versions: list[str]
    distribution: charts.ChartImage | None
    distribution_rows: list[DistributionRow]
    timeline: list[TimelineItem]
    notes: list[IterationNote] = field(default_factory=list)
    notes_total: int = 0
    refresh_seconds: int = 0
    verdict: str = ""
    statistic_chart: charts.ChartImage | None = None
    statistic_rows: list[tuple[datetime, list[str]]] = field(default_factory=list)

    @property
    def step_text(self) -> str:
        """The chart step as people read it: "1 min", "4 min", "2 h"."""
        if self.step is None:
            return ""
        minutes = self.step.total_seconds() / 60
        return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"

    @property
    def has_telemetry(self) -> bool:
        return any(t.requests for t in self.totals.values())


def series_window(
    rollout: Rollout, now: datetime | None = None
) -> tuple[datetime, datetime, timedelta] | None:
    """The time range and step of a rollout's charts: from its start to its finish (or now).

    The step is a whole number of telemetry buckets giving about ``TARGET_POINTS`` points.
    None before the rollout starts.
    """
    if rollout.started_at is None:
        return None
    bucket = timedelta(seconds=settings.TELEMETRY_BUCKET_SECONDS)
    now = now or timezone.now()
    started = rollout.started_at
    since = started - timedelta(seconds=started.timestamp() % bucket.total_seconds())
    # Clients may report buckets up to TELEMETRY_MAX_FUTURE_SECONDS ahead of the clock.
    ahead = timedelta(seconds=settings.TELEMETRY_MAX_FUTURE_SECONDS)
    until = (rollout.finished_at or now) + ahead + bucket
    buckets = max(1, math.ceil((until - since) / bucket / TARGET_POINTS))
    return since, until, bucket * buckets


_TIMELINE_KINDS = {
    EventKind.ROLLOUT_STARTED: "start",
    EventKind.ROLLOUT_ADVANCED: "advance",
    EventKind.ROLLOUT_PAUSED: "pause",
    EventKind.ROLLOUT_RESUMED: "resume",
    EventKind.ROLLOUT_SUCCEEDED: "succeed",
    EventKind.ROLLOUT_ABORTED: "abort",
    EventKind.ROLLOUT_ROLLED_BACK: "rollback",
    EventKind.ROLLOUT_FLAG_SET: "flag",
}


def _step_text(rollout: Rollout, step: Any) -> str:
    if not isinstance(step, int) or step < 1 or step > len(rollout.steps):
        return ""
    value = rollout.steps[step - 1]
    if rollout.strategy == RolloutStrategy.CANARY:
        return f"step {step}: {percent(int(value))}"
    return f"step {step}"


def timeline(rollout: Rollout, events: Iterable[Event]) -> list[TimelineItem]:
    """The rollout's step events in order, pauses and rollbacks marked by their kind."""
    items = []
    for event in events:
        kind = _TIMELINE_KINDS.get(event.kind)  # type: ignore[call-overload]
        if kind is None:
            continue
        payload = event.payload or {}
        step = _step_text(rollout, payload.get("step"))
        label = event.get_kind_display() + (f" ({step})" if step else "")
        items.append(
            TimelineItem(
                time=event.time,
                kind=kind,
                label=label,
                actor=event.actor_name or "system",
                reason=str(payload.get("reason") or ""),
                seq=event.seq,
                url=event.get_absolute_url(),
            )
        )
    return items


def _version_labels(ids: Iterable[Any]) -> dict[Any, str]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return {
        v.pk: v.version
        for v in Version.objects.filter(pk__in=wanted).only("id", "version").order_by()
    }


def _time_labels(points: Sequence[SeriesPoint]) -> list[str]:
    if not points:
        return []
    days = {timezone.localtime(p.start).date() for p in points}
    fmt = "%H:%M" if len(days) == 1 else "%m-%d %H:%M"
    return [timezone.localtime(p.start).strftime(fmt) for p in points]


def _distribution(
    points: list[SeriesPoint], labels: dict[Any, str], order: list[Any]
) -> tuple[charts.ChartImage | None, list[DistributionRow]]:
    rows = [DistributionRow(p.start, [p.versions.get(v, 0) for v in order]) for p in points]
    # Up to the last step with requests: the step still filling (or after the end) is not a
    # drop to zero.
    while rows and not rows[-1].total:
        rows.pop()
    points = points[: len(rows)]
    if not order or not any(sum(r.requests) for r in rows):
        return None, rows
    x = _time_labels(points)
    top = max(r.total for r in rows)
    chart = charts.stacked_area(
        # The busiest version (the stable one) in the stable arm's blue, the next in red.
        style=charts.styled(colors=(charts.PALETTE[1], charts.PALETTE[0], *charts.PALETTE[2:])),
        range=(0, top * 1.1),
        x_labels=x,
        show_minor_x_labels=False,
        x_labels_major_count=8,
        x_label_rotation=0,
        y_title="requests",
    )
    for i, vid in enumerate(order):
        chart.add(labels.get(vid, "?"), [r.requests[i] for r in rows])
    totals = {labels.get(v, "?"): sum(r.requests[i] for r in rows) for i, v in enumerate(order)}
    alt = (
        f"Requests per version over time, stacked, {len(rows)} steps from {x[0]} to {x[-1]}. "
        "Totals: " + ", ".join(f"{k} {n}" for k, n in totals.items()) + "."
    )
    return charts.render(chart, alt=alt), rows


def _latest(values: Sequence[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def _metric_chart(metric: Metric, points: list[SeriesPoint]) -> charts.ChartImage | None:
    canary = [
        _finite(metric.read(p.arms[Arm.CANARY])) if Arm.CANARY in p.arms else None for p in points
    ]
    stable = [
        _finite(metric.read(p.arms[Arm.STABLE])) if Arm.STABLE in p.arms else None for p in points
    ]
    if all(v is None for v in canary + stable):
        return None
    formatter = (lambda v: f"{v:.1%}") if metric.unit == "rate" else (lambda v: f"{v:g}")
    top = max(v for v in canary + stable if v is not None)
    chart = charts.line(
        # An explicit range from 0: pygal's own scale never ends when every value is equal.
        range=(0, top * 1.2 if top > 0 else (0.05 if metric.unit == "rate" else 1.0)),
        y_labels_major_count=5,
        show_minor_y_labels=False,
        width=360,
        height=200,
        x_labels=_time_labels(points),
        show_minor_x_labels=False,
        x_labels_major_count=4,
        value_formatter=formatter,
        show_y_guides=True,
        dots_size=1.5,
        allow_interruptions=True,
        title=metric.label,
    )
    chart.add("canary", canary)
    chart.add("stable", stable)
    alt = (
        f"{metric.label} per step, canary against stable; latest canary "
        f"{metric_text(metric, _latest(canary))}, stable {metric_text(metric, _latest(stable))}."
    )
    return charts.render(chart, alt=alt)


def _canary_windows(rollout: Rollout) -> list[tuple[datetime, float]]:
    """When each canary weight began (the rollout's canary moves above 0), as shares: one query."""
    moves = (
        PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY)
        .order_by("id")
        .values_list("created_at", "weight")
    )
    # A move to 0 (a rollback) ends the comparison: its counters stay with the last share.
    return [(at, int(weight) / BUCKETS) for at, weight in moves if weight]


def statistic_trend(
    rollout: Rollout, points: Sequence[SeriesPoint]
) -> list[tuple[datetime, list[float]]]:
    """The canary analysis' e-value per guardrail metric at the end of each point.

    At each point the counters so far are grouped by canary weight window, as the analysis
    groups them, and ``rollouts.analysis.sequential_test`` runs on them (alpha split over
    the metrics): the same statistic the controller judges, read back over time.
    """
    windows = _canary_windows(rollout)
    if not windows:
        return []
    share = canary_analysis.policy().alpha / len(COUNT_METRICS)
    by_window: dict[int, StepCounts] = {}
    trend = []
    for p in points:
        index = max((i for i, (at, _) in enumerate(windows) if at <= p.start), default=0)
        rho = windows[index][1]
        step = by_window.setdefault(index, StepCounts(rho, Totals(), Totals()))
        if Arm.CANARY in p.arms:
            step.canary.add(p.arms[Arm.CANARY])
        if Arm.STABLE in p.arms:
            step.stable.add(p.arms[Arm.STABLE])
        steps = [by_window[i] for i in sorted(by_window)]
        trend.append((p.start, [sequential_test(m, steps, share).e_value for m in COUNT_METRICS]))
    return trend


#: The e-value axis runs over powers of ten within these bounds (a clear regression's
#: e-value is astronomically large; the chart shows it off the top).
LOG_E_FLOOR, LOG_E_CEILING = -2, 8


def _log10(value: float) -> float:
    if value <= 0:
        return float(LOG_E_FLOOR)
    return min(max(math.log10(value), LOG_E_FLOOR), LOG_E_CEILING)


def _statistic_chart(trend: list[tuple[datetime, list[float]]], threshold: float) -> Any:
    """e-values on a log axis, drawn as log10 on a linear one (pygal's log scale misbehaves
    on huge values); the labels say 1, 10, 100..."""
    if not trend:
        return None
    top = math.ceil(max(_log10(threshold), *(_log10(x) for _, v in trend for x in v))) + 1
    bottom = math.floor(min(0.0, *(_log10(x) for _, v in trend for x in v)))
    labels = [{"value": k, "label": f"{10.0**k:g}"} for k in range(bottom, top + 1)]
    chart = charts.line(
        range=(bottom, top),
        y_labels=labels,
        x_labels=[timezone.localtime(t).strftime("%H:%M") for t, _ in trend],
        show_minor_x_labels=False,
        x_labels_major_count=8,
        dots_size=1.5,
        title="Test statistic (e-value, log scale) against 1/alpha",
        value_formatter=lambda v: f"{10.0**v:.3g}",
    )
    for i, metric in enumerate(COUNT_METRICS):
        chart.add(metric.replace("_", " "), [_log10(v[i]) for _, v in trend])
    chart.add("rolls back at", [_log10(threshold)] * len(trend), stroke_style={"dasharray": "6, 4"})
    latest = trend[-1][1]
    alt = (
        "The canary analysis' test statistic per guardrail metric over time (log scale); "
        f"it rolls back at {threshold:g}. Latest: "
        + ", ".join(f"{m} {v:.3g}" for m, v in zip(COUNT_METRICS, latest, strict=True))
        + "."
    )
    return charts.render(chart, alt=alt)


def _worse(metric: Metric, canary: float | None, stable: float | None) -> bool:
    if canary is None or stable is None:
        return False
    return canary < stable if metric.key == "quality" else canary > stable


def _threshold(metric: Metric) -> str:
    if metric.counted:
        alpha = canary_analysis.policy().alpha
        k = len(COUNT_METRICS)
        return f"rolls back when the test statistic reaches 1/(alpha/{k}) = {k / alpha:g}"
    return "checked against the change gates at the end of each step"


def _statistic_text(test: dict[str, Any] | None) -> str:
    """The canary analysis' sequential test for a metric: its e-value against 1/alpha."""
    if not test:
        return ""
    return f"e-value {test['e_value']:.4g} of {test['threshold']:g}"


def _gate_text(gate: dict[str, Any] | None) -> str:
    """A change gate on a continuous metric as the analysis checked it (canary against stable)."""
    if not gate:
        return ""
    verdict = "passes" if gate.get("passed") else "fails"
    return f"gate {gate.get('rule', '')}: {verdict}"


def _count_text(metric: Metric, totals: Totals | None) -> str:
    if totals is None:
        return "—"
    if metric.counted:
        return f"{getattr(totals, metric.key)} of {totals.requests}"
    if metric.key == "quality":
        return f"n = {totals.quality_n}"
    return f"{totals.requests} requests"


def rollout_dashboard(
    rollout: Rollout, events: Iterable[Event], *, now: datetime | None = None
) -> RolloutDashboard:
    """Everything the rollout page draws from telemetry: four queries whatever the data.

    The series (one query), the totals per arm (one), the version labels (one) and the
    latest iteration notes with their count (two, taken only once the rollout started).
    """
    window = series_window(rollout, now)
    live = rollout.state in ACTIVE_STATES
    refresh = int(getattr(settings, "ROLLOUT_DASHBOARD_REFRESH_SECONDS", 15)) if live else 0
    steps = timeline(rollout, events)
    if window is None:
        return RolloutDashboard(
            live=live, since=None, until=None, step=None, totals={}, metrics=[], versions=[],
            distribution=None, distribution_rows=[], timeline=steps, refresh_seconds=refresh,
        )  # fmt: skip
    since, until, step = window
    points = rollout_series(rollout, since=since, step=step, until=until)
    totals = rollout_arm_totals([rollout]).get(rollout.pk, {})
    order_counts: dict[Any, int] = {}
    for p in points:
        for vid, n in p.versions.items():
            order_counts[vid] = order_counts.get(vid, 0) + n
    order = sorted(order_counts, key=lambda v: -order_counts[v])
    labels = _version_labels(order)
    distribution, rows = _distribution(points, labels, order)
    canary, stable = totals.get(Arm.CANARY), totals.get(Arm.STABLE)
    verdict = canary_analysis.verdict_for(rollout, now=now) if live else None
    evidence = verdict.evidence if verdict else {}
    tests = {t["metric"]: t for t in evidence.get("tests", []) if isinstance(t, dict)}
    gates = {g["metric"]: g for g in evidence.get("gates", []) or [] if isinstance(g, dict)}
    metrics = []
    for m in METRICS:
        c = _finite(m.read(canary)) if canary else None
        s = _finite(m.read(stable)) if stable else None
        metrics.append(
            MetricView(
                key=m.key,
                label=m.label,
                canary=metric_text(m, m.read(canary) if canary else None),
                stable=metric_text(m, m.read(stable) if stable else None),
                canary_count=_count_text(m, canary),
                stable_count=_count_text(m, stable),
                threshold=_threshold(m),
                worse=_worse(m, c, s),
                chart=_metric_chart(m, points),
                statistic=_statistic_text(tests.get(m.key)) or _gate_text(gates.get(m.key)),
                failed=bool(tests.get(m.key, {}).get("failed"))
                or gates.get(m.key, {}).get("passed") is False,
            )
        )
    trend = statistic_trend(rollout, points) if rollout.strategy == RolloutStrategy.CANARY else []
    threshold = len(COUNT_METRICS) / canary_analysis.policy().alpha
    notes_qs = (
        IterationNote.objects.filter(rollout=rollout).select_related("manifest").order_by("-number")
    )
    notes = list(notes_qs[:NOTES_SHOWN])
    total = notes[0].number if notes else 0
    return RolloutDashboard(
        live=live,
        since=since,
        until=until,
        step=step,
        totals=totals,
        metrics=metrics,
        versions=[labels.get(v, "?") for v in order],
        distribution=distribution,
        distribution_rows=rows,
        timeline=steps,
        notes=notes,
        notes_total=total,
        refresh_seconds=refresh,
        verdict=verdict.reason if verdict else "",
        statistic_chart=_statistic_chart(trend, threshold),
        statistic_rows=[(t, [f"{x:.4g}" for x in v]) for t, v in trend if any(x != 1.0 for x in v)],
    )


# --- the fleet ---------------------------------------------------------------------------


@dataclass
class FleetRow:
    """One rollout at a glance: state, weight, error rate per arm, the last note."""

    rollout: Rollout
    weight: str
    canary_errors: str
    stable_errors: str
    health: str  # ok, watch, bad, idle
    note_outcome: str
    note_reason: str
    note_at: datetime | None


ERRORS = METRICS[0]


def fleet_rows(rollouts: Sequence[Rollout]) -> list[FleetRow]:
    """The fleet page's rows for ``rollouts`` (annotated with ``last_note_*``): one query more.

    The arm totals of every rollout come in one query; the last note rides on the
    rollouts' own query (``selectors.with_last_note``).
    """
    totals = rollout_arm_totals(rollouts)
    rows = []
    for r in rollouts:
        arms = totals.get(r.pk, {})
        c, s = arms.get(Arm.CANARY), arms.get(Arm.STABLE)
        cr, sr = (ERRORS.read(c) if c else None), (ERRORS.read(s) if s else None)
        outcome = getattr(r, "last_note_outcome", None) or ""
        if r.state in {"rolled_back", "aborted"}:
            health = "bad"
        elif r.state not in ACTIVE_STATES:
            health = "idle"
        elif r.state == "paused" or _worse(ERRORS, cr, sr):
            health = "watch"
        else:
            health = "ok"
        rows.append(
            FleetRow(
                rollout=r,
                weight=percent(r.weight) if r.strategy == RolloutStrategy.CANARY else "—",
                canary_errors=_arm_rate(c),
                stable_errors=_arm_rate(s),
                health=health,
                note_outcome=outcome,
                note_reason=getattr(r, "last_note_reason", None) or "",
                note_at=getattr(r, "last_note_at", None),
            )
        )
    return rows


def _arm_rate(totals: Totals | None) -> str:
    if totals is None or not totals.requests:
        return "—"
    return f"{metric_text(ERRORS, ERRORS.read(totals))} of {totals.requests}"
