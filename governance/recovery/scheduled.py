"""The daily backup Celery beat takes (``governance.tasks.backup``): take it, keep the newest
BACKUP_KEEP, and tell the platform administrators when it fails."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from governance.recovery.alerts import backup_failure_alert, backup_failure_resolve
from governance.recovery.models import RecoveryRun

logger = logging.getLogger(__name__)

#: What ``backup create`` names a backup in its folder: ours to prune; nothing else is.
#: ``backup-<UTC time>``, ``-2``, ``-3``... for more in the same second, maybe archived.
BACKUP_NAME = re.compile(r"^backup-(\d{8}T\d{6}Z)(?:-(\d+))?(?:\.tar\.gz|\.tar)?$")


def _complete_backups(folder: Path) -> list[Path]:
    """The folder's own complete backups, oldest first: a ``backup-<UTC time>`` directory
    holding its manifest, or a ``backup-<UTC time>.tar[.gz]`` file. Symbolic links, other
    names and half-written directories are not counted and never touched."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        if entry.is_symlink() or not BACKUP_NAME.match(entry.name):
            continue
        complete = (entry / "manifest.json").is_file() if entry.is_dir() else entry.is_file()
        if complete:
            found.append(entry)
    return sorted(found, key=_age_order)


def _age_order(path: Path) -> tuple[str, int]:
    """The UTC time in the name, then its same-second number (``-2`` after none, before ``-10``)."""
    match = BACKUP_NAME.match(path.name)
    if match is None:  # never: only matching names are listed
        return path.name, 0
    return match.group(1), int(match.group(2) or 1)


def backups_prune(*, folder: Path, keep: int, protect: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` complete backups in ``folder`` (never ``protect``,
    the one just taken); returns what was deleted. Anything else in the folder stays."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    backups = _complete_backups(folder)
    kept = protect.resolve() if protect is not None else None
    doomed = [b for b in backups[: max(0, len(backups) - keep)] if b.resolve() != kept]
    for path in doomed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        logger.info("backup retention: removed %s (keeping the newest %d)", path, keep)
    return doomed


def backup_scheduled(*, now: datetime | None = None) -> RecoveryRun:
    """Take a backup into BACKUP_DIR (``backup_take`` records the run and its event), then:
    passed → keep the newest BACKUP_KEEP backups there and resolve any failure alert;
    failed → alert the platform administrators (once per failure episode). Never raises
    for a failed backup: the failed run is returned."""
    from governance.recovery.backup import backup_take

    now = now or timezone.now()
    folder = Path(settings.BACKUP_DIR)
    run = backup_take(out_dir=folder, actor=None)
    if run.outcome == RecoveryRun.Outcome.PASSED:
        backups_prune(folder=folder, keep=settings.BACKUP_KEEP, protect=Path(run.location))
        backup_failure_resolve()
    else:
        backup_failure_alert(run=run, now=now)
    return run
