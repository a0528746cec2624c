"""Restoring a ``governance-backup/1`` backup into an empty database (see docs/operations.md).

Refuses before writing anything when the backup does not verify, when it was taken with
migrations this database has not applied, or when the database is not empty (it holds
tenants, users, events or checkpoints). Then, in one transaction: the rows migrations put in
(the built-in artifact classes, the chain head) are replaced, every table is inserted in
manifest order (``COPY`` on PostgreSQL, batched INSERTs elsewhere; no model is built or
saved, so the rows are stored exactly as they were), PostgreSQL sequences are reset and the
content store's files are copied into ``REGISTRY_BLOB_DIR`` (on SQLite with a rollback
journal, see ``_sqlite_bulk_load``). Afterwards the log and the registry are verified as
``events verify`` and ``registry verify`` do, in two processes when they can be (see
``verify_restored``), and the log's size and root are compared with the manifest's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from django.core.management.color import no_style
from django.db import (
    DEFAULT_DB_ALIAS,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.migrations.recorder import MigrationRecorder

from accounts.models import Tenant, User
from governance.kernel.errors import DomainError
from governance.kernel.events import generation
from governance.kernel.events.models import Checkpoint, Event
from governance.kernel.events.services import verify_database
from governance.recovery.backup import tables
from governance.recovery.backup.archive import BackupUnreadable, opened, verify_directory
from registry.models import Version
from registry.storage import blob_path
from registry.verification import log_problem, verify_versions

BATCH = 1000
#: Append-only tables: never emptied, so a target holding rows in them is refused instead.
APPEND_ONLY = (Event, Checkpoint)


class BackupRefused(DomainError):
    """A backup that cannot be restored here; ``field`` names the file (or ``database``)."""


@dataclass
class RestoreResult:
    """A restore done: rows per model, the log restored, timings and the checks after it."""

    rows: dict[str, int] = field(default_factory=dict)
    log_size: int = 0
    log_root: str = ""
    seconds_restore: float = 0.0
    seconds_verify: float = 0.0
    events_ok: bool = False
    registry_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.events_ok and self.registry_ok and not self.problems


def _refuse_unverified(root: Path) -> dict[str, Any]:
    check = verify_directory(root)
    if not check.ok:
        first = check.problems[0]
        raise BackupRefused(
            "the backup does not verify, nothing was restored: " + "; ".join(check.problems),
            field=first.split(":", 1)[0],
        )
    return check.manifest


def _refuse_newer_schema(manifest: dict[str, Any]) -> None:
    applied = MigrationRecorder(connection).applied_migrations()
    for app, name in manifest.get("migrations", {}).items():
        if (app, name) not in applied:
            raise BackupRefused(
                f"the backup was taken at migration {app}.{name}, which this database has not "
                "applied: run `manage.py migrate` with the code the backup came from",
                field="migrations",
            )


def _refuse_non_empty() -> None:
    counts = {
        "tenants": Tenant.objects.count(),
        "users": User.objects.count(),
        "events": Event.objects.count(),
        "checkpoints": Checkpoint.objects.count(),
    }
    held = [f"{n} {what}" for what, n in counts.items() if n]
    if held:
        raise BackupRefused(
            f"the database is not empty ({', '.join(held)}): restore only into a freshly "
            "migrated, empty database",
            field="database",
        )


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            yield json.loads(line)


def _model_for(model_label: str) -> type[models.Model]:
    known = {tables.label(m): m for m in tables.backup_models()}
    if model_label not in known:
        raise BackupRefused(
            f"table {model_label} is not one this code restores (a newer or older backup?)",
            field="manifest.json",
        )
    return known[model_label]


def _prepared_rows(model: type[models.Model], path: Path, rel: str) -> Iterator[list[Any]]:
    """Each row of a table file as the column values an INSERT would send, in
    ``fields_of(model)`` order: ``field.to_python`` then ``get_db_prep_save``. A column the
    backup does not have (it predates a migration) takes the field's default."""
    fields = tables.fields_of(model)
    known = {f.attname for f in fields}
    # Resolved once: each lookup through the ``connection`` proxy costs as much as a value.
    database = connections[DEFAULT_DB_ALIAS]
    steps = [(f.attname, _preparer(f, database), _saved_as_is(f), f) for f in fields]
    for row in _rows(path):
        unknown = row.keys() - known
        if unknown:
            raise BackupRefused(
                f"column(s) {', '.join(sorted(unknown))} are not in this database's "
                f"{tables.label(model)}",
                field=rel,
            )
        values = []
        for attname, prepare, as_is, f in steps:
            if attname in row:
                values.append(prepare(row[attname]))
            else:
                value = f.get_default()
                values.append(value if as_is else f.get_db_prep_save(value, database))
        yield values


def _preparer(field: models.Field[Any, Any], database: Any) -> Callable[[Any], Any]:
    """One column's JSON value to what the INSERT sends (``tables.decoder`` then
    ``get_db_prep_save``, or a shortcut that gives the same value)."""
    decode = tables.decoder(field)
    if _saved_as_is(field):
        return decode
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target) is models.UUIDField and not database.features.has_native_uuid_field:
        return _uuid_as_hex(field, decode, database)
    return lambda value: field.get_db_prep_save(decode(value), database)


def _uuid_as_hex(
    field: models.Field[Any, Any], decode: Callable[[Any], Any], database: Any
) -> Callable[[Any], Any]:
    """A UUID column (or a foreign key to one) where the database has no UUID type: the
    32 hex digits Django stores, without going through the field (a third of the events
    table's values). Anything but a well-formed UUID text takes the field's own way."""

    def prepare(value: Any) -> Any:
        if type(value) is str:
            try:
                return uuid.UUID(value).hex
            except ValueError:
                pass
        return field.get_db_prep_save(decode(value), database)

    return prepare


#: Fields whose ``to_python`` value is what ``get_db_prep_save`` sends, on every backend.
_PLAIN_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.BigIntegerField,
    models.IntegerField,
    models.PositiveBigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.BooleanField,
    models.FloatField,
    models.CharField,
    models.SlugField,
    models.EmailField,
    models.URLField,
    models.TextField,
)


def _saved_as_is(field: models.Field[Any, Any]) -> bool:
    """True when ``get_db_prep_save`` would hand the decoded value over unchanged: a plain
    number, flag or text column, or a foreign key to one (exact classes, no subclasses)."""
    if isinstance(field, models.ForeignKey):
        return type(field.target_field) in _PLAIN_FIELDS
    return type(field) in _PLAIN_FIELDS


def _insert_sql(model: type[models.Model], head: str, tail: str) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in tables.fields_of(model))
    return f"{head} {qn(model._meta.db_table)} ({columns}) {tail}"


def _insert_table(model: type[models.Model], path: Path, rel: str) -> int:
    """Batched ``executemany`` INSERTs (no model instances: the rows are stored as they were)."""
    width = len(tables.fields_of(model))
    sql = _insert_sql(model, "INSERT INTO", "VALUES (" + ", ".join(["%s"] * width) + ")")
    count = 0
    batch: list[list[Any]] = []
    with connection.cursor() as cursor:
        for values in _prepared_rows(model, path, rel):
            batch.append(values)
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def _copy_table(model: type[models.Model], path: Path, rel: str) -> int:
    """PostgreSQL: one ``COPY ... FROM STDIN`` per table, several times faster than INSERTs."""
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(_insert_sql(model, "COPY", "FROM STDIN")) as copy,
    ):
        for values in _prepared_rows(model, path, rel):
            copy.write_row(values)
            count += 1
    return count


def _replace_prefilled(chosen: list[type[models.Model]]) -> None:
    """Empty the tables migrations fill (built-in classes, the chain head), last model first."""
    for model in reversed(chosen):
        if model in APPEND_ONLY:
            continue
        manager = model._base_manager
        if manager.exists():
            manager.all().delete()


def _copy_blobs(root: Path) -> int:
    copied = 0
    source_dir = root / "blobs"
    if not source_dir.is_dir():
        return 0
    for source in sorted(source_dir.rglob("*")):
        if not source.is_file():
            continue
        target = blob_path(source.name)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        copied += 1
    return copied


def _in_memory_sqlite() -> bool:
    wrapper: Any = connection  # SQLite's wrapper has ``is_in_memory_db``; the base type does not
    return connection.vendor == "sqlite" and bool(wrapper.is_in_memory_db())


@contextmanager
def _sqlite_bulk_load() -> Iterator[None]:
    """SQLite, this connection only, while the restore writes: a rollback journal instead of
    the write-ahead log. In WAL mode every page of the restored rows is written twice (to the
    log, then copied into the database by the checkpoint after the commit); a rollback journal
    only holds the pages the transaction changes that existed before it (the empty database's
    few), and new pages go straight to the file. Still one transaction, all or nothing, and
    crash-safe (a hot journal is rolled back). Left alone inside a caller's transaction (the
    mode cannot change there), for an in-memory database, or when another connection holds
    the file (leaving WAL needs it alone; it is not waited for). WAL comes back afterwards,
    as every new connection also sets it (``init_command``)."""
    if connection.vendor != "sqlite" or connection.in_atomic_block or _in_memory_sqlite():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0])
        cursor.execute("PRAGMA busy_timeout")
        timeout = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA busy_timeout = 0")
        try:
            cursor.execute("PRAGMA journal_mode = DELETE")
        except OperationalError:  # another connection has the file open: stay in WAL
            pass
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {timeout}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode = {mode}")


def _write(root: Path, manifest: dict[str, Any]) -> dict[str, int]:
    entries = [(str(t["model"]), str(t["file"])) for t in manifest["tables"]]
    chosen = [_model_for(model_label) for model_label, _ in entries]
    rows: dict[str, int] = {}
    with transaction.atomic():
        _refuse_non_empty()  # again, inside the transaction that writes
        _replace_prefilled(chosen)
        insert = _copy_table if connection.vendor == "postgresql" else _insert_table
        for model, (model_label, rel) in zip(chosen, entries, strict=True):
            rows[model_label] = insert(model, root / rel, rel)
        statements = connection.ops.sequence_reset_sql(no_style(), chosen)
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
        _copy_blobs(root)
    return rows


def _events_problem(manifest: dict[str, Any]) -> tuple[int, str, str | None]:
    """``events verify`` on the restored log, and its size and root against the manifest's:
    (size, root, the problem or None)."""
    log = verify_database()
    if not log.ok:
        return log.tree_size, log.root_hash, f"events verify: {log.line()}"
    if (log.tree_size, log.root_hash) != (manifest["log"]["size"], manifest["log"]["root"]):
        return (
            log.tree_size,
            log.root_hash,
            f"events verify: the restored log has size {log.tree_size} root {log.root_hash}, "
            f"the manifest says size {manifest['log']['size']} root {manifest['log']['root']}",
        )
    return log.tree_size, log.root_hash, None


def _registry_problem() -> str | None:
    """``registry verify`` on the restored registry: the first problem, or None."""
    versions = Version.objects.select_related(
        "artifact__artifact_class", "artifact__tenant", "created_by"
    ).order_by("created_at")
    _, failure = verify_versions(versions)
    problem = (
        f"{failure.version.pinned}: {failure.reason}" if failure is not None else log_problem()
    )
    return None if problem is None else f"registry verify: {problem}"


def _registry_problem_apart() -> str | None:
    """``_registry_problem`` in a forked process, on a connection of its own."""
    try:
        return _registry_problem()
    finally:
        connections.close_all()


def can_verify_side_by_side() -> bool:
    """Whether the two checks after a restore can run in two processes: only when what the
    restore wrote is committed (not inside a caller's transaction, which another process
    would not see), the database is not a private in-memory one, and processes can fork."""
    return (
        not connection.in_atomic_block
        and not _in_memory_sqlite()
        and "fork" in get_all_start_methods()
    )


def verify_restored(
    result: RestoreResult, manifest: dict[str, Any], *, side_by_side: bool | None = None
) -> None:
    """The checks after a restore, recorded in ``result``: ``events verify`` (and the log's
    size and root against the manifest's) and ``registry verify``, as the commands do.

    They read only the database and share nothing, so when ``side_by_side`` (by default
    whenever ``can_verify_side_by_side``) the registry is verified in a forked process while
    this one verifies the log; the result and its problems are the same either way.
    """
    if side_by_side is None:
        side_by_side = can_verify_side_by_side()
    if side_by_side:
        connections.close_all()  # the forked process opens its own, it never shares this one
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("fork")) as pool:
            registry = pool.submit(_registry_problem_apart)
            size, root, events = _events_problem(manifest)
            problem = registry.result()
    else:
        size, root, events = _events_problem(manifest)
        problem = _registry_problem()
    result.log_size, result.log_root = size, root
    result.events_ok, result.registry_ok = events is None, problem is None
    result.problems.extend(p for p in (events, problem) if p is not None)


def backup_restore(path: Path | str, *, verify: bool = True) -> RestoreResult:
    """Restore the backup at ``path`` into this process's default database (see the module
    docstring). Raises BackupRefused, before writing anything, when it cannot; with ``verify``
    the result says whether the restored log and registry verify."""
    path = Path(path)
    try:
        with opened(path) as root:
            manifest = _refuse_unverified(root)
            _refuse_newer_schema(manifest)
            _refuse_non_empty()
            started = time.monotonic()
            with _sqlite_bulk_load():
                rows = _write(root, manifest)
            generation.bump()  # every cached runtime answer and token check is now stale
            result = RestoreResult(rows=rows, seconds_restore=time.monotonic() - started)
    except BackupUnreadable as exc:
        raise BackupRefused(str(exc).split(": ", 1)[-1], field=str(path)) from None
    result.log_size, result.log_root = manifest["log"]["size"], manifest["log"]["root"]
    if verify:
        started = time.monotonic()
        verify_restored(result, manifest)
        result.seconds_verify = time.monotonic() - started
    result.seconds_restore = round(result.seconds_restore, 3)
    result.seconds_verify = round(result.seconds_verify, 3)
    return result
