"""The project's periodic work: the sweep that composes every app's periodic services.

The kernel's tasks (heartbeat, checkpoint, verification, email) are in
:mod:`governance.kernel.tasks`; importing them here lets Celery's autodiscovery register them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task

from governance.kernel.events.context import channel
from governance.kernel.tasks import (
    checkpoint,
    email_outbox,
    heartbeat,
    notification_email,
    verify_log,
)
from governance.recovery.scheduled import backup_scheduled
from governance.sweep import governance_sweep

__all__ = [
    "backup",
    "checkpoint",
    "email_outbox",
    "heartbeat",
    "notification_email",
    "sweep",
    "verify_log",
]


@shared_task(
    name="governance.tasks.sweep",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def sweep(now: str | None = None) -> dict[str, int]:
    """Run by beat every GOVERNANCE_SWEEP_INTERVAL_SECONDS; ``now`` (ISO 8601) pins the clock."""
    moment = datetime.fromisoformat(now) if now else None
    with channel("task:sweep"):
        return governance_sweep(now=moment)


@shared_task(name="governance.tasks.backup", ignore_result=True, acks_late=True)
def backup() -> dict[str, Any]:
    """Run by beat daily at BACKUP_HOUR:BACKUP_MINUTE UTC: the scheduled backup, its retention
    and its failure alert (``backup_scheduled``). A failed backup is recorded, not raised."""
    with channel("task:backup"):
        run = backup_scheduled()
    return {"run": run.pk, "outcome": run.outcome, "location": run.location}
