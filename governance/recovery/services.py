"""Recording recovery runs: one row and one event per backup, drill or rehearsal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.recovery.models import RecoveryRun

_EVENT = {
    (RecoveryRun.Kind.BACKUP, RecoveryRun.Outcome.PASSED): EventKind.BACKUP_CREATED,
    (RecoveryRun.Kind.BACKUP, RecoveryRun.Outcome.FAILED): EventKind.BACKUP_FAILED,
    (RecoveryRun.Kind.DRILL, RecoveryRun.Outcome.PASSED): EventKind.DRILL_RECORDED,
    (RecoveryRun.Kind.DRILL, RecoveryRun.Outcome.FAILED): EventKind.DRILL_RECORDED,
    (RecoveryRun.Kind.REHEARSAL, RecoveryRun.Outcome.PASSED): EventKind.REHEARSAL_RECORDED,
    (RecoveryRun.Kind.REHEARSAL, RecoveryRun.Outcome.FAILED): EventKind.REHEARSAL_RECORDED,
}


def recovery_run_record(
    *,
    kind: str,
    outcome: str,
    started_at: datetime,
    finished_at: datetime,
    subject: str = "",
    location: str = "",
    details: dict[str, Any] | None = None,
    error: str = "",
    version: Any | None = None,
    actor: Any | None = None,
) -> RecoveryRun:
    """Store one run and append its event (``backup.created``/``backup.failed``,
    ``recovery.drill_recorded``, ``recovery.rehearsal_recorded``) in one transaction."""
    kind, outcome = RecoveryRun.Kind(kind), RecoveryRun.Outcome(outcome)
    with transaction.atomic():
        run = RecoveryRun.objects.create(
            kind=kind,
            outcome=outcome,
            subject=subject,
            started_at=started_at,
            finished_at=finished_at,
            location=location,
            details=details or {},
            error=error,
            version=version,
            actor=actor,
        )
        event_record(
            kind=_EVENT[(kind, outcome)],
            actor=actor,
            subject=run,
            payload={
                "kind": kind.value,
                "outcome": outcome.value,
                "subject": subject,
                "location": location,
                "seconds": round(run.seconds, 3),
                "error": error,
                "details": details or {},
                "version": str(version.pk) if version is not None else None,
            },
        )
    return run
