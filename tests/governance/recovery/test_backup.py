"""Backups: create, verify without Django, restore into an empty database, refuse corruption.

One realistic registry (``seed_demo``: tenants, users, artifacts, versions with a file,
changes promoted, waivers, rollouts) is built once for the module and backed up once; the
restores run ``manage.py`` in a subprocess against a fresh, migrated SQLite file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts import services as accounts
from accounts.models import Tenant, User
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.recovery.backup import (
    BackupRefused,
    backup_create,
    backup_restore,
    backup_take,
    backup_verify,
    latest_backup,
)
from governance.recovery.models import RecoveryRun
from registry.models import Version
from tests.cli import refused
from tests.scoped_db import kept_for_the_scope

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Source:
    """The module's registry and its backups."""

    plain: Path  # default backup (no secrets)
    secret: Path  # --with-secrets, as a .tar.gz
    blobs: Path
    folder: Path
    template: Path  # an empty, migrated SQLite database
    password_hashes: list[str]
    token_digests: list[str]


def _empty_template(folder: Path) -> Path:
    """A migrated, empty SQLite file: a copy of the test database as migrated (committed
    state only), or on PostgreSQL a fresh ``migrate`` (the restore then crosses vendors)."""
    target = folder / "template.sqlite3"
    if connection.vendor == "sqlite":
        source = sqlite3.connect(connection.settings_dict["NAME"])
        copy = sqlite3.connect(target)
        source.backup(copy)
        copy.close()
        source.close()
        return target
    manage(["migrate", "-v0"], database=target, blobs=folder / "unused")
    return target


def manage(
    args: list[str], *, database: Path | str, blobs: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    from django.conf import settings

    url = (
        database if str(database).startswith(("sqlite:", "postgres:")) else f"sqlite:///{database}"
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": str(url),
            "REGISTRY_BLOB_DIR": str(blobs),
            "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def source(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    folder = tmp_path_factory.mktemp("backup")
    blobs = folder / "blobs"
    with django_db_blocker.unblock():
        template = _empty_template(folder)
    out = folder / "out"
    out.mkdir()
    blob_settings = override_settings(REGISTRY_BLOB_DIR=str(blobs))
    blob_settings.enable()

    def build() -> Source:
        call_command("seed_demo", stdout=io.StringIO())
        someone = User.objects.order_by("username").first()
        assert someone is not None
        accounts.token_create(user=someone, name="backup-test", actor=None)
        plain = backup_create(out_dir=out)
        secret = backup_create(out_dir=out, with_secrets=True, archive=True)
        return Source(
            plain=plain.path,
            secret=secret.path,
            blobs=blobs,
            folder=folder,
            template=template,
            password_hashes=[
                p for p in User.objects.values_list("password", flat=True) if "$" in p
            ],
            token_digests=_digests(),
        )

    try:
        with kept_for_the_scope(django_db_blocker, build) as built:
            yield built
    finally:
        blob_settings.disable()


def _digests() -> list[str]:
    from accounts.models import ApiToken, ServiceToken

    return [
        *ApiToken.objects.values_list("digest", flat=True),
        *ServiceToken.objects.values_list("digest", flat=True),
    ]


def fresh_target(source: Source, name: str) -> tuple[Path, Path]:
    """A copy of the empty template and an empty blob folder for one restore."""
    database = source.folder / f"{name}.sqlite3"
    shutil.copyfile(source.template, database)
    blobs = source.folder / f"{name}-blobs"
    blobs.mkdir()
    return database, blobs


def counts_in(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in (
                "accounts_tenant",
                "accounts_user",
                "governance_event",
                "registry_version",
            )
        }


def manifest(backup: Path) -> dict[str, Any]:
    return json.loads((backup / "manifest.json").read_bytes())


def rows(backup: Path, model: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (backup / f"tables/{model}.jsonl").read_bytes().splitlines()
    ]


def corrupt_copy(source: Source, name: str) -> Path:
    copy = source.folder / f"corrupt-{name}"
    shutil.copytree(source.plain, copy)
    return copy


# --- creating -----------------------------------------------------------------------------


def test_backup_holds_every_table_the_log_and_the_files(source: Source) -> None:
    found = manifest(source.plain)
    assert found["format"] == "governance-backup/1"
    assert found["secrets"] is False
    by_model = {t["model"]: t["rows"] for t in found["tables"]}
    assert by_model["registry.version"] == Version.objects.count() > 0
    assert by_model["accounts.tenant"] == Tenant.objects.count() > 0
    assert by_model["reviews.changerequest"] > 0
    assert by_model["governance.waiver"] > 0
    assert by_model["rollouts.rollout"] > 0
    assert "governance.workerheartbeat" not in by_model
    assert "governance.verificationrun" not in by_model
    # The log as it was when the backup was read: every event up to its size.
    assert found["log"]["size"] == by_model["governance.event"] > 0
    versions = {row["id"]: row for row in rows(source.plain, "registry.version")}
    for version in Version.objects.all():
        row = versions[str(version.pk)]
        assert (row["manifest_sha256"], row["signature"], row["key_id"]) == (
            version.manifest_sha256,
            version.signature,
            version.key_id,
        )
    files = {f["path"] for f in found["files"]}
    with_files = Version.objects.filter(content_kind="file")
    assert with_files.exists()
    for version in with_files:
        sha = version.content_sha256
        assert f"blobs/{sha[:2]}/{sha}" in files
    head = json.loads((source.plain / "events.bundle").read_bytes().split(b"\n", 1)[0])
    assert (head["format"], head["size"]) == ("governance-log-bundle/1", found["log"]["size"])


def test_secrets_are_left_out_unless_asked(source: Source) -> None:
    assert source.password_hashes
    assert source.token_digests
    text = b"".join(p.read_bytes() for p in (source.plain / "tables").iterdir())
    for secret in source.password_hashes + source.token_digests:
        assert secret.encode() not in text
    users = rows(source.plain, "accounts.user")
    assert {u["password"] for u in users} == {"!"}
    assert manifest(source.plain)["secrets_left_out"] == [
        "accounts.user.password",
        "accounts.apitoken.digest",
        "accounts.servicetoken.digest",
    ]
    import tarfile

    with tarfile.open(source.secret) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith("accounts.user.jsonl")]
        extracted = tar.extractfile(members[0])
        assert extracted is not None
        kept = extracted.read()
    for secret in source.password_hashes:
        assert secret.encode() in kept


def test_backup_take_records_the_run_and_its_event(source: Source, tmp_path: Path) -> None:
    run = backup_take(out_dir=tmp_path)
    assert run.outcome == RecoveryRun.Outcome.PASSED
    assert run.kind == RecoveryRun.Kind.BACKUP
    assert Path(run.details["path"]).parent == tmp_path
    assert run.details["rows"] == sum(t["rows"] for t in manifest(Path(run.location))["tables"])
    assert run.details["log_size"] == manifest(Path(run.location))["log"]["size"]
    event = Event.objects.order_by("-seq").first()
    assert event is not None
    assert event.kind == EventKind.BACKUP_CREATED
    assert latest_backup(tmp_path) == Path(run.location)


def test_backup_take_records_a_failure_without_raising(tmp_path: Path) -> None:
    run = backup_take(out_dir=tmp_path / "nowhere")
    assert run.outcome == RecoveryRun.Outcome.FAILED
    assert "does not exist" in run.error
    event = Event.objects.order_by("-seq").first()
    assert event is not None
    assert event.kind == EventKind.BACKUP_FAILED


# --- verifying ----------------------------------------------------------------------------


def test_intact_backups_verify(source: Source) -> None:
    for path in (source.plain, source.secret):
        check = backup_verify(path)
        assert check.ok, check.problems
        assert check.manifest["log"]["size"] > 0


def _flip(path: Path, at: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _blob(backup: Path) -> Path:
    return next(p for p in (backup / "blobs").rglob("*") if p.is_file())


def test_each_corruption_is_named(source: Source) -> None:
    table = corrupt_copy(source, "table")
    _flip(table / "tables/registry.version.jsonl")
    assert backup_verify(table).problems == [
        "tables/registry.version.jsonl: SHA-256 differs from the manifest (file changed or corrupt)"
    ]

    blob = corrupt_copy(source, "blob")
    flipped = _blob(blob)
    _flip(flipped, 0)
    rel = flipped.relative_to(blob).as_posix()
    assert backup_verify(blob).problems == [
        f"{rel}: SHA-256 differs from the manifest (file changed or corrupt)"
    ]

    signed = corrupt_copy(source, "manifest")
    text = (signed / "manifest.json").read_text()
    (signed / "manifest.json").write_text(text.replace('"secrets":false', '"secrets":true'))
    problems = backup_verify(signed).problems
    assert problems == [
        "manifest.sig: the signature does not verify over manifest.json "
        "(the manifest was changed or signed by another key)"
    ]

    missing = corrupt_copy(source, "missing")
    (missing / "tables/reviews.approval.jsonl").unlink()
    assert backup_verify(missing).problems == [
        "tables/reviews.approval.jsonl: missing (listed in the manifest)"
    ]

    truncated = corrupt_copy(source, "truncated")
    bundle = truncated / "events.bundle"
    data = bundle.read_bytes()
    bundle.write_bytes(data[: len(data) // 2])
    problems = backup_verify(truncated).problems
    assert problems[0].startswith("events.bundle: SHA-256 differs from the manifest (")
    assert "truncated" in problems[0]
    assert problems[1].startswith("events.bundle: the event log does not verify: FAILED at")

    extra = corrupt_copy(source, "extra")
    (extra / "tables/notes.txt").write_text("hello")
    assert backup_verify(extra).problems == [
        "tables/notes.txt: not listed in the manifest (unexpected file)"
    ]


def test_verify_names_every_problem_at_once(source: Source) -> None:
    both = corrupt_copy(source, "both")
    _flip(both / "tables/accounts.tenant.jsonl")
    (both / "tables/registry.artifact.jsonl").unlink()
    problems = backup_verify(both).problems
    assert [p.split(":")[0] for p in problems] == [
        "tables/accounts.tenant.jsonl",
        "tables/registry.artifact.jsonl",
    ]


def test_not_a_backup(tmp_path: Path) -> None:
    assert backup_verify(tmp_path / "absent").problems == [
        f"{tmp_path / 'absent'}: no such file or directory"
    ]
    assert backup_verify(tmp_path).problems == [
        "manifest.json: missing (not a backup, or an incomplete one)"
    ]
    (tmp_path / "manifest.json").write_text('{"format": "something/2"}')
    assert backup_verify(tmp_path).problems == [
        "manifest.json: unknown format 'something/2' (expected 'governance-backup/1')"
    ]


def test_verify_trusts_only_the_keys_named(source: Source) -> None:
    kid = manifest(source.plain)["key"]["kid"]
    assert backup_verify(source.plain, {kid}).ok
    problems = backup_verify(source.plain, {"0" * 16}).problems
    assert problems[0] == (
        f"manifest.sig: signed by key {kid}, which is not one of the trusted keys"
    )


def test_verify_runs_without_django_or_a_database(source: Source) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/nothing"
    code = (
        "import sys, governance.recovery.backup.archive as a; "
        "code = a.main(sys.argv[1:]); "
        "assert 'django' not in sys.modules, 'archive imported Django'; sys.exit(code)"
    )
    ok = subprocess.run(
        [sys.executable, "-c", code, str(source.plain)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"OK: {source.plain} verifies:")
    broken = corrupt_copy(source, "offline")
    _flip(broken / "tables/accounts.user.jsonl")
    bad = subprocess.run(
        [sys.executable, "-m", "governance.recovery.backup.archive", str(broken)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0] == (
        "tables/accounts.user.jsonl: SHA-256 differs from the manifest (file changed or corrupt)"
    )
    # The management command checks a backup with the database unreachable, too.
    cli = manage(
        ["backup", "verify", str(source.secret)],
        database="postgres://nobody@127.0.0.1:1/nothing",
        blobs=source.folder / "unused",
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith(f"OK: {source.secret} verifies:")


# --- restoring ----------------------------------------------------------------------------


def test_round_trip_restores_every_row_and_the_log(source: Source) -> None:
    database, blobs = fresh_target(source, "round-trip")
    generation_file = source.folder / "round-trip-generation"
    restored = manage(
        ["backup", "restore", str(source.plain)],
        database=database,
        blobs=blobs,
        RUNTIME_GENERATION_FILE=str(generation_file),
        REDIS_URL="",
    )
    assert restored.returncode == 0, restored.stderr
    assert generation_file.exists()  # running servers drop what they cached before the restore
    log = manifest(source.plain)["log"]
    assert f"log size {log['size']} root {log['root']}" in restored.stdout
    assert restored.stdout.rstrip().endswith(": OK")
    for command in (["events", "verify"], ["registry", "verify"]):
        checked = manage(command, database=database, blobs=blobs)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.startswith("OK: ")
    assert (
        f"OK: {log['size']} events verified"
        in manage(["events", "verify"], database=database, blobs=blobs).stdout
    )
    # A backup of the restored database holds exactly the rows of the original.
    again_dir = source.folder / "again"
    again_dir.mkdir()
    again = manage(["backup", "create", "--out", str(again_dir)], database=database, blobs=blobs)
    assert again.returncode == 0, again.stderr
    second = latest_backup(again_dir)
    assert second is not None
    assert manifest(second)["log"] == manifest(source.plain)["log"]
    for table in manifest(source.plain)["tables"]:
        assert rows(second, table["model"]) == rows(source.plain, table["model"]), table["model"]
    # Every file of the content store came back, under its hash.
    for version in Version.objects.filter(content_kind="file"):
        sha = version.content_sha256
        assert (blobs / sha[:2] / sha).read_bytes() == (source.blobs / sha[:2] / sha).read_bytes()


def test_corrupt_backup_is_refused_before_anything_is_written(source: Source) -> None:
    broken = corrupt_copy(source, "refused")
    _flip(_blob(broken), 0)
    database, blobs = fresh_target(source, "refused")
    before = counts_in(database)
    refused = manage(["backup", "restore", str(broken)], database=database, blobs=blobs)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: blobs/")
    assert "SHA-256 differs from the manifest" in lines[0]
    assert counts_in(database) == before == dict.fromkeys(before, 0)
    assert not any(blobs.iterdir())


def test_restore_refuses_a_database_that_is_not_empty(source: Source) -> None:
    before = (Tenant.objects.count(), Event.objects.count(), Version.objects.count())
    with pytest.raises(BackupRefused) as refused:
        backup_restore(source.plain)
    assert refused.value.field == "database"
    assert "the database is not empty" in refused.value.message
    assert (Tenant.objects.count(), Event.objects.count(), Version.objects.count()) == before


def test_restore_refuses_a_corrupt_backup_naming_the_file(source: Source) -> None:
    broken = corrupt_copy(source, "in-process")
    bundle = broken / "events.bundle"
    bundle.write_bytes(bundle.read_bytes()[:-200])
    with pytest.raises(BackupRefused) as refused:
        backup_restore(broken)
    assert refused.value.field == "events.bundle"
    assert "events.bundle: SHA-256 differs from the manifest" in refused.value.message


def _resign(backup: Path, change: Any) -> None:
    """Rewrite the manifest through ``change`` and sign it again with the log's key: a backup
    whose signature holds but whose contents disagree with it."""
    import rfc8785

    from governance.kernel.events import keys

    found = manifest(backup)
    change(found)
    body = bytes(rfc8785.dumps(found))
    (backup / "manifest.json").write_bytes(body)
    signature = json.loads((backup / "manifest.sig").read_bytes())
    signature["signature"] = keys.sign(signature["kid"], body)
    (backup / "manifest.sig").write_text(json.dumps(signature))


def test_a_log_that_differs_from_the_signed_manifest_is_named(source: Source) -> None:
    shorter = corrupt_copy(source, "log-size")
    _resign(shorter, lambda m: m["log"].update(size=m["log"]["size"] - 1))
    size = manifest(source.plain)["log"]["size"]
    assert backup_verify(shorter).problems == [
        f"events.bundle: holds {size} events where the manifest says {size - 1}"
    ]
    other_root = corrupt_copy(source, "log-root")
    _resign(other_root, lambda m: m["log"].update(root="0" * 64))
    assert backup_verify(other_root).problems == [
        f"events.bundle: Merkle root {manifest(source.plain)['log']['root']} differs from the "
        f"manifest's {'0' * 64}"
    ]
    counted = corrupt_copy(source, "rows")
    _resign(counted, lambda m: m["tables"][0].update(rows=m["tables"][0]["rows"] + 1))
    first = manifest(counted)["tables"][0]
    assert backup_verify(counted).problems == [
        f"{first['file']}: {first['rows'] - 1} rows where the manifest says {first['rows']}"
    ]


def _rewrite_a_version(backup: Path) -> str:
    """Change one version's ``change_reason`` in the table file and sign the manifest again
    over the file's new hash: the backup verifies, the restored registry must not. Returns
    the version's pinned path."""
    import hashlib

    table = backup / "tables/registry.version.jsonl"
    lines = table.read_bytes().splitlines()
    row = json.loads(lines[0])
    row["change_reason"] = "rewritten after signing"
    lines[0] = json.dumps(row, separators=(",", ":")).encode()
    table.write_bytes(b"\n".join(lines) + b"\n")
    data = table.read_bytes()

    def rehash(found: dict[str, Any]) -> None:
        for item in found["files"]:
            if item["path"] == "tables/registry.version.jsonl":
                item.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    _resign(backup, rehash)
    version = Version.objects.select_related("artifact__artifact_class", "artifact__tenant").get(
        pk=row["id"]
    )
    return version.pinned


#: Both ways of verifying a restored database (in two processes, then in this one), each
#: result as JSON; the manifest's log root is replaced when ``WRONG_ROOT`` is set.
_BOTH_WAYS = """
import json, os
from pathlib import Path
from governance.recovery.backup.restore import RestoreResult, verify_restored
found = json.loads((Path(os.environ["BACKUP"]) / "manifest.json").read_bytes())
if os.environ.get("WRONG_ROOT"):
    found["log"]["root"] = "0" * 64
results = []
for apart in (True, False):
    result = RestoreResult()
    verify_restored(result, found, side_by_side=apart)
    results.append([result.events_ok, result.registry_ok, result.log_size, result.log_root,
                    result.problems])
print(json.dumps(results))
"""


def test_verification_side_by_side_finds_what_one_process_finds(source: Source) -> None:
    """After a restore the log and the registry are verified in two processes; the results,
    passed or failed, are the ones a single process gives, problem for problem."""
    backup = corrupt_copy(source, "side-by-side")
    pinned = _rewrite_a_version(backup)
    database, blobs = fresh_target(source, "side-by-side")
    written = manage(
        ["backup", "restore", str(backup), "--no-verify-after"], database=database, blobs=blobs
    )
    assert written.returncode == 0, written.stderr
    log = manifest(backup)["log"]
    registry_problem = (
        f"registry verify: {pinned}: change_reason differs from the signed manifest "
        "(column rewritten)"
    )
    for wrong_root, expected in (
        ("", [True, False, log["size"], log["root"], [registry_problem]]),
        (
            "1",
            [
                False,
                False,
                log["size"],
                log["root"],
                [
                    f"events verify: the restored log has size {log['size']} root {log['root']}, "
                    f"the manifest says size {log['size']} root {'0' * 64}",
                    registry_problem,
                ],
            ],
        ),
    ):
        both = manage(
            ["shell", "-v", "0", "-c", _BOTH_WAYS],
            database=database,
            blobs=blobs,
            BACKUP=str(backup),
            WRONG_ROOT=wrong_root,
        )
        assert both.returncode == 0, both.stderr
        # Each: [events_ok, registry_ok, log size, log root, problems].
        apart, together = json.loads(both.stdout.splitlines()[-1])
        assert apart == together == expected


def test_a_restore_that_does_not_verify_exits_1_naming_the_check(source: Source) -> None:
    backup = corrupt_copy(source, "not-verified")
    pinned = _rewrite_a_version(backup)
    database, blobs = fresh_target(source, "not-verified")
    restored = manage(["backup", "restore", str(backup)], database=database, blobs=blobs)
    assert restored.returncode == 1
    lines = restored.stderr.strip().splitlines()
    assert lines[0] == (
        f"registry verify: {pinned}: change_reason differs from the signed manifest "
        "(column rewritten)"
    )
    assert lines[1].startswith("FAILED: restored ")
    assert lines[1].endswith(", but it does not verify")
    # The rows were written (one transaction, committed): the check after it is what failed.
    assert counts_in(database)["registry_version"] == Version.objects.count()


def _flip_table(backup: Path) -> None:
    _flip(backup / "tables/registry.version.jsonl")


def _flip_blob(backup: Path) -> None:
    _flip(_blob(backup), 0)


def _edit_manifest(backup: Path) -> None:
    text = (backup / "manifest.json").read_text()
    (backup / "manifest.json").write_text(text.replace('"secrets":false', '"secrets":true'))


def _remove_table(backup: Path) -> None:
    (backup / "tables/registry.artifact.jsonl").unlink()


def _truncate_log(backup: Path) -> None:
    bundle = backup / "events.bundle"
    bundle.write_bytes(bundle.read_bytes()[:-100])


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (_flip_table, "tables/registry.version.jsonl"),
        (_flip_blob, "blobs/"),
        (_edit_manifest, "manifest.sig"),
        (_remove_table, "tables/registry.artifact.jsonl"),
        (_truncate_log, "events.bundle"),
    ],
)
def test_restore_refuses_each_corruption_before_writing(
    source: Source, spoil: Any, named: str
) -> None:
    broken = corrupt_copy(source, f"refuse-{spoil.__name__}")
    spoil(broken)
    counts = (Tenant.objects.count(), Event.objects.count(), Version.objects.count())
    with pytest.raises(BackupRefused) as refused:
        backup_restore(broken)
    assert refused.value.field is not None
    assert refused.value.field.startswith(named)
    assert refused.value.message.startswith("the backup does not verify, nothing was restored: ")
    assert f" {named}" in refused.value.message
    # Refused by the check of the backup, before the database was even looked at.
    assert "not empty" not in refused.value.message
    assert (Tenant.objects.count(), Event.objects.count(), Version.objects.count()) == counts


def test_cli_create_prints_the_backup_and_refuses_a_missing_folder(
    source: Source, tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("backup", "create", "--out", str(tmp_path), stdout=out)
    made = latest_backup(tmp_path)
    assert made is not None
    found = manifest(made)
    rows_total = sum(t["rows"] for t in found["tables"])
    assert out.getvalue().startswith(f"Backup {made}: ")
    assert f"{rows_total} rows, log size {found['log']['size']} root {found['log']['root']}" in (
        out.getvalue()
    )
    assert refused("backup", "create", "--out", str(tmp_path / "nope")) == (
        f"out: folder {tmp_path / 'nope'} does not exist"
    )


# --- PostgreSQL to PostgreSQL -------------------------------------------------------------


def _pg_admin() -> Any:
    import psycopg

    cfg = connection.settings_dict
    return psycopg.connect(
        host=cfg.get("HOST") or "127.0.0.1",
        port=int(cfg.get("PORT") or 5432),
        user=cfg.get("USER") or "postgres",
        password=cfg.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture
def pg_target() -> Iterator[str]:
    """An empty PostgreSQL database beside the test database; its URL."""
    from tests.conftest import subprocess_database_url

    name = f"{connection.settings_dict['NAME']}_restore"
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield subprocess_database_url().rsplit("/", 1)[0] + f"/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_round_trip_on_postgresql(source: Source, pg_target: str) -> None:
    """PostgreSQL to PostgreSQL: the restore verifies, and a backup of the restored database
    (taken in its own REPEATABLE READ READ ONLY snapshot) holds exactly the original rows."""
    blobs = source.folder / "pg-blobs"
    blobs.mkdir()
    migrated = manage(["migrate", "-v0"], database=pg_target, blobs=blobs)
    assert migrated.returncode == 0, migrated.stderr
    restored = manage(["backup", "restore", str(source.secret)], database=pg_target, blobs=blobs)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.rstrip().endswith(": OK")
    checked = manage(["registry", "verify"], database=pg_target, blobs=blobs)
    assert checked.returncode == 0, checked.stderr
    again_dir = source.folder / "pg-again"
    again_dir.mkdir()
    again = manage(["backup", "create", "--out", str(again_dir)], database=pg_target, blobs=blobs)
    assert again.returncode == 0, again.stderr
    second = latest_backup(again_dir)
    assert second is not None
    assert manifest(second)["database"] == {"vendor": "postgresql"}
    assert manifest(second)["log"] == manifest(source.plain)["log"]
    for table in manifest(source.plain)["tables"]:
        assert rows(second, table["model"]) == rows(source.plain, table["model"]), table["model"]
