"""Retention of the scheduled backups: the newest BACKUP_KEEP of our own, nothing else touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from governance.recovery.scheduled import backups_prune


def backup_dir(folder: Path, stamp: str) -> Path:
    path = folder / f"backup-{stamp}"
    path.mkdir()
    (path / "manifest.json").write_text("{}")
    (path / "tables").mkdir()
    (path / "tables" / "accounts.user.jsonl").write_text("")
    return path


def test_keeps_the_newest_and_leaves_foreign_files(tmp_path: Path) -> None:
    ours = [backup_dir(tmp_path, f"202612{d:02d}T023000Z") for d in range(1, 6)]
    archives = [tmp_path / f"backup-202612{d:02d}T023000Z.tar.gz" for d in (6, 7)]
    for a in archives:
        a.write_bytes(b"\x1f\x8b")
    foreign = [
        tmp_path / "notes.txt",
        tmp_path / "backup-20261101T000000Z.old",
        tmp_path / "backup-latest",
    ]
    for f in foreign:
        f.write_text("mine")
    half = tmp_path / "backup-20261102T000000Z"  # no manifest: half-written, not counted
    half.mkdir()
    (tmp_path / "x").mkdir()
    elsewhere = backup_dir(tmp_path / "x", "20261103T000000Z")
    link = tmp_path / "backup-20261104T000000Z"
    os.symlink(elsewhere, link)

    removed = backups_prune(folder=tmp_path, keep=3)

    assert removed == ours[:4]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [
            ours[4].name,
            *(a.name for a in archives),
            *(f.name for f in foreign),
            half.name,
            link.name,
            "x",
        ]
    )
    assert elsewhere.is_dir()  # a link's target is never followed
    assert backups_prune(folder=tmp_path, keep=3) == []


def test_same_second_backups_sort_by_their_number(tmp_path: Path) -> None:
    names = ["20261201T023000Z", "20261201T023000Z-2", "20261201T023000Z-10", "20261202T000000Z"]
    made = [backup_dir(tmp_path, n) for n in names]
    assert backups_prune(folder=tmp_path, keep=2) == made[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made[2:])


def test_never_removes_the_backup_just_taken(tmp_path: Path) -> None:
    # A clock set back: the one just taken sorts first, and is still kept.
    taken = backup_dir(tmp_path, "20200101T000000Z")
    newer = [backup_dir(tmp_path, f"202612{d:02d}T023000Z") for d in (1, 2)]
    removed = backups_prune(folder=tmp_path, keep=2, protect=taken)
    assert removed == []
    assert taken.is_dir()
    assert all(p.is_dir() for p in newer)
    assert backups_prune(folder=tmp_path / "missing", keep=2) == []
    with pytest.raises(ValueError, match="keep must be at least 1"):
        backups_prune(folder=tmp_path, keep=0)
