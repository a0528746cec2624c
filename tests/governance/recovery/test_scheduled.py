"""The scheduled backup (what beat runs daily): recorded, pruned to BACKUP_KEEP, and a failure
alerts the platform administrators once, until a backup passes again."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.recovery.models import RecoveryRun
from governance.recovery.scheduled import backup_scheduled
from governance.tasks import backup as backup_task
from tests.governance.recovery.test_retention import backup_dir

pytestmark = pytest.mark.django_db


def failure_notes() -> list[Notification]:
    return list(Notification.objects.filter(subject="recovery:backup-failed").order_by("pk"))


def test_a_failed_backup_is_recorded_and_alerts_the_administrators_once(
    settings: Any, tmp_path: Path, root: Any, make_user: Any, acme: Any, client: Client
) -> None:
    tenant_admin = make_user("acme-admin", acme=["member", "administrator"])
    blocker = tmp_path / "backups"
    blocker.write_text("a file where the folder should be")
    settings.BACKUP_DIR = blocker

    run = backup_scheduled()

    assert run.kind == RecoveryRun.Kind.BACKUP
    assert run.outcome == RecoveryRun.Outcome.FAILED
    assert run.error
    assert Event.objects.filter(kind=EventKind.BACKUP_FAILED, subject_id=str(run.pk)).count() == 1
    [note] = failure_notes()
    assert note.user == root
    assert note.title == "Fix the backups: the scheduled backup failed"
    assert run.error in note.body
    assert "No backup has ever passed." in note.body
    assert note.url == "/governance/readiness/#recovery"
    assert not Notification.objects.filter(user=tenant_admin).exists()
    assert blocker.read_text() == "a file where the folder should be"

    # A second failure: the same notification, reworded; no second one, no second email.
    again = backup_scheduled()
    assert again.outcome == RecoveryRun.Outcome.FAILED
    [note] = failure_notes()
    assert note.title == "Fix the backups: the scheduled backup failed (2 times in a row)"
    assert note.resolved_at is None

    client.force_login(root)
    html = client.get("/governance/readiness/").content.decode()
    assert re.search(r'<tr data-proof="backup" data-result="failed" data-stale="yes">', html)


def test_a_passed_backup_keeps_the_newest_and_resolves_the_failure_alert(
    settings: Any, tmp_path: Path, root: Any
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    settings.BACKUP_KEEP = 2
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    settings.BACKUP_DIR = blocker
    failed = backup_scheduled()
    assert failed.outcome == RecoveryRun.Outcome.FAILED
    settings.BACKUP_DIR = folder
    old = [backup_dir(folder, f"2020010{d}T000000Z") for d in (1, 2, 3)]
    (folder / "README").write_text("ours, not a backup")

    result = backup_task()  # the task beat runs: thin, the same service

    run = RecoveryRun.objects.get(pk=result["run"])
    assert result["outcome"] == run.outcome == RecoveryRun.Outcome.PASSED, run.error
    taken = Path(run.location)
    assert taken.parent == folder
    assert taken.exists()
    assert (taken / "manifest.json").is_file() if taken.is_dir() else taken.is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted([old[2].name, taken.name, "README"])
    event = Event.objects.get(kind=EventKind.BACKUP_CREATED, subject_id=str(run.pk))
    assert event.via == "task:backup"
    [note] = failure_notes()
    assert note.resolved_at is not None
    assert note.resolution == "A later backup passed."
