"""Git-native prompts: import and export ``prompt-templates/<group>/<slug>/<version>.md`` files;
and release tags ``learning/<class>/<tenant>/<slug>@<version>`` in a git work tree.

Each file starts with a metadata header between ``---`` lines (YAML), then the prompt text::

    ---
    title: Qualify lead
    impact: minor
    reason: Ask for budget before timeline
    variables: customer, product, region?   # a trailing ? marks an optional variable
    ---
    You are a sales assistant...
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from accounts.models import Tenant, User
from governance.kernel.errors import DomainError
from registry import selectors, services
from registry.choices import ArtifactClass as BuiltinClass
from registry.models import Artifact, Version
from registry.references import version_key

CLASS = BuiltinClass.PROMPT


@dataclass
class ImportReport:
    published: int = 0
    unchanged: int = 0


def parse_prompt_file(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        raise DomainError(f"{path}: the metadata header has no closing '---' line.", field="file")
    try:
        header = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise DomainError(
            f"{path}: the metadata header is not valid YAML: {exc}", field="file"
        ) from exc
    if not isinstance(header, dict):
        raise DomainError(f"{path}: the metadata header must be key: value lines.", field="file")
    return header, text[end + 5 :]


def _variables(header: dict[str, Any]) -> list[dict[str, Any]] | None:
    raw = header.get("variables")
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
    return [{"name": str(v).rstrip("?"), "required": not str(v).endswith("?")} for v in items]


def _impact(previous: Version | None, number: str) -> str:
    if previous is None:
        return "major"
    old, new = version_key(previous.version), version_key(number)
    if new[0] != old[0]:
        return "major"
    return "minor" if new[1] != old[1] else "patch"


@transaction.atomic
def import_prompts(directory: Path, *, tenant: Tenant, actor: User | None = None) -> ImportReport:
    """Publish every version file not yet in the registry; refuse (naming the file) one that differs."""
    root = (
        directory / "prompt-templates" if (directory / "prompt-templates").is_dir() else directory
    )
    if not root.is_dir():
        raise DomainError(f"No directory {directory}.", field="dir")
    cls = selectors.artifact_class_by_slug(CLASS)
    report = ImportReport()
    files = sorted(
        root.glob("*/*/*.md"),
        key=lambda p: (p.parent.parent.name, p.parent.name, version_key(p.stem)),
    )
    for path in files:
        group, slug, number = path.parent.parent.name, path.parent.name, path.stem
        selectors.parse(f"{slug}@{number}", tenant=tenant.slug)  # one grammar for names everywhere
        header, body = parse_prompt_file(path)
        artifact = Artifact.objects.filter(artifact_class=cls, tenant=tenant, slug=slug).first()
        if artifact is None:
            artifact = services.artifact_create(
                artifact_class=cls,
                tenant=tenant,
                slug=slug,
                title=str(header.get("title") or slug.replace("-", " ").capitalize()),
                summary=str(header.get("summary", "")),
                actor=actor,
            )
        existing = Version.objects.filter(artifact=artifact, version=number).first()
        if existing is not None:
            if existing.content_text != body:
                raise DomainError(
                    f"{path}: differs from the published {artifact.path}/{number}; published versions "
                    "are immutable, so add a new version file instead.",
                    field="file",
                )
            report.unchanged += 1
            continue
        services.version_publish(
            artifact=artifact,
            content=services.Content(text=body),
            impact=str(header.get("impact") or _impact(selectors.latest_version(artifact), number)),
            reason=str(header.get("reason") or f"Imported from {group}/{slug}/{number}.md"),
            version=number,
            input_variables=_variables(header),
            metadata={"labels": {"group": group}},
            actor=actor,
        )
        report.published += 1
    return report


def export_prompts(directory: Path, *, tenant: Tenant) -> int:
    """Write every prompt version of a tenant as ``prompt-templates/<group>/<slug>/<version>.md``."""
    count = 0
    versions = (
        Version.objects.filter(artifact__tenant=tenant, artifact__artifact_class__slug=CLASS)
        .select_related("artifact")
        .order_by("artifact__slug", "ordinal")
    )
    for version in versions:
        group = str(version.metadata.get("labels", {}).get("group", "default"))
        path = (
            directory / "prompt-templates" / group / version.artifact.slug / f"{version.version}.md"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "title": version.artifact.title,
            "impact": version.declared_impact,
            "reason": version.change_reason,
            "variables": ", ".join(
                v["name"] + ("" if v.get("required", True) else "?")
                for v in version.input_variables
            ),
            "sha256": version.manifest_sha256,
        }
        path.write_text(
            "---\n"
            + yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
            + "---\n"
            + version.content_text,
            encoding="utf-8",
        )
        count += 1
    return count


# --- release tags ---------------------------------------------------------------------------

GIT_TIMEOUT_SECONDS = 60


@dataclass
class TagReport:
    committed: bool = False
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def _git(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``directory``; a failure is refused with git's last line."""
    git = shutil.which("git")
    if git is None:
        raise DomainError("Tagging needs git, which is not installed.", field="tag")
    done = subprocess.run(  # noqa: S603 - git, with arguments we built (no shell)
        [git, "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise DomainError(f"git {args[0]}: {said[-1] if said else 'failed'}", field="tag")
    return done


def tag_releases(
    directory: Path, releases: list[tuple[str, str]], *, paths: list[str], message: str
) -> TagReport:
    """Commit ``paths`` in the git work tree ``directory`` (if they changed), then tag each
    release ``(tag, annotation)`` at that commit unless the tag exists already.

    Idempotent: a second run with nothing new commits nothing and creates no tag; an existing
    tag is never moved (it marks where the release was first recorded).
    """
    inside = _git(directory, "rev-parse", "--is-inside-work-tree", check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise DomainError(f"{directory} is not a git work tree.", field="tag")
    report = TagReport()
    present = [p for p in paths if (directory / p).exists()]
    if present:
        _git(directory, "add", "--", *present)
        staged = _git(directory, "diff", "--cached", "--quiet", "--", *present, check=False)
        if staged.returncode == 1:
            _git(directory, "commit", "--quiet", "-m", message, "--", *present)
            report.committed = True
    if _git(directory, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        raise DomainError(f"{directory} has no commit to tag.", field="tag")
    for tag, annotation in sorted(releases):
        if _git(directory, "check-ref-format", f"refs/tags/{tag}", check=False).returncode != 0:
            raise DomainError(f"'{tag}' is not a valid git tag name.", field="tag")
        exists = _git(directory, "rev-parse", "--verify", "-q", f"refs/tags/{tag}", check=False)
        if exists.returncode == 0:
            report.existing.append(tag)
            continue
        _git(directory, "tag", "-a", tag, "-m", annotation)
        report.created.append(tag)
    return report
