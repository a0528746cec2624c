"""Active means watched, on PostgreSQL: two controllers judging the same breach at once
downgrade it once (the watch's advisory lock, and the active version read again under it)."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact
from reviews.choices import ActivationKind
from reviews.models import Activation, ChangeGate
from reviews.services import versions_activate
from rollouts.models import TelemetryCounter
from rollouts.watch import watch_cycle
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together
from tests.rollouts.manifest_setup import world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_watches_at_once_downgrade_once(make_user: Any, acme: Any) -> None:
    assert connection.vendor == "postgresql"
    w = world(make_user, acme)
    versions_activate(versions=[w.v2], change=w.change, actor=None, reason="the default",
                      kind=ActivationKind.PROMOTION)  # fmt: skip
    ChangeGate.objects.create(tenant=acme, artifact_class=w.prompt.artifact_class,
                              gates=[{"metric": "latency_p95_ms", "max": 800}])  # fmt: skip
    now = timezone.now()
    TelemetryCounter.objects.create(
        tenant=acme, application=w.slot.application, slot=w.slot, version=w.v2,
        bucket_start=now - timedelta(minutes=10), requests=300, latency_le_5000=300,
    )  # fmt: skip
    barrier = start_together(3)

    def work() -> dict[str, int]:
        barrier.wait()
        return watch_cycle(now=now)

    results = in_processes(3, work)
    assert all(r.startswith("ok:") for r in results), results
    assert Artifact.objects.get(pk=w.prompt.pk).active_version == w.v1
    assert Event.objects.filter(kind=EventKind.VERSION_DOWNGRADED).count() == 1
    assert Activation.objects.filter(artifact=w.prompt, kind=ActivationKind.ROLLBACK).count() == 1


def test_two_drifting_batches_at_once_open_one_episode(make_user: Any, acme: Any) -> None:
    from rollouts.models import DeploymentDrift
    from rollouts.telemetry_services import telemetry_ingest

    w = world(make_user, acme)
    now = timezone.now()
    turn = multiprocessing.get_context("fork").Value("i", 0)
    barrier = start_together(4)

    def work() -> str:
        with turn.get_lock():
            turn.value += 1
            n = turn.value
        row = {
            "application": w.slot.application.slug, "slot": w.slot.name,
            "version": w.v1.version, "bucket_start": (now - timedelta(minutes=1)).isoformat(),
            "requests": 5, "manifest_sha256": "cd" * 32,
        }  # fmt: skip
        barrier.wait()
        return telemetry_ingest(
            principal_or_tenant=acme, batch_id=f"drift-{n}", rows=[row], now=now
        ).status

    results = in_processes(4, work)
    assert results == ["ok:accepted"] * 4, results
    (drift,) = DeploymentDrift.objects.all()
    assert drift.requests == 20  # the losers added to the winner's episode
    assert Event.objects.filter(kind=EventKind.DEPLOYMENT_DRIFT_DETECTED).count() == 1
