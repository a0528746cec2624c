"""The recommended version: the one users should take by default."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    EventSpec,
    event_record,
)
from registry import permissions, selectors
from registry.models import (
    Artifact,
    Version,
)


@transaction.atomic
def artifact_recommend(*, artifact: Artifact, version: Version, actor: User | None) -> Artifact:
    """Set the version users should take by default (owner or tenant administrator)."""
    if version.artifact_id != artifact.pk:
        raise DomainError(f"{version.path} is not a version of {artifact.path}.", field="version")
    permissions.can_recommend(actor, artifact).require()
    refusal = selectors.lifecycle_refusal(version)
    if refusal is not None:  # deprecated, removed or retired: never recommended
        raise Conflict(f"Cannot recommend it: {refusal}.", field="version")
    Artifact.objects.filter(pk=artifact.pk).update(recommended_version=version)
    event_record(
        kind=EventKind.ARTIFACT_RECOMMENDED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "version": version.version,
            "sha256": version.manifest_sha256,
        },
    )
    artifact.refresh_from_db()
    return artifact


def recommendation_withdraw(*, version: Version, actor: User | None, why: str) -> list[EventSpec]:
    """Move the recommendation off a version that is being deprecated or retired.

    It goes to the artifact's active version when there is one (never the version itself,
    which may not be deprecated or retired while active), else nowhere. Returns the event
    of the move (none if it was not recommended), for the caller to record after its own.
    """
    artifact = Artifact.objects.select_related("active_version").get(pk=version.artifact_id)
    if artifact.recommended_version_id != version.pk:
        return []
    to = artifact.active_version
    Artifact.objects.filter(pk=artifact.pk).update(recommended_version=to)
    return [
        EventSpec(
            EventKind.ARTIFACT_RECOMMENDED,
            actor,
            tenant=version.artifact.tenant,
            subject=artifact,
            payload={
                "path": version.artifact.path,
                "version": to.version if to else None,
                "sha256": to.manifest_sha256 if to else None,
                "previous": version.version,
                "reason": why,
            },
        )
    ]
