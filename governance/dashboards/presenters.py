"""What the readiness page shows, built from the dashboard's reads: the lead-time chart (its
bars, axis and guides, an SVG image) and durations in words. No queries here."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from governance.dashboards.selectors import LeadTimes, ReadinessDashboard
from governance.kernel import charts
from governance.recovery.models import RecoveryRun
from governance.recovery.selectors import RecoveryStatus

#: More promoted changes than this are drawn as one bar per day (the day's median).
CHART_MAX_BARS = 60
#: A bar is at least this share of the axis tall, so a change promoted within minutes
#: still shows a bar (its true time is in its tooltip and in the table below the chart).
MIN_BAR_SHARE = 0.015


@dataclass
class LeadTimeChart:
    image: charts.ChartImage
    per_day: bool
    bars: int


def duration_text(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def lead_time_chart(lead: LeadTimes) -> LeadTimeChart | None:
    """Bars of the opened-to-promoted time (pygal, an SVG image: no script, no CDN).

    One bar per promoted change, oldest promotion on the left; past ``CHART_MAX_BARS`` one
    bar per day holding that day's median. Major guides mark the median and the p90. The
    axis ticks are round and distinct in a unit that fits (``charts.duration_axis``), and
    a zero-length bar is drawn ``MIN_BAR_SHARE`` tall instead of vanishing.
    """
    if not lead.samples:
        return None
    per_day = len(lead.samples) > CHART_MAX_BARS
    values: list[tuple[float, str, str]] = []
    if per_day:
        by_day: dict[Any, list[float]] = {}
        for s in lead.samples:
            by_day.setdefault(timezone.localtime(s.promoted_at).date(), []).append(s.hours)
        for day, hours in sorted(by_day.items()):
            median = statistics.median(hours)
            values.append(
                (median, f"{day:%Y-%m-%d}: median {duration_text(median)} over {len(hours)}", "")
            )
    else:
        for s in lead.samples:
            title = (
                f"{s.reference} ({s.tenant}): {duration_text(s.hours)}, promoted "
                f"{timezone.localtime(s.promoted_at):%Y-%m-%d %H:%M}"
            )
            values.append((s.hours, title, s.url))
    ticks = charts.duration_axis(max(v for v, _, _ in values))
    top = ticks[-1][0]
    y_labels: list[dict[str, Any]] = [{"value": h, "label": text} for h, text in ticks]
    majors: list[float] = []
    for name, mark in (("median", lead.median_hours), ("p90", lead.p90_hours)):
        if mark is not None:
            y_labels.append({"value": mark, "label": f"{name} {charts.duration_label(mark)}"})
            majors.append(mark)
    chart = charts.bar(
        show_legend=False,
        range=(0, top),
        y_labels=y_labels,
        y_labels_major=majors,
        show_minor_x_labels=False,
        height=240,
    )
    chart.add(
        "Opened to promoted",
        [
            {
                "value": max(v, top * MIN_BAR_SHARE),
                "label": title,
                **({"xlink": url} if url else {}),
            }
            for v, title, url in values
        ],
    )
    shape = (
        "One bar per day: the median time of the changes promoted that day."
        if per_day
        else "One bar per promoted change, oldest promotion first."
    )
    alt = (
        f"Time from opened to promoted. {shape} Median {duration_text(lead.median_hours)}, "
        f"p90 {duration_text(lead.p90_hours)}."
    )
    return LeadTimeChart(image=charts.render(chart, alt=alt), per_day=per_day, bars=len(values))


def show_recent_usage(board: ReadinessDashboard, recent: dict[Any, list[Any]]) -> None:
    """Give each deprecation on the board its ``recent_usage``: who used the version lately
    (``recent``: usage rows by version id), within the board's tenants when it has any."""
    slugs = {t.slug for t in board.tenants}
    for d in board.deprecations:
        d.recent_usage = [  # type: ignore[attr-defined]  # shown by the page, not a column
            u for u in recent.get(d.version_id, []) if u.tenant_slug in slugs or not slugs
        ]


@dataclass
class RecoveryRow:
    """One recovery proof as the readiness page shows it: the newest run, its result, how old
    the newest passed one is (stale past its limit), and the facts measured."""

    key: str
    label: str
    subject: str
    result: str  # "passed", "failed" or "none"
    last_text: str
    age_text: str
    limit_text: str
    stale: bool
    facts: list[str]
    error: str
    version_url: str
    version_label: str


def _number(details: dict[str, Any], *names: str) -> float | None:
    """The first of ``names`` in a run's details that holds a number."""
    for name in names:
        value = details.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _bytes_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns at GB


def _facts(run: Any) -> list[str]:
    """What a run measured, in words (the details each kind records)."""
    if run is None:
        return []
    d = run.details or {}
    facts = []
    size = _number(d, "bytes")
    if size is not None:
        facts.append(f"size {_bytes_text(size)}")
    log_size = _number(d, "log_size")
    if log_size is not None:
        facts.append(f"log {log_size:.0f} events")
    for label, name in (  # what drills and rehearsals record (governance.recovery.drills)
        ("restore", "restore_seconds"),
        ("verify", "verify_seconds"),
        ("time to revert", "revert_seconds"),
        ("roll forward", "forward_seconds"),
    ):
        seconds = _number(d, name)
        if seconds is not None:
            facts.append(f"{label} {seconds:.2f} s")
    return facts


def _ago(age: Any) -> str:
    if age is None:
        return "never"
    return f"{duration_text(age.total_seconds() / 3600)} ago"


def recovery_rows(status: RecoveryStatus) -> list[RecoveryRow]:
    """The backup, the drill, then each slot's rehearsal; no queries (the runs are read)."""
    rows = []
    for proof in status.proofs:
        last = proof.last
        version = last.version if last is not None else None
        rows.append(
            RecoveryRow(
                key=f"{proof.kind}:{proof.subject}" if proof.subject else proof.kind,
                label=str(RecoveryRun.Kind(proof.kind).label),
                subject=proof.subject,
                result=last.outcome if last is not None else "none",
                last_text=_ago(proof.last_age),
                age_text=_ago(proof.age),
                limit_text=duration_text(proof.limit.total_seconds() / 3600),
                stale=proof.stale,
                facts=_facts(last),
                error=last.error if last is not None else "",
                version_url=version.get_absolute_url() if version is not None else "",
                version_label=version.path if version is not None else "",
            )
        )
    return rows
