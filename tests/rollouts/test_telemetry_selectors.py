"""Telemetry selectors: totals per arm in one query, series, usage, recent traffic, percentiles."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Tenant
from registry.models import Version
from rollouts.models import Rollout, Slot, TelemetryCounter
from rollouts.telemetry import LATENCY_BOUNDS_MS, LATENCY_FIELDS, Totals, percentile_ms
from rollouts.telemetry_selectors import (
    recent_traffic,
    rollout_arm_totals,
    rollout_series,
    version_usage,
)

pytestmark = pytest.mark.django_db


def counter(
    slot: Slot, version: Version, tenant: Tenant, *, minutes_ago: float, **kw: Any
) -> TelemetryCounter:
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    return TelemetryCounter.objects.create(
        tenant=tenant,
        application=slot.application,
        slot=slot,
        version=version,
        bucket_start=start,
        **kw,
    )


def test_percentiles_read_the_bucket_holding_the_rank() -> None:
    assert len(LATENCY_FIELDS) == len(LATENCY_BOUNDS_MS) == 9
    assert percentile_ms([0] * 9, 0.5) is None
    hist = [10, 80, 5, 5, 0, 0, 0, 0, 0]
    assert percentile_ms(hist, 0.5) == 100
    assert percentile_ms(hist, 0.95) == 250
    assert percentile_ms(hist, 0.96) == 500
    assert percentile_ms([0, 0, 0, 0, 0, 0, 0, 0, 3], 0.5) == math.inf


def test_arm_totals_for_many_rollouts_in_one_query(
    canary_rollout: Rollout, slot: Slot, prompt_v1: Version, prompt_v2: Version, acme: Tenant
) -> None:
    counter(
        slot,
        prompt_v2,
        acme,
        minutes_ago=3,
        rollout=canary_rollout,
        arm="canary",
        requests=10,
        errors=2,
        latency_le_50=10,
    )
    counter(
        slot,
        prompt_v2,
        acme,
        minutes_ago=2,
        rollout=canary_rollout,
        arm="canary",
        requests=5,
        errors=1,
        latency_le_100=5,
        snapshot_sequence=7,
    )
    counter(
        slot,
        prompt_v1,
        acme,
        minutes_ago=2,
        rollout=canary_rollout,
        arm="stable",
        requests=100,
        errors=1,
        cost=1.5,
    )
    counter(slot, prompt_v1, acme, minutes_ago=2, requests=1000)  # no rollout
    with CaptureQueriesContext(connection) as ctx:
        totals = rollout_arm_totals([canary_rollout, "00000000-0000-0000-0000-000000000000"])
    assert len(ctx.captured_queries) == 1
    canary = totals[canary_rollout.pk]["canary"]
    assert (canary.requests, canary.errors, canary.snapshot_sequence) == (15, 3, 7)
    assert canary.histogram[:2] == [10, 5]
    assert canary.rate("errors") == pytest.approx(0.2)
    assert totals[canary_rollout.pk]["stable"].cost == pytest.approx(1.5)

    since = timezone.now() - timedelta(minutes=10)
    with CaptureQueriesContext(connection) as ctx:
        series = rollout_series(canary_rollout, since=since, step=timedelta(minutes=5))
    assert len(ctx.captured_queries) == 1
    assert sum(p.requests for p in series) == 115
    assert sum(p.versions.get(prompt_v2.pk, 0) for p in series) == 15


def test_usage_and_recent_traffic(
    slot: Slot, prompt_v1: Version, acme: Tenant, platform: Tenant
) -> None:
    counter(slot, prompt_v1, acme, minutes_ago=10, requests=7)
    counter(slot, prompt_v1, acme, minutes_ago=60 * 30, requests=5)  # 30 h ago
    counter(slot, prompt_v1, platform, minutes_ago=60 * 24 * 8, requests=99)  # 8 days ago
    rows = version_usage(prompt_v1)
    assert [(r.consumer, r.requests_24h, r.requests_7d) for r in rows] == [
        ("acme/sales-agent", 7, 12)
    ]
    assert recent_traffic(prompt_v1) == 7
    assert recent_traffic(prompt_v1, hours=24 * 9) == 111
    assert Totals().p95_ms is None
