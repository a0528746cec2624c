"""A scratch copy of the registry: an empty database of its own, used by drills and rehearsals.

On SQLite it is a file in a temporary folder; on PostgreSQL a database ``<name>_scratch_<hex>``
on the same server, dropped afterwards whatever happened. Commands run against it in a
subprocess (``manage.py ...``) whose ``DATABASE_URL`` names the scratch database and whose
var folder, content store, broker and runtime generation are temporary too, so nothing it does
reaches the real registry; it signs with the same keys (``SIGNING_KEY_DIR``, ``SIGNING_KEY``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from governance.kernel.errors import DomainError

#: The environment variable that names the scratch database a subprocess may act on; the
#: commands that change a scratch copy (``drill scratch-rehearse``) refuse any other database.
SCRATCH_ENV = "GOVERNANCE_SCRATCH_DB"
#: How long one scratch command may run, in seconds.
SCRATCH_TIMEOUT_SECONDS = 1800


class ScratchFailed(Exception):
    """A command in the scratch copy failed; ``str()`` is its last error line."""


@dataclass(frozen=True)
class Scratch:
    """An empty scratch database and the temporary folders its processes use."""

    url: str
    name: str
    root: Path

    def env(self) -> dict[str, str]:
        """The environment of a process working on the scratch copy."""
        var = self.root / "var"
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.url,
                "GOVERNANCE_VAR_DIR": str(var),
                "REGISTRY_BLOB_DIR": str(self.root / "blobs"),
                "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
                "SIGNING_KEY": settings.SIGNING_KEY,
                "REDIS_URL": "",
                "RUNTIME_GENERATION_FILE": str(var / "runtime-generation"),
                "CELERY_BROKER_DIR": str(var / "broker"),
                "BACKUP_DIR": str(self.root / "backups"),
                SCRATCH_ENV: self.name,
            }
        )
        return env

    def _run(self, args: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603 - our own manage.py, arguments we built
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
                cwd=settings.BASE_DIR,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=SCRATCH_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ScratchFailed(
                f"manage.py {args[0]} took longer than {SCRATCH_TIMEOUT_SECONDS} s"
            ) from exc
        return done, time.monotonic() - started

    @staticmethod
    def _failed(done: subprocess.CompletedProcess[str], args: tuple[str, ...]) -> ScratchFailed:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        return ScratchFailed(f"manage.py {' '.join(args[:2])}: {last}")

    def manage(self, *args: str) -> tuple[str, float]:
        """Run ``manage.py ARGS`` on the scratch copy: (its stdout, seconds it took).

        Raises ScratchFailed with the command's last error line when it exits non-zero.
        """
        done, seconds = self._run(args)
        if done.returncode != 0:
            raise self._failed(done, args)
        return done.stdout, seconds

    def manage_json(self, *args: str) -> tuple[dict[str, Any], float]:
        """Run a command that prints one JSON object as its last line, also when its check found
        a problem (exit 1): (the object, seconds). A refusal (exit 2) raises ScratchFailed."""
        done, seconds = self._run(args)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            answer = json.loads(lines[-1]) if lines else None
        except ValueError:
            answer = None
        if done.returncode not in (0, 1) or not isinstance(answer, dict):
            raise self._failed(done, args)
        return answer, seconds


def _postgres_url(settings_dict: dict[str, Any], name: str) -> str:
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{name}"


def _postgres_admin(settings_dict: dict[str, Any], sql: str) -> None:
    """Run one statement outside any transaction (CREATE/DROP DATABASE), on its own connection."""
    import psycopg

    try:
        with psycopg.connect(
            dbname="postgres",
            user=settings_dict.get("USER") or None,
            password=settings_dict.get("PASSWORD") or None,
            host=settings_dict.get("HOST") or "127.0.0.1",
            port=settings_dict.get("PORT") or "5432",
            autocommit=True,
        ) as conn:
            conn.execute(sql)  # a name we made: [a-z0-9_] only
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScratchFailed(f"PostgreSQL refused {sql.split(' IF ')[0]}: {reason}") from exc


@contextmanager
def scratch_database() -> Iterator[Scratch]:
    """An empty scratch database (not migrated yet), removed when the block ends.

    Raises ScratchFailed when the server refuses to create it (e.g. no CREATEDB privilege).
    """
    root = Path(tempfile.mkdtemp(prefix="governance-scratch-"))
    vendor = connection.vendor
    settings_dict = dict(connection.settings_dict)
    try:
        if vendor == "sqlite":
            path = root / "scratch.sqlite3"
            yield Scratch(url=f"sqlite:///{path}", name=str(path), root=root)
        elif vendor == "postgresql":
            base = "".join(c for c in str(settings_dict["NAME"]).lower() if c.isalnum() or c == "_")
            name = f"{base[:40]}_scratch_{secrets.token_hex(6)}"
            _postgres_admin(settings_dict, f'CREATE DATABASE "{name}"')
            try:
                yield Scratch(url=_postgres_url(settings_dict, name), name=name, root=root)
            finally:
                _postgres_admin(settings_dict, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            raise DomainError(f"No scratch database on {vendor}.", field="database")
    finally:
        shutil.rmtree(root, ignore_errors=True)
