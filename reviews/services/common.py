"""What the service modules of reviews share: the lifecycle step, locks, events, version references."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from registry.choices import Stage
from registry.models import Artifact, Version, VersionState
from registry.services import version_stage_set
from reviews import lifecycle, permissions, selectors
from reviews.choices import EDITABLE_STATES, TRANSITIONS, ChangeStatus
from reviews.models import Approval, ChangeItem, ChangeRequest


def transition(change: ChangeRequest, to: str) -> None:
    """Move a change along its lifecycle, refusing any step ``TRANSITIONS`` does not allow."""
    if to not in TRANSITIONS[change.status]:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; "
            f"it cannot become {ChangeStatus(to).label.lower()}.",
            field="status",
        )
    change.status = to


def lock_change(change: ChangeRequest) -> ChangeRequest:
    """Re-read a change with its row locked, so concurrent decisions on it queue up."""
    return (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("tenant", "author", "policy", "golden_corpus")
        .get(pk=change.pk)
    )


def open_changes_proposing(version: Version) -> list[Any]:
    return list(
        ChangeRequest.objects.filter(items__proposed=version, status__in=EDITABLE_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )


def require_author_or_admin(change: ChangeRequest, actor: User | None, action: str) -> None:
    permissions.can_act_as_author(actor, change, action).require()


def change_label(change: ChangeRequest) -> str:
    """How notifications name a change: emergency changes say so first, everywhere."""
    return f"[Emergency] {change.reference}" if change.emergency else change.reference


def change_subject(change: ChangeRequest) -> tuple[str, str, str]:
    return ("reviews.changerequest", str(change.pk), f"{change.reference} {change.title}"[:200])


def record_event(kind: str, change: ChangeRequest, actor: User | None, **payload: Any) -> None:
    event_record(
        kind=kind,
        actor=actor,
        tenant=change.tenant,
        subject=change_subject(change),
        payload={"change": change.reference, **payload},
    )


def rehash(change: ChangeRequest) -> str:
    """Recompute and store what a change's approvals cover (``binding_sha256``); returns the
    hash it had before, so a caller can tell whether it moved."""
    before = change.binding_sha256
    change.binding_sha256 = selectors.binding_hash(change)
    change.save(update_fields=["binding_sha256"])
    return before


def version_ref(version: Version | None) -> dict[str, str] | None:
    if version is None:
        return None
    return {"path": version.path, "sha256": version.manifest_sha256}


def void_approvals(change: ChangeRequest, actor: User | None, reason: str) -> int:
    live = list(change.approvals.filter(voided_at__isnull=True).select_related("approver"))
    if not live:
        return 0
    Approval.objects.filter(pk__in=[a.pk for a in live]).update(
        voided_at=timezone.now(), void_reason=reason[:300]
    )
    record_event(
        EventKind.APPROVAL_VOIDED,
        change,
        actor,
        reason=reason,
        approvals=[
            {"approver": a.approver.username, "requirement": a.requirement, "decision": a.decision}
            for a in live
        ],
    )
    return len(live)


def stage_set(
    *, version: Version, stage: str, actor: User | None, change: ChangeRequest | None
) -> bool:
    """Record a version's new lifecycle stage (and its event); False if it already stands there."""
    return version_stage_set(version=version, stage=stage, actor=actor, change=change)


#: The stages a review may move a version out of. A live (active), deprecated or retired
#: version keeps its stage whatever another change proposing it goes through.
_REVIEW_FROM: dict[str, frozenset[str]] = {
    Stage.EVALUATED: frozenset({Stage.DRAFT}),
    Stage.APPROVED: frozenset({Stage.DRAFT, Stage.EVALUATED}),
}


def review_stage_set(
    *, version: Version, stage: str, actor: User | None, change: ChangeRequest
) -> bool:
    """Move a proposed version forward as its review progresses; never a live version's stage.

    Under an enforced lifecycle policy, a version that misses a criterion of the stage (or
    of the stages before it) stays where it is: no error, the checklist says what is missing.
    """
    if version.artifact.active_version_id == version.pk:
        return False
    state = VersionState.objects.filter(version=version).first()
    if (state.stage if state else Stage.DRAFT) not in _REVIEW_FROM[stage]:
        return False
    if lifecycle.blocking(version, stage, change):
        return False
    return stage_set(version=version, stage=stage, actor=actor, change=change)


def resolve_version(tenant: Tenant, item: Version | str, *, field: str) -> Version:
    """One version of ``tenant``; an error names ``field``.

    A version of another tenant gets the same answer as one that does not exist, so a
    reference cannot be used to learn what other tenants hold.
    """
    from registry.selectors import parse, version_in_tenant

    if isinstance(item, Version):
        if item.artifact.tenant_id != tenant.pk:
            raise DomainError(f"No version '{item.path}' in {tenant.slug}.", field=field)
        return item
    try:
        ref = parse(str(item), tenant=tenant.slug)
        if ref.tenant != tenant.slug:
            raise DomainError(f"No version '{ref}' in {tenant.slug}.", field=field)
        return version_in_tenant(ref, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def lock_changes_and_artifacts(
    changes: set[Any], artifacts: set[Any]
) -> tuple[dict[Any, ChangeRequest], dict[Any, Artifact]]:
    """Lock change rows, then artifact rows, each in primary-key order, before any event.

    Every promotion, rollback and deactivation takes its locks in this one order, so two
    of them touching the same changes or artifacts queue up instead of deadlocking.
    """
    locked_changes = {
        c.pk: c
        for c in ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("tenant", "author", "policy", "golden_corpus")
        .filter(pk__in=changes)
        .order_by("pk")
    }
    locked_artifacts = {
        a.pk: a
        for a in Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "active_version__artifact__artifact_class")
        .filter(pk__in=artifacts)
        .order_by("pk")
    }
    return locked_changes, locked_artifacts


def open_changes_on(artifact_ids: set[Any], *, exclude: set[Any]) -> set[Any]:
    """Changes still being worked on that propose a version of one of these artifacts."""
    return set(
        ChangeItem.objects.filter(artifact_id__in=artifact_ids, change__status__in=EDITABLE_STATES)
        .exclude(change_id__in=exclude)
        .values_list("change_id", flat=True)
    )
