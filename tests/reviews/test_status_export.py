"""``registry export-status``: the status and history files match the registry, a re-export is
byte-identical, and ``--tag`` tags approved and active versions in a git work tree, once."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact, Version
from reviews import services
from reviews.models import EvaluationReport
from tests.factories import promoted_change
from tests.reviews.conftest import PINS, make_artifact, publish

pytestmark = pytest.mark.django_db
STATUS = Path("artifacts/learning/status")
HISTORY = Path("artifacts/learning/history")


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("registry", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def registry_state(acme: Any, people: dict[str, Any], prompt: Artifact) -> dict[str, Any]:
    """A dataset; a prompt v1 promoted, v2 promoted over it, then rolled back to v1."""
    dataset = publish(
        make_artifact(acme, "dataset", "leads"),
        data={"uri": "s3://d/leads.parquet", "sha256": "c" * 64, "rows": 5},
        impact="major",
    )
    v1 = publish(
        prompt,
        "Qualify {{ customer }}.",
        "major",
        metadata={**PINS, "determinism": "deterministic", "pr_url": "https://git.example/pr/1"},
        dependencies=[dataset.pinned],
    )
    promoted_change(people, v1)
    v2 = publish(prompt, "Qualify {{ customer }} politely.", metadata={**PINS, "no_datasets": "x"})
    promoted_change(people, v2, title="Politer")
    services.rollback(artifact=prompt, actor=people["admin"], reason="Too polite")
    return {"dataset": dataset, "v1": v1, "v2": v2}


def test_status_files_match_the_registry(tmp_path, registry_state, prompt):
    code, out, err = _cli("export-status", str(tmp_path))
    assert code == 0, err
    assert "Exported 2 artifacts" in out
    prompt.refresh_from_db()
    status = json.loads((tmp_path / STATUS / "prompt/acme/qualify-lead.json").read_text())
    assert status["artifact"] == prompt.path
    assert status["active_version"] == prompt.active_version.version == "1.0.0"
    assert status["active_manifest_sha256"] == prompt.active_version.manifest_sha256
    assert status["owner"] == "admin"
    versions = {v.version: v for v in Version.objects.filter(artifact=prompt)}
    assert [row["version"] for row in status["versions"]] == ["1.0.0", "1.1.0"]
    for row in status["versions"]:
        v = versions[row["version"]]
        assert row["stage"] == v.state.stage
        assert row["checksum"]["manifest_sha256"] == v.manifest_sha256
        assert row["checksum"]["content_sha256"] == v.content_sha256
        assert row["signature"]["key_id"] == v.key_id
        assert row["signature"]["signature"] == v.signature
    v1_row, v2_row = status["versions"]
    assert v1_row["stage"] == "active"
    assert v2_row["stage"] == "approved"  # rolled back: it passed its approvals
    assert v1_row["release_tag"] == "learning/prompt/acme/qualify-lead@1.0.0"
    assert v1_row["pr_url"] == "https://git.example/pr/1"
    assert v1_row["determinism"] == "deterministic"
    dataset = registry_state["dataset"]
    assert v1_row["datasets"] == [
        {
            "artifact": "dataset/acme/leads",
            "version": "1.0.0",
            "manifest_sha256": dataset.manifest_sha256,
        }
    ]
    assert v2_row["datasets"] == []
    assert v2_row["no_datasets"] == "x"
    ds_status = json.loads((tmp_path / STATUS / "dataset/acme/leads.json").read_text())
    assert ds_status["versions"][0]["stage"] == "draft"
    assert ds_status["versions"][0]["release_tag"] is None


def test_history_lists_every_stage_promotion_and_rollback_with_evidence(
    tmp_path, registry_state, prompt
):
    _cli("export-status", str(tmp_path), "--tenant", "acme")
    raw = (tmp_path / HISTORY / "prompt/acme/qualify-lead.jsonl").read_text()
    lines = [json.loads(line) for line in raw.splitlines()]
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    events = {e.seq: e for e in Event.objects.filter(seq__in=[line["seq"] for line in lines])}
    for line in lines:
        assert line["event_sha256"] == events[line["seq"]].entry_hash
        assert line["kind"] == events[line["seq"]].kind
    kinds = [line["kind"] for line in lines]
    stage_changes = Event.objects.filter(
        kind=EventKind.VERSION_STAGE_CHANGED,
        subject_id__in=[str(v.pk) for v in Version.objects.filter(artifact=prompt)],
    ).count()
    assert kinds.count(EventKind.VERSION_STAGE_CHANGED) == stage_changes > 0
    assert kinds.count(EventKind.CHANGE_REQUEST_PROMOTED) == 2
    assert kinds.count(EventKind.ROLLOUT_ROLLED_BACK) == 1
    assert kinds.count(EventKind.ARTIFACT_VERSION_PUBLISHED) == 2
    rollback = next(line for line in lines if line["kind"] == EventKind.ROLLOUT_ROLLED_BACK)
    assert rollback["versions"] == ["1.0.0", "1.1.0"]
    assert rollback["reason"] == "Too polite"
    to_active = [
        line
        for line in lines
        if line["kind"] == EventKind.VERSION_STAGE_CHANGED and line["to"] == "active"
    ]
    assert [line["versions"] for line in to_active] == [["1.0.0"], ["1.1.0"], ["1.0.0"]]
    v1 = registry_state["v1"]
    report_hashes = sorted(
        EvaluationReport.objects.filter(version=v1).values_list("sha256", flat=True)
    )
    assert report_hashes
    promoted_v1 = next(
        line
        for line in lines
        if line["kind"] == EventKind.CHANGE_REQUEST_PROMOTED and line["versions"] == ["1.0.0"]
    )
    assert sorted(r["sha256"] for r in promoted_v1["evidence"]) == report_hashes
    assert {r["kind"] for r in promoted_v1["evidence"]} == {"evaluation_report"}
    assert promoted_v1["change"].startswith("CR-")
    published = [line for line in lines if line["kind"] == EventKind.ARTIFACT_VERSION_PUBLISHED]
    assert published[0]["evidence"] == []  # no report existed yet when it was published
    assert published[0]["manifest_sha256"] == v1.manifest_sha256
    # the dataset's history is its own
    ds = (tmp_path / HISTORY / "dataset/acme/leads.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in ds] == [EventKind.ARTIFACT_VERSION_PUBLISHED]


def test_re_export_is_byte_identical(tmp_path, registry_state):
    _cli("export-status", str(tmp_path))
    first = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    code, out, _ = _cli("export-status", str(tmp_path))
    assert code == 0
    assert "0 files written, 4 unchanged" in out
    again = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert again == first
    other = tmp_path / "fresh"
    _cli("export-status", str(other))
    fresh = {p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()}
    assert fresh == {p.relative_to(tmp_path): b for p, b in first.items()}


def test_tenant_filter_and_unknown_tenant(tmp_path, registry_state, globex):
    make_artifact(globex, "prompt", "theirs")
    _cli("export-status", str(tmp_path), "--tenant", "acme")
    assert not (tmp_path / STATUS / "prompt/globex").exists()
    code, _, err = _cli("export-status", str(tmp_path), "--tenant", "nope")
    assert code == 2
    assert err.count("\n") == 1


def _git(repo: Path, *args: str) -> str:
    git = shutil.which("git")
    assert git is not None
    return subprocess.run(
        [git, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_tag_commits_the_export_and_tags_releases_once(tmp_path, registry_state):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "ci@example.com")
    _git(repo, "config", "user.name", "CI")
    code, out, err = _cli("export-status", str(repo), "--tag")
    assert code == 0, err
    tags = _git(repo, "tag", "--list", "learning/*").split()
    assert tags == [
        "learning/prompt/acme/qualify-lead@1.0.0",
        "learning/prompt/acme/qualify-lead@1.1.0",
    ]
    v1 = registry_state["v1"]
    note = _git(repo, "tag", "-n1", "--list", "learning/prompt/acme/qualify-lead@1.0.0")
    assert v1.manifest_sha256 in note
    committed = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "artifacts/learning/status/prompt/acme/qualify-lead.json" in committed
    head = _git(repo, "rev-parse", "HEAD")
    assert _git(repo, "rev-list", "-n1", "learning/prompt/acme/qualify-lead@1.0.0") == head
    # idempotent: nothing new, no commit, no tag moved
    code, out, err = _cli("export-status", str(repo), "--tag")
    assert code == 0, err
    assert "0 tags created, 2 already there" in out
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "tag", "--list", "learning/*").split() == tags


def test_tag_outside_a_git_work_tree_is_refused(tmp_path, registry_state):
    code, _, err = _cli("export-status", str(tmp_path), "--tag")
    assert code == 2
    assert "is not a git work tree" in err
    assert err.count("\n") == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_prompt_export_tags_released_prompts(tmp_path, registry_state):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "ci@example.com")
    _git(repo, "config", "user.name", "CI")
    code, out, err = _cli("export", str(repo), "--tenant", "acme", "--tag")
    assert code == 0, err
    assert "2 tags created" in out
    assert _git(repo, "tag", "--list").split() == [
        "learning/prompt/acme/qualify-lead@1.0.0",
        "learning/prompt/acme/qualify-lead@1.1.0",
    ]
    assert "prompt-templates/default/qualify-lead/1.0.0.md" in _git(repo, "ls-files")
