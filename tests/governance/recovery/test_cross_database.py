"""Backups travel between databases: SQLite → PostgreSQL → SQLite, and PostgreSQL → wipe → PostgreSQL.

A registry with real content (``seed_demo``: versions, a promoted change, rollouts with
pointer moves and an override, waivers, a deprecation; plus a second file version and a
signed checkpoint) is backed up on SQLite, restored into a fresh PostgreSQL database, backed
up there and restored into a fresh SQLite file; the PostgreSQL database is then wiped and its
own backup restored into it. At every hop ``events verify`` and ``registry verify`` pass (the
commands, in the restored site) and the fingerprint (``fingerprint.py``: version hashes and
signatures, active/recommended versions, slot defaults and overrides, blobs, the log's root,
checkpoints, keys, and a digest of every backed-up table) equals the source's, and the log's
root equals the one the backup's manifest names.

Every site is a separate process with its own ``DATABASE_URL`` (databases ``gov_proof_x_*``
on the test server, dropped afterwards) and its own content store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.governance.recovery.sites import Site, Sites, new_prefix

pytestmark = pytest.mark.postgres

#: Tables whose rows legitimately move after the moment of a backup: the chain head and the
#: recovery runs (``backup create`` records its run, a restore may record its own).
MOVING = {"governance.eventchainhead", "governance.recoveryrun"}

#: Tables a backup of the demo registry must hold rows of (the fingerprint compares them all).
MUST_HOLD = {
    "accounts.tenant",
    "accounts.user",
    "accounts.rolegrant",
    "registry.artifact",
    "registry.version",
    "registry.versiondependency",
    "registry.deprecation",
    "reviews.changerequest",
    "reviews.approval",
    "reviews.activation",
    "governance.waiver",
    "governance.event",
    "governance.checkpoint",
    "governance.signingkey",
    "rollouts.application",
    "rollouts.slot",
    "rollouts.override",
    "rollouts.rollout",
    "rollouts.pointermove",
}

SECOND_WEIGHTS = """
from registry.models import Artifact
from registry.services import Content, version_publish
model = Artifact.objects.get(slug="intent-classifier")
version, created = version_publish(
    artifact=model, content=Content(file_bytes=b"proof-weights-v2" * 512, file_name="weights.bin"),
    impact="minor", reason="Retrained on last month's tickets.", actor=None,
)
assert created
print(version.version)
"""


def backup_in(folder: Path) -> Path:
    """The one backup ``backup create --out folder`` wrote there."""
    made = sorted(folder.glob("backup-*"))
    assert len(made) == 1, made
    return made[0]


def manifest_of(backup: Path) -> dict[str, Any]:
    return dict(json.loads((backup / "manifest.json").read_bytes()))


def take_backup(site: Site, folder: Path) -> tuple[Path, dict[str, Any]]:
    folder.mkdir()
    site.ok("backup", "create", "--with-secrets", "--out", str(folder))
    backup = backup_in(folder)
    return backup, manifest_of(backup)


def restore_and_verify(site: Site, backup: Path) -> None:
    site.ok("backup", "restore", str(backup))
    events, registry = site.verify()
    assert events.startswith("OK"), events
    assert registry.startswith("OK"), registry


def assert_same(
    restored: dict[str, Any], source: dict[str, Any], manifest: dict[str, Any], hop: str
) -> None:
    """The restored site holds exactly what the source held at the backup's moment."""
    size, root = manifest["log"]["size"], manifest["log"]["root"]
    assert source["log"]["upto"] == restored["log"]["upto"] == size, hop
    assert source["log"]["root"] == restored["log"]["root"] == root, hop
    assert restored["log"]["size"] >= size, hop
    assert restored["log"]["checkpoints"] == source["log"]["checkpoints"], hop
    assert restored["log"]["keys"] == source["log"]["keys"], hop
    assert restored["versions"] == source["versions"], hop
    assert restored["pointers"] == source["pointers"], hop
    assert restored["blobs"] == source["blobs"], hop
    assert all(sha == rehashed for sha, rehashed in restored["blobs"].items()), hop
    listed = {t["model"] for t in manifest["tables"]}
    assert listed >= MUST_HOLD, (hop, MUST_HOLD - listed)
    for label in sorted(listed - MOVING):
        assert restored["tables"][label] == source["tables"][label], (hop, label)
    for label in MUST_HOLD:
        assert source["tables"][label][0] > 0, (hop, label)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    made = Sites(tmp_path_factory.mktemp("cross"), new_prefix())
    try:
        yield made
    finally:
        made.drop_all()


@pytest.fixture(scope="module")
def source(sites: Sites) -> tuple[Site, dict[str, Any]]:
    """The demo registry on SQLite, a second file version, a checkpoint, one event after it."""
    site = sites.sqlite("source")
    site.ok("keys", "generate")
    site.ok("seed_demo", "--quiet-logins")
    assert site.python(SECOND_WEIGHTS).strip() == "1.1.0"
    site.ok("events", "checkpoint")
    site.ok("accounts", "tenant-add", "initech", "--name", "Initech")
    return site, site.fingerprint()


@pytest.fixture(scope="module")
def on_postgres(
    sites: Sites, source: tuple[Site, dict[str, Any]]
) -> tuple[Site, Path, dict[str, Any], dict[str, Any]]:
    """Hop 1 (SQLite → PostgreSQL), then a backup taken on PostgreSQL: (site, backup,
    its manifest, the site's fingerprint just before that backup)."""
    site, before = source
    backup, manifest = take_backup(site, sites.base / "from-sqlite")
    assert manifest["database"]["vendor"] == "sqlite"
    assert manifest["log"]["size"] == before["log"]["size"]
    assert before["blobs"], "the demo stores files, so the hop has blobs to carry"
    target = sites.postgres("pg")
    restore_and_verify(target, backup)
    assert_same(target.fingerprint(upto=before["log"]["size"]), before, manifest, "sqlite→pg")
    now = target.fingerprint()
    pg_backup, pg_manifest = take_backup(target, sites.base / "from-postgres")
    assert pg_manifest["database"]["vendor"] == "postgresql"
    assert pg_manifest["log"]["size"] == now["log"]["size"]
    return target, pg_backup, pg_manifest, now


def test_sqlite_to_postgresql_to_sqlite_keeps_hashes_pointers_and_the_log_root(
    sites: Sites,
    source: tuple[Site, dict[str, Any]],
    on_postgres: tuple[Site, Path, dict[str, Any], dict[str, Any]],
) -> None:
    _, first = source
    _, backup, manifest, on_pg = on_postgres
    target = sites.sqlite("back-on-sqlite")
    restore_and_verify(target, backup)
    again = target.fingerprint(upto=manifest["log"]["size"])
    assert_same(again, on_pg, manifest, "pg→sqlite")
    # Two hops later, the first registry's versions, pointers and blobs are all still there.
    assert again["versions"] == first["versions"]
    assert again["pointers"] == first["pointers"]
    assert again["blobs"] == first["blobs"]
    assert sorted(p.name for p in (target.blob_dir).rglob("*") if p.is_file()) == sorted(
        first["blobs"]
    )


def test_postgresql_wiped_and_restored_from_its_own_backup(
    sites: Sites, on_postgres: tuple[Site, Path, dict[str, Any], dict[str, Any]]
) -> None:
    site, backup, manifest, before = on_postgres
    site.drop()
    shutil.rmtree(site.blob_dir, ignore_errors=True)
    wiped = sites.postgres("pg", dbname=site.pg_database)
    assert wiped.fingerprint()["log"]["size"] == 0
    restore_and_verify(wiped, backup)
    assert_same(wiped.fingerprint(upto=manifest["log"]["size"]), before, manifest, "pg→pg")
