"""Taking a backup as a recorded run: the CLI's ``backup create`` and the scheduled task call it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.utils import timezone

from governance.recovery.backup.dump import backup_create
from governance.recovery.models import RecoveryRun
from governance.recovery.services import recovery_run_record

log = logging.getLogger(__name__)


def backup_take(
    *, out_dir: Path, with_secrets: bool = False, archive: bool = False, actor: Any | None = None
) -> RecoveryRun:
    """Write a backup and record it as a passed run; a backup that fails is recorded as a
    failed run with the reason (never raised), so it alerts and shows on the dashboard."""
    started = timezone.now()
    try:
        made = backup_create(out_dir=Path(out_dir), with_secrets=with_secrets, archive=archive)
    except Exception as exc:  # any failure is the run's outcome, recorded below
        log.exception("backup into %s failed", out_dir)
        return recovery_run_record(
            kind=RecoveryRun.Kind.BACKUP,
            outcome=RecoveryRun.Outcome.FAILED,
            started_at=started,
            finished_at=timezone.now(),
            location=str(out_dir),
            error=str(exc) or type(exc).__name__,
            actor=actor,
        )
    return recovery_run_record(
        kind=RecoveryRun.Kind.BACKUP,
        outcome=RecoveryRun.Outcome.PASSED,
        started_at=started,
        finished_at=timezone.now(),
        location=str(made.path),
        details={
            "path": str(made.path),
            "bytes": made.bytes,
            "rows": sum(made.rows.values()),
            "log_size": made.log_size,
            "log_root": made.log_root,
            "seconds": made.seconds,
        },
        actor=actor,
    )
