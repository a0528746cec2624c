"""Overdue re-certification reminders against PostgreSQL: four sweeps at once remind once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.kernel.models import Notification
from registry import services as registry
from reviews import services
from reviews.models import ChangeItem, Recertification
from tests.factories import change_row
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together
from tests.reviews.conftest import PINS, make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_concurrent_sweeps_remind_an_overdue_recertification_once(
    acme: Any, people: dict[str, Any]
) -> None:
    assert connection.vendor == "postgresql"
    registry.install_builtin_classes()
    prompt = make_artifact(acme, "prompt", "qualify-lead", owner=people["admin"])
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    emergency = change_row(acme, people["author"], status="promoted", emergency=True)
    ChangeItem.objects.create(change=emergency, artifact=prompt, proposed=version)
    now = timezone.now()
    recertification = Recertification.objects.create(
        emergency=emergency, opened_at=now - timedelta(days=20), due_at=now - timedelta(days=6)
    )
    barrier = start_together(4)

    def work() -> int:
        barrier.wait()
        return services.recertification_reminders_send(now=now)

    results = in_processes(4, work)
    assert all(r.startswith("ok:") for r in results), results
    assert sum(int(r.removeprefix("ok:")) for r in results) == 2  # admin (owner), security
    assert Event.objects.filter(kind=EventKind.RECERTIFICATION_OVERDUE).count() == 1
    notes = Notification.objects.filter(subject=f"recertification:{recertification.pk}")
    assert sorted(notes.values_list("user__username", flat=True)) == ["admin", "security"]
    recertification.refresh_from_db()
    assert recertification.reminded_at == now
    assert verify_database().ok
