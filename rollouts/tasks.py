"""Periodic tasks of the rollouts app. Thin: each calls one service."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from governance.kernel.events.context import channel
from rollouts.controller import controller_cycle
from rollouts.watch import watch_cycle


@shared_task(
    name="rollouts.tasks.rollouts_controller_tick",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def rollouts_controller_tick(self: object, now: str | None = None) -> dict[str, int]:
    """Run by beat every ROLLOUT_CONTROLLER_INTERVAL_SECONDS; a duplicate beat notes nothing twice.

    One cycle for every running rollout, then the watch of active versions (``watch_cycle``:
    a breach downgrades once). ``now`` (ISO 8601) pins the clock; the task id becomes a trace
    id of each note.
    """
    moment = datetime.fromisoformat(now) if now else None
    request = getattr(self, "request", None)
    trace = f"task:{request.id}" if request is not None and getattr(request, "id", None) else ""
    with channel("task:rollouts_controller"):
        counts = controller_cycle(now=moment, trace_id=trace)
        counts.update(watch_cycle(now=moment))
        return counts


@shared_task(
    name="rollouts.tasks.rollouts_controller_soon",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def rollouts_controller_soon(rollout_ids: list[str]) -> int:
    """Queued (on commit) after a telemetry ingest: one controller iteration for each rollout it fed.

    Thin; lane T2 owns what an iteration decides. A rollout noted less than half an interval
    ago is skipped by ``rollout_iterate`` itself, so a burst of batches costs one iteration.
    """
    from rollouts.controller import rollout_iterate
    from rollouts.models import Rollout

    done = 0
    with channel("task:rollouts_controller_soon"):
        for rollout in Rollout.objects.filter(pk__in=rollout_ids):
            done += int(rollout_iterate(rollout=rollout) is not None)
    return done
