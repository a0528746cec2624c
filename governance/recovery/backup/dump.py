"""Writing a ``governance-backup/1`` backup of the running registry (see docs/operations.md).

Everything is read inside one transaction: on PostgreSQL a ``REPEATABLE READ READ ONLY``
snapshot (writers go on; the backup shows one moment), on SQLite the transaction's own
snapshot. The backup is written under a hidden ``.incoming-`` name and renamed when complete,
so a half-written backup never looks like one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import rfc8785
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from governance.kernel.errors import DomainError
from governance.kernel.events import keys as keystore
from governance.kernel.events import selectors as log_selectors
from governance.kernel.events.services import active_key
from governance.recovery.backup import tables
from governance.recovery.backup.archive import EVENTS, FORMAT, MANIFEST, SIGNATURE, file_digest
from registry.models import Version
from registry.storage import blob_path

CHUNK_ROWS = 2000


@dataclass
class BackupResult:
    """A backup written: where, when, how big, how many rows per model, the log it holds."""

    path: Path
    created_at: datetime
    log_size: int
    log_root: str
    bytes: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class _HashingWriter:
    """A binary file that hashes and counts what goes through it."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)


@contextmanager
def _snapshot() -> Iterator[None]:
    """One transaction for every read: on PostgreSQL one repeatable-read, read-only snapshot;
    on SQLite a deferred transaction, whose first read fixes the snapshot (WAL) without the
    write lock the project's IMMEDIATE transactions take, so writers are not held up."""
    outermost = not connection.in_atomic_block
    if outermost and connection.vendor == "sqlite":
        connection.ensure_connection()
        configured = getattr(connection, "transaction_mode", None)
        connection.transaction_mode = "DEFERRED"  # type: ignore[attr-defined]
        try:
            with transaction.atomic():
                connection.transaction_mode = configured  # type: ignore[attr-defined]
                yield
        finally:
            connection.transaction_mode = configured  # type: ignore[attr-defined]
        return
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _secret_replacement(attname: str, row: dict[str, Any]) -> Any:
    """What a default backup writes instead of a secret: nothing anyone can sign in with."""
    if attname == "password":
        return UNUSABLE_PASSWORD_PREFIX
    # Token digests are unique: an unusable, unique marker (SHA-256 hex never holds "!").
    return f"!{str(row['id']).replace('-', '')}"[:64]


def _write_table(
    model: type[models.Model], out: IO[bytes], *, with_secrets: bool
) -> tuple[int, list[str]]:
    """Stream one table as JSON Lines, ordered by primary key; returns (rows, blob digests)."""
    fields = tables.fields_of(model)
    names = [f.attname for f in fields]
    encoders = [tables.encoder(f) for f in fields]
    model_label = tables.label(model)
    secret = (
        set()
        if with_secrets
        else {name for lbl, name in tables.SECRET_FIELDS if lbl == model_label}
    )
    wants_blobs = model is Version
    blobs: list[str] = []
    rows = 0
    dumps = json.dumps
    query = model._base_manager.order_by("pk").values_list(*names)
    for values in query.iterator(chunk_size=CHUNK_ROWS):
        row = {name: enc(value) for name, enc, value in zip(names, encoders, values, strict=True)}
        for name in secret:
            row[name] = _secret_replacement(name, row)
        if wants_blobs and row.get("content_sha256"):
            blobs.append(row["content_sha256"])
        out.write(dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        rows += 1
    return rows, blobs


def _latest_migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if app in tables.APPS and name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def _free_name(out_dir: Path, stem: str, archive_too: bool) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... when a backup of the same second exists."""
    name, n = stem, 1
    while (out_dir / name).exists() or (archive_too and (out_dir / f"{name}.tar.gz").exists()):
        n += 1
        name = f"{stem}-{n}"
    return name


def _signing_key() -> tuple[str, str, Any]:
    key = active_key()  # before the read-only snapshot: may create a development key
    return key.kid, key.public_key, keystore.private_key(key.kid)


def _write_contents(
    folder: Path, *, with_secrets: bool
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, int]]:
    """Tables, the log and the blobs into ``folder``; returns (manifest parts, files, rows)."""
    files: list[dict[str, Any]] = []
    rows: dict[str, int] = {}
    table_entries: list[dict[str, Any]] = []
    blobs: set[str] = set()
    (folder / "tables").mkdir()
    with _snapshot():
        with (folder / EVENTS).open("wb") as handle:
            writer = _HashingWriter(handle)
            written = log_selectors.log_bundle_write(
                writer,  # type: ignore[arg-type]
                meta={"exported_at": timezone.now().isoformat()},
            )
        files.append({"path": EVENTS, "sha256": writer.digest.hexdigest(), "bytes": writer.size})
        for model in tables.backup_models():
            model_label = tables.label(model)
            rel = f"tables/{model_label}.jsonl"
            with (folder / rel).open("wb") as handle:
                writer = _HashingWriter(handle)
                count, found = _write_table(model, writer, with_secrets=with_secrets)  # type: ignore[arg-type]
            blobs.update(found)
            rows[model_label] = count
            table_entries.append({"model": model_label, "file": rel, "rows": count})
            files.append({"path": rel, "sha256": writer.digest.hexdigest(), "bytes": writer.size})
        migrations = _latest_migrations()
        vendor = connection.vendor
    missing = []
    for sha in sorted(blobs):
        source = blob_path(sha)
        if not source.is_file():
            missing.append(sha)
            continue
        rel = f"blobs/{sha[:2]}/{sha}"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / rel)
        digest, size = file_digest(folder / rel)
        files.append({"path": rel, "sha256": digest, "bytes": size})
    parts = {
        "database": {"vendor": vendor},
        "migrations": migrations,
        "log": {"file": EVENTS, "size": written.size, "root": written.root},
        "tables": table_entries,
        "missing_blobs": missing,
    }
    return parts, files, rows


def backup_create(
    *, out_dir: Path, with_secrets: bool = False, archive: bool = False
) -> BackupResult:
    """Write one backup into ``out_dir`` (a directory, or with ``archive`` a ``.tar.gz``).

    Records no run (``backup_take`` does). Raises DomainError when ``out_dir`` is unusable or
    the signing key is not available to this process.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DomainError(f"folder {out_dir} does not exist", field="out")
    kid, public, private = _signing_key()
    created_at = timezone.now().astimezone(UTC).replace(microsecond=0)
    name = _free_name(out_dir, f"backup-{created_at:%Y%m%dT%H%M%SZ}", archive)
    incoming = out_dir / f".incoming-{name}"
    incoming.mkdir()
    try:
        parts, files, rows = _write_contents(incoming, with_secrets=with_secrets)
        manifest = {
            "format": FORMAT,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "secrets": with_secrets,
            "secrets_left_out": []
            if with_secrets
            else [f"{lbl}.{name}" for lbl, name in tables.SECRET_FIELDS],
            **parts,
            "files": files,
            "key": {"kid": kid, "public_key": public},
        }
        body = bytes(rfc8785.dumps(manifest))
        (incoming / MANIFEST).write_bytes(body)
        signature = {"kid": kid, "public_key": public, "signature": private.sign(body).hex()}
        (incoming / SIGNATURE).write_text(json.dumps(signature, sort_keys=True) + "\n")
        total = sum(f["bytes"] for f in files) + len(body)
        if archive:
            final = out_dir / f"{name}.tar.gz"
            partial = out_dir / f".incoming-{name}.tar.gz"
            with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
                tar.add(incoming, arcname=name)
            os.replace(partial, final)
            shutil.rmtree(incoming)
            total = final.stat().st_size
        else:
            final = out_dir / name
            os.replace(incoming, final)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return BackupResult(
        path=final,
        created_at=created_at,
        log_size=int(parts["log"]["size"]),
        log_root=str(parts["log"]["root"]),
        bytes=total,
        rows=rows,
        seconds=round(time.monotonic() - started, 3),
    )


def latest_backup(out_dir: Path) -> Path | None:
    """The newest complete backup (directory or archive) in ``out_dir``, by its name's time."""
    folder = Path(out_dir)
    if not folder.is_dir():
        return None
    found = [
        p
        for p in folder.iterdir()
        if p.name.startswith("backup-") and (p.is_dir() or p.name.endswith(".tar.gz"))
    ]
    return max(found, key=lambda p: _stamp(p.name), default=None)


def _stamp(name: str) -> tuple[str, int]:
    stem = name.removesuffix(".tar.gz").removeprefix("backup-")
    when, _, n = stem.partition("-")
    return when, int(n) if n.isdigit() else 1
