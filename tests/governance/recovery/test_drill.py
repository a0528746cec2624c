"""Recovery drills: a backup restored into a scratch database, verified, timed, and archived
as a signed ``recovery-drill`` version with a recovery run, passed or failed; and a rollback
rehearsal run end to end, which leaves the real registry's pointers where they were."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Tenant
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.recovery import drills, scratch
from governance.recovery.backup import backup_create
from governance.recovery.drills import drill_run
from governance.recovery.models import RecoveryRun
from governance.recovery.rehearsals import rehearsal_run
from registry.models import Version
from registry.services import install_builtin_classes
from registry.verification import check_version
from reviews.models import Activation
from rollouts.models import PointerMove
from tests.cli import refused
from tests.governance.recovery.drill_world import people, platform, rehearsal_world

__all__ = ["people", "platform"]

# The scratch copy is migrated and restored by subprocesses that read committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _builtin_classes() -> None:
    """A transactional test's flush empties the classes the migrations installed."""
    install_builtin_classes()


def _backup(tmp_path: Path) -> Path:
    out = tmp_path / "backups"
    out.mkdir()
    return backup_create(out_dir=out).path


def _content(version: Version | None) -> dict[str, Any]:
    """The archived outcome: a version's JSON content, checked to be signed and intact."""
    assert version is not None
    assert check_version(version).ok  # hashed and signed like any registry version
    assert isinstance(version.content_json, dict)
    return version.content_json


def _drill_events() -> list[dict[str, Any]]:
    return list(
        Event.objects.filter(kind=EventKind.DRILL_RECORDED).values_list("payload", flat=True)
    )


def test_a_drill_restores_verifies_and_records_a_signed_passed_version(
    platform: Tenant, people: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    rehearsal_world(platform, people)
    path = _backup(tmp_path)
    settings.BACKUP_DIR = path.parent
    out = io.StringIO()
    call_command("drill", "run", stdout=out)  # the newest backup in BACKUP_DIR
    run = RecoveryRun.objects.get(kind=RecoveryRun.Kind.DRILL)
    assert run.outcome == RecoveryRun.Outcome.PASSED, run.error
    assert run.location == str(path)
    assert out.getvalue().startswith("recovery drill passed: restore ")
    content = _content(run.version)
    assert run.version is not None
    assert run.version.artifact.path == "recovery-drill/platform/restore-drill"
    assert content["outcome"] == "passed"
    assert content["problems"] == []
    assert content["backup"]["path"] == str(path)
    assert content["restored"]["log_root"] == content["backup"]["log_root"]
    assert content["restored"]["log_size"] == content["backup"]["log_size"] > 0
    assert content["restored"]["events_ok"] is True
    assert content["restored"]["registry_ok"] is True
    for key in ("restore_seconds", "verify_seconds", "migrate_seconds"):
        assert content[key] > 0
        assert run.details[key] == content[key]
    assert [e["outcome"] for e in _drill_events()] == ["passed"]


def test_a_corrupt_backup_records_a_failed_drill_naming_the_file(
    platform: Tenant, people: dict[str, Any], tmp_path: Path
) -> None:
    rehearsal_world(platform, people)
    path = _backup(tmp_path)
    table = path / "tables" / "registry.version.jsonl"
    raw = bytearray(table.read_bytes())
    raw[10] ^= 0x01
    table.write_bytes(bytes(raw))
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("drill", "run", "--backup", str(path), stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 1
    run = RecoveryRun.objects.get(kind=RecoveryRun.Kind.DRILL)
    assert run.outcome == RecoveryRun.Outcome.FAILED
    assert "tables/registry.version.jsonl" in run.error
    assert err.getvalue().startswith("recovery drill failed: ")
    content = _content(run.version)
    assert content["outcome"] == "failed"
    assert any("registry.version.jsonl" in p for p in content["problems"])
    assert [e["outcome"] for e in _drill_events()] == ["failed"]


def test_no_backup_is_a_failed_drill_and_a_missing_one_is_refused(
    tmp_path: Path, settings: Any
) -> None:
    settings.BACKUP_DIR = tmp_path / "empty"
    assert not Tenant.objects.filter(slug=settings.PLATFORM_TENANT_SLUG).exists()
    run = drill_run()  # archived in the platform tenant, made on first use
    assert Tenant.objects.filter(slug=settings.PLATFORM_TENANT_SLUG).exists()
    assert run.outcome == RecoveryRun.Outcome.FAILED
    assert run.error == f"no backup in {tmp_path / 'empty'}"
    assert run.version is not None
    assert run.version.version == "1.0.0"
    missing = tmp_path / "nowhere"
    assert refused("drill", "run", "--backup", str(missing)) == (
        f"backup: {missing}: no such file or directory."
    )
    assert RecoveryRun.objects.count() == 1


def test_a_rehearsal_times_the_revert_in_a_scratch_copy_and_leaves_real_pointers_alone(
    platform: Tenant, people: dict[str, Any]
) -> None:
    slot, v1, v2 = rehearsal_world(platform, people)
    activations = Activation.objects.count()
    moves = PointerMove.objects.count()
    run = rehearsal_run(slot_label="sales-agent.qualifyLead")
    assert run.outcome == RecoveryRun.Outcome.PASSED, run.error
    assert run.subject == "sales-agent.qualifyLead"
    assert run.details["revert_seconds"] > 0
    assert run.details["forward_seconds"] > 0
    assert (run.details["from"], run.details["to"]) == (v2.path, v1.path)
    content = _content(run.version)
    assert run.version is not None
    assert run.version.artifact.path == (
        "recovery-drill/platform/rehearsal-sales-agent-qualifylead"
    )
    assert content["resolved_after_revert"]["sha256"] == v1.manifest_sha256
    assert content["resolved_after_forward"]["sha256"] == v2.manifest_sha256
    assert content["backup"]["fresh"] is True
    # The real registry: same default, no activation or pointer move added.
    slot.artifact.refresh_from_db()
    assert slot.artifact.active_version == v2
    assert Activation.objects.count() == activations
    assert PointerMove.objects.count() == moves
    assert Event.objects.filter(kind=EventKind.REHEARSAL_RECORDED).count() == 1


@pytest.mark.postgres
def test_on_postgresql_the_scratch_database_is_created_and_always_dropped(
    platform: Tenant, people: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rehearsal_world(platform, people)
    path = _backup(tmp_path)
    seen: list[str] = []
    real_manage = scratch.Scratch.manage

    def spy(self: scratch.Scratch, *args: str) -> tuple[str, float]:
        seen.append(self.name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            assert cursor.fetchone() is not None
        return real_manage(self, *args)

    monkeypatch.setattr(scratch.Scratch, "manage", spy)
    run = drill_run(backup=path)
    assert run.outcome == RecoveryRun.Outcome.PASSED, run.error
    assert run.details["restore_seconds"] > 0
    assert seen
    assert seen[0].startswith(f"{connection.settings_dict['NAME']}_scratch_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [seen[0]])
        assert cursor.fetchone() is None
    # A failure inside the block drops it too.
    names: list[str] = []

    def fail_inside() -> None:
        with scratch.scratch_database() as copy:
            names.append(copy.name)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [names[0]])
        assert cursor.fetchone() is None


def test_a_scratch_database_the_server_refuses_is_a_failed_drill_not_a_traceback(
    platform: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _backup(tmp_path)

    @contextmanager
    def refused_by_server() -> Iterator[scratch.Scratch]:
        raise scratch.ScratchFailed(
            'PostgreSQL refused CREATE DATABASE "x": permission denied to create database'
        )
        yield  # pragma: no cover - never reached

    monkeypatch.setattr(drills, "scratch_database", refused_by_server)
    run = drills.drill_run(backup=path)
    assert run.outcome == RecoveryRun.Outcome.FAILED
    assert run.error == (
        'PostgreSQL refused CREATE DATABASE "x": permission denied to create database'
    )
    assert _content(run.version)["backup"]["path"] == str(path)
