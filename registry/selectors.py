"""Reads of the registry shared by pages, the API, the CLI and services: lookups by any reference form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Membership
from accounts.selectors import is_platform_admin
from governance.errors import DomainError, NotFound
from registry.models import (
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    Version,
    VersionDependency,
)
from registry.references import Reference, ReferenceError, parse_reference


def artifacts_visible_to(user: Any) -> QuerySet[Artifact]:
    base = Artifact.objects.select_related(
        "artifact_class", "tenant", "owner", "recommended_version", "active_version"
    )
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return base.none()
    if is_platform_admin(user):
        return base
    tenant_ids = Membership.objects.filter(user=user, removed_at__isnull=True).values("tenant_id")
    return base.filter(tenant_id__in=tenant_ids)


def artifact_class_by_slug(slug: str) -> ArtifactClass:
    found = ArtifactClass.objects.filter(slug=slug).first()
    if found is None:
        raise NotFound(f"No artifact class '{slug}'.", field="class")
    return found


def parse(text: str, *, tenant: str | None = None) -> Reference:
    """The one parser, with its error turned into the domain error every caller understands."""
    try:
        return parse_reference(text, tenant=tenant)
    except ReferenceError as exc:
        raise DomainError(str(exc), field=getattr(exc, "field", "reference")) from exc


def artifact_by_path(cls: str, tenant: str, slug: str, *, visible_to: Any = None) -> Artifact:
    qs = (
        artifacts_visible_to(visible_to)
        if visible_to is not None
        else Artifact.objects.select_related(
            "artifact_class", "tenant", "owner", "recommended_version", "active_version"
        )
    )
    found = qs.filter(artifact_class__slug=cls, tenant__slug=tenant, slug=slug).first()
    if found is None:
        raise NotFound(f"No artifact {cls}/{tenant}/{slug}.", field="artifact")
    return found


def _version_queryset() -> QuerySet[Version]:
    return Version.objects.select_related(
        "artifact", "artifact__artifact_class", "artifact__tenant", "created_by"
    )


def version_by_reference(
    ref: Reference | str, *, tenant: str | None = None, visible_to: Any = None
) -> Version:
    """Resolve any reference form to one version in a single indexed query.

    ``class/tenant/slug[/version]``, ``slug@version`` and ``slug:version#sha256`` (in
    ``tenant``'s context). Without a version, the artifact's latest version. A hash that
    does not match is an error.
    """
    if isinstance(ref, str):
        ref = parse(ref, tenant=tenant)
    qs = _version_queryset()
    if visible_to is not None and not is_platform_admin(visible_to):
        tenant_ids = Membership.objects.filter(user=visible_to, removed_at__isnull=True).values(
            "tenant_id"
        )
        qs = qs.filter(artifact__tenant_id__in=tenant_ids)
    if ref.tenant is None:
        raise DomainError(
            f"'{ref}' needs a tenant: write class/tenant/slug/version.", field="tenant"
        )
    qs = qs.filter(artifact__tenant__slug=ref.tenant, artifact__slug=ref.slug)
    if ref.class_slug:
        qs = qs.filter(artifact__artifact_class__slug=ref.class_slug)
    # One indexed query: (tenant, slug) finds the artifact, (artifact, version) the version.
    if ref.version:
        qs = qs.filter(version=ref.version).order_by()
    else:  # "the latest" never resolves to a version removed after its deprecation
        qs = qs.exclude(deprecation__removed_at__isnull=False).order_by("-ordinal")
    matches = list(qs[:2]) if ref.version else list(qs[:1])
    if ref.version and len(matches) > 1:
        classes = ", ".join(sorted(v.artifact.artifact_class.slug for v in matches))
        raise DomainError(
            f"'{ref}' is ambiguous (classes: {classes}); name the class.", field="reference"
        )
    if not matches:
        raise NotFound(f"No version '{ref}'.", field="reference")
    version = matches[0]
    if ref.sha256 and not version.manifest_sha256.startswith(ref.sha256):
        raise DomainError(
            f"'{ref}' is pinned to {ref.sha256[:12]}… but {version.path} has hash {version.manifest_sha256[:12]}….",
            field="sha256",
        )
    return version


def versions_of(artifact: Artifact) -> QuerySet[Version]:
    return (
        Version.objects.filter(artifact=artifact)
        .select_related("artifact__artifact_class", "artifact__tenant", "created_by")
        .order_by("-ordinal")
    )


def latest_version(artifact: Artifact) -> Version | None:
    return Version.objects.filter(artifact=artifact).order_by("-ordinal").first()


def upstream_of(version: Version) -> QuerySet[VersionDependency]:
    return VersionDependency.objects.filter(version=version).select_related(
        "upstream__artifact__artifact_class", "upstream__artifact__tenant"
    )


def downstream_of(version: Version) -> QuerySet[VersionDependency]:
    return VersionDependency.objects.filter(upstream=version).select_related(
        "version__artifact__artifact_class", "version__artifact__tenant"
    )


def dependents_of_artifact(artifact: Artifact) -> QuerySet[VersionDependency]:
    return VersionDependency.objects.filter(upstream__artifact=artifact).select_related(
        "version__artifact__artifact_class", "version__artifact__tenant", "upstream"
    )


def search_artifacts(qs: QuerySet[Artifact], text: str) -> QuerySet[Artifact]:
    return qs.filter(
        Q(slug__icontains=text) | Q(title__icontains=text) | Q(summary__icontains=text)
    )


def stage_of(version: Version) -> str:
    """A version's lifecycle stage (a version without a state row is a draft)."""
    from registry.choices import Stage
    from registry.models import VersionState

    state = VersionState.objects.filter(version=version).values_list("stage", flat=True).first()
    return state or Stage.DRAFT


def lifecycle_refusal(version: Version) -> str | None:
    """Why a version may not be newly used (proposed, depended on), or None if it may."""
    deprecation = (
        Deprecation.objects.filter(version=version)
        .select_related("replacement__artifact__artifact_class", "replacement__artifact__tenant")
        .first()
    )
    if deprecation is not None:
        state = "was removed" if deprecation.removed_at else "is deprecated"
        return f"{version.path} {state}; use its replacement {deprecation.replacement.path}"
    if Retirement.objects.filter(version=version).exists():
        return f"{version.path} is retired (simulation-only)"
    return None


def deprecations(tenants: Any = None) -> QuerySet[Deprecation]:
    """Deprecations with their versions and replacements, the soonest removal first."""
    qs = Deprecation.objects.select_related(
        "version__artifact__artifact_class",
        "version__artifact__tenant",
        "replacement__artifact__artifact_class",
        "replacement__artifact__tenant",
        "deprecated_by",
    ).order_by("removed_at", "remove_after")
    if tenants is not None:
        qs = qs.filter(version__artifact__tenant__in=tenants)
    return qs


def artifacts_without_active_owner(tenants: Any = None) -> QuerySet[Artifact]:
    """Artifacts whose owner is missing, deactivated, or no longer a member of the tenant."""
    member = Membership.objects.filter(
        tenant_id=OuterRef("tenant_id"), user_id=OuterRef("owner_id"), removed_at__isnull=True
    )
    qs = (
        Artifact.objects.select_related("artifact_class", "tenant", "owner")
        .filter(Q(owner__isnull=True) | Q(owner__is_active=False) | ~Exists(member))
        .order_by("tenant__slug", "artifact_class__slug", "slug")
    )
    if tenants is not None:
        qs = qs.filter(tenant__in=tenants)
    return qs


def lifecycle_notes(versions: Sequence[Version]) -> dict[Any, str]:
    """A short line per deprecated, removed or retired version (two queries for any number)."""
    ids = [v.pk for v in versions]
    notes: dict[Any, str] = {}
    for d in Deprecation.objects.filter(version_id__in=ids).select_related(
        "replacement__artifact__artifact_class", "replacement__artifact__tenant"
    ):
        if d.removed_at:
            notes[d.version_id] = (
                f"removed from resolution {d.removed_at:%Y-%m-%d}; replaced by {d.replacement.path}"
            )
        else:
            notes[d.version_id] = (
                f"deprecated, replaced by {d.replacement.path}, "
                f"removed after {d.remove_after:%Y-%m-%d}"
            )
    for r in Retirement.objects.filter(version_id__in=ids):
        notes[r.version_id] = f"retired (simulation-only) {r.retired_at:%Y-%m-%d}: {r.rationale}"
    return notes


def lifecycle_note(version: Version) -> str | None:
    """The same line for one version, with its path: "... is deprecated, replaced by ..."."""
    note = lifecycle_notes([version]).get(version.pk)
    return f"{version.path} is {note}" if note else None
