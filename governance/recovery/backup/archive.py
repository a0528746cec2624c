"""Reading and checking a ``governance-backup/1`` backup without Django or a database.

Needs only the standard library, ``cryptography`` and the offline log verifier
(``governance.kernel.verify``), so an operator can check a backup anywhere:
``python -m governance.recovery.backup.archive PATH`` (exit 0 when it verifies, 1 if not).

A backup is a directory, or a ``.tar``/``.tar.gz`` of one. ``verify_backup`` names every
problem it finds, each starting with the file at fault: the manifest's format and Ed25519
signature, every listed file's presence, size and SHA-256, files the manifest does not list,
each table's row count, and the event log (it must verify on its own, and its size and Merkle
root must be the ones the manifest names).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.kernel.verify import verify_bundle_file

FORMAT = "governance-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
EVENTS = "events.bundle"
CHUNK = 1 << 20


class BackupUnreadable(Exception):
    """The path is not a backup that can be opened at all (missing, not a directory or archive)."""


@dataclass
class BackupCheck:
    """What ``verify_backup`` found: ``ok`` when ``problems`` is empty."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def key_id(public_key_hex: str) -> str:
    """Key id = the first 16 hex digits of SHA-256 over the raw public key (as the event log's)."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def is_archive(path: Path) -> bool:
    return path.is_file() and (path.name.endswith((".tar", ".tar.gz", ".tgz")))


@contextmanager
def opened(path: Path) -> Iterator[Path]:
    """The backup's directory: ``path`` itself, or a temporary extraction of an archive."""
    if path.is_dir():
        yield path
        return
    if not path.exists():
        raise BackupUnreadable(f"{path}: no such file or directory")
    if not is_archive(path):
        raise BackupUnreadable(f"{path}: not a backup directory or .tar/.tar.gz archive")
    scratch = Path(tempfile.mkdtemp(prefix="backup-open-"))
    try:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupUnreadable(f"{path}: cannot read the archive: {exc}") from None
        inner = [p for p in scratch.iterdir()]
        root = inner[0] if len(inner) == 1 and inner[0].is_dir() else scratch
        yield root
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _safe_relative(text: str) -> bool:
    pure = PurePosixPath(text)
    return bool(text) and not pure.is_absolute() and ".." not in pure.parts


def _check_signature(
    root: Path, manifest_bytes: bytes, manifest: dict[str, Any], trusted: set[str] | None
) -> list[str]:
    sig_path = root / SIGNATURE
    if not sig_path.is_file():
        return [f"{SIGNATURE}: missing (the manifest is unsigned)"]
    try:
        sig = json.loads(sig_path.read_bytes())
        kid, public, signature = str(sig["kid"]), str(sig["public_key"]), str(sig["signature"])
        public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
        signature_bytes = bytes.fromhex(signature)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{SIGNATURE}: malformed ({exc})"]
    problems = []
    if key_id(public) != kid:
        problems.append(f"{SIGNATURE}: key id {kid} does not match its public key")
    if trusted is not None and kid not in trusted:
        problems.append(f"{SIGNATURE}: signed by key {kid}, which is not one of the trusted keys")
    named = manifest.get("key") if isinstance(manifest.get("key"), dict) else {}
    if named and (named.get("kid"), named.get("public_key")) != (kid, public):
        problems.append(f"{SIGNATURE}: signed by key {kid}, but {MANIFEST} names another key")
    try:
        public_key.verify(signature_bytes, manifest_bytes)
    except InvalidSignature:
        problems.append(
            f"{SIGNATURE}: the signature does not verify over {MANIFEST} "
            "(the manifest was changed or signed by another key)"
        )
    return problems


def _check_files(root: Path, manifest: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Every listed file present with its size and hash; every present file listed."""
    problems: list[str] = []
    intact: set[str] = set()
    listed: set[str] = set()
    files = manifest.get("files")
    if not isinstance(files, list):
        return [f"{MANIFEST}: no list of files"], intact
    for item in files:
        try:
            rel, sha, size = str(item["path"]), str(item["sha256"]), int(item["bytes"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{MANIFEST}: malformed file entry {item!r}")
            continue
        if not _safe_relative(rel):
            problems.append(f"{MANIFEST}: file path {rel!r} leaves the backup")
            continue
        listed.add(rel)
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing (listed in the manifest)")
            continue
        actual_sha, actual_size = file_digest(path)
        if actual_sha != sha:
            what = (
                f"{actual_size} bytes where the manifest says {size}: truncated or extended"
                if actual_size != size
                else "file changed or corrupt"
            )
            problems.append(f"{rel}: SHA-256 differs from the manifest ({what})")
            continue
        intact.add(rel)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in listed and rel not in (MANIFEST, SIGNATURE):
            problems.append(f"{rel}: not listed in the manifest (unexpected file)")
    return problems, intact


def _check_tables(root: Path, manifest: dict[str, Any], intact: set[str]) -> list[str]:
    problems: list[str] = []
    tables = manifest.get("tables")
    if not isinstance(tables, list):
        return [f"{MANIFEST}: no list of tables"]
    for table in tables:
        try:
            rel, rows = str(table["file"]), int(table["rows"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{MANIFEST}: malformed table entry {table!r}")
            continue
        if rel not in intact:
            continue  # already reported as missing, changed or unlisted
        with (root / rel).open("rb") as handle:
            counted = sum(1 for _ in handle)
        if counted != rows:
            problems.append(f"{rel}: {counted} rows where the manifest says {rows}")
    return problems


def _check_log(root: Path, manifest: dict[str, Any], trusted: set[str] | None) -> list[str]:
    log = manifest.get("log")
    if not isinstance(log, dict):
        return [f"{MANIFEST}: no log section"]
    rel = str(log.get("file", EVENTS))
    path = root / rel
    if not _safe_relative(rel):
        return [f"{MANIFEST}: log file {rel!r} leaves the backup"]
    if not path.is_file():
        files = manifest.get("files")
        listed = isinstance(files, list) and any(
            isinstance(f, dict) and f.get("path") == rel for f in files
        )
        return [] if listed else [f"{rel}: missing (the event log)"]
    result = verify_bundle_file(str(path), trusted_keys=trusted, workers=1)
    if not result.ok:
        return [f"{rel}: the event log does not verify: {result.line()}"]
    problems = []
    if result.tree_size != log.get("size"):
        problems.append(
            f"{rel}: holds {result.tree_size} events where the manifest says {log.get('size')}"
        )
    elif result.root_hash != log.get("root"):
        problems.append(
            f"{rel}: Merkle root {result.root_hash} differs from the manifest's {log.get('root')}"
        )
    return problems


def verify_directory(root: Path, trusted_keys: set[str] | None = None) -> BackupCheck:
    """Check an opened backup directory (see the module docstring)."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        return BackupCheck(False, [f"{MANIFEST}: missing (not a backup, or an incomplete one)"])
    manifest_bytes = manifest_path.read_bytes()
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        return BackupCheck(False, [f"{MANIFEST}: not JSON ({exc})"])
    if not isinstance(manifest, dict):
        return BackupCheck(False, [f"{MANIFEST}: not a JSON object"])
    if manifest.get("format") != FORMAT:
        return BackupCheck(
            False,
            [f"{MANIFEST}: unknown format {manifest.get('format')!r} (expected {FORMAT!r})"],
            manifest,
        )
    problems = _check_signature(root, manifest_bytes, manifest, trusted_keys)
    file_problems, intact = _check_files(root, manifest)
    problems += file_problems
    problems += _check_tables(root, manifest, intact)
    problems += _check_log(root, manifest, trusted_keys)
    return BackupCheck(not problems, problems, manifest)


def verify_backup(path: Path | str, trusted_keys: set[str] | None = None) -> BackupCheck:
    """Check a backup directory or archive; every problem names its file. Never raises for bad input."""
    path = Path(path)
    try:
        with opened(path) as root:
            return verify_directory(root, trusted_keys)
    except BackupUnreadable as exc:
        return BackupCheck(False, [str(exc)])
    except OSError as exc:
        return BackupCheck(False, [f"{path}: cannot read: {exc}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m governance.recovery.backup.archive",
        description="Verify a governance backup offline (no Django, no database).",
    )
    parser.add_argument("backup", help="a backup directory or .tar.gz written by `backup create`")
    parser.add_argument(
        "--trust-key", action="append", metavar="KID", help="accept only these key ids"
    )
    args = parser.parse_args(argv)
    check = verify_backup(args.backup, set(args.trust_key) if args.trust_key else None)
    for problem in check.problems:
        print(problem, file=sys.stderr)
    if not check.ok:
        print(f"FAILED: {len(check.problems)} problem(s) in {args.backup}", file=sys.stderr)
        return 1
    log = check.manifest.get("log", {})
    rows = sum(int(t.get("rows", 0)) for t in check.manifest.get("tables", []))
    print(
        f"OK: {args.backup} verifies: {len(check.manifest.get('files', []))} files, {rows} rows, "
        f"log size {log.get('size')} root {log.get('root')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
