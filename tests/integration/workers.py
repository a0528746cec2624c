"""Start and stop real Celery workers (and beat) over Redis against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from kombu import pools as kombu_pools

from governance.celery import app
from tests.conftest import subprocess_database_url
from tests.redis_db import redis_url

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def point_app_at(url: str, options: dict[str, object]) -> None:
    """Send this process's tasks to another broker (drops the pooled connections)."""
    app.conf.update(broker_url=url, broker_transport_options=options)
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    kombu_pools.reset()  # kombu caches producer pools per connection, globally


def redis_broker() -> Iterator[str]:
    """Fixture body: skip without Redis, else route this process's tasks to this run's own
    Redis database (tests/redis_db.py), emptied before and after."""
    import redis

    url = redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.flushdb()
    old_url, old_opts = app.conf.broker_url, app.conf.broker_transport_options
    point_app_at(url, {})
    try:
        yield url
    finally:
        point_app_at(old_url, old_opts)
        client.flushdb()


def start(args: list[str], tmp_path: Path, name: str, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url(),
        "DATABASE_URL": subprocess_database_url(),
        "GOVERNANCE_VAR_DIR": str(tmp_path),
        "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        **extra_env,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [CELERY, "-A", "governance", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def start_worker(tmp_path: Path, name: str = "itest", **extra_env: str) -> subprocess.Popen[bytes]:
    return start(
        [
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{name}@%h",
            "-l",
            "INFO",
        ],
        tmp_path,
        "worker",
        **extra_env,
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
