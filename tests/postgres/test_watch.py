"""Active means watched, on PostgreSQL: two controllers judging the same breach at once
downgrade it once (the watch's advisory lock, and the active version read again under it)."""

from __future__ import annotations

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
