"""What every `make bench` script needs: a fresh app (temp folder, migrated database) to run a workload in."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def fresh_app(database_url: str | None, **extra_env: str) -> Iterator[dict[str, str]]:
    """Production settings in a temporary folder, on SQLite there or on ``database_url``
    (a PostgreSQL database that is dropped, recreated, migrated, and dropped again after).
    Yields the environment to run ``manage.py`` or a worker script with."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "GOVERNANCE_VAR_DIR": tmp,
            "GOVERNANCE_ENV": "production",
            "SECRET_KEY": "bench-" + "x" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SIGNING_KEY_AUTOGENERATE": "1",
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        admin = db = ""
        if database_url:
            env["DATABASE_URL"] = database_url
            db = database_url.rsplit("/", 1)[1]
            admin = database_url.rsplit("/", 1)[0] + "/postgres"
            drop = ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"]
            subprocess.run(drop, check=True, env=env, capture_output=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {db}"], check=True, env=env)
        manage(env, "migrate", "-v0")
        try:
            yield env
        finally:
            if database_url:
                drop = ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"]
                subprocess.run(drop, check=False, env=env, capture_output=True)


def manage(env: dict[str, str], *args: str, quiet: bool = False) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=quiet
    )


def run_worker(env: dict[str, str], script: str, *args: str) -> None:
    """Run a workload script (Python source) in the prepared app."""
    subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, check=True)
