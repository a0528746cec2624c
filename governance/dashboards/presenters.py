"""What the readiness page shows, built from the dashboard's reads: the lead-time chart (its
bars, axis and guides, an SVG image) and durations in words. No queries here."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from governance.dashboards.selectors import LeadTimes, ReadinessDashboard
from governance.kernel import charts

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
