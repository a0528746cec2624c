"""Recovery staleness alerts against PostgreSQL: four sweeps at once announce each episode once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.kernel.models import Notification
from governance.recovery.alerts import recovery_alerts_send
from governance.recovery.services import recovery_run_record
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_concurrent_sweeps_announce_each_stale_proof_once(make_user: Any) -> None:
    assert connection.vendor == "postgresql"
    root = make_user("root")
    accounts.role_grant(user=root, role="administrator", tenant=None, actor=None)
    now = timezone.now()
    drill = recovery_run_record(
        kind="drill",
        outcome="passed",
        started_at=now - timedelta(days=100, minutes=1),
        finished_at=now - timedelta(days=100),
    )
    barrier = start_together(4)

    def work() -> int:
        barrier.wait()
        return recovery_alerts_send(now=now)

    results = in_processes(4, work)
    assert all(r.startswith("ok:") for r in results), results
    # Two episodes (no backup ever, the drill 100 days old), each announced by one sweep.
    assert sum(int(r.removeprefix("ok:")) for r in results) == 2
    episodes = sorted(
        e.payload["episode"] for e in Event.objects.filter(kind=EventKind.RECOVERY_STALE)
    )
    assert episodes == ["backup:never", f"drill:{drill.pk}"]
    assert sorted(Notification.objects.filter(user=root).values_list("subject", flat=True)) == [
        "recovery:stale:backup",
        "recovery:stale:drill",
    ]
    assert verify_database().ok
