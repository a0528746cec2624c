"""A real Celery worker and beat over Redis, talking to the test database."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import transaction

from accounts import services as accounts
from governance import health as selectors
from governance.kernel.events.models import Checkpoint, Event, VerificationRun
from governance.kernel.events.services import verification_start
from governance.models import WorkerHeartbeat
from governance.tasks import heartbeat
from tests.integration.workers import redis_broker, start, start_worker, stop, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


def test_worker_runs_tasks_queued_on_commit_and_beat_keeps_time(broker, tmp_path):
    import redis

    queue = redis.Redis.from_url(broker)
    worker = start_worker(tmp_path)
    try:
        # A task queued inside a transaction is sent only when it commits.
        with transaction.atomic():
            heartbeat.delay_on_commit()  # type: ignore[attr-defined]
            assert queue.llen("celery") == 0
        assert wait_for(
            lambda: WorkerHeartbeat.objects.filter(worker__startswith="itest@").exists()
        ), (tmp_path / "worker.log").read_text()
        assert WorkerHeartbeat.objects.get().beats == 1

        # A rolled-back transaction sends nothing.
        try:
            with transaction.atomic():
                heartbeat.delay_on_commit()  # type: ignore[attr-defined]
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        time.sleep(2)
        assert WorkerHeartbeat.objects.get().beats == 1

        # Beat schedules the heartbeat every second (and checkpoints) without anyone sending them.
        accounts.tenant_create(slug="acme", name="Acme", actor=None)
        beat = start(
            ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")],
            tmp_path,
            "beat",
            CHECKPOINT_INTERVAL_SECONDS="1",
        )
        try:
            assert wait_for(lambda: WorkerHeartbeat.objects.get().beats >= 3), (
                tmp_path / "beat.log"
            ).read_text()
            assert wait_for(
                lambda: Checkpoint.objects.filter(tree_size=Event.objects.count()).exists()
            ), (tmp_path / "worker.log").read_text()
        finally:
            stop(beat)
        check = selectors.check_heartbeat()
        assert check.ok
        assert check.detail.startswith("itest@")
    finally:
        stop(worker)
    assert worker.returncode is not None


@pytest.mark.usefixtures("broker")
def test_worker_verifies_the_log_and_reports_progress(tmp_path, make_user, acme):
    for i in range(40):
        accounts.role_grant(user=make_user(f"u{i}"), role="reviewer", tenant=acme, actor=None)
    worker = start_worker(tmp_path, VERIFY_PROGRESS_EVERY="10")
    try:
        run = verification_start(actor=None)
        assert run.status == VerificationRun.Status.QUEUED
        assert wait_for(lambda: VerificationRun.objects.get(pk=run.pk).status == "passed"), (
            tmp_path / "worker.log"
        ).read_text()
    finally:
        stop(worker)
    run.refresh_from_db()
    total = Event.objects.count()
    assert (run.checked, run.total, run.percent) == (total, total, 100)
    assert run.reason == f"OK: {total} events verified"
    assert run.started_at is not None
    assert run.finished_at is not None
