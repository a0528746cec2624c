"""Artifacts and their owners: creating an artifact, describing it, handing it to a new owner."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Tenant, User
from accounts.selectors import is_member, is_platform_admin
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    event_record,
)
from governance.kernel.inputs import clean_text
from registry import permissions
from registry.models import (
    Artifact,
    ArtifactClass,
)
from registry.services.common import check_slug, require_author


@transaction.atomic
def artifact_create(
    *,
    artifact_class: ArtifactClass,
    tenant: Tenant,
    slug: str,
    title: str,
    actor: User | None,
    summary: str = "",
    license_id: str = "proprietary",
    owner: User | None = None,
) -> Artifact:
    require_author(actor, tenant)
    check_slug(slug)
    if not (title or "").strip():
        raise DomainError("An artifact needs a title that says what it is for.", field="title")
    owner = owner or actor
    if owner is not None and not (is_member(owner, tenant) or is_platform_admin(owner)):
        raise DomainError(f"The owner '{owner}' is not a member of '{tenant.slug}'.", field="owner")
    if Artifact.objects.filter(artifact_class=artifact_class, tenant=tenant, slug=slug).exists():
        raise Conflict(f"{artifact_class.slug}/{tenant.slug}/{slug} already exists.", field="slug")
    artifact = Artifact.objects.create(
        artifact_class=artifact_class,
        tenant=tenant,
        slug=slug,
        title=title.strip(),
        summary=summary,
        license=license_id or "proprietary",
        owner=owner,
        created_by=actor,
    )
    event_record(
        kind=EventKind.ARTIFACT_CREATED,
        actor=actor,
        tenant=tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "title": artifact.title,
            "owner": owner.username if owner else None,
        },
    )
    return artifact


@transaction.atomic
def artifact_owner_set(
    *, artifact: Artifact, owner: User, actor: User | None, reason: str
) -> Artifact:
    """Hand an artifact to a new owner (an active member of its tenant); the owner or an administrator may."""
    artifact = (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "owner")
        .get(pk=artifact.pk)
    )
    permissions.can_change_owner(actor, artifact).require()
    if owner is None or not owner.is_active or not is_member(owner, artifact.tenant):
        name = owner.username if owner is not None else "nobody"
        raise DomainError(
            f"{name} is not an active member of {artifact.tenant.slug}.", field="owner"
        )
    reason = clean_text(reason, "reason", limit=2000)
    if artifact.owner_id == owner.pk:
        raise Conflict(f"{owner.username} already owns {artifact.path}.", field="owner")
    before = artifact.owner.username if artifact.owner else None
    Artifact.objects.filter(pk=artifact.pk).update(owner=owner)
    event_record(
        kind=EventKind.OWNERSHIP_CHANGED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={"path": artifact.path, "from": before, "to": owner.username, "reason": reason},
    )
    artifact.refresh_from_db()
    return artifact


#: The longest summary an artifact takes (what it is for, in a paragraph or two).
SUMMARY_LIMIT = 4000


@transaction.atomic
def artifact_describe(
    *, artifact: Artifact, title: str, summary: str, actor: User | None
) -> Artifact:
    """Change an artifact's title and summary (the owner or an administrator); the inventory
    criterion asks for a summary, which an artifact registered without one gets here."""
    artifact = (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "owner")
        .get(pk=artifact.pk)
    )
    permissions.can_describe(actor, artifact).require()
    if not isinstance(title, str) or not title.strip():
        raise DomainError("An artifact needs a title that says what it is for.", field="title")
    title = clean_text(title, "title", limit=200)
    summary = clean_text(summary or "", "summary", required=False, limit=SUMMARY_LIMIT)
    before = {"title": artifact.title, "summary": artifact.summary}
    after = {"title": title, "summary": summary}
    if before == after:
        raise Conflict(
            f"{artifact.path} already has this title and summary: nothing to change.",
            field="summary",
        )
    Artifact.objects.filter(pk=artifact.pk).update(**after)
    event_record(
        kind=EventKind.ARTIFACT_DESCRIBED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={"path": artifact.path, "before": before, "after": after},
    )
    artifact.refresh_from_db()
    return artifact
