"""Reads of the registry shared by pages, the API, the CLI and services: lookups by any reference form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from accounts.models import Membership, Tenant
from accounts.selectors import AnyUser, tenant_scoped
from governance.kernel.errors import DomainError, NotFound
from registry.choices import Stage
from registry.models import (
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    SafetySwitch,
    Version,
    VersionDependency,
    VersionState,
)
from registry.references import BrokenReference, Reference, parse_reference

#: An artifact row with its active and recommended versions, and whether the recommended
#: one is deprecated or retired (so that it is never shown as recommended then).
ARTIFACT_RELATED = (
    "artifact_class",
    "tenant",
    "owner",
    "deputy",
    "active_version",
    "recommended_version__deprecation",
    "recommended_version__retirement",
)


def artifacts_visible_to(user: AnyUser) -> QuerySet[Artifact]:
    return tenant_scoped(Artifact.objects.select_related(*ARTIFACT_RELATED), user=user)


def artifact_class_by_slug(slug: str) -> ArtifactClass:
    found = ArtifactClass.objects.filter(slug=slug).first()
    if found is None:
        raise NotFound(f"No artifact class '{slug}'.", field="class")
    return found


def parse(text: str, *, tenant: str | None = None) -> Reference:
    """The one parser, with its error turned into the domain error every caller understands."""
    try:
        return parse_reference(text, tenant=tenant)
    except BrokenReference as exc:
        raise DomainError(str(exc), field=getattr(exc, "field", "reference")) from exc


def _artifact_at(qs: QuerySet[Artifact], cls: str, tenant: str, slug: str) -> Artifact:
    found = qs.filter(artifact_class__slug=cls, tenant__slug=tenant, slug=slug).first()
    if found is None:
        raise NotFound(f"No artifact {cls}/{tenant}/{slug}.", field="artifact")
    return found


def artifact_by_path(cls: str, tenant: str, slug: str, *, visible_to: AnyUser) -> Artifact:
    """The artifact if ``visible_to`` may see its tenant; another tenant's reads as missing."""
    return _artifact_at(artifacts_visible_to(visible_to), cls, tenant, slug)


def artifact_by_path_unscoped(cls: str, tenant: str, slug: str) -> Artifact:
    """Any tenant's artifact: only for the CLI and system tasks, which act for the platform."""
    return _artifact_at(Artifact.objects.select_related(*ARTIFACT_RELATED), cls, tenant, slug)


#: What a version needs joined so that its deprecation and retirement (with their
#: replacement and people) cost no query of their own.
LIFECYCLE_RELATED = (
    "deprecation__replacement__artifact__artifact_class",
    "deprecation__replacement__artifact__tenant",
    "deprecation__deprecated_by",
    "retirement__retired_by",
)


def _version_queryset() -> QuerySet[Version]:
    # The stage, deprecation and retirement come with the version: every answer shows them.
    return Version.objects.select_related(
        "artifact",
        "artifact__artifact_class",
        "artifact__tenant",
        "created_by",
        "state",
        *LIFECYCLE_RELATED,
    )


def is_active(version: Version) -> bool:
    """Whether ``version`` is its artifact's active version (the one an unversioned reference names)."""
    return version.artifact.active_version_id == version.pk


def active_version_of(artifact: Artifact) -> Version | None:
    """The artifact's active version, the only one production is told about without a number.

    The single notion of "active": the artifact's ``active_version`` pointer, which only a
    promotion, a rollback or a deactivation moves. None when nothing is active (never
    promoted, or deactivated): resolution then answers "no active version".
    """
    # Read the pointer in the same query (one primary-key join), not from a possibly stale object.
    return _version_queryset().filter(artifact=artifact, artifact__active_version=F("pk")).first()


def version_by_reference(
    ref: Reference | str, *, tenant: str | None = None, visible_to: AnyUser
) -> Version:
    """A version ``visible_to`` may see, by any reference form; another tenant's reads as missing."""
    scope = tenant_scoped(_version_queryset(), user=visible_to, via="artifact__tenant")
    return _version_in(scope, artifacts_visible_to(visible_to), ref, tenant=tenant)


def version_by_reference_unscoped(ref: Reference | str, *, tenant: str | None = None) -> Version:
    """Any tenant's version: only for the CLI and system tasks, which act for the platform."""
    artifacts = Artifact.objects.select_related("artifact_class", "tenant")
    return _version_in(_version_queryset(), artifacts, ref, tenant=tenant)


def version_in_tenant(ref: Reference | str, *, tenant: Tenant) -> Version:
    """A version of ``tenant`` itself, the only kind it may depend on, propose or cite.

    There are no platform-shared artifacts: every artifact belongs to one tenant. Another
    tenant's version is refused before it is looked up, with the very answer a missing
    version gets, so the refusal confirms nothing (neither that it exists nor its hash).
    """
    if isinstance(ref, str):
        ref = parse(ref, tenant=tenant.slug)
    if ref.tenant is not None and ref.tenant != tenant.slug:
        raise NotFound(f"No version '{ref}'.", field="reference")
    return _version_in(
        _version_queryset().filter(artifact__tenant=tenant),
        Artifact.objects.select_related("artifact_class", "tenant").filter(tenant=tenant),
        ref,
        tenant=tenant.slug,
    )


def _version_in(
    qs: QuerySet[Version],
    artifacts: QuerySet[Artifact],
    ref: Reference | str,
    *,
    tenant: str | None = None,
) -> Version:
    """Resolve any reference form to one version of ``qs`` in a single indexed query.

    ``class/tenant/slug[/version]``, ``slug@version`` and ``slug:version#sha256`` (in
    ``tenant``'s context). Without a version, the artifact's **active** version (found
    through the artifact's pointer, so the cost does not grow with its history): a
    draft, an approved or a rolled-back version is reachable only by its exact number,
    and an artifact with no active version is a NotFound that says so. A hash that does
    not match is an error.
    """
    if isinstance(ref, str):
        ref = parse(ref, tenant=tenant)
    if ref.tenant is None:
        raise DomainError(
            f"'{ref}' needs a tenant: write class/tenant/slug/version.", field="tenant"
        )
    qs = qs.filter(artifact__tenant__slug=ref.tenant, artifact__slug=ref.slug)
    if ref.class_slug:
        qs = qs.filter(artifact__artifact_class__slug=ref.class_slug)
    # One indexed query: (tenant, slug) finds the artifact, then either (artifact, version)
    # or the artifact's active-version pointer (a primary key) finds the version.
    if ref.version:
        qs = qs.filter(version=ref.version)
    else:
        qs = qs.filter(artifact__active_version=F("pk"))
    matches = list(qs.order_by()[:2])
    if len(matches) > 1:
        classes = ", ".join(sorted(v.artifact.artifact_class.slug for v in matches))
        raise DomainError(
            f"'{ref}' is ambiguous (classes: {classes}); name the class.", field="reference"
        )
    if not matches:
        if not ref.version:
            _no_active_version(ref, artifacts)
        raise NotFound(f"No version '{ref}'.", field="reference")
    version = matches[0]
    if ref.sha256 and not version.manifest_sha256.startswith(ref.sha256):
        raise DomainError(
            f"'{ref}' is pinned to {ref.sha256[:12]}… but {version.path} has hash {version.manifest_sha256[:12]}….",
            field="sha256",
        )
    return version


def _no_active_version(ref: Reference, artifacts: QuerySet[Artifact]) -> None:
    """Say "no active version" for an artifact in scope (only on the miss path).

    An artifact out of scope (the caller may not see it) gets the answer a missing one gets.
    """
    qs = artifacts.filter(tenant__slug=ref.tenant, slug=ref.slug)
    if ref.class_slug:
        qs = qs.filter(artifact_class__slug=ref.class_slug)
    found = list(qs[:2])
    if len(found) == 1:
        raise NotFound(
            f"{found[0].path} has no active version; name a version to read another one.",
            field="reference",
        )


def versions_of(artifact: Artifact) -> QuerySet[Version]:
    return (
        Version.objects.filter(artifact=artifact)
        .select_related("artifact__artifact_class", "artifact__tenant", "created_by", "state")
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
    """A version's lifecycle stage (a version without a state row is a draft).

    No query when the state came with the version (every selector here joins it).
    """
    if Version.state.is_cached(version):
        state = getattr(version, "state", None)
        return state.stage if state is not None else Stage.DRAFT
    stage = VersionState.objects.filter(version=version).values_list("stage", flat=True).first()
    return stage or Stage.DRAFT


def recommended_version_of(artifact: Artifact) -> Version | None:
    """The version users should take by default, or None: never a deprecated, removed or
    retired one, whatever the stored pointer says (the services move it off such a
    version; this read fails closed for anything older)."""
    version = artifact.recommended_version
    if version is None:
        return None
    if getattr(version, "deprecation", None) is not None:
        return None
    if getattr(version, "retirement", None) is not None:
        return None
    return version


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


def deprecations(tenants: Iterable[Tenant] | QuerySet[Tenant]) -> QuerySet[Deprecation]:
    """Deprecations of ``tenants`` with their versions and replacements, the soonest removal first."""
    qs = Deprecation.objects.select_related(
        "version__artifact__artifact_class",
        "version__artifact__tenant",
        "replacement__artifact__artifact_class",
        "replacement__artifact__tenant",
        "deprecated_by",
    ).order_by("removed_at", "remove_after")
    return qs.filter(version__artifact__tenant__in=tenants)


def artifacts_without_active_owner(
    tenants: Iterable[Tenant] | QuerySet[Tenant],
) -> QuerySet[Artifact]:
    """Artifacts of ``tenants`` whose owner is missing, deactivated, or no longer a member there."""
    member = Membership.objects.filter(
        tenant_id=OuterRef("tenant_id"), user_id=OuterRef("owner_id"), removed_at__isnull=True
    )
    qs = (
        Artifact.objects.select_related("artifact_class", "tenant", "owner")
        .filter(Q(owner__isnull=True) | Q(owner__is_active=False) | ~Exists(member))
        .order_by("tenant__slug", "artifact_class__slug", "slug")
    )
    return qs.filter(tenant__in=tenants)


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


# --- the safety switch ------------------------------------------------------------------


def halt_message(switch: SafetySwitch, artifact_path: str) -> str:
    """What every resolution answers while ``switch`` is engaged (the one wording)."""
    who = switch.engaged_by.username if switch.engaged_by else "the system"
    return f"halted: safety switch engaged on {artifact_path} by {who}: {switch.reason}"


def engaged_switch(artifact: Artifact) -> SafetySwitch | None:
    """The artifact's engaged safety switch, if any (only action-eligible artifacts have one:
    no query for the others)."""
    if not artifact.action_eligible:
        return None
    return (
        SafetySwitch.objects.filter(artifact=artifact, released_at__isnull=True)
        .select_related("engaged_by")
        .first()
    )


def engaged_switches(artifacts: Iterable[Artifact]) -> dict[Any, SafetySwitch]:
    """Artifact id -> its engaged switch, for the action-eligible ones among ``artifacts`` (one
    query, none when no artifact is action-eligible)."""
    ids = {a.pk for a in artifacts if a.action_eligible}
    if not ids:
        return {}
    rows = SafetySwitch.objects.filter(artifact_id__in=ids, released_at__isnull=True)
    return {s.artifact_id: s for s in rows.select_related("engaged_by")}


def halted_reason(artifact: Artifact) -> str | None:
    """``halt_message`` of the artifact's engaged switch, or None when it is not halted."""
    switch = engaged_switch(artifact)
    return halt_message(switch, artifact.path) if switch is not None else None


def safety_switch_history(artifact: Artifact) -> QuerySet[SafetySwitch]:
    """Every halt of the artifact, newest first, with who engaged and released it."""
    return SafetySwitch.objects.filter(artifact=artifact).select_related(
        "engaged_by", "released_by"
    )


def released_versions(*, tenant: Tenant, class_slug: str | None = None) -> list[Version]:
    """A tenant's approved and active versions (its releases), oldest first per artifact."""
    qs = Version.objects.filter(
        artifact__tenant=tenant, state__stage__in=(Stage.APPROVED, Stage.ACTIVE)
    )
    if class_slug is not None:
        qs = qs.filter(artifact__artifact_class__slug=class_slug)
    return list(
        qs.select_related("artifact__artifact_class", "artifact__tenant", "state").order_by(
            "artifact__slug", "ordinal"
        )
    )
