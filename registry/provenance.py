"""A version's lifecycle evidence and provenance, shaped for its page and the status files:
what its signed metadata says, its dataset lineage, its checksum and signature, and what the
floors above add (approvers, through registry/hooks.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry import hooks
from registry.choices import ArtifactClass as BuiltinClass
from registry.choices import Determinism
from registry.models import Version, VersionDependency


@dataclass(frozen=True)
class DatasetLink:
    """A dataset version this version depends on, pinned by its manifest hash."""

    path: str
    artifact: str
    version: str
    manifest_sha256: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {
            "artifact": self.artifact,
            "version": self.version,
            "manifest_sha256": self.manifest_sha256,
        }


@dataclass(frozen=True)
class Provenance:
    """What the version page's "Lifecycle evidence and provenance" block shows."""

    determinism: str
    determinism_label: str
    evaluation_plan: str
    risk_note: str
    no_datasets: str
    pr_url: str
    has_io_schema: bool
    datasets: list[DatasetLink]
    manifest_sha256: str
    content_sha256: str
    key_id: str
    signature: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)


def datasets_of(dependencies: list[VersionDependency]) -> list[DatasetLink]:
    """The dataset lineage among ``dependencies`` (each with its upstream, class and tenant
    already joined: no query here)."""
    links = []
    for dep in dependencies:
        upstream = dep.upstream
        if upstream.artifact.artifact_class.slug != BuiltinClass.DATASET:
            continue
        links.append(
            DatasetLink(
                path=upstream.path,
                artifact=upstream.artifact.path,
                version=upstream.version,
                manifest_sha256=upstream.manifest_sha256,
                url=upstream.get_absolute_url(),
            )
        )
    return sorted(links, key=lambda d: (d.artifact, d.version))


def _text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def provenance_of(version: Version, dependencies: list[VersionDependency]) -> Provenance:
    """The block for ``version``; ``dependencies`` are its upstream rows, as the page has them."""
    meta = version.metadata or {}
    determinism = _text(meta, "determinism")
    return Provenance(
        determinism=determinism,
        determinism_label=Determinism(determinism).label
        if determinism in Determinism.values
        else "",
        evaluation_plan=_text(meta, "evaluation_plan"),
        risk_note=_text(meta, "risk_note"),
        no_datasets=_text(meta, "no_datasets"),
        pr_url=_text(meta, "pr_url"),
        has_io_schema=isinstance(meta.get("io_schema"), dict),
        datasets=datasets_of(dependencies),
        manifest_sha256=version.manifest_sha256,
        content_sha256=version.content_sha256,
        key_id=version.key_id,
        signature=version.signature,
        rows=hooks.provenance_rows(version),
    )
