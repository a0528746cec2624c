"""The canary analysis on PostgreSQL, in parallel processes: one transition, and a killed worker.

Two controllers evaluating the same regressing canary at once roll it back once (the row lock
is skip-locked, and a transition compares the revision it evaluated). A worker killed between
its evaluation and its transition leaves nothing behind (its transaction dies with it), and
the next cycle does the work.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from rollouts.choices import PointerKind, RolloutState
from rollouts.controller import controller_cycle
from rollouts.models import IterationNote, PointerMove, Rollout, TelemetryCounter
from tests.postgres.test_reviews import in_processes
from tests.postgres.test_waivers import start_together
from tests.rollouts.manifest_setup import World, rollout_of, world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def regressing_canary(w: World) -> Rollout:
    """A canary at 10% since five minutes ago whose error rate is five times the stable one."""
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    began = timezone.now() - timedelta(minutes=5)
    PointerMove.objects.create(
        kind=PointerKind.CANARY, artifact=w.prompt, slot=w.slot, tenant=w.tenant,
        from_version=w.v1, to_version=w.v2, weight=10_000, rollout=rollout,
        reason="step 1", created_at=began,
    )  # fmt: skip
    bucket = began.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for arm, version, requests, errors in (("canary", w.v2, 300, 30), ("stable", w.v1, 2700, 54)):
        TelemetryCounter.objects.create(
            tenant=w.tenant, application=w.slot.application, slot=w.slot, version=version,
            rollout=rollout, arm=arm, bucket_start=bucket, requests=requests, errors=errors,
        )  # fmt: skip
    return rollout


def rolled_back_events(rollout: Rollout) -> int:
    return Event.objects.filter(
        kind=EventKind.ROLLOUT_ROLLED_BACK, subject_id=str(rollout.pk)
    ).count()


def test_two_controllers_at_once_roll_back_once(make_user: Any, acme: Any) -> None:
    assert connection.vendor == "postgresql"
    w = world(make_user, acme)
    rollout = regressing_canary(w)
    now = timezone.now()
    interval = timedelta(seconds=settings.ROLLOUT_CONTROLLER_INTERVAL_SECONDS)
    barrier = start_together(2)
    turn = multiprocessing.get_context("fork").Value("i", 0)

    def work() -> dict[str, int]:
        with turn.get_lock():  # one child a beat later: not a duplicate, both evaluate
            at = now + interval * turn.value
            turn.value += 1
        barrier.wait()
        return controller_cycle(now=at)

    results = in_processes(2, work)
    assert all(r.startswith("ok:") for r in results), results
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rolled_back_events(rollout) == 1
    ends = PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY, weight=0)
    assert ends.count() == 1
    assert IterationNote.objects.filter(rollout=rollout).count() == 1
    assert verify_database().ok


def _evaluate_then_hang(ready: Any) -> None:
    """A controller that evaluates, holds the rollout's lock, and hangs before its transition."""
    from rollouts import services

    def hang(**kwargs: Any) -> None:
        ready.set()
        time.sleep(60)

    services.rollout_rollback = hang  # type: ignore[assignment]
    try:
        controller_cycle()
    finally:
        connections.close_all()


def test_a_worker_killed_between_evaluation_and_transition_leaves_a_consistent_state(
    make_user: Any, acme: Any
) -> None:
    w = world(make_user, acme)
    rollout = regressing_canary(w)
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    worker = ctx.Process(target=_evaluate_then_hang, args=(ready,))
    worker.start()
    try:
        assert ready.wait(30), "the worker never reached its transition"
        # while it hangs it holds the rollout's row: another cycle skips it
        assert controller_cycle()["skipped"] == 1
    finally:
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
    assert worker.exitcode == -signal.SIGKILL
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PROGRESSING
    assert rollout.revision == 1
    assert rolled_back_events(rollout) == 0
    assert not IterationNote.objects.filter(rollout=rollout).exists()
    assert verify_database().ok
    # PostgreSQL notices the dead connection and frees the lock; the next cycle acts
    deadline = time.monotonic() + 20
    while controller_cycle()["noted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rolled_back_events(rollout) == 1
    assert verify_database().ok
