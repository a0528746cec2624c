"""A tenant's override of a slot's default (set and cleared by hand; rollouts set theirs)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.services import EventSpec, events_record
from governance.kernel.inputs import clean_text
from registry.models import Version
from rollouts import permissions, selectors
from rollouts.choices import PointerKind
from rollouts.models import Override, Slot
from rollouts.services.moves import (
    REASON_LIMIT,
    PointerChange,
    lock_artifact,
    record_move,
    require_servable,
    slot_label,
)


def _override_target(slot: Slot, tenant: Tenant) -> Slot:
    slot = Slot.objects.select_related(
        "application__tenant", "artifact__tenant", "artifact__artifact_class"
    ).get(pk=slot.pk)
    if not selectors.slot_serves_tenant(slot, tenant):
        raise DomainError(
            f"{slot_label(slot)} is not part of '{tenant.slug}''s runtime (its application or "
            "artifact belongs to another tenant).",
            field="tenant",
        )
    return slot


def _lock_override(slot: Slot, tenant: Tenant) -> Override | None:
    return (
        Override.objects.select_for_update(of=("self",))
        .select_related("version__artifact__artifact_class", "version__artifact__tenant", "rollout")
        .filter(slot=slot, tenant=tenant)
        .first()
    )


def _refuse_if_held(override: Override | None) -> None:
    held_by = override.rollout if override is not None else None
    if held_by is not None and held_by.state in selectors.HOLDING_STATES:
        raise Conflict(
            f"{held_by.reference} set this override and is "
            f"{held_by.get_state_display().lower()}; finish, abort or roll it back first.",
            field="tenant",
        )


@transaction.atomic
def override_set(
    *, slot: Slot, tenant: Tenant, version: Version, reason: str, actor: User | None
) -> Override:
    """Make ``tenant`` serve ``version`` in ``slot`` instead of the default (a pointer move).

    The version must be of the slot's artifact and servable (went through a promoted
    change; not removed, retired or a draft). An administrator of ``tenant`` only.
    """
    permissions.can_set_override(actor, tenant).require()
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    slot = _override_target(slot, tenant)
    if version.artifact_id != slot.artifact_id:
        raise DomainError(
            f"{version.path} is not a version of {slot.artifact.path}.", field="version"
        )
    artifact = lock_artifact(slot.artifact)
    require_servable([version], "version")
    current = _lock_override(slot, tenant)
    _refuse_if_held(current)
    if current is not None and current.version_id == version.pk:
        raise Conflict(f"'{tenant.slug}' already serves {version.path} here.", field="version")
    specs: list[EventSpec] = []
    before = current.version if current is not None else None
    if current is None:
        current = Override.objects.create(
            slot=slot, tenant=tenant, version=version, reason=reason, set_by=actor
        )
    else:
        current.version = version
        current.rollout = None
        current.reason = reason
        current.set_at = timezone.now()
        current.set_by = actor
        current.save(update_fields=["version", "rollout", "reason", "set_at", "set_by"])
    record_move(
        specs,
        PointerChange(
            kind=PointerKind.OVERRIDE,
            artifact=artifact,
            slot=slot,
            tenant=tenant,
            from_version=before,
            to_version=version,
            reason=reason,
            actor=actor,
        ),
    )
    events_record(specs)
    return current


@transaction.atomic
def override_clear(*, slot: Slot, tenant: Tenant, reason: str, actor: User | None) -> None:
    """``tenant`` follows the slot's default again (a pointer move)."""
    permissions.can_set_override(actor, tenant).require()
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    slot = _override_target(slot, tenant)
    artifact = lock_artifact(slot.artifact)
    current = _lock_override(slot, tenant)
    if current is None:
        raise Conflict(f"'{tenant.slug}' has no override of {slot_label(slot)}.", field="tenant")
    _refuse_if_held(current)
    before = current.version
    current.delete()
    specs: list[EventSpec] = []
    record_move(
        specs,
        PointerChange(
            kind=PointerKind.OVERRIDE,
            artifact=artifact,
            slot=slot,
            tenant=tenant,
            from_version=before,
            to_version=None,
            reason=reason,
            actor=actor,
        ),
    )
    events_record(specs)
