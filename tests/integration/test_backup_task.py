"""The daily backup on a real Celery worker over Redis: the task beat sends takes a backup into
BACKUP_DIR and records it, as the worker's own process (not this one) sees the settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.recovery.models import RecoveryRun
from governance.tasks import backup
from tests.integration.workers import redis_broker, start_worker, stop, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


def log(tmp_path: Path) -> str:
    path = tmp_path / "worker.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.mark.usefixtures("broker")
def test_the_backup_task_runs_on_a_worker_and_keeps_the_newest(
    tmp_path: Path, acme: object
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ("20200101T000000Z", "20200102T000000Z"):
        (folder / f"backup-{stamp}").mkdir()
        (folder / f"backup-{stamp}" / "manifest.json").write_text("{}")
    (folder / "keep-me.txt").write_text("not a backup")

    worker = start_worker(tmp_path, BACKUP_DIR=str(folder), BACKUP_KEEP="2")
    try:
        task_id = backup.delay().id
        assert wait_for(lambda: f"backup[{task_id}] succeeded" in log(tmp_path)), log(tmp_path)
    finally:
        stop(worker)

    run = RecoveryRun.objects.get(kind=RecoveryRun.Kind.BACKUP)
    assert run.outcome == RecoveryRun.Outcome.PASSED, run.error
    taken = Path(run.location)
    assert taken.parent == folder
    manifest = json.loads((taken / "manifest.json").read_text())
    assert manifest["format"] == "governance-backup/1"
    assert run.details["log_size"] == manifest["log"]["size"]
    # The newest two of ours are kept; the file that is not a backup stays.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["backup-20200102T000000Z", taken.name, "keep-me.txt"]
    )
    event = Event.objects.get(kind=EventKind.BACKUP_CREATED)
    assert event.via == "task:backup"
    assert event.subject_id == str(run.pk)
