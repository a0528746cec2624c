"""Telemetry's fixed vocabulary: the latency histogram's bounds, the counted metrics, totals and percentiles.

Defined once here; the models, the ingest service, the selectors, the analysis and the
charts all read these names. Changing ``LATENCY_BOUNDS_MS`` changes the table's columns
(one per bound), so it needs a migration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Upper bounds (milliseconds, inclusive) of the latency histogram's buckets; the last is
#: +inf. A client reports, per bucket, how many requests took <= bound (and more than the
#: previous bound).
LATENCY_BOUNDS_MS: tuple[float, ...] = (50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)

#: The counter columns of the histogram, in the order of ``LATENCY_BOUNDS_MS``.
LATENCY_FIELDS: tuple[str, ...] = tuple(
    f"latency_le_{int(b)}" if math.isfinite(b) else "latency_over" for b in LATENCY_BOUNDS_MS
)

#: Count metrics (each is a count of requests, so each is <= requests): the guardrails.
COUNT_METRICS: tuple[str, ...] = (
    "errors",
    "refusals",
    "policy_violations",
    "latency_slo_breaches",
)

#: Every additive integer column of a counter row (summed by selectors and by the rollup).
INT_FIELDS: tuple[str, ...] = ("requests", *COUNT_METRICS, "quality_n", *LATENCY_FIELDS)

#: Every additive float column.
FLOAT_FIELDS: tuple[str, ...] = ("cost", "quality_sum", "quality_sumsq")

#: Columns the rollup takes the maximum of instead of the sum.
MAX_FIELDS: tuple[str, ...] = ("snapshot_sequence",)


def percentile_ms(histogram: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a latency histogram, in milliseconds; None if empty.

    Read as the upper bound of the bucket holding the q-th request (conservative: the true
    value is at most that bound). A quantile in the last bucket is ``math.inf`` (slower than
    the last finite bound, with no upper limit to report).
    """
    total = sum(histogram)
    if total <= 0:
        return None
    rank = math.ceil(q * total)
    running = 0
    for bound, count in zip(LATENCY_BOUNDS_MS, histogram, strict=True):
        running += count
        if running >= rank:
            return float(bound)
    return math.inf


@dataclass
class Totals:
    """Summed counters of some rows (one arm of a rollout, one version, one bucket)."""

    requests: int = 0
    errors: int = 0
    refusals: int = 0
    policy_violations: int = 0
    latency_slo_breaches: int = 0
    quality_n: int = 0
    cost: float = 0.0
    quality_sum: float = 0.0
    quality_sumsq: float = 0.0
    snapshot_sequence: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS_MS))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Totals:
        """From a ``values()`` row holding the columns of ``INT_FIELDS``/``FLOAT_FIELDS`` (None = 0)."""
        return cls(
            requests=int(row.get("requests") or 0),
            errors=int(row.get("errors") or 0),
            refusals=int(row.get("refusals") or 0),
            policy_violations=int(row.get("policy_violations") or 0),
            latency_slo_breaches=int(row.get("latency_slo_breaches") or 0),
            quality_n=int(row.get("quality_n") or 0),
            cost=float(row.get("cost") or 0.0),
            quality_sum=float(row.get("quality_sum") or 0.0),
            quality_sumsq=float(row.get("quality_sumsq") or 0.0),
            snapshot_sequence=int(row.get("snapshot_sequence") or 0),
            histogram=[int(row.get(f) or 0) for f in LATENCY_FIELDS],
        )

    def add(self, other: Totals) -> None:
        """Add ``other`` into this (the snapshot sequence takes the maximum)."""
        for name in ("requests", *COUNT_METRICS, "quality_n"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in FLOAT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.snapshot_sequence = max(self.snapshot_sequence, other.snapshot_sequence)
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]

    def rate(self, metric: str) -> float | None:
        """``metric`` per request (errors / requests, ...); None without requests."""
        return getattr(self, metric) / self.requests if self.requests else None

    @property
    def p50_ms(self) -> float | None:
        return percentile_ms(self.histogram, 0.5)

    @property
    def p95_ms(self) -> float | None:
        return percentile_ms(self.histogram, 0.95)

    @property
    def cost_per_request(self) -> float | None:
        return self.cost / self.requests if self.requests else None

    @property
    def quality_mean(self) -> float | None:
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def quality_variance(self) -> float | None:
        """Sample variance of the quality score (None below two scores)."""
        n = self.quality_n
        if n < 2:
            return None
        return max(0.0, (self.quality_sumsq - self.quality_sum**2 / n) / (n - 1))
