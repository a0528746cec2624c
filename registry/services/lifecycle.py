"""A version's lifecycle: stages, deprecation, removal from resolution, retirement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    EventSpec,
    event_record,
    events_record,
)
from governance.kernel.inputs import clean_text
from registry import hooks, permissions, selectors
from registry.choices import Stage
from registry.models import (
    Deprecation,
    Retirement,
    Version,
    VersionDependency,
    VersionState,
)
from registry.services.recommendation import recommendation_withdraw


def version_stage_set(
    *, version: Version, stage: str, actor: User | None, change: Any | None = None
) -> bool:
    """Record a version's new lifecycle stage (and its event); False if it already stands there."""
    state, _ = VersionState.objects.select_for_update().get_or_create(version=version)
    if state.stage == stage:
        return False
    before = state.stage
    VersionState.objects.filter(pk=state.pk).update(stage=stage, changed_at=timezone.now())
    event_record(
        kind=EventKind.VERSION_STAGE_CHANGED,
        actor=actor,
        tenant=version.artifact.tenant,
        subject=version,
        payload={
            "path": version.path,
            "from": before,
            "to": stage,
            "change": change.reference if change else None,
        },
    )
    return True


def _in_tenant(tenant: Tenant, item: Version | str, field: str) -> Version:
    """A version of ``tenant`` by object or reference; other tenants' versions read as missing."""
    if isinstance(item, Version):
        if item.artifact.tenant_id != tenant.pk:
            raise DomainError(f"No version '{item.path}' in {tenant.slug}.", field=field)
        return item
    try:
        ref = selectors.parse(str(item), tenant=tenant.slug)
        if ref.tenant != tenant.slug or not ref.version:
            raise DomainError(f"No version '{item}' in {tenant.slug}.", field=field)
        return selectors.version_in_tenant(ref, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _step_down(
    version: Version, actor: User | None, *, stage: str, why: str, event: EventSpec
) -> None:
    """A version deprecated or retired: the recommendation leaves it, its stage moves, and
    ``event`` is recorded before the recommendation's move (one lock of the chain head)."""
    moved = recommendation_withdraw(version=version, actor=actor, why=why)
    version_stage_set(version=version, stage=stage, actor=actor)
    events_record([event, *moved])


@transaction.atomic
def version_deprecate(
    *,
    version: Version,
    replacement: Version | str,
    reason: str,
    remove_after_days: int,
    actor: User | None,
    override_reason: str = "",
) -> Deprecation:
    """Deprecate a version: its replacement, why, and when it stops resolving (after a grace period).

    Refused while it is the active version (promote the replacement first), and while
    active versions still depend on it unless an administrator overrides with a reason.
    """
    version = (
        Version.objects.select_for_update(of=("self",))
        .select_related("artifact__tenant", "artifact__artifact_class", "artifact__owner")
        .get(pk=version.pk)
    )
    tenant = version.artifact.tenant
    permissions.can_deprecate(actor, version).require()
    if Deprecation.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is already deprecated.", field="version")
    if Retirement.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is retired (simulation-only).", field="version")
    if version.artifact.active_version_id == version.pk:
        raise Conflict(
            f"{version.path} is the active version; promote its replacement first.",
            field="version",
        )
    new = _in_tenant(tenant, replacement, "replacement")
    if new.pk == version.pk:
        raise DomainError("A version cannot replace itself.", field="replacement")
    if new.artifact.artifact_class_id != version.artifact.artifact_class_id:
        raise DomainError(
            f"{new.path} is a {new.artifact.artifact_class.slug}, not a "
            f"{version.artifact.artifact_class.slug}.",
            field="replacement",
        )
    if (
        Deprecation.objects.filter(version=new).exists()
        or Retirement.objects.filter(version=new).exists()
    ):
        raise DomainError(f"{new.path} is itself deprecated or retired.", field="replacement")
    reason = clean_text(reason, "reason")
    if isinstance(remove_after_days, bool) or not isinstance(remove_after_days, int):
        raise DomainError("Give the grace period as a whole number of days.", field="remove_after")
    if remove_after_days < settings.DEPRECATION_MIN_GRACE_DAYS:
        raise DomainError(
            f"The grace period is at least {settings.DEPRECATION_MIN_GRACE_DAYS} days.",
            field="remove_after",
        )
    if remove_after_days > 3650:
        raise DomainError("The grace period is at most 3650 days.", field="remove_after")
    dependents = sorted(
        d.version.path
        for d in VersionDependency.objects.filter(upstream=version).select_related(
            "version__artifact__artifact_class", "version__artifact__tenant"
        )
        if d.version.artifact.active_version_id == d.version_id
    )
    override_reason = (override_reason or "").strip()
    if dependents and not override_reason:
        raise Conflict(
            f"{version.path} is still used by active versions: {', '.join(dependents)}. "
            "An administrator can override with a reason.",
            field="override_reason",
        )
    if override_reason and len(override_reason) > 2000:
        raise DomainError("At most 2000 characters.", field="override_reason")
    now = timezone.now()
    deprecation = Deprecation.objects.create(
        version=version,
        replacement=new,
        reason=reason,
        deprecated_at=now,
        deprecated_by=actor,
        remove_after=now + timedelta(days=remove_after_days),
        override_reason=override_reason if dependents else "",
        dependents=dependents,
    )
    deprecated = EventSpec(
        EventKind.VERSION_DEPRECATED,
        actor,
        tenant=tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "replacement": new.pinned,
            "reason": reason,
            "remove_after": deprecation.remove_after.isoformat(),
            "dependents": dependents,
            "override_reason": deprecation.override_reason or None,
        },
    )
    _step_down(
        version,
        actor,
        stage=Stage.DEPRECATED,
        why=f"{version.version} was deprecated",
        event=deprecated,
    )
    return deprecation


class StillServing(Conflict):
    """A deprecated version is not removed while it still serves (no silent removals)."""

    def __init__(self, message: str, *, version: Version, requests: int) -> None:
        super().__init__(message, field="version", code="still_serving")
        self.version = version
        self.requests = requests


@transaction.atomic
def deprecation_remove(*, deprecation_id: Any, now: Any = None) -> Deprecation | None:
    """Remove one deprecated version from resolution, with its ``version.removed`` event.

    None when there is nothing to do: already removed (another sweep got there first) or
    active again (a rollback brought it back; the dashboard shows it as overdue). Refused
    with :class:`StillServing` (409, field ``version``, naming the count) while the version
    served requests in the last 24 hours, as runtime telemetry tells (``registry.hooks``):
    removing it would break its consumers silently. The refusal rolls this transaction back;
    the caller alerts the owner afterwards (:func:`removal_held_alert`).
    """
    now = now or timezone.now()
    deprecation = (
        Deprecation.objects.select_for_update(of=("self",))
        .select_related(
            "version__artifact__tenant",
            "version__artifact__artifact_class",
            "replacement__artifact__tenant",
            "replacement__artifact__artifact_class",
        )
        .get(pk=deprecation_id)
    )
    if deprecation.removed_at is not None:
        return None
    version = deprecation.version
    if version.artifact.active_version_id == version.pk:
        return None
    served = hooks.recent_traffic([version.pk], hours=24, now=now).get(version.pk, 0)
    if served:
        raise StillServing(
            f"{version.path} served {served} requests in the last 24 hours; it is not removed "
            f"while it serves. Move its consumers to {deprecation.replacement.path} first.",
            version=version,
            requests=served,
        )
    Deprecation.objects.filter(pk=deprecation.pk).update(removed_at=now)
    deprecation.removed_at = now
    from governance.kernel.notifications import notification_resolve

    notification_resolve(
        subject=removal_held_subject(version), reason=f"{version.path} was removed."
    )
    event_record(
        kind=EventKind.VERSION_REMOVED,
        actor=None,
        tenant=version.artifact.tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "deprecated_at": deprecation.deprecated_at.isoformat(),
            "remove_after": deprecation.remove_after.isoformat(),
        },
    )
    return deprecation


def removal_held_subject(version: Version) -> str:
    """Asking an owner to move traffic off a version held from removal: open until removed."""
    return f"version:{version.pk}:removal-held"


@transaction.atomic
def removal_held_alert(*, refusal: StillServing, now: Any = None) -> int:
    """Tell the artifact's owner that a due removal was held because the version still serves.

    Its own transaction, run after the refused removal rolled back (a notification written
    inside the refused transaction would vanish with it). At most one a day per version
    (the dedupe key holds the date), however often the sweep runs. Returns notifications made.
    """
    from governance.kernel.notifications import (
        notification_send,  # the project floor's notifications
    )

    now = now or timezone.now()
    version = refusal.version
    owner = version.artifact.owner
    if owner is None:
        return 0
    made = notification_send(
        users=[owner],
        tenant=version.artifact.tenant,
        title=f"Move traffic off {version.path}: it is past its removal date but still serves",
        body=refusal.message,
        url=version.get_absolute_url(),
        dedupe_key=f"removal-held:{version.pk}:{now:%Y-%m-%d}",
        subject=removal_held_subject(version),
    )
    return len(made)


def deprecations_remove_due(
    *, now: Any = None, held: list[StillServing] | None = None
) -> list[Deprecation]:
    """Remove from resolution the deprecated versions whose grace period is over (the sweep).

    Each in its own transaction with its own event (:func:`deprecation_remove`); a version
    that is active again is left alone, and one that still served traffic in the last 24
    hours is held and its owner alerted (``held`` collects those refusals): never removed
    silently.
    """
    now = now or timezone.now()
    removed = []
    due = Deprecation.objects.filter(removed_at__isnull=True, remove_after__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due):
        try:
            deprecation = deprecation_remove(deprecation_id=pk, now=now)
        except StillServing as refusal:
            removal_held_alert(refusal=refusal, now=now)
            if held is not None:
                held.append(refusal)
            continue
        if deprecation is not None:
            removed.append(deprecation)
    return removed


@transaction.atomic
def version_retire(*, version: Version, rationale: str, actor: User | None) -> Retirement:
    """Move a version that fell below its gates or was superseded to simulation-only.

    It can no longer be proposed or restored; its evaluation reports and provenance are
    kept at least until the retention period (EVIDENCE_RETENTION_DAYS) ends.
    """
    version = (
        Version.objects.select_for_update(of=("self",))
        .select_related("artifact__tenant", "artifact__artifact_class")
        .get(pk=version.pk)
    )
    tenant = version.artifact.tenant
    permissions.can_retire(actor, version).require()
    if Retirement.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is already retired.", field="version")
    if version.artifact.active_version_id == version.pk:
        raise Conflict(
            f"{version.path} is the active version; promote or roll back to another first.",
            field="version",
        )
    rationale = clean_text(rationale, "rationale")
    now = timezone.now()
    retirement = Retirement.objects.create(
        version=version,
        rationale=rationale,
        retired_at=now,
        retired_by=actor,
        retain_until=now + timedelta(days=settings.EVIDENCE_RETENTION_DAYS),
    )
    retired = EventSpec(
        EventKind.VERSION_RETIRED,
        actor,
        tenant=tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "rationale": rationale,
            "retain_until": retirement.retain_until.isoformat(),
        },
    )
    _step_down(
        version,
        actor,
        stage=Stage.SIMULATION_ONLY,
        why=f"{version.version} was retired",
        event=retired,
    )
    return retirement
