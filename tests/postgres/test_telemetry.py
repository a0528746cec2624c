"""Telemetry against PostgreSQL, in parallel processes: a batch sent four times at once counts
once; four different batches at once all count (the usage upsert adds, never overwrites);
raw rows are append-only (UPDATE, DELETE and TRUNCATE refused) except for the fold."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from registry.models import VersionUsage
from rollouts.models import TelemetryBatch, TelemetryCounter
from rollouts.telemetry_services import telemetry_ingest
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together
from tests.rollouts.manifest_setup import World, world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def rows(w: World, requests: int) -> list[dict[str, Any]]:
    return [
        {
            "application": w.slot.application.slug,
            "slot": w.slot.name,
            "version": w.v1.version,
            "bucket_start": timezone.now().isoformat(),
            "requests": requests,
            "errors": 1,
        }
    ]


def test_a_batch_sent_four_times_at_once_counts_once(make_user: Any, acme: Any) -> None:
    assert connection.vendor == "postgresql"
    w = world(make_user, acme)
    barrier = start_together(4)

    def work() -> str:
        barrier.wait()
        return telemetry_ingest(principal_or_tenant=acme, batch_id="same", rows=rows(w, 7)).status

    results = in_processes(4, work)
    assert sorted(results) == ["ok:accepted", "ok:duplicate", "ok:duplicate", "ok:duplicate"]
    assert TelemetryBatch.objects.count() == 1
    assert TelemetryCounter.objects.count() == 1
    assert VersionUsage.objects.get(version=w.v1).requests == 7


def test_four_batches_at_once_all_count_in_usage(make_user: Any, acme: Any) -> None:
    w = world(make_user, acme)
    barrier = start_together(4)

    def work() -> str:
        import os  # each forked child sends its own batch, named by its process id

        barrier.wait()
        return telemetry_ingest(
            principal_or_tenant=acme, batch_id=f"b-{os.getpid()}", rows=rows(w, 5)
        ).status

    assert in_processes(4, work) == ["ok:accepted"] * 4
    assert TelemetryCounter.objects.count() == 4
    usage = VersionUsage.objects.get(version=w.v1)
    assert (usage.consumer, usage.requests) == (f"acme/{w.slot.application.slug}", 20)


def test_raw_rows_are_append_only(make_user: Any, acme: Any) -> None:
    w = world(make_user, acme)
    telemetry_ingest(principal_or_tenant=acme, batch_id="b", rows=rows(w, 3))
    counters = TelemetryCounter.objects.all()
    for change in (
        lambda: counters.update(requests=0),
        lambda: counters.delete(),
        lambda: TelemetryBatch.objects.update(rows=0),
    ):
        with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
            change()
    for table in (TelemetryCounter._meta.db_table, TelemetryBatch._meta.db_table):
        with (
            pytest.raises(DatabaseError, match="truncate"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f'TRUNCATE "{table}" CASCADE')
    assert TelemetryCounter.objects.get().requests == 3
