"""The rollout controller against PostgreSQL, in parallel processes: duplicate beats and sweeps.

Four controller cycles at the same moment over three active rollouts note each rollout once
(the row is locked, skip-locked, and a cycle within half an interval of the last is a
duplicate); two sweeps at once announce an expiring flag once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from governance import sweep as governance
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.kernel.models import Notification
from rollouts.choices import RolloutState
from rollouts.controller import controller_cycle
from rollouts.models import IterationNote, ManifestVersion
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together
from tests.rollouts.manifest_setup import rollout_of, world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_concurrent_beats_note_each_rollout_once(make_user: Any, acme: Any) -> None:
    assert connection.vendor == "postgresql"
    w = world(make_user, acme)
    rollouts = [rollout_of(w, state=RolloutState.PROGRESSING, step=i) for i in (1, 2, 3)]
    rollouts.append(rollout_of(w, state=RolloutState.PAUSED, step=1))
    now = timezone.now()
    barrier = start_together(4)

    def work() -> dict[str, int]:
        barrier.wait()
        return controller_cycle(now=now)

    results = in_processes(4, work)
    assert all(r.startswith("ok:") for r in results), results
    for rollout in rollouts:
        notes = IterationNote.objects.filter(rollout=rollout)
        assert list(notes.values_list("number", flat=True)) == [1], rollout
        assert ManifestVersion.objects.filter(rollout=rollout).count() == 1
    assert Event.objects.filter(kind=EventKind.ROLLOUT_ITERATION_NOTED).count() == 4
    assert Event.objects.filter(kind=EventKind.ROLLOUT_MANIFEST_APPENDED).count() == 4
    assert verify_database().ok


def test_two_concurrent_sweeps_announce_an_expiring_flag_once(make_user: Any, acme: Any) -> None:
    w = world(make_user, acme)
    flag = rollout_of(
        w,
        strategy="flag",
        state=RolloutState.PROGRESSING,
        step=1,
        flag_key="polite",
        flag_on=True,
        flag_expires_at=timezone.now() + timedelta(days=2),
    )
    barrier = start_together(2)

    def work() -> dict[str, int]:
        barrier.wait()
        return governance.governance_sweep()

    results = in_processes(2, work)
    assert all(r.startswith("ok:") for r in results), results
    assert (
        Event.objects.filter(kind=EventKind.ROLLOUT_FLAG_EXPIRING, subject_id=str(flag.pk)).count()
        == 1
    )
    assert Notification.objects.filter(title__contains="polite").count() == 2
    assert verify_database().ok
