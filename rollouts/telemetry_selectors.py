"""Reads of rollout telemetry, shared by the controller's analysis, the pages, the API and registry's hooks.

Every function runs a fixed number of queries whatever the number of rows or the time
range (sums are taken in SQL; a series is grouped by stored bucket and re-bucketed here).
Raw and hour rows are summed alike, so a fold never changes an answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Q, QuerySet, Sum
from django.utils import timezone

from registry.models import Version
from rollouts.models import Rollout, TelemetryCounter
from rollouts.telemetry import FLOAT_FIELDS, INT_FIELDS, MAX_FIELDS, Totals

__all__ = [
    "SeriesPoint",
    "UsageRow",
    "recent_traffic",
    "recent_traffic_by_version",
    "rollout_arm_totals",
    "rollout_series",
    "totals_annotations",
    "usage_by_version",
    "version_usage",
]

#: The most points ``rollout_series`` returns (a wider range gets a wider step).
MAX_SERIES_POINTS = 2000


def totals_annotations(prefix: str = "") -> dict[str, Any]:
    """``annotate()``/``aggregate()`` arguments summing every counter column (max for the sequence)."""
    sums: dict[str, Any] = {f"{prefix}{name}": Sum(name) for name in (*INT_FIELDS, *FLOAT_FIELDS)}
    sums.update({f"{prefix}{name}": Max(name) for name in MAX_FIELDS})
    return sums


def _ids(objects: Iterable[Any]) -> list[Any]:
    return [getattr(o, "pk", o) for o in objects]


def rollout_arm_totals(
    rollouts: Iterable[Rollout | Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[Any, dict[str, Totals]]:
    """``{rollout id: {arm: Totals}}`` for many rollouts (objects or ids) in ONE query.

    Only rows keyed by the rollout count (a retried rollout is a new rollout: fresh
    counters). ``since``/``until`` bound ``bucket_start`` (half-open). A rollout without
    telemetry is absent from the answer.
    """
    ids = _ids(rollouts)
    if not ids:
        return {}
    rows = TelemetryCounter.objects.filter(rollout_id__in=ids)
    if since is not None:
        rows = rows.filter(bucket_start__gte=since)
    if until is not None:
        rows = rows.filter(bucket_start__lt=until)
    answer: dict[Any, dict[str, Totals]] = defaultdict(dict)
    for row in rows.order_by().values("rollout_id", "arm").annotate(**totals_annotations()):
        answer[row["rollout_id"]][row["arm"]] = Totals.from_row(row)
    return dict(answer)


@dataclass
class SeriesPoint:
    """One step of a rollout's series: totals per arm and requests per version."""

    start: datetime
    arms: dict[str, Totals] = field(default_factory=dict)
    versions: dict[Any, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.arms.values())


def _floor(moment: datetime, origin: datetime, step: timedelta) -> datetime:
    return origin + step * ((moment - origin) // step)


def rollout_series(
    rollout: Rollout,
    *,
    since: datetime,
    step: timedelta,
    until: datetime | None = None,
) -> list[SeriesPoint]:
    """The rollout's counters from ``since`` to ``until`` (default now) in steps of ``step``.

    One query (grouped by stored bucket, arm and version); every step in the range is
    present, empty ones with no arms, so a chart's x axis is continuous. The step widens
    when the range would hold more than ``MAX_SERIES_POINTS`` points.
    """
    until = until or timezone.now()
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    if (until - since) / step > MAX_SERIES_POINTS:
        step = (until - since) / MAX_SERIES_POINTS
    points: dict[datetime, SeriesPoint] = {}
    cursor = since
    while cursor < until:
        points[cursor] = SeriesPoint(start=cursor)
        cursor += step
    rows = (
        TelemetryCounter.objects.filter(
            rollout_id=rollout.pk, bucket_start__gte=since, bucket_start__lt=until
        )
        .order_by()
        .values("bucket_start", "arm", "version_id")
        .annotate(**totals_annotations())
    )
    for row in rows:
        point = points.get(_floor(row["bucket_start"], since, step))
        if point is None:
            continue
        totals = Totals.from_row(row)
        point.arms.setdefault(row["arm"], Totals()).add(totals)
        vid = row["version_id"]
        point.versions[vid] = point.versions.get(vid, 0) + totals.requests
    return list(points.values())


@dataclass(frozen=True)
class UsageRow:
    """Who used a version: one tenant and application, with requests in the last 24 h and 7 d."""

    version_id: Any
    tenant_slug: str
    application_slug: str
    requests_24h: int
    requests_7d: int
    last_bucket: datetime | None

    @property
    def consumer(self) -> str:
        """The ``VersionUsage.consumer`` spelling: ``tenant/application``."""
        return f"{self.tenant_slug}/{self.application_slug}"


def usage_by_version(
    versions: Iterable[Version | Any], *, now: datetime | None = None
) -> dict[Any, list[UsageRow]]:
    """``{version id: [UsageRow]}`` (tenants and applications with requests in the last 7 days), one query.

    Rows are ordered by 7-day requests, busiest first. Versions without traffic are absent.
    """
    ids = _ids(versions)
    if not ids:
        return {}
    now = now or timezone.now()
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    rows = (
        TelemetryCounter.objects.filter(version_id__in=ids, bucket_start__gte=week)
        .order_by()
        .values("version_id", "tenant__slug", "application__slug")
        .annotate(
            requests_7d=Sum("requests"),
            requests_24h=Sum("requests", filter=Q(bucket_start__gte=day)),
            last_bucket=Max("bucket_start"),
        )
        .order_by("version_id", "-requests_7d", "tenant__slug", "application__slug")
    )
    answer: dict[Any, list[UsageRow]] = defaultdict(list)
    for row in rows:
        if not row["requests_7d"]:
            continue
        answer[row["version_id"]].append(
            UsageRow(
                version_id=row["version_id"],
                tenant_slug=row["tenant__slug"],
                application_slug=row["application__slug"],
                requests_24h=int(row["requests_24h"] or 0),
                requests_7d=int(row["requests_7d"] or 0),
                last_bucket=row["last_bucket"],
            )
        )
    return dict(answer)


def version_usage(version: Version | Any, *, now: datetime | None = None) -> list[UsageRow]:
    """Tenants and applications that used ``version`` in the last 7 days (with their 24 h count)."""
    return usage_by_version([version], now=now).get(getattr(version, "pk", version), [])


def recent_traffic_by_version(
    versions: Iterable[Version | Any], *, hours: int = 24, now: datetime | None = None
) -> dict[Any, int]:
    """``{version id: requests in the last hours}`` for many versions, one query (absent = 0)."""
    ids = _ids(versions)
    if not ids:
        return {}
    since = (now or timezone.now()) - timedelta(hours=hours)
    rows: QuerySet[TelemetryCounter, dict[str, Any]] = (
        TelemetryCounter.objects.filter(version_id__in=ids, bucket_start__gte=since)
        .order_by()
        .values("version_id")
        .annotate(total=Sum("requests"))
    )
    return {row["version_id"]: int(row["total"] or 0) for row in rows}


def recent_traffic(version: Version | Any, hours: int = 24, *, now: datetime | None = None) -> int:
    """Requests ``version`` served in the last ``hours`` (every tenant and application)."""
    vid = getattr(version, "pk", version)
    return recent_traffic_by_version([vid], hours=hours, now=now).get(vid, 0)
