"""The demo's telemetry: seeded counters sent through the real ingest, step by step."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.utils import timezone

from accounts.models import Tenant
from rollouts.analysis import binomial
from rollouts.choices import BUCKETS, PointerKind, RolloutState
from rollouts.controller import rollout_iterate
from rollouts.models import PointerMove, TelemetryBatch
from rollouts.telemetry_services import telemetry_ingest

#: Healthy guardrail rates of the demo's services (both arms alike unless a canary regresses).
DEMO_RATES = {"refusals": 0.01, "policy_violations": 0.002}
#: The share of requests in each latency bucket (rollouts.telemetry.LATENCY_BOUNDS_MS).
DEMO_LATENCY_SHARES = (0.25, 0.35, 0.22, 0.1, 0.05, 0.02, 0.01, 0.0, 0.0)


def demo_counters(rng: Any, requests: int, error_rate: float = 0.02) -> dict[str, Any]:
    """One telemetry row's counters for ``requests`` requests, drawn with ``rng`` (a seeded
    ``random.Random``): errors, refusals, policy violations, a latency histogram (breaches of
    the 1 s SLO are the slower buckets), cost and a sampled quality score."""

    histogram, left, share_left = [], requests, 1.0
    for share in DEMO_LATENCY_SHARES:
        count = binomial(rng, left, min(1.0, share / share_left)) if share_left > 0 else 0
        histogram.append(count)
        left, share_left = left - count, share_left - share
    histogram[1] += left  # rounding: the rest were fast
    scored = requests // 10
    return {
        "requests": requests,
        "errors": binomial(rng, requests, error_rate),
        **{name: binomial(rng, requests, rate) for name, rate in DEMO_RATES.items()},
        "latency_slo_breaches": sum(histogram[5:]),
        "latency_ms": histogram,
        "cost": round(requests * 0.0021, 4),
        "quality_n": scored,
        "quality_sum": round(scored * 0.86, 3),
        "quality_sumsq": round(scored * (0.86**2 + 0.01), 3),
    }


def whole_minute_after(moment: datetime) -> datetime:
    """The first telemetry bucket wholly after ``moment`` (the analysis counts those)."""
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def step_windows(rollout: Any) -> list[tuple[datetime, datetime | None, int]]:
    """A canary rollout's steps as (start, end or None for the current one, weight)."""

    moves = list(
        PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY)
        .order_by("id")
        .values_list("created_at", "weight")
    )
    starts = [
        (at, int(w or 0)) for i, (at, w) in enumerate(moves) if i == 0 or moves[i - 1][0] != at
    ]
    return [
        (at, starts[i + 1][0] if i + 1 < len(starts) else None, weight)
        for i, (at, weight) in enumerate(starts)
        if weight
    ]


def seed_regression(rollout: Any, tenant: Tenant) -> None:
    """The 1.3.0 canary's telemetry, minute by minute: 50 canary requests at 10% errors,
    450 stable at 2% (a 5x regression), each minute sent through the ingest and followed
    by one controller iteration, with the clock moved just past the minute (time-machine),
    until the canary analysis rolls it back (within 400 canary requests). The ingest and the
    iteration each commit on their own; a second run re-sends nothing (the batch ids are
    fixed) and goes on where the first stopped."""

    target = rollout.targets.select_related("slot__application", "baseline", "candidate").get()
    where = {"application": target.slot.application.slug, "slot": target.slot.name,
             "rollout": rollout.reference}  # fmt: skip
    first = whole_minute_after(step_windows(rollout)[-1][0])
    for minute in range(30):
        if rollout.state != RolloutState.PROGRESSING:
            break
        bucket = first + timedelta(minutes=minute)
        rng = random.Random(f"seed-demo-{rollout.reference}-{minute}")
        rows = [
            {**where, "arm": "canary", "version": target.candidate.version,
             "bucket_start": bucket.isoformat(), **demo_counters(rng, 50, error_rate=0.10)},
            {**where, "arm": "stable", "version": target.baseline.version,
             "bucket_start": bucket.isoformat(), **demo_counters(rng, 450, error_rate=0.02)},
        ]  # fmt: skip
        with time_machine.travel(bucket + timedelta(seconds=65), tick=True):
            telemetry_ingest(principal_or_tenant=tenant,
                             batch_id=f"seed-demo-{rollout.reference}-{minute}", rows=rows)  # fmt: skip
            rollout_iterate(rollout=rollout)
        rollout.refresh_from_db()


def seed_canary_telemetry(rollout: Any, *, acme: Tenant, globex: Tenant) -> None:
    """Healthy telemetry for every step of the lead qualification canary, through the
    ingest: one bucket every 10 minutes in the past steps (received when each ended), one a
    minute in the current one (received now). Acme's requests split by the step's weight;
    globex's, on its 1.0.0 override, belong to no rollout. The batch ids are fixed, so a
    second run is answered "duplicate" and stores nothing."""

    prefix = f"seed-demo-{rollout.reference}-step-"
    if TelemetryBatch.objects.filter(tenant=acme, batch_id__startswith=prefix).exists():
        return
    target = rollout.targets.select_related("slot__application", "baseline", "candidate").get()
    where = {"application": target.slot.application.slug, "slot": target.slot.name}
    now = timezone.now()
    for number, (start, end, weight) in enumerate(step_windows(rollout), 1):
        current = end is None
        every = timedelta(minutes=1 if current else 10)
        per_bucket = 150 if current else 2000  # acme's requests, both arms
        canary = round(per_bucket * weight / BUCKETS)
        rng = random.Random(f"{prefix}{number}")
        rows: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        bucket = whole_minute_after(start)
        while bucket + timedelta(minutes=1) <= (end or now):
            at = bucket.isoformat()
            for arm, version, count in (("canary", target.candidate, canary),
                                        ("stable", target.baseline, per_bucket - canary)):  # fmt: skip
                rows.append({**where, "version": version.version, "rollout": rollout.reference,
                             "arm": arm, "bucket_start": at, **demo_counters(rng, count)})  # fmt: skip
            others.append({**where, "version": target.baseline.version, "bucket_start": at,
                           **demo_counters(rng, per_bucket // 4)})  # fmt: skip
            bucket += every
        if not rows:
            continue
        with time_machine.travel(min(end or now, now), tick=True):
            telemetry_ingest(principal_or_tenant=acme, batch_id=f"{prefix}{number}", rows=rows)
            telemetry_ingest(principal_or_tenant=globex, batch_id=f"{prefix}{number}",
                             rows=others)  # fmt: skip
