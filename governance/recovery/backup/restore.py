"""Restoring a ``governance-backup/1`` backup into an empty database (see docs/operations.md).

Refuses before writing anything when the backup does not verify, when it was taken with
migrations this database has not applied, or when the database is not empty (it holds
tenants, users, events or checkpoints). Then, in one transaction: the rows migrations put in
(the built-in artifact classes, the chain head) are replaced, every table is inserted in
manifest order (``COPY`` on PostgreSQL, batched INSERTs elsewhere; no model is built or
saved, so the rows are stored exactly as they were), PostgreSQL sequences are reset and the
content store's files are copied into ``REGISTRY_BLOB_DIR``. Afterwards the log and the
registry are verified as ``events verify`` and ``registry verify`` do, and the log's size and
root are compared with the manifest's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
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
    decoders = {f.attname: tables.decoder(f) for f in fields}
    # Resolved once: each lookup through the ``connection`` proxy costs as much as a value.
    database = connections[DEFAULT_DB_ALIAS]
    steps = [(f.attname, decoders[f.attname], _saved_as_is(f), f) for f in fields]
    for row in _rows(path):
        unknown = row.keys() - decoders.keys()
        if unknown:
            raise BackupRefused(
                f"column(s) {', '.join(sorted(unknown))} are not in this database's "
                f"{tables.label(model)}",
                field=rel,
            )
        values = []
        for attname, decode, as_is, f in steps:
            value = decode(row[attname]) if attname in row else f.get_default()
            values.append(value if as_is else f.get_db_prep_save(value, database))
        yield values


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


def _verify_after(result: RestoreResult, manifest: dict[str, Any]) -> None:
    log = verify_database()
    result.log_size, result.log_root = log.tree_size, log.root_hash
    result.events_ok = log.ok
    if not log.ok:
        result.problems.append(f"events verify: {log.line()}")
    elif (log.tree_size, log.root_hash) != (manifest["log"]["size"], manifest["log"]["root"]):
        result.events_ok = False
        result.problems.append(
            f"events verify: the restored log has size {log.tree_size} root {log.root_hash}, "
            f"the manifest says size {manifest['log']['size']} root {manifest['log']['root']}"
        )
    versions = Version.objects.select_related(
        "artifact__artifact_class", "artifact__tenant", "created_by"
    ).order_by("created_at")
    _, failure = verify_versions(versions)
    problem = (
        f"{failure.version.pinned}: {failure.reason}" if failure is not None else log_problem()
    )
    result.registry_ok = problem is None
    if problem is not None:
        result.problems.append(f"registry verify: {problem}")


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
            rows = _write(root, manifest)
            generation.bump()  # every cached runtime answer and token check is now stale
            result = RestoreResult(rows=rows, seconds_restore=time.monotonic() - started)
    except BackupUnreadable as exc:
        raise BackupRefused(str(exc).split(": ", 1)[-1], field=str(path)) from None
    result.log_size, result.log_root = manifest["log"]["size"], manifest["log"]["root"]
    if verify:
        started = time.monotonic()
        _verify_after(result, manifest)
        result.seconds_verify = time.monotonic() - started
    result.seconds_restore = round(result.seconds_restore, 3)
    result.seconds_verify = round(result.seconds_verify, 3)
    return result
