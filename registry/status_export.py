"""Status files a repository can keep (learning-artifact-lifecycle.md, "Provenance and Signatures"):
``artifacts/learning/status/<class>/<tenant>/<slug>.json`` and
``artifacts/learning/history/<class>/<tenant>/<slug>.jsonl``.

Read-only (no event: nothing changes), and deterministic: the same registry writes the same
bytes, so a re-export changes no file and a git diff shows only what moved. A status file is
JSON with sorted keys; a history file holds one RFC 8785 line per event, oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from accounts.models import Tenant
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical
from registry import hooks, selectors
from registry.choices import ArtifactClass as BuiltinClass
from registry.choices import Stage
from registry.models import Artifact, Version, VersionDependency
from registry.provenance import DatasetLink, datasets_of

#: Where the files go, under the export directory.
ROOT = Path("artifacts/learning")
#: Events that make an artifact's status history.
HISTORY_KINDS = (
    EventKind.ARTIFACT_VERSION_PUBLISHED,
    EventKind.VERSION_STAGE_CHANGED,
    EventKind.CHANGE_REQUEST_PROMOTED,
    EventKind.ROLLOUT_ROLLED_BACK,
    EventKind.ARTIFACT_DEACTIVATED,
    EventKind.VERSION_DOWNGRADED,
)
#: Stages whose versions are releases (tagged ``learning/<artifact>@<version>``).
RELEASED = (Stage.APPROVED, Stage.ACTIVE)


@dataclass
class StatusExport:
    """What an export wrote: files written (new or changed), files already up to date, and
    the versions that are releases (approved or active), for tagging."""

    artifacts: int = 0
    written: int = 0
    unchanged: int = 0
    releases: list[Version] = field(default_factory=list)


def status_path(artifact: Artifact) -> Path:
    return ROOT / "status" / f"{artifact.path}.json"


def history_path(artifact: Artifact) -> Path:
    return ROOT / "history" / f"{artifact.path}.jsonl"


def release_tag(version: Version) -> str:
    """The git tag of a release: ``learning/<class>/<tenant>/<slug>@<version>``."""
    return f"learning/{version.artifact.path}@{version.version}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _text_or_none(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return value if isinstance(value, str) else None


def _version_status(version: Version, datasets: list[DatasetLink]) -> dict[str, Any]:
    meta = version.metadata or {}
    stage = selectors.stage_of(version)
    return {
        "version": version.version,
        "stage": stage,
        "published_at": _utc(version.created_at),
        "checksum": {
            "algorithm": "sha256",
            "manifest_sha256": version.manifest_sha256,
            "content_sha256": version.content_sha256,
        },
        "signature": {
            "algorithm": "ed25519",
            "key_id": version.key_id,
            "signature": version.signature,
            "signs": "manifest_sha256",
        },
        "determinism": _text_or_none(meta, "determinism"),
        "pr_url": _text_or_none(meta, "pr_url"),
        "no_datasets": _text_or_none(meta, "no_datasets"),
        "datasets": [d.as_json() for d in datasets],
        "release_tag": release_tag(version) if stage in RELEASED else None,
    }


def artifact_status(
    artifact: Artifact, versions: list[Version], datasets: dict[Any, list[DatasetLink]]
) -> dict[str, Any]:
    """The status file's object for ``artifact`` (``versions`` oldest first)."""
    active = next((v for v in versions if v.pk == artifact.active_version_id), None)
    return {
        "artifact": artifact.path,
        "class": artifact.artifact_class.slug,
        "tenant": artifact.tenant.slug,
        "slug": artifact.slug,
        "title": artifact.title,
        "owner": artifact.owner.username if artifact.owner else None,
        "active_version": active.version if active else None,
        "active_manifest_sha256": active.manifest_sha256 if active else None,
        "versions": [_version_status(v, datasets.get(v.pk, [])) for v in versions],
        "history": str(history_path(artifact)),
    }


# --- history --------------------------------------------------------------------------------


def _artifact_of(version_path: Any) -> str | None:
    if isinstance(version_path, str) and version_path.count("/") == 3:
        return version_path.rsplit("/", 1)[0]
    return None


def _touched(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    """``(artifact path, version path or None)`` pairs an event's payload names."""
    found: list[tuple[str, str | None]] = []
    path = payload.get("path")
    if (artifact := _artifact_of(path)) is not None:
        found.append((artifact, path))
    if isinstance(payload.get("artifact"), str):
        found.append((payload["artifact"], None))
    refs: list[Any] = [payload.get("from"), payload.get("to")]
    for row in payload.get("activated") or []:
        refs.append(row.get("active") if isinstance(row, dict) else None)
    for row in payload.get("items") or []:
        if isinstance(row, dict):
            refs.extend([row.get("from"), row.get("to")])
            if isinstance(row.get("artifact"), str):
                found.append((row["artifact"], None))
    for ref in refs:
        ref_path = ref.get("path") if isinstance(ref, dict) else None
        if (artifact := _artifact_of(ref_path)) is not None:
            found.append((artifact, ref_path))
    return found


def _recorded_by(ref: dict[str, Any], moment: datetime) -> bool:
    """Whether evidence ``ref`` was recorded at or before ``moment`` (a line lists only the
    evidence that existed when its event happened, so later evidence never rewrites it)."""
    try:
        return datetime.fromisoformat(str(ref.get("at"))) <= moment
    except ValueError:
        return False


def _history_line(
    event: Event,
    artifact_path: str,
    version_paths: list[str],
    by_path: dict[str, Version],
    evidence: dict[Any, list[dict[str, Any]]],
) -> dict[str, Any]:
    payload = event.payload or {}
    versions = sorted({p.rsplit("/", 1)[1] for p in version_paths})
    refs = []
    for path in sorted(set(version_paths)):
        version = by_path.get(path)
        if version is None:
            continue
        for ref in evidence.get(version.pk, []):
            if _recorded_by(ref, event.time):
                refs.append({**ref, "version": version.version})
    line: dict[str, Any] = {
        "seq": event.seq,
        "time": _utc(event.time),
        "kind": event.kind,
        "artifact": artifact_path,
        "versions": versions,
        "actor": event.actor_name or None,
        "event_sha256": event.entry_hash,
        "change": payload.get("change")
        or (event.subject_label if event.subject_label.startswith("CR-") else None),
        "evidence": refs,
    }
    if event.kind == EventKind.VERSION_STAGE_CHANGED:
        line["from"], line["to"] = payload.get("from"), payload.get("to")
    elif event.kind == EventKind.ARTIFACT_VERSION_PUBLISHED:
        line["manifest_sha256"] = payload.get("sha256")
    elif "reason" in payload:
        line["reason"] = payload.get("reason")
    return line


def history_lines(
    events: Iterable[Event],
    versions: list[Version],
    evidence: dict[Any, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """``{artifact path: [history line]}``, oldest first, for the artifacts of ``versions``."""
    by_path = {v.path: v for v in versions}
    wanted = {v.artifact.path for v in versions}
    lines: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        touched: dict[str, list[str]] = {}
        for artifact_path, version_path in _touched(event.payload or {}):
            if artifact_path in wanted:
                paths = touched.setdefault(artifact_path, [])
                if version_path is not None:
                    paths.append(version_path)
        for artifact_path, paths in touched.items():
            lines.setdefault(artifact_path, []).append(
                _history_line(event, artifact_path, paths, by_path, evidence)
            )
    return lines


# --- writing --------------------------------------------------------------------------------


def _write(path: Path, data: bytes, report: StatusExport) -> None:
    """Write ``data`` unless the file already holds exactly it (a re-export touches nothing)."""
    if path.is_file() and path.read_bytes() == data:
        report.unchanged += 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    report.written += 1


def status_bytes(status: dict[str, Any]) -> bytes:
    return (json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def history_bytes(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(canonical(line) + b"\n" for line in lines)


def export_status(directory: Path, *, tenant: Tenant | None = None) -> StatusExport:
    """Write every artifact's status and history files (of ``tenant``, or of every tenant)."""
    artifacts = Artifact.objects.select_related("artifact_class", "tenant", "owner").order_by(
        "artifact_class__slug", "tenant__slug", "slug"
    )
    versions_qs = Version.objects.select_related(
        "state", "artifact__artifact_class", "artifact__tenant"
    ).order_by("artifact_id", "ordinal")
    deps_qs = VersionDependency.objects.filter(
        upstream__artifact__artifact_class__slug=BuiltinClass.DATASET
    ).select_related("upstream__artifact__artifact_class", "upstream__artifact__tenant")
    events_qs = Event.objects.filter(kind__in=HISTORY_KINDS).order_by("seq")
    if tenant is not None:
        artifacts = artifacts.filter(tenant=tenant)
        versions_qs = versions_qs.filter(artifact__tenant=tenant)
        deps_qs = deps_qs.filter(version__artifact__tenant=tenant)
        events_qs = events_qs.filter(tenant=tenant)
    versions = list(versions_qs)
    by_artifact: dict[Any, list[Version]] = {}
    for version in versions:
        by_artifact.setdefault(version.artifact_id, []).append(version)
    deps_by_version: dict[Any, list[VersionDependency]] = {}
    for dep in deps_qs:
        deps_by_version.setdefault(dep.version_id, []).append(dep)
    datasets = {vid: datasets_of(deps) for vid, deps in deps_by_version.items()}
    evidence = hooks.evidence_by_version(versions)
    lines = history_lines(events_qs.iterator(), versions, evidence)
    report = StatusExport()
    for artifact in artifacts:
        own = by_artifact.get(artifact.pk, [])
        status = artifact_status(artifact, own, datasets)
        _write(directory / status_path(artifact), status_bytes(status), report)
        _write(
            directory / history_path(artifact),
            history_bytes(lines.get(artifact.path, [])),
            report,
        )
        report.artifacts += 1
        report.releases.extend(v for v in own if selectors.stage_of(v) in RELEASED)
    return report
