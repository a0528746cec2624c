"""Recovery drills: restore a backup into a scratch database, verify it, measure, and record.

``drill_run`` checks the backup (signature and every file's hash, no database), migrates an
empty scratch database, restores the backup into it with ``manage.py backup restore --json``
(which runs the event-log and registry verifications and reports its timings), and compares
the restored log's size and root with the manifest's. Passed or failed, the outcome is archived
as a signed ``recovery-drill`` version in the platform tenant and a ``RecoveryRun`` with its
event, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import DomainError
from governance.recovery.backup import backup_verify, latest_backup
from governance.recovery.models import RecoveryRun
from governance.recovery.outcomes import DRILL_ARTIFACT, outcome_publish
from governance.recovery.scratch import Scratch, ScratchFailed, scratch_database
from governance.recovery.services import recovery_run_record


@dataclass
class Measured:
    """What a restore into a scratch copy found: timings, the restored log, problems."""

    backup: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    restored: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def backup_facts(path: Path, measured: Measured) -> bool:
    """Verify the backup without a database; note its manifest's facts. False if it is corrupt."""
    check = backup_verify(path)
    manifest = check.manifest or {}
    log = manifest.get("log") or {}
    measured.backup = {
        "path": str(path),
        "format": manifest.get("format"),
        "created_at": manifest.get("created_at"),
        "database": (manifest.get("database") or {}).get("vendor"),
        "log_size": log.get("size"),
        "log_root": log.get("root"),
    }
    measured.problems.extend(check.problems)
    return bool(check.ok)


def restore_into(scratch: Scratch, path: Path, measured: Measured) -> bool:
    """Migrate the scratch database and restore ``path`` into it; compare the restored log.

    False (with the reason in ``measured.problems``) when a step failed.
    """
    try:
        _, measured.seconds["migrate_seconds"] = scratch.manage("migrate", "--noinput")
        answer, wall = scratch.manage_json("backup", "restore", str(path), "--json")
    except ScratchFailed as exc:
        measured.problems.append(str(exc))
        return False
    measured.seconds["restore_wall_seconds"] = round(wall, 3)
    measured.seconds["restore_seconds"] = float(answer.get("seconds_restore") or 0.0)
    measured.seconds["verify_seconds"] = float(answer.get("seconds_verify") or 0.0)
    measured.restored = {
        "log_size": answer.get("log_size"),
        "log_root": answer.get("log_root"),
        "rows": answer.get("rows"),
        "events_ok": answer.get("events_ok"),
        "registry_ok": answer.get("registry_ok"),
    }
    measured.problems.extend(str(p) for p in answer.get("problems") or [])
    if answer.get("events_ok") is not True:
        measured.problems.append("events verify failed on the restored copy")
    if answer.get("registry_ok") is not True:
        measured.problems.append("registry verify failed on the restored copy")
    for key in ("log_size", "log_root"):
        if measured.restored[key] != measured.backup.get(key):
            measured.problems.append(
                f"restored {key.replace('_', ' ')} {measured.restored[key]} is not the "
                f"manifest's {measured.backup.get(key)}"
            )
    return not measured.problems


def drill_backup_path(backup: Path | None) -> Path | None:
    """The backup a drill restores: the one named (which must exist), else the newest in
    ``settings.BACKUP_DIR`` (None when there is none)."""
    if backup is not None:
        if not backup.exists():
            raise DomainError(f"{backup}: no such file or directory.", field="backup")
        return backup
    return latest_backup(Path(settings.BACKUP_DIR))


def _measure(path: Path | None) -> Measured:
    measured = Measured()
    if path is None:
        measured.problems.append(f"no backup in {settings.BACKUP_DIR}")
        return measured
    if not backup_facts(path, measured):
        return measured
    try:
        with scratch_database() as scratch:
            restore_into(scratch, path, measured)
    except ScratchFailed as exc:  # the scratch database itself could not be made or dropped
        measured.problems.append(str(exc))
    return measured


def drill_run(*, backup: Path | None = None, actor: User | None = None) -> RecoveryRun:
    """Run one recovery drill and record it, passed or failed (it raises only for bad input)."""
    path = drill_backup_path(backup)
    started = timezone.now()
    measured = _measure(path)
    return drill_record(
        path=path, measured=measured, started_at=started, finished_at=timezone.now(), actor=actor
    )


@transaction.atomic
def drill_record(
    *,
    path: Path | None,
    measured: Measured,
    started_at: datetime,
    finished_at: datetime,
    actor: User | None,
) -> RecoveryRun:
    """Archive a drill's outcome as a signed ``recovery-drill`` version and record its run."""
    outcome = RecoveryRun.Outcome.FAILED if measured.problems else RecoveryRun.Outcome.PASSED
    content = {
        "kind": RecoveryRun.Kind.DRILL.value,
        "outcome": outcome.value,
        "backup": measured.backup or {"path": str(path) if path else None},
        "scratch_database": connection.vendor,
        "restored": measured.restored,
        **measured.seconds,
        "problems": measured.problems,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
    }
    version = outcome_publish(
        slug=DRILL_ARTIFACT,
        title="Recovery drills: a backup restored into a scratch database and verified",
        content=content,
        reason=f"Recovery drill {outcome.value}",
        actor=actor,
    )
    return recovery_run_record(
        kind=RecoveryRun.Kind.DRILL,
        outcome=outcome,
        started_at=started_at,
        finished_at=finished_at,
        location=str(path) if path else "",
        details={**measured.seconds, "backup": measured.backup, "restored": measured.restored},
        error="; ".join(measured.problems),
        version=version,
        actor=actor,
    )


def run_summary(run: RecoveryRun) -> str:
    """One line on a drill or rehearsal: outcome, timings, where it is archived."""
    d = run.details
    what = f"{run.get_kind_display().lower()}{f' of {run.subject}' if run.subject else ''}"
    archived = f"recorded as {run.version.path}" if run.version is not None else "recorded"
    if run.outcome == RecoveryRun.Outcome.FAILED:
        return f"{what} failed: {run.error}; {archived}"
    timings = ", ".join(
        f"{label} {d[key]:.2f} s"
        for key, label in (
            ("restore_seconds", "restore"),
            ("verify_seconds", "verify"),
            ("revert_seconds", "revert"),
            ("forward_seconds", "roll forward"),
        )
        if isinstance(d.get(key), int | float)
    )
    log = d.get("backup", {})
    return (
        f"{what} passed: {timings}; log {log.get('log_size')} events, root "
        f"{str(log.get('log_root'))[:16]}; {archived}"
    )
