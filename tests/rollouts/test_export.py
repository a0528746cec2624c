"""``manage.py rollouts export ID --out DIR``: the seed's layout, a manifest hashed into the log."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical
from rollouts.choices import RolloutState
from rollouts.controller import rollout_iterate
from rollouts.manifest import SCHEMA_PATH
from rollouts.models import ManifestVersion
from tests.rollouts.manifest_setup import World, rollout_of, world


@pytest.fixture
def w(make_user: Any, acme: Any) -> World:
    return world(make_user, acme)


def export(ref: str, out: Path) -> str:
    stdout = StringIO()
    call_command("rollouts", "export", ref, "--out", str(out), stdout=stdout)
    return stdout.getvalue()


def test_export_writes_the_manifest_and_one_note_per_cycle(w: World, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    start = timezone.now()
    for i in range(3):
        assert rollout_iterate(rollout=rollout, now=start + timedelta(minutes=i)) is not None
    said = export(rollout.reference, tmp_path)

    latest = ManifestVersion.objects.filter(rollout=rollout).order_by("-number").first()
    assert latest is not None
    written = json.loads((tmp_path / "rollout" / "phase-manifest.json").read_text())
    assert written == latest.body
    assert hashlib.sha256(canonical(written)).hexdigest() == latest.sha256
    assert Event.objects.filter(
        kind=EventKind.ROLLOUT_MANIFEST_APPENDED, payload__sha256=latest.sha256
    ).exists()
    Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(written)
    assert f"sha256 {latest.sha256}" in said
    assert "3 new notes" in said

    notes = sorted(p.name for p in (tmp_path / "notes").iterdir())
    assert notes == ["iteration-1.md", "iteration-2.md", "iteration-3.md"]
    first = (tmp_path / "notes" / "iteration-1.md").read_text()
    assert f"# {rollout.reference} iteration 1" in first
    assert "- outcome: `blocked_no_signal`" in first
    assert f"sha256 `{latest.sha256}`" in first
    assert "rollback evidence: none" in first
    assert f"`manifest:{latest.sha256}`" in first


def test_notes_continue_from_the_highest_existing_file_and_are_not_written_twice(
    w: World, tmp_path: Path
) -> None:
    rollout = rollout_of(w, state=RolloutState.PAUSED, step=2)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "iteration-7.md").write_text("an earlier run's note\n")
    (notes / "iteration-2.md").write_text("another\n")
    (notes / "README.md").write_text("not a note\n")
    start = timezone.now()
    rollout_iterate(rollout=rollout, now=start)
    export(f"{rollout.number}", tmp_path)  # a bare number works too
    assert (notes / "iteration-8.md").read_text().startswith(f"<!-- note {rollout.reference}#1 -->")
    assert "- outcome: `lane_completed`" in (notes / "iteration-8.md").read_text()

    rollout_iterate(rollout=rollout, now=start + timedelta(minutes=5))
    said = export(rollout.reference, tmp_path)
    assert "1 new notes" in said
    assert sorted(p.name for p in notes.iterdir()) == [
        "README.md",
        "iteration-2.md",
        "iteration-7.md",
        "iteration-8.md",
        "iteration-9.md",
    ]
    assert f"{rollout.reference} iteration 2" in (notes / "iteration-9.md").read_text()
    assert "0 new notes" in export(rollout.reference, tmp_path)


def test_export_of_a_draft_stores_its_first_manifest_version(w: World, tmp_path: Path) -> None:
    rollout = rollout_of(w)
    export(rollout.reference, tmp_path)
    (version,) = ManifestVersion.objects.filter(rollout=rollout)
    assert version.number == 1
    assert json.loads((tmp_path / "rollout" / "phase-manifest.json").read_text()) == version.body
    assert list((tmp_path / "notes").iterdir()) == []
    export(rollout.reference, tmp_path)  # unchanged: no second version
    assert ManifestVersion.objects.filter(rollout=rollout).count() == 1


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    ("ref", "message"),
    [("RO-999", "error: rollout: No rollout RO-999."), ("CR-1", "error: rollout: 'CR-1' is not")],
)
def test_export_of_an_unknown_rollout_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        call_command("rollouts", "export", ref, "--out", str(tmp_path))
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") <= 1
    assert not (tmp_path / "rollout").exists()


def test_export_into_a_file_is_refused(
    w: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = rollout_of(w)
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit):
        call_command("rollouts", "export", rollout.reference, "--out", str(target))
    assert capsys.readouterr().err.startswith("error: out: ")
