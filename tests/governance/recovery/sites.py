"""Whole registries in other processes, for backup proofs: each a database and a folder of its own.

A ``Site`` is a database (a SQLite file or a PostgreSQL database on the test server) plus a
``GOVERNANCE_VAR_DIR`` (its content store, broker, generation file); every site shares the
run's signing-key directory, as an operator restoring elsewhere brings the keys along.
Migrating takes seconds, so empty migrated databases are copied from a template: a file copy
on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]


def server_url(dbname: str) -> str:
    """A URL for ``dbname`` on the PostgreSQL server the tests use."""
    cfg = connection.settings_dict
    user = cfg.get("USER") or "postgres"
    auth = f"{user}:{cfg['PASSWORD']}" if cfg.get("PASSWORD") else user
    return f"postgres://{auth}@{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{dbname}"


def pg_admin(sql: str) -> None:
    """Run one statement on the server's ``postgres`` database (CREATE/DROP DATABASE)."""
    cfg = connection.settings_dict
    with psycopg.connect(
        host=cfg.get("HOST") or "127.0.0.1",
        port=int(cfg.get("PORT") or 5432),
        user=cfg.get("USER") or "postgres",
        password=cfg.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql)


@dataclass
class Site:
    """One registry: ``database_url`` plus its own folder; commands run in subprocesses."""

    name: str
    database_url: str
    var_dir: Path
    key_dir: Path
    pg_database: str = ""  #: set when the site owns a PostgreSQL database (dropped by ``drop``)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "governance.settings",
            "DATABASE_URL": self.database_url,
            "GOVERNANCE_VAR_DIR": str(self.var_dir),
            "REGISTRY_BLOB_DIR": str(self.var_dir / "blobs"),
            "SIGNING_KEY_DIR": str(self.key_dir),
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    @property
    def blob_dir(self) -> Path:
        return self.var_dir / "blobs"

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``python <args>`` in this site (never raises for a non-zero exit)."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def manage(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, timeout=timeout)

    def ok(self, *args: str, timeout: float = 600) -> str:
        """``manage.py <args>``, which must exit 0; its stdout."""
        proc = self.manage(*args, timeout=timeout)
        assert proc.returncode == 0, f"{self.name}: manage.py {' '.join(args)}\n{proc.stderr}"
        return proc.stdout

    def python(self, code: str, *args: str) -> str:
        """A snippet with Django set up (``django.setup()`` is done first); its stdout."""
        proc = self.run("-c", "import django; django.setup()\n" + code, *args)
        assert proc.returncode == 0, f"{self.name}: {proc.stderr}"
        return proc.stdout

    def fingerprint(self, upto: int | None = None) -> dict[str, Any]:
        extra = ["--upto", str(upto)] if upto is not None else []
        proc = self.run("-m", "tests.governance.recovery.fingerprint", *extra)
        assert proc.returncode == 0, f"{self.name}: fingerprint\n{proc.stderr}"
        return dict(json.loads(proc.stdout))

    def verify(self) -> tuple[str, str]:
        """``events verify`` and ``registry verify``: both must pass; their summary lines."""
        return self.ok("events", "verify").strip(), self.ok("registry", "verify").strip()

    def drop(self) -> None:
        if self.pg_database:
            pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')


class Sites:
    """Makes sites from migrated templates (one per database kind, migrated once) under ``base``."""

    def __init__(self, base: Path, prefix: str) -> None:
        self.base = base
        self.prefix = prefix  #: PostgreSQL database names start with it
        self.key_dir = base / "keys"
        self.key_dir.mkdir(parents=True, exist_ok=True)
        self._sqlite_template: Path | None = None
        self._pg_template = ""
        self.made: list[Site] = []

    def _site(self, name: str, url: str, pg_database: str = "") -> Site:
        var = self.base / name
        var.mkdir(parents=True, exist_ok=True)
        site = Site(name, url, var, self.key_dir, pg_database)
        self.made.append(site)
        return site

    def sqlite(self, name: str) -> Site:
        """A fresh, migrated, empty SQLite site."""
        if self._sqlite_template is None:
            template = self._site("sqlite-template", f"sqlite:///{self.base / 'template.sqlite3'}")
            template.ok("migrate", "-v0")
            self._sqlite_template = self.base / "template.sqlite3"
        path = self.base / f"{name}.sqlite3"
        shutil.copyfile(self._sqlite_template, path)
        return self._site(name, f"sqlite:///{path}")

    def postgres(self, name: str, dbname: str | None = None) -> Site:
        """A fresh, migrated, empty PostgreSQL site (``dbname`` is dropped first if it exists)."""
        if not self._pg_template:
            template = f"{self.prefix}_tpl"
            pg_admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{template}"')
            site = self._site("pg-template", server_url(template), template)
            site.ok("migrate", "-v0")
            self._pg_template = template
        dbname = dbname or f"{self.prefix}_{name.replace('-', '_')}"
        pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{dbname}" TEMPLATE "{self._pg_template}"')
        return self._site(name, server_url(dbname), dbname)

    def drop_all(self) -> None:
        for site in self.made:
            site.drop()
        shutil.rmtree(self.base, ignore_errors=True)


def new_prefix(lane: str = "gov_proof_x") -> str:
    return f"{lane}_{uuid.uuid4().hex[:8]}"
