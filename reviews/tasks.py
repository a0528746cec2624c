"""Queued tasks of the reviews app. Thin: each re-fetches by id and calls one service."""

from __future__ import annotations

from celery import shared_task

from governance.kernel.events.context import channel
from reviews.models import CheckRun
from reviews.services import check_execute


@shared_task(
    name="reviews.tasks.run_check",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def run_check(run_id: str) -> str | None:
    """Run one required check of a change and store its evidence (idempotent: a rerun is a no-op)."""
    run = CheckRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    with channel("task:run_check"):
        done = check_execute(run=run)
    return str(done.status)
