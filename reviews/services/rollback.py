"""Rollback and the safety switch: undo a promotion, or leave an artifact with no active version."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, event_record, events_record
from governance.kernel.inputs import clean_text
from registry.choices import Stage
from registry.models import Artifact, Deprecation, Retirement, Version
from registry.verification import verify_versions
from reviews import hooks, permissions
from reviews.choices import ActivationKind, ChangeStatus
from reviews.models import Activation, ChangeRequest
from reviews.services.common import (
    change_subject,
    lock_changes_and_artifacts,
    open_changes_on,
    resolve_version,
    stage_set,
    transition,
    version_ref,
)
from reviews.services.promotion import follow_active


def _promotion_of(artifact: Artifact) -> Activation | None:
    """The promotion that made the artifact's active version active: its rollback point and change.

    (After a rollback, rolling back again goes further back; it never undoes the rollback.)
    """
    if artifact.active_version_id is None:
        return None
    return (
        Activation.objects.filter(
            artifact=artifact, version_id=artifact.active_version_id, kind=ActivationKind.PROMOTION
        )
        .select_related(
            "previous__artifact__artifact_class", "previous__artifact__tenant", "change"
        )
        .order_by("-created_at")
        .first()
    )


def rollback_point(artifact: Artifact) -> Version | None:
    """Where a rollback of ``artifact`` without a target goes: the version its active one
    replaced (None when that promotion replaced none, or nothing is active)."""
    promotion = _promotion_of(artifact)
    return promotion.previous if promotion is not None else None


def _restorable(to: Version, override_reason: str) -> Deprecation | None:
    """Refuse a retired or removed version; a deprecated one only with an override reason."""
    if Retirement.objects.filter(version=to).exists():
        raise Conflict(
            f"{to.path} is retired or removed; it cannot be made active again.", field="target"
        )
    deprecation = (
        Deprecation.objects.filter(version=to)
        .select_related("replacement__artifact__artifact_class", "replacement__artifact__tenant")
        .first()
    )
    if deprecation is None:
        return None
    if deprecation.removed_at is not None:
        raise Conflict(
            f"{to.path} is retired or removed; it cannot be made active again.", field="target"
        )
    if not override_reason:
        raise Conflict(
            f"{to.path} is deprecated (replaced by {deprecation.replacement.version}: "
            f"{deprecation.reason}). Restoring it needs an administrator's override reason.",
            field="override_reason",
        )
    return deprecation


#: The code of rollback's refusal of a first promotion (the API names the safety switch).
NOTHING_TO_ROLL_BACK_TO = "nothing_to_roll_back_to"


def _mark_rolled_back(change: ChangeRequest | None, actor: User | None, now: Any) -> None:
    if change is None or change.status != ChangeStatus.PROMOTED:
        return
    transition(change, ChangeStatus.ROLLED_BACK)
    change.rolled_back_at = now
    change.rolled_back_by = actor
    change.save(update_fields=["status", "rolled_back_at", "rolled_back_by"])


#: One artifact's rollback: the artifact (locked), its active version, where it goes back to.
Step = tuple[Artifact, Version | None, Version | None]


def _plan(
    change: ChangeRequest | None, artifact: Artifact, artifacts: dict[Any, Artifact]
) -> tuple[list[Step], list[dict[str, Any]]]:
    """Each artifact the change made active and that still has its version: where it goes
    (``artifact`` first), and the ones left alone because their active version moved since.
    Without a change, ``artifact`` alone, with nowhere to go yet."""
    if change is None:
        return [(artifact, artifact.active_version, None)], []
    plan: list[Step] = []
    left = []
    rows = Activation.objects.filter(change=change, kind=ActivationKind.PROMOTION).select_related(
        "version", "previous__artifact__artifact_class", "previous__artifact__tenant"
    )
    for row in sorted(rows, key=lambda r: (r.artifact_id != artifact.pk, str(r.artifact_id))):
        held = artifacts.get(row.artifact_id)
        if held is None or row.artifact_id in {a.pk for a, _, _ in plan}:
            continue
        if held.active_version_id != row.version_id:
            left.append({"artifact": held.path, "active": version_ref(held.active_version)})
            continue
        plan.append((held, held.active_version, row.previous))
    return plan, left


def _target(artifact: Artifact, current: Version | None, target: Version | str) -> Version:
    """The version named to go back to: one of ``artifact``'s, not active, active before."""
    to = resolve_version(artifact.tenant, target, field="target")
    if to.artifact_id != artifact.pk:
        raise DomainError(f"{to.path} is not a version of {artifact.path}.", field="target")
    if current is not None and to.pk == current.pk:
        raise Conflict(f"{to.path} is already the active version.", field="target")
    if not Activation.objects.filter(artifact=artifact, version=to).exists():
        raise Conflict(
            f"{to.path} was never active; only previously promoted versions can be restored "
            "without approvals.",
            field="target",
        )
    return to


def _steps(plan: list[Step]) -> list[tuple[Artifact, Version | None, Version]]:
    """The plan, refused when an artifact in it has nothing to go back to (a first promotion)."""
    steps: list[tuple[Artifact, Version | None, Version]] = []
    for held, before, back_to in plan:
        if back_to is None:
            raise Conflict(
                f"{held.path} has no earlier promoted version to go back to; to take it out of "
                "service, deactivate it (the safety switch).",
                field="target",
                code=NOTHING_TO_ROLL_BACK_TO,
            )
        steps.append((held, before, back_to))
    return steps


@transaction.atomic
def rollback(
    *,
    artifact: Artifact,
    actor: User | None,
    reason: str,
    target: Version | str | None = None,
    override_reason: str = "",
) -> Activation:
    """Undo the promotion that made ``artifact``'s active version active (or go to ``target``).

    The change that promoted it is rolled back as a whole: each of its versions that is
    still active goes back to the version it replaced (``artifact`` to ``target`` if
    given, any version that was active before), in one transaction with one
    ``rollout.rolled_back`` event, and the change reads "rolled back". No approvals:
    going back to a version that already passed them is allowed, except to a deprecated
    one, which needs an administrator's ``override_reason`` (recorded). Pack
    verification runs again. A first promotion has nothing to go back to: switch the
    artifact off with ``artifact_deactivate`` instead.
    """
    reason = clean_text(reason, "reason", required=True, limit=2000)
    override_reason = clean_text(override_reason, "override_reason", required=False, limit=2000)
    # Read what the rollback touches, then lock it all (changes, then artifacts) and re-read.
    seen = Artifact.objects.only("active_version").get(pk=artifact.pk)
    promoted = _promotion_of(seen)
    undone = promoted.change if promoted else None
    scope = {artifact.pk}
    if undone is not None:
        scope |= set(undone.items.values_list("artifact_id", flat=True))
    others = open_changes_on(scope, exclude={undone.pk} if undone else set())
    changes, artifacts = lock_changes_and_artifacts(
        {undone.pk, *others} if undone else others, scope
    )
    artifact = artifacts[artifact.pk]
    permissions.can_roll_back(actor, artifact).require()
    current = artifact.active_version
    if current is None and target is None:
        raise Conflict(
            f"{artifact.path} has no active version to roll back from. Name the version to "
            "restore.",
            field="artifact",
        )
    if (current.pk if current else None) != seen.active_version_id:
        raise Conflict(
            f"{artifact.path}'s active version changed meanwhile; look again.", field="artifact"
        )
    change = changes[undone.pk] if undone is not None else None
    plan, left = _plan(change, artifact, artifacts)
    if target is not None:
        assert plan[0][0].pk == artifact.pk  # the named artifact comes first
        plan[0] = (artifact, current, _target(artifact, current, target))
    steps = _steps(plan)
    overrides = {v.pk: _restorable(v, override_reason) for _, _, v in steps}
    checked, failure = verify_versions([v for _, _, v in steps])
    if failure is not None:
        raise Conflict(
            f"Pack verification failed for {failure.version.path}: {failure.reason}", field="target"
        )
    now = timezone.now()
    activations = []
    moved: dict[Any, Version | None] = {}
    for held, before, back_to in steps:
        Artifact.objects.filter(pk=held.pk).update(active_version=back_to)
        moved[held.pk] = back_to
        activations.append(
            Activation.objects.create(
                artifact=held,
                version=back_to,
                previous=before,
                kind=ActivationKind.ROLLBACK,
                change=change,
                reason=reason,
                override_reason=override_reason if overrides[back_to.pk] else "",
                actor=actor,
                created_at=now,
            )
        )
    _mark_rolled_back(change, actor, now)
    hooks.default_moved([(held, b, t) for held, b, t in steps], actor, reason)
    for _, before, back_to in steps:
        stage_set(version=back_to, stage=Stage.ACTIVE, actor=actor, change=change)
        if before is not None:
            stage_set(version=before, stage=Stage.APPROVED, actor=actor, change=change)
    restored = [v.path for _, _, v in steps if overrides[v.pk]]
    events_record(
        [
            EventSpec(
                EventKind.ROLLOUT_ROLLED_BACK,
                actor,
                tenant=artifact.tenant,
                subject=change_subject(change) if change is not None else artifact,
                payload={
                    "artifact": artifact.path,
                    "from": version_ref(current),
                    "to": version_ref(steps[0][2]),
                    "change": change.reference if change else None,
                    "reason": reason,
                    "items": [
                        {"artifact": held.path, "from": version_ref(b), "to": version_ref(t)}
                        for held, b, t in steps
                    ],
                    "left": left,
                    "deprecated_restored": restored,
                    "override_reason": override_reason if restored else None,
                    "pack_verification": f"OK: {checked} versions verified",
                },
            )
        ]
    )
    follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{artifact.path} was rolled back: the active versions it replaces changed",
    )
    return activations[0]


@transaction.atomic
def artifact_deactivate(*, artifact: Artifact, actor: User | None, reason: str) -> Activation:
    """The safety switch: leave an artifact with no active version (resolution answers 404).

    For a version that was promoted first (nothing to roll back to), or to halt it while a
    fix is prepared. Logged as ``artifact.deactivated``; when it switches off the last
    version a change made active, that change reads "rolled back". A later promotion (or
    a rollback to a version that was active before) turns it back on.
    """
    reason = clean_text(reason, "reason", required=True, limit=2000)
    seen = Artifact.objects.only("active_version").get(pk=artifact.pk)
    promoted = _promotion_of(seen)
    undone = promoted.change if promoted else None
    others = open_changes_on({artifact.pk}, exclude={undone.pk} if undone else set())
    changes, artifacts = lock_changes_and_artifacts(
        {undone.pk, *others} if undone else others, {artifact.pk}
    )
    artifact = artifacts[artifact.pk]
    permissions.can_deactivate(actor, artifact).require()
    current = artifact.active_version
    if current is None:
        raise Conflict(f"{artifact.path} has no active version.", field="artifact")
    if current.pk != seen.active_version_id:
        raise Conflict(
            f"{artifact.path}'s active version changed meanwhile; look again.", field="artifact"
        )
    change = changes[undone.pk] if undone is not None else None
    now = timezone.now()
    Artifact.objects.filter(pk=artifact.pk).update(active_version=None)
    activation = Activation.objects.create(
        artifact=artifact,
        version=None,
        previous=current,
        kind=ActivationKind.DEACTIVATION,
        change=change,
        reason=reason,
        actor=actor,
        created_at=now,
    )
    if change is not None:
        still_live = Artifact.objects.filter(
            pk__in=change.items.values("artifact_id"),
            active_version_id__in=change.items.values("proposed_id"),
        ).exists()
        if not still_live:
            _mark_rolled_back(change, actor, now)
    stage_set(version=current, stage=Stage.APPROVED, actor=actor, change=change)
    hooks.default_moved([(artifact, current, None)], actor, reason)
    event_record(
        kind=EventKind.ARTIFACT_DEACTIVATED,
        actor=actor,
        tenant=artifact.tenant,
        subject=change_subject(change) if change is not None else artifact,
        payload={
            "artifact": artifact.path,
            "from": version_ref(current),
            "change": change.reference if change else None,
            "reason": reason,
        },
    )
    follow_active(
        [changes[pk] for pk in sorted(others)],
        {artifact.pk: None},
        actor,
        f"{artifact.path} was deactivated: it has no active version now",
    )
    return activation


@transaction.atomic
def change_switch_off(
    *, change: ChangeRequest, actor: User | None, reason: str
) -> list[Activation]:
    """The safety switch for a whole promoted change, from its page.

    For a first promotion, which rollback cannot undo (no earlier promoted version):
    every artifact still serving a version this change made active is left with no
    active version by ``artifact_deactivate`` (one ``artifact.deactivated`` event each),
    all in one transaction, and the change then reads "rolled back". Administrators of
    the tenant only (``can_deactivate``, checked for every artifact before any write).
    """
    reason = clean_text(reason, "reason", required=True, limit=2000)
    artifact_ids = set(change.items.values_list("artifact_id", flat=True))
    others = open_changes_on(artifact_ids, exclude={change.pk})
    # The one lock order (changes, then artifacts); each artifact_deactivate below re-takes
    # locks this transaction already holds.
    changes, artifacts = lock_changes_and_artifacts({change.pk, *others}, artifact_ids)
    change = changes[change.pk]
    for artifact in artifacts.values():
        permissions.can_deactivate(actor, artifact).require()
    if change.status != ChangeStatus.PROMOTED:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; only a promoted "
            "change can be switched off.",
            field="status",
        )
    live = sorted(
        {
            item.artifact_id
            for item in change.items.all()
            if artifacts[item.artifact_id].active_version_id == item.proposed_id
        },
        key=str,
    )
    if not live:
        raise Conflict(
            f"None of the versions {change.reference} made active is active now.", field="status"
        )
    return [artifact_deactivate(artifact=artifacts[pk], actor=actor, reason=reason) for pk in live]
