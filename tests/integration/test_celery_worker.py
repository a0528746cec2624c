"""A real Celery worker and beat over Redis, talking to the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import transaction

from governance import selectors
from governance.celery import app
from governance.models import WorkerHeartbeat
from governance.tasks import heartbeat
from tests.conftest import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY = str(Path(sys.executable).with_name("celery"))

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_broker() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"needs Redis at {REDIS_URL} (set TEST_REDIS_URL): {exc}")
    client.flushdb()
    old_url, old_opts = app.conf.broker_url, app.conf.broker_transport_options
    point_app_at(REDIS_URL, {})
    try:
        yield REDIS_URL
    finally:
        point_app_at(old_url, old_opts)
        client.flushdb()


def point_app_at(url: str, options: dict[str, object]) -> None:
    """Send this process's tasks to another broker (drops the pooled connections)."""
    app.conf.update(broker_url=url, broker_transport_options=options)
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


def start(args: list[str], tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": subprocess_database_url(),
        "GOVERNANCE_VAR_DIR": str(tmp_path),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [CELERY, "-A", "governance", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(predicate: Callable[[], bool], timeout: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_worker_runs_tasks_queued_on_commit_and_beat_keeps_time(redis_broker, tmp_path):
    import redis

    queue = redis.Redis.from_url(REDIS_URL)
    worker = start(
        [
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            "itest@%h",
            "-l",
            "INFO",
        ],
        tmp_path,
        "worker",
    )
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

        # Beat schedules the heartbeat every second without anyone sending it.
        beat = start(
            ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")], tmp_path, "beat"
        )
        try:
            assert wait_for(lambda: WorkerHeartbeat.objects.get().beats >= 3), (
                tmp_path / "beat.log"
            ).read_text()
        finally:
            stop(beat)
        check = selectors.check_heartbeat()
        assert check.ok and check.detail.startswith("itest@")
    finally:
        stop(worker)
    assert worker.returncode is not None
