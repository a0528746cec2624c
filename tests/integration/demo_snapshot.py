"""``seed_demo`` for the browser tests: seeded once, then copied back before each test.

Every browser test starts from the demo (``seed_demo``), and each is transactional, so the
database is emptied after it and the next one had to seed again: on PostgreSQL that was about
70 % of the browser tests' time. Now the first test seeds and keeps a copy of every table
that a flush empties (``COPY ... TO STDOUT`` on PostgreSQL, a database file of this run's own
attached to the connection on SQLite); the next ones empty those tables (a flush leaves content types and permissions
behind) and write the copy back in one transaction, move the sequences past the copied ids,
and bump the runtime generation and drop the content-type cache, so that no answer cached by
an earlier test is served. The rows are the very rows ``seed_demo`` wrote (the event log's
hashes and signatures included); its files (the content store, the signing keys) outlive a
flush anyway.

The demo is dated relative to now (a canary's telemetry runs up to the minute it was seeded),
so a copy older than ``MAX_AGE_SECONDS`` is not used: the demo is seeded again.
"""

from __future__ import annotations

import atexit
import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, transaction

from governance.kernel.events import generation
from tests.conftest import append_only_triggers

#: A copy older than this (seconds) is not restored; the demo is seeded again.
MAX_AGE_SECONDS = 300
#: The SQLite schema the copy lives in (a file, attached to the test's connection).
SQLITE_SCHEMA = "demo_snapshot"
#: That file: one per run, removed when the run ends.
SQLITE_FILE = os.path.join(tempfile.gettempdir(), f"governance-demo-snapshot-{os.getpid()}.sqlite3")


@dataclass
class _Copy:
    taken_at: float
    tables: list[str]
    rows: dict[str, bytes] = field(default_factory=dict)  #: PostgreSQL: COPY text per table


_copy: _Copy | None = None


def seed_demo() -> None:
    """The database holds ``seed_demo``'s data (seeded, or restored from this run's copy)."""
    global _copy
    fresh = _copy is not None and time.monotonic() - _copy.taken_at < MAX_AGE_SECONDS
    if fresh and _copy is not None and _restore(_copy):
        return
    _copy = None
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    _copy = _take()


def _tables() -> list[str]:
    """The tables a flush empties (``manage.py flush`` lists them the same way)."""
    return sorted(connection.introspection.django_table_names(only_existing=True))


def _take() -> _Copy:
    copy = _Copy(taken_at=time.monotonic(), tables=_tables())
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            for table in copy.tables:
                with raw.copy(f"COPY {qn(table)} TO STDOUT") as out:
                    data = b"".join(bytes(chunk) for chunk in out)
                if data:
                    copy.rows[table] = data
        else:
            if _attached(cursor):
                cursor.execute(f"DETACH DATABASE {SQLITE_SCHEMA}")
            if os.path.exists(SQLITE_FILE):
                os.remove(SQLITE_FILE)
            atexit.register(_remove_sqlite_file)
            cursor.execute(f"ATTACH DATABASE %s AS {SQLITE_SCHEMA}", [SQLITE_FILE])
            for table in copy.tables:
                name = qn(table)  # Django's own table names, quoted
                cursor.execute(f"CREATE TABLE {SQLITE_SCHEMA}.{name} AS SELECT * FROM main.{name}")  # noqa: S608
    return copy


def _restore(copy: _Copy) -> bool:
    """Write the copy back; False when it cannot be (the tables changed, the copy is gone)."""
    if _tables() != copy.tables:
        return False
    qn = connection.ops.quote_name
    if connection.vendor == "postgresql":
        import pgtrigger

        with (
            transaction.atomic(),
            pgtrigger.ignore(*append_only_triggers()),
            connection.cursor() as cursor,
        ):
            for table in copy.tables:
                cursor.execute(f"DELETE FROM {qn(table)}")  # noqa: S608 - Django's table names
            raw = cursor.cursor
            for table, data in copy.rows.items():
                with raw.copy(f"COPY {qn(table)} FROM STDIN") as into:
                    into.write(data)
            models = apps.get_models(include_auto_created=True)
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
    else:
        with connection.cursor() as cursor:
            if not os.path.exists(SQLITE_FILE):
                return False
            if not _attached(cursor):  # the connection was reopened since
                cursor.execute(f"ATTACH DATABASE %s AS {SQLITE_SCHEMA}", [SQLITE_FILE])
        with transaction.atomic(), connection.cursor() as cursor:
            for table in copy.tables:
                name = qn(table)  # Django's own table names, quoted
                cursor.execute(f"DELETE FROM main.{name}")  # noqa: S608
                cursor.execute(f"INSERT INTO main.{name} SELECT * FROM {SQLITE_SCHEMA}.{name}")  # noqa: S608
    ContentType.objects.clear_cache()
    generation.bump()
    return True


def _attached(cursor: Any) -> bool:
    cursor.execute("PRAGMA database_list")
    return SQLITE_SCHEMA in {row[1] for row in cursor.fetchall()}


def _remove_sqlite_file() -> None:
    if os.path.exists(SQLITE_FILE):
        os.remove(SQLITE_FILE)
