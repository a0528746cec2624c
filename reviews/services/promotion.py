"""Promotion: an approved change's versions become the active ones; the one lock order; defaults moved by rollouts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.notifications import notification_send
from registry.choices import Stage
from registry.models import Artifact, Version
from registry.verification import verify_versions
from reviews import hooks, lifecycle, permissions, selectors
from reviews.choices import EDITABLE_STATES, ActivationKind, ChangeStatus
from reviews.models import Activation, ChangeItem, ChangeRequest
from reviews.services.common import (
    change_label,
    lock_changes_and_artifacts,
    open_changes_on,
    record_event,
    rehash,
    stage_set,
    transition,
    version_ref,
)
from reviews.services.evidence import rebind
from reviews.services.notifications import change_closed_resolve
from reviews.services.recertification import recertification_open


def activation_lock(
    *, artifact_ids: set[Any], change: ChangeRequest | None = None
) -> dict[Any, Artifact]:
    """Take the locks a default move needs, in the one order: the change and every open change
    on these artifacts, then the artifacts, each by primary key. Returns the locked artifacts.

    For callers above reviews (rollouts) that lock their own rows first and may move a
    default later in the same transaction (``versions_activate`` then re-takes these locks,
    which this transaction already holds), so they never take a change's lock after an
    artifact's.
    """
    others = open_changes_on(artifact_ids, exclude={change.pk} if change else set())
    _, artifacts = lock_changes_and_artifacts(
        ({change.pk} if change else set()) | others, artifact_ids
    )
    return artifacts


def follow_active(
    others: Sequence[ChangeRequest], moved: dict[Any, Version | None], actor: User | None, why: str
) -> None:
    """Open changes on artifacts whose active version moved now name the new one as current.

    What they replace is part of what their approvals cover, so those are voided and the
    review reopens (as when evidence changes). Every rebound change, a draft too, records
    ``change_request.rebound`` (old and new current version, and why) in its own timeline.
    """
    for other in others:
        if other.status not in EDITABLE_STATES:
            continue  # decided meanwhile
        rebound = []
        for artifact_id, active in moved.items():
            stale = list(
                ChangeItem.objects.filter(change=other, artifact_id=artifact_id)
                .exclude(current=active)
                .select_related(
                    "artifact__artifact_class",
                    "artifact__tenant",
                    "current__artifact__artifact_class",
                    "current__artifact__tenant",
                )
            )
            if not stale:
                continue
            ChangeItem.objects.filter(pk__in=[i.pk for i in stale]).update(current=active)
            rebound += [
                {
                    "artifact": item.artifact.path,
                    "from": version_ref(item.current),
                    "to": version_ref(active),
                }
                for item in stale
            ]
        if not rebound:
            continue
        record_event(EventKind.CHANGE_REQUEST_REBOUND, other, actor, reason=why, items=rebound)
        before = rehash(other)
        rebind(other, actor, before, why)


def _active_conflicts(items: Sequence[ChangeItem], artifacts: dict[Any, Artifact]) -> list[str]:
    return [
        f"{item.proposed.path} is already the active version"
        for item in items
        if artifacts[item.artifact_id].active_version_id == item.proposed_id
    ]


def _activate(
    moves: Sequence[tuple[Artifact, Version]],
    *,
    change: ChangeRequest | None,
    kind: str,
    reason: str,
    actor: User | None,
    now: Any,
) -> tuple[list[tuple[Version, Version | None]], dict[Any, Version | None]]:
    """Make each version the active one of its (locked) artifact: the column, an
    ``Activation`` row, and the stages (the new one active, the one it replaces approved)."""
    activated: list[tuple[Version, Version | None]] = []
    moved: dict[Any, Version | None] = {}
    for artifact, version in moves:
        previous = artifact.active_version
        Artifact.objects.filter(pk=artifact.pk).update(active_version=version)
        artifact.active_version = version
        moved[artifact.pk] = version
        Activation.objects.create(
            artifact=artifact,
            version=version,
            previous=previous,
            kind=kind,
            change=change,
            reason=reason,
            actor=actor,
            created_at=now,
        )
        activated.append((version, previous))
    for version, previous in activated:
        stage_set(version=version, stage=Stage.ACTIVE, actor=actor, change=change)
        if previous is not None:
            stage_set(version=previous, stage=Stage.APPROVED, actor=actor, change=change)
    return activated, moved


@transaction.atomic
def versions_activate(
    *,
    versions: Sequence[Version],
    change: ChangeRequest | None,
    actor: User | None,
    reason: str,
    kind: str = ActivationKind.PROMOTION,
) -> list[tuple[Version, Version | None]]:
    """Make these versions the defaults (active versions) of their artifacts, now.

    The one way a default moves outside ``change_promote``: a rollout's success (kind
    promotion, with the change it rolls out) and a rollout's rollback (kind rollback).
    Locks open changes on the artifacts, then the artifacts, in primary-key order (a
    caller holding its own rows locked first keeps that order); writes the column, an
    ``Activation`` row per artifact and the stages; open changes on those artifacts are
    rebound to the new current version. A version that is already active is skipped.
    Returns (version, previous) for each artifact that moved. Records no event of its
    own: the caller records what it did (``rollout.succeeded``, ``pointer.moved``).
    """
    artifact_ids = {v.artifact_id for v in versions}
    if len(artifact_ids) != len(versions):
        raise DomainError("Name one version per artifact.", field="versions")
    others = open_changes_on(artifact_ids, exclude={change.pk} if change else set())
    changes, artifacts = lock_changes_and_artifacts(
        ({change.pk} if change else set()) | others, artifact_ids
    )
    moves = [
        (artifacts[v.artifact_id], v)
        for v in sorted(versions, key=lambda v: str(v.artifact_id))
        if artifacts[v.artifact_id].active_version_id != v.pk
    ]
    activated, moved = _activate(
        moves, change=change, kind=kind, reason=reason, actor=actor, now=timezone.now()
    )
    where = change.reference if change is not None else "a rollout"
    follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{where} moved the default: the active versions it replaces changed",
    )
    return activated


@transaction.atomic
def change_promote(*, change: ChangeRequest, actor: User | None) -> ChangeRequest:
    """Make an approved change's versions the active ones (an administrator's act).

    Re-checks everything at the moment of promotion, with one "now": every slot still
    filled by someone who still holds the role, every required check of this revision
    passed, and pack verification of every version and its dependencies. A version that
    is already active is refused (409): promoting it would change nothing. Other open
    changes on the same artifacts then name the new active version as their current one.
    """
    artifact_ids = set(change.items.values_list("artifact_id", flat=True))
    others = open_changes_on(artifact_ids, exclude={change.pk})
    changes, artifacts = lock_changes_and_artifacts({change.pk, *others}, artifact_ids)
    change = changes[change.pk]
    permissions.can_promote(actor, change).require()
    if change.status == ChangeStatus.PROMOTED:
        raise Conflict(f"{change.reference} is already promoted.", field="status")
    items = selectors.items_of(change)
    if {i.artifact_id for i in items} != artifact_ids:
        raise Conflict(f"{change.reference} was revised meanwhile; look again.", field="status")
    already = _active_conflicts(items, artifacts)
    if already:
        raise Conflict(
            f"{change.reference} cannot be promoted: {'; '.join(already)}. Revise the change "
            "to propose another version, or withdraw it.",
            field="proposed",
        )
    transition(change, ChangeStatus.PROMOTED)  # refuses anything but approved
    # The stage criteria of every version, before anything is written (issue 17);
    # they name failed checks and missing approvals too, so they are said first.
    unmet = [
        lifecycle.describe(i.proposed, missing)
        for i in items
        if (missing := lifecycle.blocking(i.proposed, Stage.ACTIVE, change))
    ]
    if unmet:
        raise Conflict(
            f"{change.reference} cannot be promoted: the stage criteria are not met: "
            + " | ".join(unmet),
            field="stage",
            code=lifecycle.CRITERIA_UNMET,
        )
    now = timezone.now()  # one moment for every waiver and check in this decision
    verdicts = selectors.check_verdicts(change, now)
    blockers = selectors.promotion_blockers(change, now)
    if blockers:
        raise Conflict(
            f"{change.reference} cannot be promoted: {'; '.join(blockers)}", field="status"
        )
    checked, failure = verify_versions([i.proposed for i in items])
    if failure is not None:
        raise Conflict(
            f"Pack verification failed for {failure.version.path}: {failure.reason}", field="status"
        )
    # Artifacts bound to an application slot: the promotion approves their versions for
    # production, and a rollout moves their default (rollouts answers through the hook).
    bound = hooks.slot_bound(artifact_ids)
    change.promoted_at = now
    change.promoted_by = actor
    if change.emergency:
        days = selectors.effective_policy(change.tenant)[1]["postmortem_days"]
        change.postmortem_due_at = now + timedelta(days=days)
    change.save(update_fields=["status", "promoted_at", "promoted_by", "postmortem_due_at"])
    recertification_open(change=change, actor=actor, now=now)  # emergency changes only
    activated, moved = _activate(
        [(artifacts[i.artifact_id], i.proposed) for i in items if i.artifact_id not in bound],
        change=change,
        kind=ActivationKind.PROMOTION,
        reason=change.title,
        actor=actor,
        now=now,
    )
    record_event(
        EventKind.CHANGE_REQUEST_PROMOTED,
        change,
        actor,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        activated=[
            {"active": version_ref(proposed), "previous": version_ref(previous)}
            for proposed, previous in activated
        ],
        awaiting_rollout=sorted(i.proposed.path for i in items if i.artifact_id in bound),
        waivers=selectors.waivers_used(verdicts),
        pack_verification=f"OK: {checked} versions verified",
        postmortem_due_at=change.postmortem_due_at.isoformat()
        if change.postmortem_due_at
        else None,
    )
    follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{change.reference} was promoted: the active versions it replaces changed",
    )
    change_closed_resolve(change, f"{change.reference} was promoted.")
    notification_send(
        users=[change.author],
        tenant=change.tenant,
        title=f"{change_label(change)} was promoted",
        body=change.title,
        url=change.get_absolute_url(),
        dedupe_key=f"promoted:{change.pk}",
    )
    return change
